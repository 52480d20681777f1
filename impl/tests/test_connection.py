"""Unit tests for rfc6455.connection: each rule of RFC 6455 §5-§7 and every failure's close code."""

from __future__ import annotations

import os

import pytest

from rfc6455.connection import Connection, State
from rfc6455.errors import InvalidState
from rfc6455.events import BinaryMessage, Closed, CloseReceived, Event, Ping, Pong, TextMessage
from rfc6455.frame import Frame, FrameParser, Opcode, Role, build_close_payload


def client_frame(
    message: str | bytes, opcode: int | None = None, final: bool = True, **bits: int
) -> bytes:
    """A frame as a client sends it: masked with a fresh key (RFC 6455 §5.3)."""
    return Frame(message, opcode, masking_key=os.urandom(4), final=final, **bits).build_frame()


def server_receives(data: bytes, **options: object) -> tuple[Connection, list[Event], bytes]:
    conn = Connection(Role.SERVER, **options)  # type: ignore[arg-type]
    conn.receive_data(data)
    events = list(conn.events())
    return conn, events, conn.data_to_send()


def sent_frames(data: bytes) -> list[Frame]:
    parser = FrameParser(kind=Role.CLIENT)
    parser.feed(data)
    return list(parser.frames())


def close_code_sent(data: bytes) -> int:
    (frame,) = [frame for frame in sent_frames(data) if frame.opcode == Opcode.CLOSE]
    return int.from_bytes(frame.payload[:2], "big")


def test_server_delivers_a_text_message_and_an_unfragmented_binary_one() -> None:
    _, events, _ = server_receives(client_frame("héllo") + client_frame(b"\x00\xff"))
    assert events == [TextMessage("héllo"), BinaryMessage(b"\x00\xff")]


def test_server_reassembles_fragments_with_a_ping_between_them_and_answers_the_ping() -> None:
    data = (
        client_frame("Hel", final=False)
        + client_frame(b"ping!", Opcode.PING)
        + client_frame("lo", Opcode.CONTINUATION, final=True)
    )
    _, events, out = server_receives(data)
    # RFC 6455 §5.4: control frames may be injected in the middle of a fragmented message.
    assert events == [Ping(b"ping!"), TextMessage("Hello")]
    assert sent_frames(out) == [Frame(b"ping!", Opcode.PONG, final=True)]


def test_unsolicited_pong_is_reported_and_not_answered() -> None:
    _, events, out = server_receives(client_frame(b"x", Opcode.PONG))
    assert events == [Pong(b"x")]
    assert out == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame("lo", Opcode.CONTINUATION), 1002),  # nothing to continue
        (client_frame("a", final=False) + client_frame("b"), 1002),  # new message mid-way
        (client_frame(b"\xce\xba\xff", Opcode.TEXT), 1007),  # invalid UTF-8
        (client_frame(b"x", rsv1=1), 1002),  # RSV1 with no extension (RFC 6455 §5.2)
        (bytes([0x83, 0x80]) + b"abcd", 1002),  # reserved opcode 0x3
        (Frame("unmasked", final=True).build_frame(), 1002),  # RFC 6455 §5.1
        (client_frame(b"\x03", Opcode.CLOSE), 1002),  # one-byte close payload
        (client_frame(b"\x03\xed", Opcode.CLOSE), 1002),  # close code 1005 on the wire
        (client_frame(b"\x03\xe8\xff", Opcode.CLOSE), 1007),  # reason not UTF-8
    ],
    ids=[
        "orphan-continuation",
        "interleaved-message",
        "bad-utf8",
        "rsv1",
        "reserved-opcode",
        "unmasked",
        "short-close",
        "close-1005",
        "close-reason",
    ],
)
def test_server_fails_a_violation_with_its_close_code(data: bytes, code: int) -> None:
    conn, events, out = server_receives(data)
    assert close_code_sent(out) == code
    assert conn.failure is not None and conn.failure.close_code == code
    assert conn.state is State.CLOSED and conn.close_transport
    assert events[-1] == Closed(code, conn.close_reason)


def test_message_over_the_limit_fails_with_1009_before_its_payload_arrives() -> None:
    frame = client_frame(b"x" * 5000)
    conn = Connection(Role.SERVER, max_message_size=4096)
    conn.receive_data(frame[:20])  # the header announces 5000 bytes
    list(conn.events())
    assert close_code_sent(conn.data_to_send()) == 1009


