"""A stateful machine over two ``Connection``s, a client and a server, wired back to back.

Hypothesis interleaves, at random: messages (text or binary, whole or fragmented), Pings and
Closes from either side; deliveries of what is in flight in arbitrary chunks (empty reads
included); TCP dropping at either end; sends attempted after the close; and an adversary
that writes raw bytes (noise, broken conversations, loose frames) into either direction.
permessage-deflate is negotiated with random parameters in half of the runs.

What must hold at every step:
- No exception escapes ``receive_data`` / ``receive_eof`` / ``events()``; sending after the
  close raises only ``InvalidState`` and queues nothing.
- Nothing is delivered after ``Closed``, which comes exactly once; a ``CloseReceived`` is
  followed by ``Closed`` with the same code.
- A direction the adversary never touched delivers exactly what was sent, in order: messages,
  Pings, the Pongs that answer them (RFC 6455 §5.5.3), the Close and its echo (§5.5.1);
  such a direction never makes its receiver fail.
- A connection that fails closes with ``close_code_for(failure)``, and that code is what its
  peer receives in the Close frame (RFC 6455 §7.1.7) unless it had already sent its own.
- Once everything in flight is delivered, every expected event has arrived.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from strategies import (
    WireFrame,
    close_reasons,
    control_payloads,
    hostile_streams,
    masking_keys,
    utf8ish_bytes,
    valid_close_codes,
)

from rfc6455.connection import Connection, State
from rfc6455.errors import CloseCode, InvalidState, close_code_for
from rfc6455.events import (
    BinaryMessage,
    Closed,
    CloseReceived,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from rfc6455.extensions import PerMessageDeflate
from rfc6455.frame import Role

CLIENT, SERVER = "client", "server"
SIDES = st.sampled_from([CLIENT, SERVER])
# Honest messages stay below the limit; the adversary's may not.
MAX_MESSAGE_SIZE = 4096


@dataclass(frozen=True)
class ExpectedClose:
    """A Close the receiver must see; ``reason`` is ``None`` when it is not predictable."""

    code: int
    reason: str | None


Expected = TextMessage | BinaryMessage | Ping | Pong | ExpectedClose

messages = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=600),
    st.text(min_size=1, max_size=20).map(lambda s: s * 30),  # compressible, several frames
)
fragment_sizes = st.one_of(st.none(), st.integers(1, 120))
# Rare actions (the closing ones, the adversary) act on one draw in four, so that most runs
# exchange a good number of messages before the connection ends.
rarely = st.sampled_from([False, False, False, True])


@st.composite
def oversized_frames(draw: st.DrawFn, masked: bool) -> bytes:
    """A data frame announcing more than the limit allows, with the start of its payload."""
    length = draw(st.integers(MAX_MESSAGE_SIZE * 2, 2**20))
    opcode = draw(st.sampled_from([0x1, 0x2]))
    head = bytes((0x80 | opcode, (0x80 if masked else 0) | 127)) + length.to_bytes(8, "big")
    if masked:
        head += draw(masking_keys)
    return head + draw(st.binary(max_size=32))


@st.composite
def text_frames(draw: st.DrawFn, masked: bool) -> bytes:
    """A whole text frame whose payload is often invalid UTF-8 (RFC 6455 §8.1: 1007)."""
    frame = WireFrame(True, 0, 0x1, masked, draw(masking_keys), draw(utf8ish_bytes()))
    return frame.to_bytes()


def adversary_bytes(masked: bool) -> st.SearchStrategy[bytes]:
    return st.one_of(
        hostile_streams(masked),
        st.binary(max_size=64),
        oversized_frames(masked),
        text_frames(masked),
    )


def _other(side: str) -> str:
    return SERVER if side == CLIENT else CLIENT


def _deflate_pair(
    client_no_context: bool, server_no_context: bool, client_bits: int, server_bits: int
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Both ends of one negotiated permessage-deflate (RFC 7692 §7.1): mirror images."""
    client = PerMessageDeflate(
        local_no_context_takeover=client_no_context,
        remote_no_context_takeover=server_no_context,
        local_max_window_bits=client_bits,
        remote_max_window_bits=server_bits,
    )
    server = PerMessageDeflate(
        local_no_context_takeover=server_no_context,
        remote_no_context_takeover=client_no_context,
        local_max_window_bits=server_bits,
        remote_max_window_bits=client_bits,
    )
    return client, server


