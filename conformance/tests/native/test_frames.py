"""The frame writer's masking (both methods, on either side of the size where it switches)
and the header written alone for a frame streamed in parts."""

from __future__ import annotations

import random

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
        assert frames.apply_mask(frames.apply_mask(data, KEY), KEY) == data, size


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
