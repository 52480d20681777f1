// A real peer for impl/tests/test_node_ws.py: Node's `ws` client against our server.
//
//   node ws_client.js URL echo   text, binary, a 100 000-character text and a Ping; checks
//                                each answer, then closes with 4001 "node done"
//   node ws_client.js URL bye    sends "bye" and waits for the server to close
//
// Prints one JSON line with what it observed; exits 1 if the run did not finish in time.
"use strict";

const WebSocket = require("ws");

const [url, mode] = process.argv.slice(2);
const report = { mode, texts: [], binaries: [], pongs: [], errors: [] };
const big = "ab".repeat(50000);
const ws = new WebSocket(url, ["chat"]);

const timer = setTimeout(() => {
  report.errors.push("timed out");
  console.log(JSON.stringify(report));
  process.exit(1);
}, 20000);

ws.on("open", () => {
  report.extensions = ws.extensions;
  report.protocol = ws.protocol;
  if (mode === "bye") {
    ws.send("bye");
    return;
  }
  ws.send("héllo from node");
  ws.send(Buffer.from([0, 1, 2, 255]));
  ws.send(big);
  ws.ping(Buffer.from("are you there"));
});

ws.on("message", (data, isBinary) => {
  if (isBinary) {
    report.binaries.push(Buffer.from(data).toString("hex"));
  } else {
    const text = data.toString("utf8");
    report.texts.push(text.length > 100 ? `${text.length} chars, intact: ${text === big}` : text);
  }
  maybeClose();
});

ws.on("pong", (data) => {
  report.pongs.push(data.toString("utf8"));
  maybeClose();
});

function maybeClose() {
  if (mode === "echo" && report.texts.length === 2 && report.binaries.length === 1 && report.pongs.length === 1) {
    ws.close(4001, "node done");
  }
}

ws.on("error", (error) => report.errors.push(String(error)));

ws.on("close", (code, reason) => {
  clearTimeout(timer);
  report.closeCode = code;
  report.closeReason = reason.toString("utf8");
  console.log(JSON.stringify(report));
  process.exit(0);
});
