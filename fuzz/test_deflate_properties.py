"""Properties of permessage-deflate (RFC 7692) in rfc6455.extensions.

- Round trips for every parameter combination (window bits 8..15 each way, context takeover
  on or off), negotiated through the real factories, with random outgoing fragmentation and
  random re-fragmentation of what arrives, through real wire bytes and the frame parser.
- Differential: websockets' permessage-deflate and ours inflate each other's messages to the
  same bytes.
- Robustness: arbitrary bytes in a compressed message raise only documented errors.
"""

from __future__ import annotations

import itertools
import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate as WsPerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode

from rfc6455.errors import ProtocolError
from rfc6455.extensions import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
    negotiate_client,
    negotiate_server,
    serialize_extensions_header,
)
from rfc6455.frame import Frame, FrameParser, Opcode, Role

window_bits = st.integers(min_value=8, max_value=15)

# Compressible and incompressible data: text-like repeats, runs, random bytes.
message_data = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda word, count: word * count, st.binary(min_size=1, max_size=40),
              st.integers(1, 300)),
    st.builds(lambda text: text.encode(), st.text(max_size=500)),
    # Incompressible bytes, derived from a drawn seed so that examples replay exactly.
    st.builds(lambda seed, size: random.Random(seed).randbytes(size), st.integers(),
              st.integers(0, 5000)),
)  # fmt: skip


def _cuts(data: st.DataObject, size: int) -> list[int]:
    """Sorted split points inside ``size`` (possibly none, possibly empty pieces)."""
    points = data.draw(st.lists(st.integers(0, size), max_size=5))
    return sorted(points)


