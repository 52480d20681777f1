"""Category 7, the closing handshake: nothing is processed after a Close; close payloads
(empty, code only, code and reason, a 1-byte or oversized payload, invalid UTF-8 reasons);
valid codes are echoed or answered with 1000, invalid ones fail with 1002 (RFC 6455 §5.5.1,
§7.4). Every 7.x case turns a WRONG CODE close into a FAILED behavior; 7.1.6 and 7.13.x are
INFORMATIONAL whatever happens."""

from __future__ import annotations

from wsconform.native.casedef import (
    INVALID_PAYLOAD,
    NORMAL,
    PROTOCOL_ERROR,
    CaseSpec,
    CloseExpectation,
    KillAfter,
    SendClose,
    SendCloseFrame,
    SendFrame,
    Step,
    fuzzer_closes,
)
from wsconform.native.record import Message
from wsconform.native.verdict import NON_STRICT, OK, Rule

TEXT, CONT, CLOSE, PING = 1, 0, 8, 9
HELLO_WORLD = b"Hello World!"
# A reason that is not UTF-8: it encodes a surrogate (ED A0 80).
BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999)


def _after_close(case_id: str, *script: Step, expected: tuple[Message, ...] = ()) -> CaseSpec:
    return CaseSpec(
        case_id,
        (*script, KillAfter(1)),
        {OK: expected},
        fuzzer_closes(),
        suppress_close=not expected,
        rule=Rule.WRONG_CODE_FAILS,
    )


def _we_close(case_id: str, step: Step, close: CloseExpectation) -> CaseSpec:
    return CaseSpec(
        case_id,
        (step, KillAfter(1)),
        {OK: ()},
        close,
        suppress_close=True,
        rule=Rule.WRONG_CODE_FAILS,
    )


def _may_fail(*codes: int) -> CloseExpectation:
    return CloseExpectation(True, codes, require_clean=False)


_INFORMATIONAL_CODE = {"7.13.1": 5000, "7.13.2": 65535}

CASES = (
    _after_close("7.1.1", SendFrame(TEXT, HELLO_WORLD), expected=(Message(HELLO_WORLD, False),)),
    _after_close("7.1.2", SendClose(NORMAL), SendFrame(CLOSE)),
    _after_close("7.1.3", SendClose(NORMAL), SendFrame(PING)),
    _after_close("7.1.4", SendClose(NORMAL), SendFrame(TEXT, HELLO_WORLD)),
    _after_close(
        "7.1.5",
        SendFrame(TEXT, b"fragment1", fin=False),
        SendClose(NORMAL),
        SendFrame(CONT, b"fragment2"),
    ),
    CaseSpec(
        "7.1.6",
        (
            SendFrame(TEXT, b"BAsd7&jh23", length=256 * 2**10),
            SendFrame(TEXT, HELLO_WORLD),
            SendClose(NORMAL),
            SendFrame(PING),
            KillAfter(1),
        ),
        {OK: (Message(HELLO_WORLD, False),), NON_STRICT: ()},
        fuzzer_closes(),
        suppress_close=True,
        rule=Rule.INFORMATIONAL_ORDER,
    ),
    _we_close("7.3.1", SendCloseFrame(), fuzzer_closes()),
    _we_close("7.3.2", SendCloseFrame(reason=b"a"), _may_fail(PROTOCOL_ERROR)),
    _we_close("7.3.3", SendClose(NORMAL), fuzzer_closes()),
    _we_close("7.3.4", SendClose(NORMAL, "Hello World!"), fuzzer_closes()),
    _we_close("7.3.5", SendClose(NORMAL, "*" * 123), fuzzer_closes()),
    _we_close("7.3.6", SendCloseFrame(NORMAL, b"*" * 124), _may_fail(PROTOCOL_ERROR)),
    _we_close(
        "7.5.1", SendCloseFrame(NORMAL, BAD_UTF8), _may_fail(PROTOCOL_ERROR, INVALID_PAYLOAD)
    ),
    *(
        _we_close(f"7.7.{n}", SendCloseFrame(code), fuzzer_closes(NORMAL, code))
        for n, code in enumerate(VALID_CODES, 1)
    ),
    *(
        _we_close(f"7.9.{n}", SendCloseFrame(code), _may_fail(PROTOCOL_ERROR))
        for n, code in enumerate(INVALID_CODES, 1)
    ),
    *(
        CaseSpec(
            case_id,
            (SendCloseFrame(code), KillAfter(1)),
            {OK: ()},
            _may_fail(NORMAL, code, PROTOCOL_ERROR),
            suppress_close=True,
            rule=Rule.INFORMATIONAL,
        )
        for case_id, code in _INFORMATIONAL_CODE.items()
    ),
)