def test_fragmented_message_over_the_limit_fails_with_1009() -> None:
    data = client_frame(b"x" * 3000, Opcode.BINARY, final=False) + client_frame(
        b"y" * 3000, Opcode.CONTINUATION
    )
    _, _, out = server_receives(data, max_message_size=4096)
    assert close_code_sent(out) == 1009


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b"\xff", 1007),  # the text is invalid before the message is over the limit
        (b"ok", 1009),  # valid so far: the limit is what breaks
    ],
)
def test_fragments_in_one_read_fail_on_the_first_rule_broken(first: bytes, code: int) -> None:
    # Five fragments in one read, taken together: the third puts the message over 20 bytes,
    # the first may already be invalid UTF-8. Frame by frame, the earlier error wins.
    data = client_frame(first, Opcode.TEXT, final=False) + b"".join(
        client_frame(b"x" * 10, Opcode.CONTINUATION, final=n == 3) for n in range(4)
    )
    _, events, out = server_receives(data, max_message_size=20)
    assert close_code_sent(out) == code
    assert [type(e) for e in events] == [Closed]


def test_frame_limit_below_the_message_limit_fails_with_1009() -> None:
    _, _, out = server_receives(client_frame(b"x" * 200), max_frame_size=100)
    assert close_code_sent(out) == 1009


def test_invalid_utf8_fails_fast_while_the_frame_is_still_arriving() -> None:
    # Autobahn 6.4.3: one frame chopped over TCP; the invalid sequence is in the second chop.
    frame = client_frame(
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited", Opcode.TEXT
    )
    conn = Connection(Role.SERVER)
    conn.receive_data(frame[:17])  # header (6 bytes) + 11 valid payload bytes
    assert list(conn.events()) == []
    conn.receive_data(frame[17:19])  # \xf4\x90: no valid sequence starts this way
    list(conn.events())
    assert close_code_sent(conn.data_to_send()) == 1007


def test_valid_message_before_a_bad_frame_is_delivered_and_answered_first() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame("first") + bytes([0x83, 0x80]) + b"abcd")
    events = conn.events()
    assert next(events) == TextMessage("first")
    conn.send_text("first")  # the shell echoes before it pulls the next event
    rest = list(events)
    assert isinstance(rest[-1], Closed)
    frames = sent_frames(conn.data_to_send())
    assert [frame.opcode for frame in frames] == [Opcode.TEXT, Opcode.CLOSE]


def test_close_from_the_client_is_echoed_and_the_server_closes_tcp() -> None:
    conn, events, out = server_receives(
        client_frame(build_close_payload(1001, "bye"), Opcode.CLOSE)
    )
    assert events == [CloseReceived(1001, "bye"), Closed(1001, "bye")]
    assert close_code_sent(out) == 1001  # RFC 6455 §5.5.1: typically echoes the code
    assert conn.close_transport  # RFC 6455 §7.1.1: the server closes TCP first


def test_empty_close_is_answered_with_1000_and_reported_as_1005() -> None:
    _, events, out = server_receives(client_frame(b"", Opcode.CLOSE))
    assert events[0] == CloseReceived(1005, "")
    assert close_code_sent(out) == 1000


def test_nothing_is_delivered_after_a_close() -> None:
    data = client_frame(b"", Opcode.CLOSE) + client_frame("late") + client_frame(b"", Opcode.PING)
    _, events, out = server_receives(data)
    assert events == [CloseReceived(1005, ""), Closed(1005, "")]
    assert [frame.opcode for frame in sent_frames(out)] == [Opcode.CLOSE]


def test_server_initiated_close_waits_for_the_peer_then_closes_tcp() -> None:
    conn = Connection(Role.SERVER)
    conn.close(4000, "done")
    assert conn.state is State.CLOSING and not conn.close_transport
    assert close_code_sent(conn.data_to_send()) == 4000
    conn.receive_data(client_frame(build_close_payload(4000), Opcode.CLOSE))
    assert list(conn.events()) == [CloseReceived(4000, ""), Closed(4000, "")]
    assert conn.data_to_send() == b""  # our Close was already sent: no second one
    assert conn.state is State.CLOSED and conn.close_transport


