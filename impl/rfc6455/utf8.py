"""Incremental, fail-fast UTF-8 validation of text messages (RFC 6455 §8.1).

Invariants:
- Bytes may arrive in any chunking (fragments, or parts of one frame's payload); the
  validator raises ``InvalidPayload`` (1007) as soon as the bytes seen so far cannot begin a
  valid UTF-8 sequence, not at the end of the message.
- The reported offset is the one Python's own decoder reports for the whole message.

CPython's incremental decoder is fail-fast for every invalid prefix but one: a lone ``ED``
followed by ``A0``-``BF`` (the start of an encoded surrogate) is buffered until the third byte
arrives. That case is checked here by hand.
"""

from __future__ import annotations

import codecs

from .errors import InvalidPayload

__all__ = ["Utf8Validator", "decode_text"]

_Decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """Validates (and decodes) one text message fed in chunks."""

    __slots__ = ("_decoder", "_fed")

    def __init__(self) -> None:
        self._decoder = _Decoder("strict")
        self._fed = 0  # bytes fed before the current chunk

    def feed(self, data: bytes, final: bool = False) -> str:
        """Decode ``data``; ``final`` marks the message's last bytes. Raises ``InvalidPayload``."""
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            offset = self._fed - pending + exc.start
            raise InvalidPayload(
                f"text is not valid UTF-8 at byte {offset} of the message ({exc.reason})"
            ) from None
        if not final:
            buffered = self._decoder.getstate()[0]
            # RFC 3629 §4: ED must be followed by 80-9F; A0-BF would encode a surrogate.
            if len(buffered) >= 2 and buffered[0] == 0xED and buffered[1] >= 0xA0:
                offset = self._fed + len(data) - len(buffered)
                raise InvalidPayload(
                    f"text is not valid UTF-8 at byte {offset} of the message "
                    "(invalid continuation byte)"
                )
        self._fed += len(data)
        return text

    @property
    def offset(self) -> int:
        """How many bytes have been fed so far."""
        return self._fed


def decode_text(data: bytes) -> str:
    """Decode a complete text message, raising ``InvalidPayload`` (1007) if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"text is not valid UTF-8 at byte {exc.start} of the message ({exc.reason})"
        ) from None
