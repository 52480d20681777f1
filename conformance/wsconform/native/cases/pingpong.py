"""Category 2, pings and pongs: a ping's payload comes back in a pong; a ping over 125 bytes
fails the connection; unsolicited pongs are ignored."""

from __future__ import annotations

from wsconform.native.casedef import (
    CaseSpec,
    CloseAfter,
    KillAfter,
    SendClose,
    SendFrame,
    Step,
    fuzzer_closes,
    testee_fails,
)
from wsconform.native.record import Pong
from wsconform.native.verdict import OK

PING, PONG = 9, 10
NORMAL = 1000


def _pong_back(case_id: str, payload: bytes, chop: int | None = None, wait: int = 1) -> CaseSpec:
    ping = SendFrame(PING, payload, chop=chop)
    return CaseSpec(case_id, (ping, CloseAfter(wait)), {OK: (Pong(payload),)}, fuzzer_closes())


def _ten_pings(case_id: str, chop: int | None) -> CaseSpec:
    payloads = [f"payload-{i}".encode() for i in range(10)]
    pings: list[Step] = [SendFrame(PING, p, chop=chop) for p in payloads]
    return CaseSpec(
        case_id,
        (*pings, CloseAfter(3)),
        {OK: tuple(Pong(p) for p in payloads)},
        fuzzer_closes(),
    )


def _unsolicited(case_id: str, payload: bytes) -> CaseSpec:
    script = (SendFrame(PONG, payload), SendClose(NORMAL), CloseAfter(1))
    return CaseSpec(case_id, script, {OK: ()}, fuzzer_closes())


CASES = (
    _pong_back("2.1", b""),
    _pong_back("2.2", b"Hello, world!"),
    _pong_back("2.3", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
    _pong_back("2.4", b"\xfe" * 125),
    CaseSpec("2.5", (SendFrame(PING, b"\xfe" * 126), KillAfter(1)), {OK: ()}, testee_fails()),
    _pong_back("2.6", b"\xfe" * 125, chop=1, wait=2),
    _unsolicited("2.7", b""),
    _unsolicited("2.8", b"unsolicited pong payload"),
    CaseSpec(
        "2.9",
        (
            SendFrame(PONG, b"unsolicited pong payload"),
            SendFrame(PING, b"ping payload"),
            CloseAfter(1),
        ),
        {OK: (Pong(b"ping payload"),)},
        fuzzer_closes(),
    ),
    _ten_pings("2.10", None),
    _ten_pings("2.11", 1),
)