def test_sending_after_close_is_a_local_error() -> None:
    conn = Connection(Role.SERVER)
    conn.close()
    with pytest.raises(InvalidState, match="CLOSING"):
        conn.send_text("too late")


def test_eof_without_close_is_abnormal_1006() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame("half", final=False))
    conn.receive_eof()
    assert list(conn.events()) == [Closed(1006, "the connection ended without a Close frame")]
    assert conn.close_code == 1006


def test_client_masks_what_it_sends_and_fragments_on_request() -> None:
    client = Connection(Role.CLIENT)
    client.send_binary(b"abcdefgh", fragment_size=3)
    server = Connection(Role.SERVER)
    server.receive_data(client.data_to_send())  # a server rejects unmasked frames
    assert list(server.events()) == [BinaryMessage(b"abcdefgh")]


def test_client_rejects_a_masked_frame_from_the_server() -> None:
    client = Connection(Role.CLIENT)
    client.receive_data(client_frame("masked"))
    list(client.events())
    assert client.failure is not None and client.failure.close_code == 1002


def all_received(conn: Connection) -> list[list[Event]]:
    """Every list ``events_received`` gives, until it gives ``[]``."""
    batches = []
    while batch := conn.events_received():
        batches.append(batch)
    return batches


def test_events_received_gives_whole_messages_in_one_list() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame("héllo") + client_frame(b"\x00\xff") + client_frame(""))
    assert all_received(conn) == [
        [TextMessage("héllo"), BinaryMessage(b"\x00\xff"), TextMessage("")]
    ]


def test_events_received_stops_before_a_frame_that_makes_the_connection_send() -> None:
    # A shell replies to a list's events before its next call: the Pong, the answer to the
    # Close and the Close that fails the connection come after those replies.
    conn = Connection(Role.SERVER)
    conn.receive_data(
        client_frame("a")
        + client_frame(b"p", Opcode.PING)
        + client_frame("b")
        + client_frame(build_close_payload(1000), Opcode.CLOSE)
    )
    first = conn.events_received()
    assert first == [TextMessage("a")] and conn.data_to_send() == b""
    conn.send_text("a")
    assert conn.events_received() == [Ping(b"p"), TextMessage("b")]
    conn.send_text("b")
    assert conn.events_received() == [CloseReceived(1000, ""), Closed(1000, "")]
    assert conn.events_received() == []
    opcodes = [frame.opcode for frame in sent_frames(conn.data_to_send())]
    assert opcodes == [Opcode.TEXT, Opcode.PONG, Opcode.TEXT, Opcode.CLOSE]


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (client_frame(b"\xce\xba\xff", Opcode.TEXT), 1007),  # invalid UTF-8, whole message
        (client_frame(b"x" * 200), 1009),  # over the limit
        (client_frame(b"x", rsv1=1), 1002),  # RSV1 with no extension
        (client_frame(b"\xff" * 200, rsv1=1), 1002),  # RSV1 and over the limit: RSV first
        (Frame(b"\xff" * 200, Opcode.TEXT, final=True).build_frame(), 1002),  # unmasked
        (client_frame("x", Opcode.CONTINUATION), 1002),  # nothing to continue
    ],
    ids=["bad-utf8", "too-big", "rsv1", "rsv1-and-too-big", "unmasked", "orphan-continuation"],
)
def test_events_received_fails_a_bad_frame_after_the_messages_before_it(
    bad: bytes, code: int
) -> None:
    conn = Connection(Role.SERVER, max_message_size=100)
    conn.receive_data(client_frame("first") + client_frame(b"second") + bad + client_frame("x"))
    assert conn.events_received() == [TextMessage("first"), BinaryMessage(b"second")]
    assert conn.data_to_send() == b""  # nothing yet: the shell replies first
    (closed,) = conn.events_received()
    assert closed == Closed(code, conn.close_reason)
    assert close_code_sent(conn.data_to_send()) == code
    assert conn.events_received() == []


