"""The frame writer's masking (both methods, on either side of the size where it switches)
and the header written alone for a frame streamed in parts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsconform.native import frames

KEY = bytes.fromhex("a1b2c3d4")


def masked_octet_by_octet(data: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3 literally: octet i XOR key octet i mod 4."""
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(data))


def test_masking_equals_the_rfc_rule_at_every_size_around_the_switch() -> None:
    rng = random.Random(3)
    switch = frames._TRANSLATE_FROM
    for size in (1, 2, 3, 4, 5, 125, switch - 1, switch, switch + 1, switch + 3):
        data = rng.randbytes(size)
        assert frames.apply_mask(data, KEY) == masked_octet_by_octet(data, KEY), size
        assert frames._apply_mask_python(data, KEY) == masked_octet_by_octet(data, KEY), size
        assert frames.apply_mask(frames.apply_mask(data, KEY), KEY) == data, size


def masked_frame_by_frame(payload: bytes, keys: bytes, fragment: int) -> bytes:
    """RFC 6455 §5.3 for each frame of ``fragment`` octets, frame f with key f."""
    return b"".join(
        masked_octet_by_octet(payload[at : at + fragment], keys[4 * f : 4 * f + 4])
        for f, at in enumerate(range(0, len(payload), fragment))
    )


def test_the_compiled_masking_is_built_and_equals_python_frame_by_frame() -> None:
    # The extension is built by `make install` (setup.py); without it the engine masks in
    # Python, which CI's build must never silently fall back to.
    assert frames._compiled is not None, "wsconform.native._masking was not built"
    rng = random.Random(11)
    for size in (1, 3, 7, 8, 9, 15, 16, 17, 64, 1000, 65537):
        for fragment in (1, 3, 4, 5, 8, 9, 64, 4096, size):
            payload = rng.randbytes(size)
            keys = rng.randbytes(4 * -(-size // fragment))
            expected = masked_frame_by_frame(payload, keys, fragment)
            assert frames.mask_frames(payload, keys, fragment) == expected, (size, fragment)
            assert frames._mask_frames_python(payload, keys, fragment) == expected
    assert frames.mask_frames(memoryview(b"abcd"), bytearray(KEY), 4) == frames.apply_mask(
        b"abcd", KEY
    )
    with pytest.raises(ValueError, match="fragment must be positive"):
        frames._compiled(b"abc", KEY, 0)
    with pytest.raises(ValueError, match="4 octets of keys for 2 frames"):
        frames._compiled(b"abcdefgh", KEY, 4)


def test_a_header_alone_is_the_start_of_the_whole_frame() -> None:
    for size in (0, 21, 126, 65536):
        payload = b"*" * size
        whole = frames.encode(1, payload, fin=False, mask=KEY)
        head = frames.header(1, size, fin=False, mask=KEY)
        assert whole.startswith(head) and len(whole) == len(head) + size


def test_a_repeated_payload_masks_as_the_rfc_rule_says() -> None:
    for fill in (b"*", b"\xfe\x01", b"BAsd7&jh23", bytes.fromhex("00fe23faf0")):
        for length in (0, 1, 3, 4, 19, 20, 21, 4096, 65537):
            body = frames.repeat_to(fill, length)
            assert frames.masked_repeat(fill, length, KEY) == masked_octet_by_octet(body, KEY)


def parsed(wire: bytes) -> list[tuple[int, bool, int, bytes, bytes]]:
    """Each frame of ``wire`` as (opcode, FIN, RSV, key, unmasked payload), RFC 6455 §5.2."""
    found = []
    while wire:
        size, at = wire[1] & 0x7F, 2
        if size > 125:
            at += 2 if size == 126 else 8
            size = int.from_bytes(wire[2:at], "big")
        key = wire[at : at + 4]
        payload = masked_octet_by_octet(wire[at + 4 : at + 4 + size], key)
        found.append((wire[0] & 0x0F, wire[0] >= 0x80, (wire[0] >> 4) & 0x7, key, payload))
        wire = wire[at + 4 + size :]
    return found


@pytest.fixture(params=["compiled", "python"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``frames.encode_message`` on its compiled path, then on its Python one."""
    if request.param == "python":
        monkeypatch.setattr(frames, "_compiled_encode", None)
    else:
        assert frames._compiled_encode is not None, "wsconform.native._masking was not built"
    return str(request.param)


def test_a_fragmented_message_is_cut_keyed_and_masked_frame_by_frame(encoder: str) -> None:
    # One, two, three and many frames; fragments a multiple of 4 or not; an exact multiple
    # (then the last frame is empty) or not.
    rng = random.Random(5)
    cuts = {(9, 0): 1, (9, 9): 1, (10, 9): 2, (18, 9): 3, (19, 9): 3, (64, 4): 17, (999, 7): 143}
    for (size, fragment), count in cuts.items():
        payload = rng.randbytes(size)
        assert frames.frame_count(size, fragment) == len(frames.fragment_bounds(size, fragment))
        keys = frames.MaskKeys(size).keys(count)
        assert frames.MaskKeys(size).joined_keys(count) == b"".join(keys)
        got = parsed(frames.encode_message(2, payload, fragment, b"".join(keys), rsv=4))
        assert len(got) == count, (size, fragment)
        assert [(opcode, fin, rsv) for opcode, fin, rsv, _, _ in got] == [(2, count == 1, 4)] + [
            (0, i == count - 1, 0) for i in range(1, count)
        ]
        assert [key for _, _, _, key, _ in got] == keys
        assert b"".join(part for *_, part in got) == payload
        assert all(len(part) == fragment for *_, part in got[:-1]), (size, fragment)


def test_a_message_of_one_octet_repeated_is_cut_keyed_and_masked_frame_by_frame(
    encoder: str,
) -> None:
    # Its frames are built from the keys alone: column by column when they are many and
    # short, frame by frame otherwise (or when a frame is not a whole number of keys long).
    cases = ((4096, 64), (4096, 4), (999, 7), (64, 4), (70000, 256), (8192, 2048), (12, 4))
    for octet in (b"*", b"\xfe", b"\x00"):
        for size, fragment in cases:
            payload = octet * size
            bounds = frames.fragment_bounds(size, fragment)
            keys = frames.MaskKeys(size + fragment).keys(len(bounds))
            last = len(bounds) - 1
            encoded = frames.encode_message(1, payload, fragment, b"".join(keys), rsv=4)
            assert parsed(encoded) == [
                (0 if i else 1, i == last, 0 if i else 4, key, payload[start:end])
                for i, ((start, end), key) in enumerate(zip(bounds, keys, strict=True))
            ], (octet, size, fragment)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=3000),
        st.tuples(st.binary(min_size=1, max_size=1), st.integers(0, 70000)).map(
            lambda fill: fill[0] * fill[1]  # one octet repeated: the Python path's own route
        ),
    ),
    fragment=st.one_of(st.integers(0, 9), st.integers(10, 70000)),
    first=st.integers(0, 0x7F),
    seed=st.integers(0, 2**32),
)
def test_the_compiled_message_encoder_writes_the_python_encoder_s_octets(
    payload: bytes, fragment: int, first: int, seed: int
) -> None:
    assert frames._compiled_encode is not None, "wsconform.native._masking was not built"
    keys = frames.MaskKeys(seed).joined_keys(frames.frame_count(len(payload), fragment))
    assert frames._compiled_encode(payload, keys, fragment, first) == (
        frames._encode_message_python(first, payload, fragment, keys)
    )


def test_the_compiled_message_encoder_refuses_too_few_keys_and_bad_arguments() -> None:
    assert frames._compiled_encode is not None
    with pytest.raises(ValueError, match="4 octets of keys for 3 frames"):
        frames._compiled_encode(b"abcdefgh", KEY, 4, 1)
    with pytest.raises(ValueError, match=r"first in 0\.\.127"):
        frames._compiled_encode(b"abc", KEY, 4, 0x80)
    with pytest.raises(ValueError, match="fragment must be >= 0"):
        frames._compiled_encode(b"abc", KEY, -1, 1)


class _ZeroDraws(random.Random):
    """A generator whose draw of several keys at once is all zeros (a 2**-32 chance a key in
    life), and each single key drawn after it 01 02 03 04."""

    def getrandbits(self, k: int) -> int:
        return 0 if k > 32 else 0x01020304


def test_a_zero_key_is_drawn_again_whether_keys_come_joined_or_one_by_one() -> None:
    # A zero key would hide a testee that forgets to unmask (RFC 6455 §5.3).
    for take in (lambda m: m.joined_keys(3), lambda m: b"".join(m.keys(3))):
        keys = frames.MaskKeys(7)
        keys._random = _ZeroDraws()
        assert take(keys) == b"\x01\x02\x03\x04" * 3
