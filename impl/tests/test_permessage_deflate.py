"""Tests for permessage-deflate (RFC 7692) in rfc6455.extensions.

Negotiation both ways, the data path (RSV1, fragments, context takeover, the RFC's own byte
examples, corrupt data, decompression bombs), and the window-size guarantee: a small RFC 1951
reader below walks our compressed output and checks that no back-reference reaches further
than the negotiated window, 8 bits included.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
import zlib

import pytest
from deflate_window import fuzzer_messages, inflate_stepwise
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as WsClientFactory,
)

from rfc6455.__main__ import EchoWS
from rfc6455.connection import Connection
from rfc6455.errors import CloseCode, ExtensionError, HandshakeError, MessageTooBig, ProtocolError
from rfc6455.events import BinaryMessage, TextMessage
from rfc6455.extensions import (
    ClientPerMessageDeflate,
    ExtensionParams,
    PerMessageDeflate,
    ServerPerMessageDeflate,
    negotiate_client,
    negotiate_server,
    serialize_extensions_header,
)
from rfc6455.frame import Frame, Opcode, Role
from rfc6455.handshake import client_request, validate_response
from rfc6455.middleware import WebSocket
from rfc6455.server import Server, WsgiHandler

TAIL = b"\x00\x00\xff\xff"


# -- an RFC 1951 reader that reports back-reference distances --------------------------------
_LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
                99, 115, 131, 163, 195, 227, 258]  # fmt: skip
_LENGTH_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
_DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
              1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]  # fmt: skip
_DIST_EXTRA = [0, 0, 0, 0] + [n for n in range(1, 14) for _ in (0, 1)]
_CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # in bits

    def left(self) -> int:
        return len(self.data) * 8 - self.pos

    def read(self, count: int) -> int:
        value = 0
        for i in range(count):
            byte = self.data[self.pos >> 3]
            value |= ((byte >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def align(self) -> None:
        self.pos = (self.pos + 7) & ~7


def _huffman(lengths: list[int]) -> dict[tuple[int, int], int]:
    """Canonical Huffman codes (RFC 1951 §3.2.2): (length, code) -> symbol."""
    table: dict[tuple[int, int], int] = {}
    code = 0
    for length in range(1, 16):
        for symbol, symbol_length in enumerate(lengths):
            if symbol_length == length:
                table[(length, code)] = symbol
                code += 1
        code <<= 1
    return table


def _symbol(bits: _Bits, table: dict[tuple[int, int], int]) -> int:
    code = 0
    for length in range(1, 16):
        code = (code << 1) | bits.read(1)
        if (length, code) in table:
            return table[(length, code)]
    raise ValueError("invalid Huffman code")


def deflate_walk(stream: bytes) -> tuple[bytes, list[int]]:
    """Inflate a raw deflate stream by hand; return the output and every match distance.

    The stream may end after a sync flush (no BFINAL), as permessage-deflate messages do once
    the receiver has appended 0x00 0x00 0xff 0xff.
    """
    bits = _Bits(stream)
    out = bytearray()
    distances: list[int] = []
    fixed_lit = _huffman([8] * 144 + [9] * 112 + [7] * 24 + [8] * 8)
    fixed_dist = _huffman([5] * 30)
    while bits.left() >= 3:
        final = bits.read(1)
        kind = bits.read(2)
        if kind == 0:
            bits.align()
            length = bits.read(16)
            if bits.read(16) != length ^ 0xFFFF:
                raise ValueError("stored block LEN/NLEN mismatch")
            start = bits.pos >> 3
            out += stream[start : start + length]
            bits.pos += 8 * length
        else:
            if kind == 1:
                lit, dist = fixed_lit, fixed_dist
            elif kind == 2:
                hlit, hdist, hclen = bits.read(5) + 257, bits.read(5) + 1, bits.read(4) + 4
                code_lengths = [0] * 19
                for index in _CODE_LENGTH_ORDER[:hclen]:
                    code_lengths[index] = bits.read(3)
                code_table = _huffman(code_lengths)
                lengths: list[int] = []
                while len(lengths) < hlit + hdist:
                    symbol = _symbol(bits, code_table)
                    if symbol < 16:
                        lengths.append(symbol)
                    elif symbol == 16:
                        lengths += [lengths[-1]] * (3 + bits.read(2))
                    elif symbol == 17:
                        lengths += [0] * (3 + bits.read(3))
                    else:
                        lengths += [0] * (11 + bits.read(7))
                lit, dist = _huffman(lengths[:hlit]), _huffman(lengths[hlit:])
            else:
                raise ValueError("reserved block type 11")
            while True:
                symbol = _symbol(bits, lit)
                if symbol < 256:
                    out.append(symbol)
                elif symbol == 256:
                    break
                else:
                    index = symbol - 257
                    length = _LENGTH_BASE[index] + bits.read(_LENGTH_EXTRA[index])
                    code = _symbol(bits, dist)
                    distance = _DIST_BASE[code] + bits.read(_DIST_EXTRA[code])
                    if distance > len(out):
                        raise ValueError("distance before the start of the stream")
                    distances.append(distance)
                    for _ in range(length):
                        out.append(out[-distance])
        if final:
            break
    return bytes(out), distances


def _data_with_far_repeats(size: int = 6000) -> bytes:
    """Bytes full of repeats 300 to 3000 bytes apart, which LZ77 loves to reference."""
    block = os.urandom(300)
    pieces = [block, os.urandom(700), block, os.urandom(2000), block, b"abc" * 200, block]
    return (b"".join(pieces) * 4)[:size]


def test_walker_sees_distances_beyond_256_in_a_15_bit_stream() -> None:
    # The check below could not fail if the walker missed long distances.
    data = _data_with_far_repeats()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    out, distances = deflate_walk(stream)
    assert out == data
    assert max(distances) > 256
    with pytest.raises(zlib.error, match="too far back"):
        inflate_stepwise(stream, -8)


def _messages_stream(extension: PerMessageDeflate, messages: list[bytes]) -> bytes:
    """Every message encoded by ``extension``, as the receiver inflates them: one stream."""
    stream = b""
    for message in messages:
        frame = extension.encode(Frame(message, final=True))
        stream += frame.payload + TAIL
    return stream


def test_window_8_output_never_references_beyond_256_bytes() -> None:
    # RFC 7692 §7.1.2.1: the sender's LZ77 window is at most 2**8 bytes; zlib cannot deflate
    # with 8, so we use Z_RLE (distance 1 only).
    extension = PerMessageDeflate(local_max_window_bits=8)
    messages = [_data_with_far_repeats(), b"a" * 5000, _data_with_far_repeats(3000)]
    stream = _messages_stream(extension, messages)
    out, distances = deflate_walk(stream)
    assert out == b"".join(messages)
    assert distances  # runs are still compressed
    assert max(distances) <= 256
    assert inflate_stepwise(stream, -8) == b"".join(messages)  # zlib's own 256-byte window


@pytest.mark.parametrize("bits", range(9, 16))
def test_window_n_output_never_references_beyond_2_to_the_n(bits: int) -> None:
    extension = PerMessageDeflate(local_max_window_bits=bits)
    messages = [_data_with_far_repeats(40000), _data_with_far_repeats(5000)]
    stream = _messages_stream(extension, messages)
    out, distances = deflate_walk(stream)
    assert out == b"".join(messages)
    assert max(distances) <= 1 << bits
    assert inflate_stepwise(stream, -bits) == b"".join(messages)


@settings(max_examples=25)
@given(
    bits=st.integers(8, 15),
    messages=st.lists(st.binary(max_size=3000), min_size=1, max_size=4),
    repeat=st.integers(1, 6),
)
def test_any_window_bound_holds_for_generated_data(
    bits: int, messages: list[bytes], repeat: int
) -> None:
    extension = PerMessageDeflate(local_max_window_bits=bits)
    messages = [message * repeat for message in messages]
    out, distances = deflate_walk(_messages_stream(extension, messages))
    assert out == b"".join(messages)
    assert all(distance <= 1 << bits for distance in distances)


@pytest.mark.parametrize("bits", range(8, 16))
def test_real_data_inflates_with_exactly_the_agreed_window(bits: int) -> None:
    # The fuzzer's own data, compressed as the reference does it (context takeover, so matches
    # may reach into earlier messages), inflates with stdlib zlib at exactly the agreed window.
    messages = fuzzer_messages()
    stream = _messages_stream(PerMessageDeflate(local_max_window_bits=bits), messages)
    assert inflate_stepwise(stream, -bits) == b"".join(messages)
    if bits < 15:
        # The check fails on this data when the reference uses a bigger window (zlib's matches
        # reach at most 2**bits - 262 back, so 8 needs 10 to overrun).
        wider = PerMessageDeflate(local_max_window_bits=10 if bits == 8 else bits + 1)
        with pytest.raises(zlib.error, match="too far back"):
            inflate_stepwise(_messages_stream(wider, messages), -bits)


# -- server negotiation --------------------------------------------------------------------
def _server(header: str, **options: object) -> tuple[str | None, PerMessageDeflate | None]:
    response, extensions = negotiate_server([ServerPerMessageDeflate(**options)], [header])  # type: ignore[arg-type]
    if not extensions:
        return response, None
    extension = extensions[0]
    assert isinstance(extension, PerMessageDeflate)
    return response, extension


def test_server_accepts_a_bare_offer_with_a_bare_response() -> None:
    response, extension = _server("permessage-deflate")
    assert response == "permessage-deflate"
    assert extension is not None
    assert extension.rsv_mask == 0b100
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (15, 15)
    assert not extension.local_no_context_takeover
    assert not extension.remote_no_context_takeover


@pytest.mark.parametrize(
    ("offer", "response", "attributes"),
    [
        (
            "server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
            {"local_no_context_takeover": True},
        ),
        (
            "client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
            {"remote_no_context_takeover": True},
        ),
        (
            "server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
            {"local_max_window_bits": 10},
        ),
        (
            "server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=8",
            {"local_max_window_bits": 8},
        ),
        ("client_max_window_bits", "permessage-deflate", {"remote_max_window_bits": 15}),
        (
            "client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
            {"remote_max_window_bits": 9},
        ),
        (
            'client_max_window_bits="12"',  # RFC 6455 §9.1: a quoted token is the same value
            "permessage-deflate; client_max_window_bits=12",
            {"remote_max_window_bits": 12},
        ),
    ],
)
def test_server_accepts_each_offer_parameter(
    offer: str, response: str, attributes: dict[str, object]
) -> None:
    answered, extension = _server(f"permessage-deflate; {offer}")
    assert answered == response
    for name, value in attributes.items():
        assert getattr(extension, name) == value


@pytest.mark.parametrize(
    "offer",
    [
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=08",  # RFC 7692 §7.1.2.1: no leading zeroes
        "server_max_window_bits=1x",
        "server_max_window_bits",  # a value is required in offers too
        "client_max_window_bits=0",
        "client_max_window_bits=015",
        "client_max_window_bits=100",
        "server_no_context_takeover=1",
        "client_no_context_takeover=true",
        "server_no_context_takeover; server_no_context_takeover",
        "client_max_window_bits; client_max_window_bits=10",
        "server_max_window_bits=10; server_max_window_bits=10",
        "mystery_parameter",
        "Server_No_Context_Takeover",
    ],
)
def test_server_declines_an_offer_with_invalid_parameters(offer: str) -> None:
    # RFC 7692 §7: "A server MUST decline an extension negotiation offer for this extension if"
    # a parameter is unknown, has an invalid value, or appears twice.
    assert _server(f"permessage-deflate; {offer}") == (None, None)


def test_server_accepts_the_first_acceptable_of_several_offers() -> None:
    header = (
        "permessage-deflate; server_max_window_bits=20, "
        "permessage-deflate; server_max_window_bits=9; client_no_context_takeover, "
        "permessage-deflate"
    )
    response, extension = _server(header)
    assert response == "permessage-deflate; client_no_context_takeover; server_max_window_bits=9"
    assert extension is not None
    assert extension.local_max_window_bits == 9


def test_server_offers_in_several_header_lines_keep_their_order() -> None:
    response, extensions = negotiate_server(
        [ServerPerMessageDeflate()],
        ["x-unknown, permessage-deflate; bad", "permessage-deflate; server_max_window_bits=11"],
    )
    assert response == "permessage-deflate; server_max_window_bits=11"
    assert len(extensions) == 1


def test_server_fails_a_header_that_breaks_the_extension_grammar() -> None:
    # RFC 6455 §9.1 grammar: not an offer we can decline, a bad request.
    with pytest.raises(HandshakeError) as info:
        negotiate_server([ServerPerMessageDeflate()], ["permessage-deflate; =10"])
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("options", "offer", "response", "local", "remote"),
    [
        ({"server_max_window_bits": 10}, "", "server_max_window_bits=10", 10, 15),
        ({"server_max_window_bits": 10}, "server_max_window_bits=12", "server_max_window_bits=10",
         10, 15),
        ({"server_max_window_bits": 10}, "server_max_window_bits=9", "server_max_window_bits=9",
         9, 15),
        ({"client_max_window_bits": 10}, "", "", 15, 15),  # may not be sent unless offered
        ({"client_max_window_bits": 10}, "client_max_window_bits", "client_max_window_bits=10",
         15, 10),
        ({"client_max_window_bits": 10}, "client_max_window_bits=12",
         "client_max_window_bits=10", 15, 10),
        ({"client_max_window_bits": 10}, "client_max_window_bits=8", "client_max_window_bits=8",
         15, 8),
        ({"server_no_context_takeover": True}, "", "server_no_context_takeover", 15, 15),
        ({"client_no_context_takeover": True}, "", "client_no_context_takeover", 15, 15),
    ],
)  # fmt: skip
def test_server_options_shape_the_response(
    options: dict[str, object], offer: str, response: str, local: int, remote: int
) -> None:
    header = "permessage-deflate" + (f"; {offer}" if offer else "")
    answered, extension = _server(header, **options)
    assert answered == "permessage-deflate" + (f"; {response}" if response else "")
    assert extension is not None
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (local, remote)
    assert extension.local_no_context_takeover == bool(options.get("server_no_context_takeover"))
    assert extension.remote_no_context_takeover == bool(options.get("client_no_context_takeover"))


@pytest.mark.parametrize("bits", [7, 16, 0])
def test_factories_refuse_window_bits_outside_8_to_15(bits: int) -> None:
    with pytest.raises(ValueError):
        ServerPerMessageDeflate(server_max_window_bits=bits)
    with pytest.raises(ValueError):
        ClientPerMessageDeflate(client_max_window_bits=bits)
    with pytest.raises(ValueError):
        PerMessageDeflate(local_max_window_bits=bits)


@pytest.mark.parametrize(("level", "memory"), [(10, 8), (-2, 8), (6, 0), (6, 10)])
def test_factories_refuse_zlib_settings_zlib_would_refuse(level: int, memory: int) -> None:
    with pytest.raises(ValueError):
        ServerPerMessageDeflate(compress_level=level, memory_level=memory)
    with pytest.raises(ValueError):
        ClientPerMessageDeflate(compress_level=level, memory_level=memory)


def test_compression_settings_reach_the_compressor() -> None:
    stored = PerMessageDeflate(compress_level=0)  # level 0: stored blocks, no compression
    payload = stored.encode(Frame(b"a" * 1000, final=True)).payload
    assert len(payload) > 1000
    assert PerMessageDeflate().decode(Frame(payload, final=True, rsv1=1)).payload == b"a" * 1000


# -- client offer and response validation --------------------------------------------------
def test_client_offer_lists_each_requested_parameter() -> None:
    assert ClientPerMessageDeflate().offer() == [("client_max_window_bits", None)]
    assert ClientPerMessageDeflate(client_max_window_bits=False).offer() == []
    factory = ClientPerMessageDeflate(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=9,
    )
    assert serialize_extensions_header([(factory.name, factory.offer())]) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )


def _client(response: str, **options: object) -> PerMessageDeflate:
    [extension] = negotiate_client([ClientPerMessageDeflate(**options)], [response])  # type: ignore[arg-type]
    assert isinstance(extension, PerMessageDeflate)
    return extension


@pytest.mark.parametrize(
    ("options", "response"),
    [
        ({}, "mystery"),
        ({}, "server_no_context_takeover=1"),
        ({}, "client_no_context_takeover; client_no_context_takeover"),
        ({}, "server_max_window_bits"),
        ({}, "server_max_window_bits=16"),
        ({}, "server_max_window_bits=010"),
        ({}, "client_max_window_bits"),  # RFC 7692 §7.1.2.2: a response's has a value
        ({}, "client_max_window_bits=7"),
        ({"client_max_window_bits": False}, "client_max_window_bits=10"),  # not offered
        ({"server_max_window_bits": 10}, ""),  # our request ignored
        ({"server_max_window_bits": 10}, "server_max_window_bits=11"),  # over our request
        ({"server_no_context_takeover": True}, ""),  # our request ignored
    ],
)
def test_client_fails_an_invalid_response(options: dict[str, object], response: str) -> None:
    header = "permessage-deflate" + (f"; {response}" if response else "")
    with pytest.raises(HandshakeError, match=r"RFC 7692|permessage-deflate"):
        _client(header, **options)


def test_client_accepts_a_smaller_server_window_than_requested() -> None:
    extension = _client("permessage-deflate; server_max_window_bits=8", server_max_window_bits=10)
    assert extension.remote_max_window_bits == 8


def test_client_accepts_parameters_the_server_may_add_unasked() -> None:
    # RFC 7692 §7.1.1.1, §7.1.1.2, §7.1.2.1: the server may add these to any response.
    extension = _client(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12"
    )
    assert extension.remote_no_context_takeover
    assert extension.local_no_context_takeover
    assert extension.remote_max_window_bits == 12
    assert extension.local_max_window_bits == 15


def test_client_honours_the_smaller_of_its_promise_and_the_servers_cap() -> None:
    assert _client("permessage-deflate; client_max_window_bits=9").local_max_window_bits == 9
    promised = _client("permessage-deflate", client_max_window_bits=11)
    assert promised.local_max_window_bits == 11
    capped = _client("permessage-deflate; client_max_window_bits=13", client_max_window_bits=11)
    assert capped.local_max_window_bits == 11
    quiet = _client("permessage-deflate", client_no_context_takeover=True)
    assert quiet.local_no_context_takeover


def test_client_fails_a_second_permessage_deflate_in_the_response() -> None:
    with pytest.raises(HandshakeError, match="twice"):
        negotiate_client([ClientPerMessageDeflate()], ["permessage-deflate, permessage-deflate"])


@pytest.mark.parametrize("server_bits", [None, 8, 12])
@pytest.mark.parametrize("client_bits", [True, False, 8, 12])
@pytest.mark.parametrize("no_takeover", [False, True])
def test_both_roles_agree_on_every_parameter(
    server_bits: int | None, client_bits: int | bool, no_takeover: bool
) -> None:
    client_factory = ClientPerMessageDeflate(
        server_no_context_takeover=no_takeover,
        client_no_context_takeover=no_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    offer = serialize_extensions_header([(client_factory.name, client_factory.offer())])
    response, [server] = negotiate_server([ServerPerMessageDeflate()], [offer])
    assert response is not None
    [client] = negotiate_client([client_factory], [response])
    assert isinstance(server, PerMessageDeflate)
    assert isinstance(client, PerMessageDeflate)
    assert server.local_max_window_bits == client.remote_max_window_bits == (server_bits or 15)
    assert client.local_max_window_bits <= server.remote_max_window_bits
    assert server.local_no_context_takeover == client.remote_no_context_takeover == no_takeover
    assert client.local_no_context_takeover == server.remote_no_context_takeover == no_takeover


# -- the data path ---------------------------------------------------------------------------
def test_rsv1_marks_only_the_first_frame_of_a_compressed_message() -> None:
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    text = "Grüße, " * 500
    payload = text.encode()
    pieces = [payload[:1000], payload[1000:1001], payload[1001:3000], payload[3000:]]
    frames = [
        sender.encode(Frame(pieces[0], Opcode.TEXT)),
        sender.encode(Frame.continuation(pieces[1])),
        sender.encode(Frame.continuation(pieces[2])),
        sender.encode(Frame.continuation(pieces[3], final=True)),
    ]
    assert [frame.rsv1 for frame in frames] == [1, 0, 0, 0]
    assert [frame.opcode for frame in frames] == [Opcode.TEXT] + [Opcode.CONTINUATION] * 3
    assert not frames[-1].payload.endswith(TAIL)  # RFC 7692 §7.2.1
    assert all(frame.payload.endswith(TAIL) for frame in frames[:-1])  # sync-flushed fragments
    decoded = [receiver.decode(frame) for frame in frames]
    assert all(frame.rsv1 == 0 for frame in decoded)
    assert b"".join(frame.payload for frame in decoded).decode() == text


def test_receiver_fails_rsv1_on_a_continuation_frame() -> None:
    receiver = PerMessageDeflate()
    receiver.decode(Frame(b"\xf2\x48", Opcode.TEXT, rsv1=1))
    with pytest.raises(ProtocolError) as info:
        receiver.decode(Frame(b"\xcd\xc9\xc9\x07\x00", Opcode.CONTINUATION, final=True, rsv1=1))
    assert info.value.close_code == CloseCode.PROTOCOL_ERROR


def test_receiver_passes_uncompressed_messages_through() -> None:
    receiver = PerMessageDeflate()
    # RFC 7692 §6: a message whose first frame has no RSV1 is not compressed.
    plain = Frame(b"\xf2\x48\xcd\xc9\xc9\x07\x00", Opcode.BINARY, final=True)
    assert receiver.decode(plain) is plain
    first = Frame(b"abc", Opcode.TEXT)
    rest = Frame.continuation(b"def", final=True)
    assert receiver.decode(first) is first
    assert receiver.decode(rest) is rest
    compressed = Frame(b"\xf2\x48\xcd\xc9\xc9\x07\x00", Opcode.TEXT, final=True, rsv1=1)
    assert receiver.decode(compressed).payload == b"Hello"


def test_rfc_7692_examples_decode_to_hello() -> None:
    # RFC 7692 §7.2.3.1 (one block), §7.2.3.2 (second message sharing the window),
    # §7.2.3.4 (no compression).
    receiver = PerMessageDeflate()
    for payload in ("f2 48 cd c9 c9 07 00", "f2 00 11 00 00", "00 05 00 fa ff 48 65 6c 6c 6f 00"):
        frame = Frame(bytes.fromhex(payload), Opcode.TEXT, final=True, rsv1=1)
        assert receiver.decode(frame).payload == b"Hello"
    # §7.2.3.1 again, in two fragments: RSV1 on the first only.
    fragmented = PerMessageDeflate()
    first = fragmented.decode(Frame(b"\xf2\x48\xcd", Opcode.TEXT, rsv1=1))
    last = fragmented.decode(Frame.continuation(b"\xc9\xc9\x07\x00", final=True))
    assert first.payload + last.payload == b"Hello"


def test_sender_matches_the_rfc_7692_examples() -> None:
    sender = PerMessageDeflate()
    assert sender.encode(Frame(b"Hello", final=True)).payload == bytes.fromhex("f248cdc9c90700")
    # §7.2.3.2: the second "Hello" is a back-reference into the first message.
    assert sender.encode(Frame(b"Hello", final=True)).payload == bytes.fromhex("f200110000")


def test_receiver_accepts_a_message_ending_in_a_bfinal_block() -> None:
    # RFC 7692 §7.2.3.3: "Hello" in a block with BFINAL set, then the next message starts a new
    # stream that may still refer to the previous message's data (context takeover).
    receiver = PerMessageDeflate()
    first = Frame(bytes.fromhex("f348cdc9c9070000"), Opcode.TEXT, final=True, rsv1=1)
    assert receiver.decode(first).payload == b"Hello"
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=b"Hello")
    second_payload = compressor.compress(b"Hello, Hello") + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert b"Hello" not in second_payload
    second = Frame(second_payload[:-4], Opcode.TEXT, final=True, rsv1=1)
    assert receiver.decode(second).payload == b"Hello, Hello"


def test_receiver_fails_data_after_the_final_block() -> None:
    receiver = PerMessageDeflate()
    frame = Frame(bytes.fromhex("f348cdc9c90700") + b"junk", Opcode.TEXT, final=True, rsv1=1)
    with pytest.raises(ExtensionError):
        receiver.decode(frame)


def test_receiver_fails_corrupt_deflate_data_with_1002() -> None:
    receiver = PerMessageDeflate()
    with pytest.raises(ExtensionError) as info:
        receiver.decode(Frame(b"\xff\xff\xff\xff", Opcode.BINARY, final=True, rsv1=1))
    assert info.value.close_code == CloseCode.PROTOCOL_ERROR


def test_empty_messages_round_trip() -> None:
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    for _ in range(3):
        frame = sender.encode(Frame(b"", Opcode.TEXT, final=True))
        assert frame.rsv1 == 1
        assert receiver.decode(frame).payload == b""
    # RFC 7692 §7.2.3.6: a final fragment with no data is a lone 0x00.
    sender.encode(Frame(b"abc", Opcode.BINARY))
    last = sender.encode(Frame.continuation(b"", final=True))
    assert last.payload == b"\x00"


def test_context_takeover_makes_a_repeated_message_smaller() -> None:
    message = os.urandom(2000)
    taking_over = PerMessageDeflate()
    sizes = [len(taking_over.encode(Frame(message, final=True)).payload) for _ in range(2)]
    assert sizes[1] < sizes[0] // 10
    resetting = PerMessageDeflate(local_no_context_takeover=True)
    sizes = [len(resetting.encode(Frame(message, final=True)).payload) for _ in range(2)]
    assert sizes[0] == sizes[1]


def test_receiver_without_takeover_resets_its_window_between_messages() -> None:
    # A receiver told the sender will not take over starts each message afresh: a message that
    # does refer to the previous one cannot be inflated (proof that the reset happens).
    message = os.urandom(2000)
    sender = PerMessageDeflate()
    first, second = (sender.encode(Frame(message, final=True)) for _ in range(2))
    assert PerMessageDeflate().decode(first).payload == message
    resetting = PerMessageDeflate(remote_no_context_takeover=True)
    assert resetting.decode(first).payload == message
    with pytest.raises(ExtensionError, match=r"too far back|invalid"):
        resetting.decode(second)
    taking_over = PerMessageDeflate()
    taking_over.decode(first)
    assert taking_over.decode(second).payload == message


def test_inflation_stops_at_the_message_limit() -> None:
    sender = PerMessageDeflate()
    frame = sender.encode(Frame(b"x" * 1000, final=True))
    assert PerMessageDeflate().decode(frame, max_size=1000).payload == b"x" * 1000
    with pytest.raises(MessageTooBig) as info:
        PerMessageDeflate().decode(frame, max_size=999)
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG


def _bomb(size: int) -> bytes:
    """A compressed message of ``size`` zero bytes, built without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]


