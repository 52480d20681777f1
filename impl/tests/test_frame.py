"""Unit tests of ``rfc6455.frame``: the RFC 6455 §5.7 examples, then every parser error path
with the close code it fails the connection with (RFC 6455 §7.4.1)."""

from __future__ import annotations

import pytest

from rfc6455.errors import InvalidPayload, MessageTooBig, ProtocolError
from rfc6455.frame import (
    Frame,
    FrameParser,
    Opcode,
    Role,
    build_close_payload,
    mask,
    parse_close_payload,
    unmask,
)

# Known bug in rfc6455.frame (reported, not ours to fix); strict: remove once fixed.

KEY = bytes.fromhex("37fa213d")
HELLO = bytes.fromhex("48656c6c6f")
HELLO_MASKED = bytes.fromhex("7f9f4d5158")


def parse_all(data: bytes, kind: int, **options: int) -> list[Frame]:
    parser = FrameParser(kind=kind, **options)
    parser.feed(data)
    return list(parser.frames())


def masked_header(first: int, length_byte: int, extended: bytes = b"") -> bytes:
    """A client frame header with the RFC's example key."""
    return bytes((first, 0x80 | length_byte)) + extended + KEY


# -- RFC 6455 §5.7 examples, built --------------------------------------------------------
def test_unmasked_text_frame_matches_rfc_example() -> None:
    assert Frame("Hello", final=True).build_frame() == bytes.fromhex("810548656c6c6f")


def test_masked_text_frame_matches_rfc_example() -> None:
    frame = Frame("Hello", final=True, masking_key=KEY)
    assert frame.build_frame() == bytes.fromhex("818537fa213d7f9f4d5158")


def test_fragmented_text_matches_rfc_example() -> None:
    first = Frame("Hel", final=False).build_frame()
    last = Frame.continuation("lo", final=True).build_frame()
    assert first == bytes.fromhex("010348656c")
    assert last == bytes.fromhex("80026c6f")


def test_unmasked_ping_matches_rfc_example() -> None:
    assert Frame.ping(b"Hello").build_frame() == bytes.fromhex("890548656c6c6f")


def test_masked_pong_matches_rfc_example() -> None:
    frame = Frame.pong(b"Hello", masking_key=KEY)
    assert frame.build_frame() == bytes.fromhex("8a8537fa213d7f9f4d5158")


def test_256_byte_binary_frame_uses_16_bit_length() -> None:
    wire = Frame(bytes(256), final=True).build_frame()
    assert wire[:4] == bytes.fromhex("827e0100")
    assert len(wire) == 4 + 256


