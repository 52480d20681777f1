"""Category 1, framing: text and binary messages of 0 to 65536 bytes echoed back.

Each case sends one unfragmented message (1.x.8 chopped into 997-byte TCP writes), expects
its echo, then closes with 1000; it fails the connection after 1 s (10 s for 64 KiB).
"""

from __future__ import annotations

from wsconform.native.casedef import CaseSpec, KillAfter, SendFrame, fuzzer_closes
from wsconform.native.record import Message
from wsconform.native.verdict import OK

# (sub-case, payload length, TCP chop size or None, kill-after seconds)
_SIZES = (
    (1, 0, None, 1),
    (2, 125, None, 1),
    (3, 126, None, 1),
    (4, 127, None, 1),
    (5, 128, None, 1),
    (6, 65535, None, 10),
    (7, 65536, None, 10),
    (8, 65536, 997, 10),
)


def _echo(case_id: str, payload: bytes, binary: bool, chop: int | None, kill: int) -> CaseSpec:
    return CaseSpec(
        case_id,
        script=(SendFrame(2 if binary else 1, payload, chop=chop), KillAfter(kill)),
        expected={OK: (Message(payload, binary),)},
        close=fuzzer_closes(),
    )


CASES = tuple(
    _echo(f"1.1.{n}", b"*" * size, False, chop, kill) for n, size, chop, kill in _SIZES
) + tuple(_echo(f"1.2.{n}", b"\xfe" * size, True, chop, kill) for n, size, chop, kill in _SIZES)