def test_a_decompression_bomb_is_refused_without_being_inflated() -> None:
    bomb = _bomb(256 << 20)  # 256 MiB of zeros in about 256 KiB
    assert len(bomb) < 1 << 20
    limit = 1 << 20
    receiver = PerMessageDeflate()
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooBig):
            receiver.decode(Frame(bomb, Opcode.BINARY, final=True, rsv1=1), max_size=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The inflated message would be 256 MiB; at most the limit (plus bookkeeping) was built.
    assert peak < 8 * limit


def test_the_budget_shrinks_across_the_frames_of_one_message() -> None:
    bomb = _bomb(8 << 20)
    receiver = PerMessageDeflate()
    limit = 3 << 20
    size = 0
    with pytest.raises(MessageTooBig):
        for start in range(0, len(bomb), 1000):
            chunk = bomb[start : start + 1000]
            first = start == 0
            frame = Frame(
                chunk,
                Opcode.BINARY if first else Opcode.CONTINUATION,
                final=start + 1000 >= len(bomb),
                rsv1=1 if first else 0,
            )
            size += len(receiver.decode(frame, max_size=limit - size).payload)
    assert size <= limit


# -- through the sans-I/O connection, both roles ---------------------------------------------
def _negotiated_pair(
    client_factory: ClientPerMessageDeflate, server_factory: ServerPerMessageDeflate
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    offer = serialize_extensions_header([(client_factory.name, client_factory.offer())])
    response, [server] = negotiate_server([server_factory], [offer])
    assert response is not None
    [client] = negotiate_client([client_factory], [response])
    assert isinstance(client, PerMessageDeflate)
    assert isinstance(server, PerMessageDeflate)
    return client, server


def test_connections_exchange_compressed_messages_both_ways() -> None:
    client_ext, server_ext = _negotiated_pair(
        ClientPerMessageDeflate(server_max_window_bits=8), ServerPerMessageDeflate()
    )
    client = Connection(Role.CLIENT, extensions=[client_ext])
    server = Connection(Role.SERVER, extensions=[server_ext])
    text = "permessage-deflate " * 300
    client.send_text(text)
    wire = client.data_to_send()
    assert len(wire) < len(text) // 5
    assert wire[0] & 0x40  # RSV1 on the wire
    server.receive_data(wire)
    assert list(server.events()) == [TextMessage(text)]
    blob = bytes(range(256)) * 40
    server.send_binary(blob)
    client.receive_data(server.data_to_send())
    assert list(client.events()) == [BinaryMessage(blob)]


def test_connection_fails_a_bomb_with_1009() -> None:
    _, server_ext = _negotiated_pair(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    server = Connection(Role.SERVER, extensions=[server_ext], max_message_size=1 << 16)
    frame = Frame(
        _bomb(4 << 20), Opcode.BINARY, final=True, rsv1=1, masking_key=b"\x01\x02\x03\x04"
    )
    server.receive_data(frame.build_frame())
    list(server.events())
    assert server.failure is not None
    assert server.failure.close_code == CloseCode.MESSAGE_TOO_BIG


def test_params_type_is_a_list_of_pairs() -> None:
    # The factories speak the module's ExtensionParams shape (used by the handshake module).
    params: ExtensionParams = ClientPerMessageDeflate(server_max_window_bits=9).offer()
    assert params == [("server_max_window_bits", "9"), ("client_max_window_bits", None)]


# -- real peers over loopback --------------------------------------------------------------
def _echo_app() -> WsgiHandler:
    return WsgiHandler(
        middleware=[WebSocket(EchoWS(), [ServerPerMessageDeflate()], max_message_size=1 << 22)]
    )


LOOPBACK_MESSAGES: list[str | bytes] = [
    "",
    "Hello",
    "JSON-ish {'key': [1, 2, 3]} " * 2000,
    bytes(range(256)) * 100,
    os.urandom(5000),
]


@pytest.mark.parametrize(
    "offer",
    [
        {},
        {"server_max_window_bits": 8},
        {"server_max_window_bits": 9, "server_no_context_takeover": True},
        {"client_max_window_bits": 9, "client_no_context_takeover": True},
    ],
)
def test_websockets_client_and_our_server_exchange_compressed_messages(
    offer: dict[str, object],
) -> None:
    async def exchange() -> None:
        async with Server(_echo_app()) as server:
            factory = WsClientFactory(**offer)  # type: ignore[arg-type]
            async with ws_connect(
                server.url, compression=None, extensions=[factory], max_size=1 << 22
            ) as client:
                [extension] = client.protocol.extensions
                assert extension.name == "permessage-deflate"
                expected_bits = offer.get("server_max_window_bits", 15)
                assert getattr(extension, "remote_max_window_bits", None) == expected_bits
                for message in LOOPBACK_MESSAGES:
                    await client.send(message)
                    assert await client.recv() == message
                # A fragmented message from the client, inflated frame by frame here.
                await client.send(["Grüße ", "aus ", "dem " * 500, "Netz"])
                assert await client.recv() == "Grüße aus " + "dem " * 500 + "Netz"

    asyncio.run(asyncio.wait_for(exchange(), 60))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    return status, [(name, value) for name, value in headers]


@pytest.mark.parametrize("client_bits", [8, 9, True])
def test_our_client_and_a_websockets_server_exchange_compressed_messages(
    client_bits: int | bool,
) -> None:
    # Our client compresses with the window it promised (8 included: Z_RLE) and a real
    # server inflates with exactly that window.
    async def echo(websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    async def exchange() -> None:
        async with ws_serve(echo, "127.0.0.1", 0, compression="deflate") as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            factory = ClientPerMessageDeflate(client_max_window_bits=client_bits)
            key, headers = client_request(f"127.0.0.1:{port}", extensions=[factory])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = "GET / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
            writer.write(request.encode() + b"\r\n")
            status, response = await _read_response(reader)
            _, extensions = validate_response(status, response, key, extensions=[factory])
            [extension] = extensions
            assert isinstance(extension, PerMessageDeflate)
            if isinstance(client_bits, int) and client_bits is not True:
                assert extension.local_max_window_bits == client_bits
            conn = Connection(Role.CLIENT, extensions=extensions, max_message_size=1 << 22)
            for message in LOOPBACK_MESSAGES:
                conn.send(message)
                writer.write(conn.data_to_send())
                events: list[object] = []
                while not events:
                    conn.receive_data(await reader.read(65536))
                    events = list(conn.events())
                if isinstance(message, str):
                    assert events == [TextMessage(message)]
                else:
                    assert events == [BinaryMessage(message)]
            conn.close()
            writer.write(conn.data_to_send())
            await writer.drain()
            writer.close()

    asyncio.run(asyncio.wait_for(exchange(), 60))