def test_events_received_reassembles_fragments_and_fails_fast_on_partial_text() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(
        client_frame("a")
        + client_frame("Hel", final=False)
        + client_frame("lo", Opcode.CONTINUATION, final=True)
        + client_frame("b")
    )
    assert all_received(conn) == [[TextMessage("a")], [TextMessage("Hello"), TextMessage("b")]]
    # Autobahn 6.4.3: the text of a frame still arriving is judged as far as it has come.
    frame = client_frame(b"\xce\xba\xf4\x90\x80\x80 and more", Opcode.TEXT)
    conn.receive_data(frame[:10])
    assert conn.events_received() == [Closed(1007, conn.close_reason)]
    assert close_code_sent(conn.data_to_send()) == 1007


def test_events_received_and_next_event_share_what_is_queued() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame("a") + client_frame(b"b") + client_frame("c"))
    assert conn.next_event() == "a"
    assert conn.events_received() == [BinaryMessage(b"b"), TextMessage("c")]
    conn.receive_eof()
    assert conn.events_received() == [Closed(1006, "the connection ended without a Close frame")]
    assert conn.next_event() is None and conn.events_received() == []


def test_events_received_reads_frames_parsed_straight_out_of_a_read() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame("a") + client_frame(b"p", Opcode.PING), parse=True)
    assert all_received(conn) == [[TextMessage("a")], [Ping(b"p")]]


def test_a_client_receives_unmasked_messages_in_one_list() -> None:
    client = Connection(Role.CLIENT)
    client.receive_data(Frame("hi", final=True).build_frame() * 3)
    assert client.events_received() == [TextMessage("hi")] * 3


class Echo:
    """A handler for ``receive_answering``: records each message, answers with ``reply``."""

    def __init__(self, reply: object = "echo") -> None:
        self.reply = reply
        self.seen: list[str | bytes] = []

    def on_message(self, environ: object, message: str | bytes) -> object:
        self.seen.append(message)
        return message if self.reply == "echo" else self.reply


def test_server_answers_the_whole_messages_of_a_read_and_hands_back_their_frames() -> None:
    conn = Connection(Role.SERVER)
    handler = Echo()
    sent = conn.receive_answering(client_frame("héllo") + client_frame(b"\x00\x01"), handler, {})
    assert handler.seen == ["héllo", b"\x00\x01"]
    assert isinstance(sent, bytes)
    assert [(f.opcode, f.payload, f.masking_key) for f in sent_frames(sent)] == [
        (Opcode.TEXT, "héllo".encode(), None),  # RFC 6455 §5.1: a server does not mask
        (Opcode.BINARY, b"\x00\x01", None),
    ]
    assert conn.data_to_send() == b""


def test_server_answering_leaves_a_ping_after_the_messages_to_next_event() -> None:
    conn = Connection(Role.SERVER)
    handler = Echo(reply=None)
    answered = conn.receive_answering(
        client_frame(b"m") + client_frame(b"p", Opcode.PING), handler, {}
    )
    assert answered == (0, None)  # ``frame.ANSWER_STOPPED``: the rest is for ``next_event``
    assert handler.seen == [b"m"]
    assert list(conn.events()) == [Ping(b"p")]
    assert [f.opcode for f in sent_frames(conn.data_to_send())] == [Opcode.PONG]


def test_server_answering_takes_nothing_while_a_fragmented_message_is_in_progress() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(client_frame(b"part", Opcode.BINARY, final=False))
    assert list(conn.events()) == []
    handler = Echo()
    rest = client_frame(b"end", Opcode.CONTINUATION)
    assert conn.receive_answering(rest, handler, {}) is None
    assert handler.seen == []
    conn.receive_data(rest)
    assert list(conn.events()) == [BinaryMessage(b"partend")]


def test_client_does_not_answer_reads() -> None:
    conn = Connection(Role.CLIENT)
    unmasked = Frame(b"m", Opcode.BINARY, final=True).build_frame()
    assert conn.receive_answering(unmasked, Echo(), {}) is None


def test_server_answering_hands_back_a_reply_it_does_not_frame_itself() -> None:
    conn = Connection(Role.SERVER)
    reply = bytearray(b"ba")
    answered = conn.receive_answering(client_frame(b"m") + client_frame(b"n"), Echo(reply), {})
    assert answered == (1, reply)  # ``frame.ANSWER_REPLY``, after the first message
    assert [event.data for event in conn.events()] == [b"n"]  # type: ignore[attr-defined]
