"""Category 4, opcodes: reserved data opcodes (3-7, 4.1.x) and reserved control opcodes
(11-15, 4.2.x) must fail the connection (RFC 6455 §5.2)."""

from __future__ import annotations

from wsconform.native.casedef import SendFrame
from wsconform.native.cases.patterns import HELLO, bad_frame, echo_then_bad

_RESERVED = b"reserved opcode payload"


CASES = (
    bad_frame("4.1.1", SendFrame(3)),
    bad_frame("4.1.2", SendFrame(4, _RESERVED)),
    echo_then_bad("4.1.3", 5),
    echo_then_bad("4.1.4", 6, HELLO),
    echo_then_bad("4.1.5", 7, HELLO, how="chop"),
    bad_frame("4.2.1", SendFrame(11)),
    bad_frame("4.2.2", SendFrame(12, _RESERVED)),
    echo_then_bad("4.2.3", 13),
    echo_then_bad("4.2.4", 14, HELLO),
    echo_then_bad("4.2.5", 15, HELLO, how="chop"),
)
