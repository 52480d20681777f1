"""An echo testee built on picows, for comparing implementations.

Usage: ``python conformance/testees/picows_echo.py PORT [HOST]``. picows hands over frames,
not messages, and has no permessage-deflate: the listener below reassembles fragmented
messages, validates text as UTF-8 as it arrives (failing fast, as RFC 6455 §8.1 allows), and
echoes each complete message. Messages up to 32 MiB are accepted, because Autobahn 9.x sends
messages of 16 MiB and an echo server must not refuse them. Violations are raised as
``WSProtocolError``: picows then sends the close frame with that code and disconnects.
"""

from __future__ import annotations

import asyncio
import codecs
import sys

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)

MAX_MESSAGE_SIZE = 2**25


class EchoListener(WSListener):
    """Reassemble data frames into messages and send each back unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.kind: WSMsgType | None = None  # the data message in progress, if any
        self.parts: list[bytes] = []
        self.size = 0
        self.utf8 = codecs.getincrementaldecoder("utf-8")()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them (none here).
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "reserved bit set")
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            # RFC 6455 §5.5.1: answer with a close frame echoing the status code, then the
            # server closes the TCP connection (§7.1.1). picows validated the payload.
            code = frame.get_close_code()
            transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
            transport.disconnect()
            return
        if kind in (WSMsgType.PING, WSMsgType.PONG):  # pings are answered by picows
            return
        if kind == WSMsgType.CONTINUATION:
            # RFC 6455 §5.4: a continuation frame only continues a started message.
            if self.kind is None:
                raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "continuation without start")
        elif self.kind is not None:
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")
        else:
            self.kind = kind
        payload = frame.get_payload_as_bytes()
        self.size += len(payload)
        if self.size > MAX_MESSAGE_SIZE:
            raise WSProtocolError(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
        if self.kind == WSMsgType.TEXT:
            try:
                # RFC 6455 §8.1: invalid UTF-8 fails the connection (1007), as soon as seen.
                self.utf8.decode(payload, final=bool(frame.fin))
            except UnicodeDecodeError:
                raise WSProtocolError(WSCloseCode.INVALID_TEXT, "invalid UTF-8") from None
        self.parts.append(payload)
        if frame.fin:
            transport.send(self.kind, b"".join(self.parts))
            self.kind = None
            self.parts.clear()
            self.size = 0
            self.utf8.reset()


def route(request: WSUpgradeRequest) -> EchoListener:
    """Every path is the echo endpoint."""
    return EchoListener()


async def main(port: int, host: str = "127.0.0.1") -> None:
    """Serve until the process is terminated; print the address once listening."""
    server = await ws_create_server(route, host, port, max_frame_size=MAX_MESSAGE_SIZE)
    print(f"serving on ws://{host}:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: picows_echo.py PORT [HOST]")
    asyncio.run(main(int(sys.argv[1]), *sys.argv[2:3]))
