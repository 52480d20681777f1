"""Category 5, fragmentation: fragmented messages are reassembled, control frames may come
between fragments but are never fragmented themselves, and continuation frames must belong
to a fragmented message (RFC 6455 §5.4)."""

from __future__ import annotations

from wsconform.native.casedef import (
    CaseSpec,
    CloseAfter,
    ContinueLater,
    KillAfter,
    SendFrame,
    fuzzer_closes,
    testee_fails,
)
from wsconform.native.cases.patterns import HELLO, bad_frame
from wsconform.native.record import Message, Pong
from wsconform.native.verdict import NON_STRICT, OK

TEXT, CONT, PING, PONG = 1, 0, 9, 10
F1, F2 = b"fragment1", b"fragment2"
PING_PAYLOAD = b"ping payload"
STRAY = b"non-continuation payload"


def _two_fragments(case_id: str, sync: bool = False, chop: int | None = None) -> CaseSpec:
    script = (
        SendFrame(TEXT, F1, fin=False, sync=sync, chop=chop),
        SendFrame(CONT, F2, sync=sync, chop=chop),
        CloseAfter(1),
    )
    return CaseSpec(case_id, script, {OK: (Message(F1 + F2, False),)}, fuzzer_closes())


def _ping_between(case_id: str, sync: bool = False, chop: int | None = None) -> CaseSpec:
    script = (
        SendFrame(TEXT, F1, fin=False, sync=sync, chop=chop),
        SendFrame(PING, PING_PAYLOAD, sync=sync, chop=chop),
        SendFrame(CONT, F2, sync=sync, chop=chop),
        CloseAfter(1),
    )
    expected = {OK: (Pong(PING_PAYLOAD), Message(F1 + F2, False))}
    return CaseSpec(case_id, script, expected, fuzzer_closes())


def _stray(case_id: str, fin: bool, sync: bool = False, chop: int | None = None) -> CaseSpec:
    """A continuation frame with no message to continue, then a text message."""
    return bad_frame(
        case_id,
        SendFrame(CONT, STRAY, fin=fin, sync=sync, chop=chop),
        SendFrame(TEXT, HELLO, sync=sync, chop=chop),
    )


def _twice(case_id: str, first_fin: bool) -> CaseSpec:
    frames = (
        SendFrame(CONT, F1, fin=first_fin),
        SendFrame(TEXT, F2, fin=False),
        SendFrame(CONT, b"fragment3"),
    )
    return bad_frame(case_id, *frames, *frames)


def _long_message(case_id: str, sync: bool) -> CaseSpec:
    """5 text fragments with a ping after the 2nd and the 4th, the second half 1 s later."""
    fragments = [f"fragment{i}".encode() for i in range(1, 6)]
    pings = (b"pongme 1!", b"pongme 2!")
    first = (
        SendFrame(TEXT, fragments[0], fin=False, sync=sync),
        SendFrame(CONT, fragments[1], fin=False, sync=sync),
        SendFrame(PING, pings[0], sync=sync),
    )
    second = (
        SendFrame(CONT, fragments[2], fin=False, sync=sync),
        SendFrame(CONT, fragments[3], fin=False, sync=sync),
        SendFrame(PING, pings[1], sync=sync),
        SendFrame(CONT, fragments[4], sync=sync),
        CloseAfter(1),
    )
    expected = {OK: (Pong(pings[0]), Pong(pings[1]), Message(b"".join(fragments), False))}
    return CaseSpec(case_id, (*first, ContinueLater(1, second)), expected, fuzzer_closes())


_FOUR = (b"fragment1", b"fragment2", b"fragment3", b"fragment4")

CASES = (
    bad_frame("5.1", SendFrame(PING, F1, fin=False), SendFrame(CONT, F2)),
    bad_frame("5.2", SendFrame(PONG, F1, fin=False), SendFrame(CONT, F2)),
    _two_fragments("5.3"),
    _two_fragments("5.4", sync=True),
    _two_fragments("5.5", chop=1),
    _ping_between("5.6"),
    _ping_between("5.7", sync=True),
    _ping_between("5.8", chop=1),
    _stray("5.9", fin=True),
    _stray("5.10", fin=True, sync=True),
    _stray("5.11", fin=True, chop=1),
    _stray("5.12", fin=False),
    _stray("5.13", fin=False, sync=True),
    _stray("5.14", fin=False, chop=1),
    CaseSpec(
        "5.15",
        (
            SendFrame(TEXT, _FOUR[0], fin=False),
            SendFrame(CONT, _FOUR[1]),
            SendFrame(CONT, _FOUR[2], fin=False),
            SendFrame(TEXT, _FOUR[3]),
            KillAfter(1),
        ),
        {OK: (Message(_FOUR[0] + _FOUR[1], False),), NON_STRICT: ()},
        testee_fails(),
    ),
    _twice("5.16", first_fin=False),
    _twice("5.17", first_fin=True),
    bad_frame("5.18", SendFrame(TEXT, F1, fin=False), SendFrame(TEXT, F2)),
    _long_message("5.19", sync=False),
    _long_message("5.20", sync=True),
)