def test_64_kib_binary_frame_uses_64_bit_length() -> None:
    wire = Frame(bytes(65536), final=True).build_frame()
    assert wire[:10] == bytes.fromhex("827f0000000000010000")
    assert len(wire) == 10 + 65536


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (125, "827d"),
        (126, "827e007e"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
    ],
)
def test_length_encoding_is_minimal_at_each_boundary(length: int, header: str) -> None:
    # RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length.
    assert Frame(bytes(length), final=True).build_frame()[: len(header) // 2].hex() == header


# -- pulsar's build_frame(message) ---------------------------------------------------------
def test_build_frame_takes_the_message_as_pulsar_documents() -> None:
    assert Frame("Hello", final=True).build_frame("Hello") == bytes.fromhex("810548656c6c6f")


def test_build_frame_message_wins_over_the_constructors_and_sets_the_length() -> None:
    frame = Frame("a much longer constructor message", final=True, masking_key=KEY)
    assert frame.build_frame("Hello") == bytes.fromhex("818537fa213d7f9f4d5158")
    assert frame.build_frame(HELLO) == frame.build_frame("Hello")  # bytes or str alike
    # The frame is not changed: without an argument it still builds its own payload.
    assert frame.payload == b"a much longer constructor message"
    assert (
        frame.build_frame()
        == Frame(frame.payload, Opcode.TEXT, masking_key=KEY, final=True).build_frame()
    )


def test_build_frame_keeps_the_frames_opcode_and_fin() -> None:
    # Binary opcode, not final: a str argument does not turn the frame into text.
    assert Frame(b"x", Opcode.BINARY).build_frame("Hel") == bytes.fromhex("020348656c")


def test_build_frame_refuses_a_control_payload_over_125_bytes() -> None:
    ping = Frame.ping(b"small")
    assert ping.build_frame(bytes(125))[:2] == bytes.fromhex("897d")
    with pytest.raises(ValueError, match="125 bytes"):
        ping.build_frame(bytes(126))


# -- RFC 6455 §5.7 examples, parsed --------------------------------------------------------
def test_client_parses_unmasked_text_frame() -> None:
    (frame,) = parse_all(bytes.fromhex("810548656c6c6f"), Role.CLIENT)
    assert (frame.opcode, frame.final, frame.payload) == (Opcode.TEXT, True, b"Hello")


def test_server_parses_and_unmasks_masked_text_frame() -> None:
    (frame,) = parse_all(bytes.fromhex("818537fa213d7f9f4d5158"), Role.SERVER)
    assert (frame.opcode, frame.final, frame.payload) == (Opcode.TEXT, True, b"Hello")
    assert frame.masking_key == KEY


def test_client_parses_fragmented_text_as_two_frames() -> None:
    first, last = parse_all(bytes.fromhex("010348656c80026c6f"), Role.CLIENT)
    assert (first.opcode, first.final, first.payload) == (Opcode.TEXT, False, b"Hel")
    assert (last.opcode, last.final, last.payload) == (Opcode.CONTINUATION, True, b"lo")


def test_server_parses_masked_pong() -> None:
    (frame,) = parse_all(bytes.fromhex("8a8537fa213d7f9f4d5158"), Role.SERVER)
    assert (frame.opcode, frame.payload) == (Opcode.PONG, b"Hello")


def test_client_parses_64_kib_frame() -> None:
    wire = bytes.fromhex("827f0000000000010000") + b"\xab" * 65536
    (frame,) = parse_all(wire, Role.CLIENT)
    assert frame.payload == b"\xab" * 65536


def test_parser_keeps_bytes_after_a_frame_in_the_same_chunk() -> None:
    parser = FrameParser(kind=Role.CLIENT)
    parser.feed(bytes.fromhex("810548656c6c6f") + bytes.fromhex("8905"))
    (frame,) = list(parser.frames())
    assert frame.payload == b"Hello"
    assert parser.buffered == 2
    parser.feed(HELLO)
    (ping,) = list(parser.frames())
    assert (ping.opcode, ping.payload) == (Opcode.PING, b"Hello")


def test_parser_waits_for_a_split_header_and_payload() -> None:
    wire = bytes.fromhex("818537fa213d7f9f4d5158")
    parser = FrameParser(kind=Role.SERVER)
    for byte in wire[:-1]:
        parser.feed(bytes((byte,)))
        assert parser.next_frame() is None
    parser.feed(wire[-1:])
    frame = parser.next_frame()
    assert frame is not None and frame.payload == b"Hello"


def test_parser_resumes_a_frame_whose_payload_straddles_chunks_after_another_frame() -> None:
    first = Frame(b"abc", final=True, masking_key=KEY).build_frame()
    second = Frame(b"defgh", final=True, masking_key=KEY).build_frame()
    parser = FrameParser(kind=Role.SERVER)
    cut = len(first) + 7  # the second frame's header and one payload byte
    parser.feed((first + second)[:cut])
    assert [f.payload for f in parser.frames()] == [b"abc"]
    parser.feed((first + second)[cut:])
    assert [f.payload for f in parser.frames()] == [b"defgh"]


def test_parser_yields_valid_frames_before_raising_for_a_bad_one() -> None:
    parser = FrameParser(kind=Role.CLIENT)
    parser.feed(bytes.fromhex("810548656c6c6f") + bytes.fromhex("8300"))
    frames = parser.frames()
    assert next(frames).payload == b"Hello"
    with pytest.raises(ProtocolError):
        next(frames)


def test_decode_returns_one_frame_per_call_like_pulsar() -> None:
    parser = FrameParser(kind=Role.CLIENT)
    frame = parser.decode(bytes.fromhex("890548656c6c6f810548"))
    assert frame is not None and frame.opcode == Opcode.PING
    assert parser.decode() is None
    text = parser.decode(bytes.fromhex("656c6c6f"))
    assert text is not None and text.payload == b"Hello"


def test_server_encodes_unmasked_and_client_encodes_masked() -> None:
    assert FrameParser(kind=Role.SERVER).encode("Hello") == bytes.fromhex("810548656c6c6f")
    wire = FrameParser(kind=Role.CLIENT).encode("Hello")
    assert wire[:2] == bytes.fromhex("8185")
    assert mask(wire[6:], wire[2:6]) == b"Hello"


# -- masking (RFC 6455 §5.3) ----------------------------------------------------------------
def test_mask_matches_rfc_example_and_is_its_own_inverse() -> None:
    assert mask(HELLO, KEY) == HELLO_MASKED
    assert unmask(HELLO_MASKED, KEY) == HELLO


def test_mask_rejects_a_key_that_is_not_four_bytes() -> None:
    with pytest.raises(ValueError):
        mask(b"data", b"abc")


# -- parser errors and their close codes -----------------------------------------------------
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_server_rejects_reserved_opcode_with_1002(opcode: int) -> None:
    # RFC 6455 §5.2: reserved opcodes; receiving one fails the connection.
    with pytest.raises(ProtocolError) as info:
        parse_all(masked_header(0x80 | opcode, 0), Role.SERVER)
    assert type(info.value) is ProtocolError
    assert info.value.close_code == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_server_rejects_rsv_bits_without_extension_with_1002(rsv: int) -> None:
    # RFC 6455 §5.2: a nonzero RSV value no negotiated extension defines fails the connection.
    with pytest.raises(ProtocolError) as info:
        parse_all(masked_header(0x81 | rsv, 0), Role.SERVER)
    assert info.value.close_code == 1002


def test_server_accepts_rsv1_when_an_extension_claims_it() -> None:
    (frame,) = parse_all(masked_header(0xC1, 0), Role.SERVER, rsv_mask=0b100)
    assert (frame.rsv1, frame.rsv2, frame.rsv3) == (1, 0, 0)


def test_server_rejects_rsv2_when_only_rsv1_is_claimed() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_all(masked_header(0xA1, 0), Role.SERVER, rsv_mask=0b100)
    assert info.value.close_code == 1002


def test_server_rejects_rsv1_on_a_control_frame_even_when_claimed() -> None:
    # RFC 7692 §6.1: permessage-deflate never applies to control frames.
    with pytest.raises(ProtocolError):
        parse_all(masked_header(0xC9, 0), Role.SERVER, rsv_mask=0b100)


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_server_rejects_control_frame_over_125_bytes_with_1002(opcode: int) -> None:
    # RFC 6455 §5.5: control frames MUST have a payload length of 125 bytes or less; the
    # parser decides on the header, before the payload arrives.
    with pytest.raises(ProtocolError) as info:
        parse_all(masked_header(0x80 | opcode, 126, (126).to_bytes(2, "big")), Role.SERVER)
    assert info.value.close_code == 1002


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_server_rejects_fragmented_control_frame_with_1002(opcode: int) -> None:
    # RFC 6455 §5.5: control frames MUST NOT be fragmented.
    with pytest.raises(ProtocolError) as info:
        parse_all(masked_header(opcode, 0), Role.SERVER)
    assert info.value.close_code == 1002


def test_client_rejects_64_bit_length_with_top_bit_set_with_1002() -> None:
    # RFC 6455 §5.2: the most significant bit of the 64-bit length MUST be 0.
    wire = bytes((0x82, 127)) + (1 << 63).to_bytes(8, "big")
    with pytest.raises(ProtocolError) as info:
        parse_all(wire, Role.CLIENT)
    assert type(info.value) is ProtocolError
    assert info.value.close_code == 1002


def test_client_rejects_frame_over_max_frame_size_with_1009_from_the_header() -> None:
    wire = bytes((0x82, 126)) + (1025).to_bytes(2, "big")  # no payload yet
    with pytest.raises(MessageTooBig) as info:
        parse_all(wire, Role.CLIENT, max_frame_size=1024)
    assert info.value.close_code == 1009


def test_client_accepts_frame_exactly_at_max_frame_size() -> None:
    wire = bytes((0x82, 126)) + (1024).to_bytes(2, "big") + bytes(1024)
    (frame,) = parse_all(wire, Role.CLIENT, max_frame_size=1024)
    assert len(frame.payload) == 1024


def test_server_rejects_unmasked_client_frame_with_1002() -> None:
    # RFC 6455 §5.1: a server MUST close the connection upon receiving an unmasked frame.
    with pytest.raises(ProtocolError) as info:
        parse_all(bytes.fromhex("810548656c6c6f"), Role.SERVER)
    assert info.value.close_code == 1002


def test_client_rejects_masked_server_frame_with_1002() -> None:
    # RFC 6455 §5.1: a client MUST close the connection if it detects a masked frame.
    with pytest.raises(ProtocolError) as info:
        parse_all(bytes.fromhex("818537fa213d7f9f4d5158"), Role.CLIENT)
    assert info.value.close_code == 1002


def test_parser_rejects_a_bad_header_before_its_payload_arrives() -> None:
    parser = FrameParser(kind=Role.SERVER)
    parser.feed(bytes((0x83, 0x80 | 100)))  # reserved opcode, 100 bytes announced, none sent
    with pytest.raises(ProtocolError):
        parser.next_frame()


# -- building frames that cannot be sent ---------------------------------------------------
def test_frame_refuses_reserved_opcode() -> None:
    with pytest.raises(ValueError):
        Frame(b"", opcode=3)


def test_frame_refuses_control_payload_over_125_bytes() -> None:
    with pytest.raises(ValueError):
        Frame.ping(bytes(126))


def test_control_frames_are_always_final() -> None:
    assert Frame(b"", Opcode.PING, final=False).final is True


def test_frame_refuses_unsupported_version() -> None:
    with pytest.raises(ValueError):
        Frame(b"", version=12)


# -- close payloads (RFC 6455 §5.5.1, §7.4) ------------------------------------------------
def test_close_payload_round_trips_code_and_reason() -> None:
    payload = build_close_payload(1000, "bye")
    assert payload == b"\x03\xe8bye"
    assert parse_close_payload(payload) == (1000, "bye")


def test_empty_close_payload_has_no_code() -> None:
    assert build_close_payload() == b""
    assert parse_close_payload(b"") == (None, "")


def test_close_payload_of_one_byte_is_rejected_with_1002() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03")
    assert info.value.close_code == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_close_payload_with_invalid_code_is_rejected_with_1002(code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(code.to_bytes(2, "big"))
    assert info.value.close_code == 1002


def test_close_reason_that_is_not_utf8_is_rejected_with_1007() -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_close_payload(b"\x03\xe8\xed\xa0\x80")
    assert info.value.close_code == 1007


def test_close_reason_over_123_bytes_cannot_be_built() -> None:
    assert len(build_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(ValueError):
        build_close_payload(1000, "x" * 124)


def test_close_reason_without_code_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        build_close_payload(None, "why")


@pytest.mark.parametrize("code", [1005, 1006, 1015, 999])
def test_close_payload_refuses_codes_that_must_not_be_sent(code: int) -> None:
    with pytest.raises(ValueError):
        build_close_payload(code)
