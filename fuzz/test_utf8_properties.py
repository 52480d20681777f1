"""Properties of ``rfc6455.utf8``: the incremental validator agrees with Python's decoder on
arbitrary bytes under arbitrary chunking, on the verdict, on where the bytes stop being UTF-8,
and on how early it notices (RFC 6455 §8.1: fail the connection as soon as invalid text is
seen)."""

from __future__ import annotations

import re

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from strategies import UTF8_EDGES, chunked, utf8ish_bytes, valid_utf8_bytes

from rfc6455.errors import InvalidPayload
from rfc6455.utf8 import Utf8Validator, decode_text

# Second bytes at the edges of every lead byte's allowed range (RFC 3629 §4), then any
# continuation byte: enough completions to finish any prefix that can still become UTF-8.
_SECOND_BYTES = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)
_COMPLETIONS = (
    b"",
    *(bytes((s,)) + b"\x80" * k for s in _SECOND_BYTES for k in range(3)),
    *(b"\x80" * k for k in range(1, 4)),
)
_OFFSET = re.compile(r"at byte (\d+)")


def can_still_become_utf8(prefix: bytes) -> bool:
    """Whether some continuation makes ``prefix`` valid UTF-8 (checked by trying them)."""
    for tail in _COMPLETIONS:
        try:
            (prefix + tail).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def first_hopeless_prefix(data: bytes) -> int | None:
    """The length of the shortest prefix of ``data`` no continuation can make valid."""
    for length in range(1, len(data) + 1):
        if not can_still_become_utf8(data[:length]):
            return length
    return None


def reported_offset(exc: InvalidPayload) -> int:
    match = _OFFSET.search(str(exc))
    assert match is not None, f"no offset in {exc}"
    return int(match.group(1))


def feed_all(chunks: list[bytes]) -> tuple[str, int | None, InvalidPayload | None]:
    """Feed chunks (the last one final): (text so far, index of the failing chunk, error)."""
    validator = Utf8Validator()
    text: list[str] = []
    for index, chunk in enumerate(chunks):
        try:
            text.append(validator.feed(chunk, final=index == len(chunks) - 1))
        except InvalidPayload as exc:
            return "".join(text), index, exc
    assert validator.offset == sum(map(len, chunks))
    return "".join(text), None, None


@example(b"\xed\xa0\x80")
@example(b"abc\xed\xa0")
@example(b"\xe0\x80\xaf")
@example(b"\xf4\x90\x80\x80")
@example(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")
@example(b"\xf0\x90\x80")
@given(utf8ish_bytes())
def test_whole_message_verdict_and_offset_match_python(data: bytes) -> None:
    event("valid" if check_against_python([data], data) else "invalid")


@given(st.data(), utf8ish_bytes())
def test_any_chunking_gives_python_verdict_offset_and_fails_fast(
    draw: st.DataObject, data: bytes
) -> None:
    chunks = draw.draw(chunked(data))
    event("valid" if check_against_python(chunks, data) else "invalid")


def check_against_python(chunks: list[bytes], data: bytes) -> bool:
    """Assert the validator agrees with ``bytes.decode``; return whether ``data`` is valid."""
    if not chunks:
        chunks = [b""]
    text, failed_at, error = feed_all(chunks)
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        assert error is not None, f"{data!r} accepted; Python: {exc.reason} at {exc.start}"
        assert error.close_code == 1007
        assert reported_offset(error) == exc.start
        assert failed_at is not None
        # Fail fast: the error comes with the chunk that completes the first prefix no
        # continuation can rescue; a merely truncated message fails on its final chunk.
        hopeless = first_hopeless_prefix(data)
        fed_before = sum(map(len, chunks[:failed_at]))
        if hopeless is None:
            assert failed_at == len(chunks) - 1
        else:
            assert fed_before < hopeless <= fed_before + len(chunks[failed_at])
        # Text handed out before the error is a prefix of what a lenient decode would give.
        assert data[: exc.start].decode("utf-8").startswith(text)
    else:
        assert error is None, f"{data!r} rejected: {error}"
        assert text == expected
        return True
    return False


@given(st.data(), valid_utf8_bytes())
def test_valid_text_survives_any_chunking(draw: st.DataObject, data: bytes) -> None:
    chunks = draw.draw(chunked(data))
    text, _, error = feed_all(chunks or [b""])
    assert error is None
    assert text == data.decode("utf-8")


@given(utf8ish_bytes())
def test_decode_text_matches_python(data: bytes) -> None:
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        with pytest.raises(InvalidPayload) as info:
            decode_text(data)
        assert reported_offset(info.value) == exc.start
    else:
        assert decode_text(data) == expected


@pytest.mark.parametrize("edge", UTF8_EDGES)
def test_every_edge_sequence_fed_byte_by_byte_matches_python(edge: bytes) -> None:
    check_against_python([edge[i : i + 1] for i in range(len(edge))], edge)