def _split(payload: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


def _negotiate(
    client_factory: ClientPerMessageDeflate, server_factory: ServerPerMessageDeflate
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    offer = serialize_extensions_header([(client_factory.name, client_factory.offer())])
    response, extensions = negotiate_server([server_factory], [offer])
    assert response is not None
    [server] = extensions
    [client] = negotiate_client([client_factory], [response])
    assert isinstance(client, PerMessageDeflate)
    assert isinstance(server, PerMessageDeflate)
    return client, server


def _send(extension: PerMessageDeflate, message: bytes, cuts: list[int], role: Role) -> bytes:
    """Wire bytes of one binary message sent in fragments by ``role``."""
    wire = b""
    pieces = _split(message, cuts)
    for index, piece in enumerate(pieces):
        opcode = Opcode.BINARY if index == 0 else Opcode.CONTINUATION
        frame = extension.encode(Frame(piece, opcode, final=index == len(pieces) - 1))
        assert frame.rsv1 == (1 if index == 0 else 0)  # RFC 7692 §6.1
        if role == Role.CLIENT:
            frame.masking_key = os.urandom(4)
        wire += frame.build_frame()
    return wire


def _receive(extension: PerMessageDeflate, wire: bytes, role: Role, max_size: int) -> list[bytes]:
    """Messages from ``wire`` as ``role`` receives them, inflated frame by frame."""
    parser = FrameParser(13, role, rsv_mask=extension.rsv_mask)
    parser.feed(wire)
    messages: list[bytes] = []
    current: list[bytes] = []
    for frame in parser.frames():
        decoded = extension.decode(frame, max_size=max_size - sum(map(len, current)))
        assert decoded.rsv1 == 0
        current.append(decoded.payload)
        if decoded.final:
            messages.append(b"".join(current))
            current = []
    assert parser.buffered == 0
    return messages


@given(
    server_bits=st.none() | window_bits,
    client_bits=st.booleans() | window_bits,
    server_cap=st.none() | window_bits,
    client_cap=st.none() | window_bits,
    server_no_takeover=st.booleans(),
    client_no_takeover=st.booleans(),
    messages=st.lists(message_data, min_size=1, max_size=4),
    data=st.data(),
)
def test_every_parameter_combination_round_trips_both_ways(
    server_bits: int | None,
    client_bits: int | bool,
    server_cap: int | None,
    client_cap: int | None,
    server_no_takeover: bool,
    client_no_takeover: bool,
    messages: list[bytes],
    data: st.DataObject,
) -> None:
    client, server = _negotiate(
        ClientPerMessageDeflate(
            server_no_context_takeover=server_no_takeover,
            client_no_context_takeover=client_no_takeover,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
        ),
        ServerPerMessageDeflate(
            server_max_window_bits=server_cap, client_max_window_bits=client_cap
        ),
    )
    limit = max(map(len, messages))
    to_server = b"".join(
        _send(client, message, _cuts(data, len(message)), Role.CLIENT) for message in messages
    )
    assert _receive(server, to_server, Role.SERVER, limit) == messages
    to_client = b"".join(
        _send(server, message, _cuts(data, len(message)), Role.SERVER) for message in messages
    )
    assert _receive(client, to_client, Role.CLIENT, limit) == messages


@given(
    bits=window_bits,
    no_takeover=st.booleans(),
    messages=st.lists(message_data, min_size=1, max_size=4),
    data=st.data(),
)
def test_compressed_messages_survive_any_refragmentation(
    bits: int, no_takeover: bool, messages: list[bytes], data: st.DataObject
) -> None:
    # The receiver must not care where the sender cut the compressed stream (RFC 7692 §6.2:
    # fragmentation applies to the compressed payload).
    sender = PerMessageDeflate(local_max_window_bits=bits, local_no_context_takeover=no_takeover)
    receiver = PerMessageDeflate(
        remote_max_window_bits=bits, remote_no_context_takeover=no_takeover
    )
    for message in messages:
        payload = sender.encode(Frame(message, Opcode.BINARY, final=True)).payload
        pieces = _split(payload, _cuts(data, len(payload)))
        out = b""
        for index, piece in enumerate(pieces):
            first, last = index == 0, index == len(pieces) - 1
            frame = Frame(
                piece,
                Opcode.BINARY if first else Opcode.CONTINUATION,
                final=last,
                rsv1=1 if first else 0,
            )
            out += receiver.decode(frame, max_size=len(message) - len(out)).payload
        assert out == message


def _ws_frame(frame: Frame) -> WsFrame:
    return WsFrame(WsOpcode(int(frame.opcode)), frame.payload, frame.final, bool(frame.rsv1))


def _our_frame(frame: WsFrame) -> Frame:
    return Frame(bytes(frame.data), int(frame.opcode), final=frame.fin, rsv1=int(frame.rsv1))


@given(
    ws_bits=st.integers(9, 15),  # websockets cannot compress with 8 (zlib refuses it)
    our_bits=window_bits,
    ws_no_takeover=st.booleans(),
    our_no_takeover=st.booleans(),
    messages=st.lists(message_data, min_size=1, max_size=4),
    data=st.data(),
)
@settings(max_examples=80)
def test_websockets_and_rfc6455_inflate_each_others_messages(
    ws_bits: int,
    our_bits: int,
    ws_no_takeover: bool,
    our_no_takeover: bool,
    messages: list[bytes],
    data: st.DataObject,
) -> None:
    ours = PerMessageDeflate(
        local_max_window_bits=our_bits,
        local_no_context_takeover=our_no_takeover,
        remote_max_window_bits=ws_bits,
        remote_no_context_takeover=ws_no_takeover,
    )
    theirs = WsPerMessageDeflate(
        remote_no_context_takeover=our_no_takeover,
        local_no_context_takeover=ws_no_takeover,
        remote_max_window_bits=our_bits,
        local_max_window_bits=ws_bits,
    )
    for message in messages:
        pieces = _split(message, _cuts(data, len(message)))
        last = len(pieces) - 1
        # websockets compresses, we inflate.
        received = b""
        for index, piece in enumerate(pieces):
            ws_opcode = WsOpcode.BINARY if index == 0 else WsOpcode.CONT
            sent = theirs.encode(WsFrame(ws_opcode, piece, index == last))
            received += ours.decode(_our_frame(sent), max_size=len(message)).payload
        assert received == message
        # We compress, websockets inflates.
        received = b""
        for index, piece in enumerate(pieces):
            opcode = Opcode.BINARY if index == 0 else Opcode.CONTINUATION
            sent_by_us = ours.encode(Frame(piece, opcode, final=index == last))
            received += bytes(theirs.decode(_ws_frame(sent_by_us), max_size=len(message)).data)
        assert received == message


@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=4), bits=window_bits)
def test_arbitrary_compressed_payloads_raise_only_protocol_errors(
    payloads: list[bytes], bits: int
) -> None:
    receiver = PerMessageDeflate(remote_max_window_bits=bits)
    last = len(payloads) - 1
    try:
        for index, payload in enumerate(payloads):
            first = index == 0
            frame = Frame(
                payload,
                Opcode.TEXT if first else Opcode.CONTINUATION,
                final=index == last,
                rsv1=1 if first else 0,
            )
            decoded = receiver.decode(frame, max_size=10_000)
            assert len(decoded.payload) <= 10_000
    except ProtocolError as exc:
        assert exc.close_code in (1002, 1009)
