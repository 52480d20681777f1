"""The UTF-8 decoder test sequences behind cases 6.5.x-6.23.x (after Markus Kuhn's
UTF-8-test.txt, as the fuzzer selects them), one group per sub-category, in its order.

Invariants:
- ``GROUPS[k]`` holds the payloads of sub-category ``6.(k+5)``, in case order: case
  ``6.(k+5).(j+1)`` sends ``GROUPS[k][j]``. Group titles are the catalog's sub-category names.
- A payload is valid exactly when it is well-formed UTF-8 (Unicode Table 3-7): that is how the
  fuzzer labels each one (non-characters such as U+FFFE are valid; surrogates, overlong forms,
  5- and 6-byte forms and code points above U+10FFFF are not). ``is_valid`` decides it.
- Data only: nothing here sends or judges anything.
"""

from __future__ import annotations

__all__ = ["GROUPS", "KOSME", "is_valid"]

# "κόσμε": the Greek word the fuzzer uses as its multi-byte sample text.
KOSME = bytes.fromhex("ceba e1bdb9 cf83 cebc ceb5")


def _hex(*sequences: str) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(s) for s in sequences)


def _lonely_starts(first: int, stop: int) -> bytes:
    """Each lead byte in [first, stop) followed by a space."""
    return b"".join(bytes((lead, 0x20)) for lead in range(first, stop))


def _noncharacters() -> tuple[bytes, ...]:
    """U+FFFE, U+FFFF and the last two code points of planes 1-16 (U+nFFFE, U+nFFFF)."""
    found = [bytes.fromhex("efbfbe"), bytes.fromhex("efbfbf")]
    for plane in range(1, 17):
        lead = 0xF0 | plane >> 2
        second = 0x80 | (plane & 0x3) << 4 | 0x0F
        found += [bytes((lead, second, 0xBF, last)) for last in (0xBE, 0xBF)]
    return tuple(found)


# Sequences missing their last continuation byte (6.14), also concatenated (6.15).
_TRUNCATED = _hex(
    "c0",
    "e080",
    "f08080",
    "f8808080",
    "fc80808080",
    "df",
    "efbf",
    "f7bfbf",
    "fbbfbfbf",
    "fdbfbfbfbf",
)

_SURROGATE_HIGH = _hex("eda080", "edadbf", "edae80", "edafbf")
_SURROGATE_LOW = _hex("edb080", "edbfbf")

GROUPS: tuple[tuple[bytes, ...], ...] = (
    # 6.5 valid text: ASCII, 2-, 3- and 4-byte code points between words, and "κόσμε"
    (
        b"hello$world",
        b"hello\xc2\xa2world",
        b"hello\xe2\x82\xacworld",
        b"hello\xf0\xa4\xad\xa2world",
        KOSME,
    ),
    # 6.6 every prefix of "κόσμε"
    tuple(KOSME[:end] for end in range(1, len(KOSME) + 1)),
    # 6.7 the first code point of each encoded length
    _hex("00", "c280", "e0a080", "f0908080"),
    # 6.8 the first 5- and 6-byte forms (beyond Unicode)
    _hex("f888808080", "fc8480808080"),
    # 6.9 the last code point of each encoded length
    _hex("7f", "dfbf", "efbfbf", "f48fbfbf"),
    # 6.10 the last 4-, 5- and 6-byte forms (beyond Unicode)
    _hex("f7bfbfbf", "fbbfbfbfbf", "fdbfbfbfbfbf"),
    # 6.11 around the surrogates, the replacement character, and just past U+10FFFF
    _hex("ed9fbf", "ee8080", "efbfbd", "f48fbfbf", "f4908080"),
    # 6.12 continuation bytes with no lead byte
    (
        *_hex("80", "bf", "80bf", "80bf80", "80bf80bf", "80bf80bf80", "80bf80bf80bf"),
        bytes(range(0x80, 0xBF)),
    ),
    # 6.13 lead bytes of each length, each alone before a space
    tuple(
        _lonely_starts(first, stop)
        for first, stop in ((0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD))
    ),
    # 6.14 sequences cut before their last continuation byte
    _TRUNCATED,
    # 6.15 all of those in a row
    (b"".join(_TRUNCATED),),
    # 6.16 bytes that never occur in UTF-8
    _hex("fe", "ff", "fefeffff"),
    # 6.17 "/" in overlong forms of 2 to 6 bytes
    _hex("c0af", "e080af", "f08080af", "f8808080af", "fc80808080af"),
    # 6.18 the largest code point of each overlong form
    _hex("c1bf", "e09fbf", "f08fbfbf", "f887bfbfbf", "fc83bfbfbfbf"),
    # 6.19 NUL in overlong forms
    _hex("c080", "e08080", "f0808080", "f880808080", "fc8080808080"),
    # 6.20 single UTF-16 surrogates encoded as if code points
    _hex("eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf"),
    # 6.21 surrogate pairs encoded as two such code points
    tuple(high + low for high in _SURROGATE_HIGH for low in _SURROGATE_LOW),
    # 6.22 non-characters (valid UTF-8)
    _noncharacters(),
    # 6.23 the Specials block U+FFF9..U+FFFF
    tuple(bytes((0xEF, 0xBF, last)) for last in range(0xB9, 0xC0)),
)


def is_valid(payload: bytes) -> bool:
    """Is ``payload`` well-formed UTF-8 (what the fuzzer expects to be echoed)?"""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
