// An echo testee on Node's `ws` server, for the panel the harness compares and agrees over.
//
//   node node_ws_echo.js PORT [HOST]   serve; print "serving on ws://HOST:PORT" once listening
//   node node_ws_echo.js --check       print the `ws` version and exit 0, or exit 1 without it
//
// Configured like the Python peers: permessage-deflate on, messages up to 32 MiB accepted
// (Autobahn 9.x sends 16 MiB). `ws` is found the usual way (a node_modules above, NODE_PATH),
// else in impl/tests/node/node_modules, where `npm ci --prefix impl/tests/node` puts it.
"use strict";

const path = require("path");

const MAX_MESSAGE_SIZE = 2 ** 25;

// Where `npm ci --prefix impl/tests/node` installs the pinned `ws` in a source checkout.
const CHECKOUT_MODULES = path.join(__dirname, "..", "..", "impl", "tests", "node");

function findWs() {
  // The package's own package.json: its folder is the module, its version is reported.
  return require.resolve("ws/package.json", { paths: [__dirname, CHECKOUT_MODULES] });
}

function main(argv) {
  let manifest;
  try {
    manifest = findWs();
  } catch (error) {
    console.error(`node_ws_echo: no ws package (npm ci --prefix impl/tests/node): ${error.message}`);
    process.exit(1);
  }
  if (argv[0] === "--check") {
    console.log(`ws ${require(manifest).version}`);
    return;
  }
  if (argv.length < 1 || argv.length > 2) {
    console.error("usage: node_ws_echo.js PORT [HOST] | --check");
    process.exit(2);
  }
  const ws = require(path.dirname(manifest));
  const port = Number(argv[0]);
  const host = argv[1] || "127.0.0.1";
  const server = new ws.WebSocketServer({
    host,
    port,
    perMessageDeflate: true,
    maxPayload: MAX_MESSAGE_SIZE,
  });
  server.on("connection", (socket) => {
    // Echo text as text and binary as binary; a connection the fuzzer breaks just ends.
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on("error", () => {});
  });
  server.on("listening", () => console.log(`serving on ws://${host}:${port}`));
}

main(process.argv.slice(2));
