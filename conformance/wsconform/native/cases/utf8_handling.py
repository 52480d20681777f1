"""Category 6, UTF-8 handling: valid text is echoed whatever its framing; invalid text makes the
testee fail the connection with 1007 (RFC 6455 §8.1), as soon as the bytes cannot be UTF-8.

- 6.1-6.2: valid text (empty fragments, split on and within code points) must come back; the
  fuzzer closes with 1000 after 1 s if it has not already.
- 6.3: invalid text, in one frame or one byte per frame; 6.5-6.23: one payload per case from
  ``utf8_sequences``, valid ones echoed, invalid ones failed (the case ends after 0.5 s).
- 6.4: fail fast. A text message becomes invalid in its second part, sent 1 s after the first
  (as a frame, or as more bytes of the same frame); the third part follows 1 s later. Each
  wait that ends with the connection still open is recorded as an event ("A", then "B"): OK
  when the testee failed within the second wait, NON-STRICT when only after the third part.
Whenever the testee must fail, the fuzzer closing instead (the testee echoed invalid text, or
never noticed it) also fails ``behavior``.
"""

from __future__ import annotations

from wsconform.native.casedef import (
    INVALID_PAYLOAD,
    BeginFrame,
    CaseSpec,
    CloseAfter,
    CloseExpectation,
    ContinueLater,
    FrameData,
    KillAfter,
    SendFrame,
    SendMessage,
    Step,
    fuzzer_closes,
)
from wsconform.native.cases.utf8_sequences import GROUPS, KOSME, is_valid
from wsconform.native.record import Message, Timeout
from wsconform.native.verdict import NON_STRICT, OK

TEXT, CONT = 1, 0
FIRST_GENERATED = 5  # GROUPS[0] is sub-category 6.5

# 6.2.2 splits its text between two code points.
_HELLO_HEAD, _HELLO_TAIL = "Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()
_HELLO = _HELLO_HEAD + _HELLO_TAIL
# "κόσμε", a surrogate (invalid at its second byte), "edited".
_BAD = KOSME + bytes.fromhex("eda080") + b"edited"
# "κόσμε", U+110000 in the 4-byte form (invalid at its second byte), "edited".
_FAIL_FAST = KOSME + bytes.fromhex("f4908080") + b"edited"

_REJECTED = CloseExpectation(False, (INVALID_PAYLOAD,), require_clean=False, wrong_side_fatal=True)


def _echoed(case_id: str, payload: bytes, *script: Step, ending: Step) -> CaseSpec:
    """Valid text: ``script`` sends it, its echo must come back; ``ending`` ends the case."""
    return CaseSpec(case_id, (*script, ending), {OK: (Message(payload, False),)}, fuzzer_closes())


def _rejected(case_id: str, *script: Step, ending: Step) -> CaseSpec:
    """Invalid text: nothing may come back and the testee must fail with 1007."""
    return CaseSpec(case_id, (*script, ending), {OK: ()}, _REJECTED)


def _three_parts(
    case_id: str, first: tuple[Step, ...], second: Step, third: tuple[Step, ...]
) -> CaseSpec:
    """6.4.x: ``first`` now, ``second`` after wait "A", ``third`` after wait "B", then 1 s."""
    script = (
        *first,
        ContinueLater(1, (second, ContinueLater(1, (*third, KillAfter(1)), mark="B")), mark="A"),
    )
    expected = {OK: (Timeout("A"),), NON_STRICT: (Timeout("A"), Timeout("B"))}
    return CaseSpec(case_id, script, expected, _REJECTED)


def _as_frames(case_id: str, cut: int, cut_again: int) -> CaseSpec:
    """The fail-fast message in three frames, cut at ``cut`` and ``cut_again``."""
    parts = (_FAIL_FAST[:cut], _FAIL_FAST[cut:cut_again], _FAIL_FAST[cut_again:])
    return _three_parts(
        case_id,
        (SendFrame(TEXT, parts[0], fin=False),),
        SendFrame(CONT, parts[1], fin=False),
        (SendFrame(CONT, parts[2]),),
    )


def _as_one_frame(case_id: str, cut: int, cut_again: int) -> CaseSpec:
    """The fail-fast message as the parts of one frame; an empty final frame ends it."""
    return _three_parts(
        case_id,
        (BeginFrame(TEXT, len(_FAIL_FAST)), FrameData(_FAIL_FAST[:cut])),
        FrameData(_FAIL_FAST[cut:cut_again]),
        (FrameData(_FAIL_FAST[cut_again:]), SendFrame(CONT, b"")),
    )


# Where 6.4.1/6.4.3 and 6.4.2/6.4.4 cut the message: around the invalid 4-byte form, or
# around its one invalid byte.
_WHOLE_FORM = (len(KOSME), len(KOSME) + 4)
_ONE_BYTE = (len(KOSME) + 1, len(KOSME) + 2)

_WRITTEN = (
    _echoed("6.1.1", b"", SendFrame(TEXT), ending=CloseAfter(1)),
    _echoed(
        "6.1.2",
        b"",
        SendFrame(TEXT, fin=False),
        SendFrame(CONT, fin=False),
        SendFrame(CONT),
        ending=CloseAfter(1),
    ),
    _echoed(
        "6.1.3",
        b"middle frame payload",
        SendFrame(TEXT, fin=False),
        SendFrame(CONT, b"middle frame payload", fin=False),
        SendFrame(CONT),
        ending=CloseAfter(1),
    ),
    _echoed("6.2.1", _HELLO, SendMessage(_HELLO), ending=CloseAfter(1)),
    _echoed(
        "6.2.2",
        _HELLO,
        SendFrame(TEXT, _HELLO_HEAD, fin=False),
        SendFrame(CONT, _HELLO_TAIL),
        ending=CloseAfter(1),
    ),
    _echoed("6.2.3", _HELLO, SendMessage(_HELLO, fragment=1), ending=CloseAfter(1)),
    _echoed("6.2.4", KOSME, SendMessage(KOSME, fragment=1), ending=CloseAfter(1)),
    _rejected("6.3.1", SendMessage(_BAD), ending=KillAfter(1)),
    _rejected("6.3.2", SendMessage(_BAD, fragment=1), ending=KillAfter(1)),
    _as_frames("6.4.1", *_WHOLE_FORM),
    _as_frames("6.4.2", *_ONE_BYTE),
    _as_one_frame("6.4.3", *_WHOLE_FORM),
    _as_one_frame("6.4.4", *_ONE_BYTE),
)


def _generated(case_id: str, payload: bytes) -> CaseSpec:
    send, ending = SendMessage(payload), KillAfter(0.5)
    if is_valid(payload):
        return _echoed(case_id, payload, send, ending=ending)
    return _rejected(case_id, send, ending=ending)


CASES = _WRITTEN + tuple(
    _generated(f"6.{group}.{number}", payload)
    for group, payloads in enumerate(GROUPS, FIRST_GENERATED)
    for number, payload in enumerate(payloads, 1)
)