class ConnectionPair(RuleBasedStateMachine):
    """A client and a server ``Connection`` exchanging bytes through two in-flight buffers."""

    @initialize(
        deflate=st.booleans(),
        client_no_context=st.booleans(),
        server_no_context=st.booleans(),
        client_bits=st.integers(8, 15),
        server_bits=st.integers(8, 15),
    )
    def connect(
        self,
        deflate: bool,
        client_no_context: bool,
        server_no_context: bool,
        client_bits: int,
        server_bits: int,
    ) -> None:
        client_ext: list[PerMessageDeflate] = []
        server_ext: list[PerMessageDeflate] = []
        if deflate:
            pair = _deflate_pair(client_no_context, server_no_context, client_bits, server_bits)
            client_ext, server_ext = [pair[0]], [pair[1]]
        event(f"permessage-deflate: {deflate}")
        self.conns = {
            CLIENT: Connection(Role.CLIENT, client_ext, max_message_size=MAX_MESSAGE_SIZE),
            SERVER: Connection(Role.SERVER, server_ext, max_message_size=MAX_MESSAGE_SIZE),
        }
        # wire[side]: bytes ``side`` wrote that its peer has not read yet.
        self.wire = {CLIENT: bytearray(), SERVER: bytearray()}
        # expected[side]: what ``side``'s peer must deliver next, from ``side``'s stream.
        self.expected: dict[str, deque[Expected]] = {CLIENT: deque(), SERVER: deque()}
        self.corrupted = {CLIENT: False, SERVER: False}  # the adversary wrote into side's stream
        self.eof = {CLIENT: False, SERVER: False}  # side saw TCP end
        self.close_sent = {CLIENT: False, SERVER: False}  # side queued a Close frame
        self.close_received: dict[str, int | None] = {CLIENT: None, SERVER: None}
        self.closed_seen = {CLIENT: False, SERVER: False}

    # -- what either side does -----------------------------------------------------------------

    @rule(side=SIDES, message=messages, fragment_size=fragment_sizes)
    def send_message(self, side: str, message: str | bytes, fragment_size: int | None) -> None:
        conn = self.conns[side]
        if conn.state is not State.OPEN:
            self._assert_cannot_send(side, lambda: conn.send(message))
            return
        if isinstance(message, str):
            conn.send_text(message, fragment_size)
            self.expected[side].append(TextMessage(message))
        else:
            conn.send_binary(message, fragment_size)
            self.expected[side].append(BinaryMessage(message))
        self._flush(side)

    @rule(side=SIDES, payload=control_payloads())
    def send_ping(self, side: str, payload: bytes) -> None:
        conn = self.conns[side]
        if conn.state is not State.OPEN:
            self._assert_cannot_send(side, lambda: conn.send_ping(payload))
            return
        conn.send_ping(payload)
        self.expected[side].append(Ping(payload))
        self._flush(side)

    @rule(side=SIDES, code=valid_close_codes(), reason=close_reasons(), now=rarely)
    def close(self, side: str, code: int, reason: str, now: bool) -> None:
        conn = self.conns[side]
        if not now:
            return
        was_open = conn.state is State.OPEN
        conn.close(code, reason)
        if not was_open:
            assert conn.data_to_send() == b"", "close() after the close queued bytes"
            return
        assert conn.state is State.CLOSING
        self.close_sent[side] = True
        self.expected[side].append(ExpectedClose(code, reason))
        self._flush(side)

    # -- the network ---------------------------------------------------------------------------

    @rule(side=SIDES, size=st.one_of(st.integers(0, 8), st.integers(0, 3000)))
    def deliver(self, side: str, size: int) -> None:
        """``side`` reads up to ``size`` bytes of what its peer wrote (0: an empty read)."""
        incoming = self.wire[_other(side)]
        chunk = bytes(incoming[:size])
        del incoming[:size]
        self.conns[side].receive_data(chunk)
        self._receive(side)

    @rule()
    def deliver_everything(self) -> None:
        """Both sides read until nothing is in flight; every expectation must then be met."""
        while self.wire[CLIENT] or self.wire[SERVER]:
            for side in (CLIENT, SERVER):
                incoming = self.wire[_other(side)]
                chunk = bytes(incoming)
                incoming.clear()
                self.conns[side].receive_data(chunk)
                self._receive(side)
        for side in (CLIENT, SERVER):
            peer = _other(side)
            if not (self.corrupted[side] or self.eof[peer]):
                assert not self.expected[side], (
                    f"the {peer} never delivered {list(self.expected[side])} sent by the {side}"
                )

    @rule(side=SIDES, now=rarely)
    def drop_tcp(self, side: str, now: bool) -> None:
        """``side`` sees TCP end, with or without a closing handshake (RFC 6455 §7.1.5)."""
        if self.eof[side] or not now:
            return
        self.eof[side] = True
        self.conns[side].receive_eof()
        self._receive(side)
        assert self.conns[side].state is State.CLOSED
        assert self.conns[side].close_transport

    @rule(side=SIDES, data=st.data(), now=rarely)
    def adversary_writes(self, side: str, data: st.DataObject, now: bool) -> None:
        """Raw bytes appear in ``side``'s stream, mostly masked as its peer expects."""
        if not now:
            return
        raw = data.draw(adversary_bytes(masked=side == CLIENT))
        if raw:
            self.corrupted[side] = True
            self.wire[side] += raw

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def failures_map_to_their_close_code(self) -> None:
        for conn in self.conns.values():
            if conn.failure is None:
                continue
            assert conn.state is State.CLOSED
            assert conn.close_transport
            assert conn.close_code == close_code_for(conn.failure)

    @invariant()
    def closed_is_delivered_exactly_when_the_state_is_closed(self) -> None:
        for side, conn in self.conns.items():
            assert self.closed_seen[side] == (conn.state is State.CLOSED), side

    # -- internals -----------------------------------------------------------------------------

    def _assert_cannot_send(self, side: str, send: object) -> None:
        assert callable(send)
        try:
            send()
        except InvalidState:
            pass
        else:
            raise AssertionError(f"the {side} sent after its Close (RFC 6455 §5.5.1)")
        assert self.conns[side].data_to_send() == b""

    def _flush(self, side: str) -> None:
        self.wire[side] += self.conns[side].data_to_send()

    def _receive(self, side: str) -> None:
        """Pull every event ``side`` has, checking each; then put its answers on the wire."""
        conn = self.conns[side]
        for item in conn.events():
            self._check(side, conn, item)
        self._flush(side)

    def _check(self, side: str, conn: Connection, item: Event) -> None:
        peer = _other(side)
        assert not self.closed_seen[side], f"the {side} delivered {item!r} after Closed"
        if isinstance(item, Closed):
            self._check_closed(side, conn, item)
            return
        if self.close_received[side] is not None:
            raise AssertionError(f"the {side} delivered {item!r} between CloseReceived and Closed")
        expected: Expected
        if isinstance(item, CloseReceived):
            self.close_received[side] = item.code
            expected = ExpectedClose(item.code, item.reason)
            if not self.close_sent[side]:
                # RFC 6455 §5.5.1: the answer echoes the code (1000 when none came).
                answer = CloseCode.NORMAL if item.code == CloseCode.NO_STATUS else item.code
                self.close_sent[side] = True
                self.expected[side].append(ExpectedClose(answer, ""))
        else:
            expected = item
            if isinstance(item, Ping) and conn.state is State.OPEN:
                self.expected[side].append(Pong(item.payload))  # RFC 6455 §5.5.2
        if self.corrupted[peer]:
            return  # the adversary's bytes make what arrives unpredictable
        assert self.expected[peer], f"the {side} delivered {item!r}, which nobody sent"
        head = self.expected[peer].popleft()
        if isinstance(head, ExpectedClose) and isinstance(expected, ExpectedClose):
            assert head.code == expected.code, f"Close {expected.code}, expected {head.code}"
            assert head.reason is None or head.reason == expected.reason
        else:
            assert head == expected, f"the {side} delivered {item!r}, expected {head!r}"

    def _check_closed(self, side: str, conn: Connection, item: Closed) -> None:
        peer = _other(side)
        self.closed_seen[side] = True
        assert item.code == conn.close_code
        if conn.failure is not None:
            event(f"failed with {item.code}")
            assert self.corrupted[peer], f"an honest stream made the {side} fail: {conn.failure}"
            assert item.code == close_code_for(conn.failure)
            if not self.close_sent[side]:
                # RFC 6455 §7.1.7: the failing endpoint's Close carries the failure's code.
                self.close_sent[side] = True
                self.expected[side].append(ExpectedClose(item.code, None))
        elif self.close_received[side] is not None:
            assert item.code == self.close_received[side]
            if side == SERVER:
                assert conn.close_transport  # RFC 6455 §7.1.1: the server closes TCP first
        else:
            assert self.eof[side], f"the {side} closed without a Close, a failure or EOF"
            assert item.code == CloseCode.ABNORMAL  # RFC 6455 §7.1.5: 1006


TestConnectionPair = ConnectionPair.TestCase
