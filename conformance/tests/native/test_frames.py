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


def test_a_fragmented_message_is_its_frames_encoded_one_by_one_at_every_count() -> None:
    # One, two, three and many frames; fragments a multiple of 4 or not; an exact multiple
    # (ending with an empty frame) or not.
    rng = random.Random(5)
    cuts = (
        (10, 0, 1),
        (10, 10, 1),
        (11, 10, 2),
        (20, 10, 3),
        (21, 10, 3),
        (64, 4, 17),
        (1000, 7, 143),
    )
    for size, fragment, count in cuts:
        payload = rng.randbytes(size)
        bounds = frames.fragment_bounds(size, fragment)
        assert len(bounds) == count and bounds[-1][1] == size, (size, fragment)
        keys = frames.MaskKeys(size).keys(len(bounds))
        one_by_one = b"".join(
            frames.encode(
                2 if i == 0 else 0,
                payload[start:end],
                fin=i == len(bounds) - 1,
                rsv=4 if i == 0 else 0,
                mask=key,
            )
            for i, ((start, end), key) in enumerate(zip(bounds, keys, strict=True))
        )
        assert frames.encode_message(2, payload, bounds, keys, rsv=4) == one_by_one, size
