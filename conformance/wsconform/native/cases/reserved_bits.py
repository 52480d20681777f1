"""Category 3, reserved bits: any RSV bit set without a negotiated extension must fail the
connection (RFC 6455 §5.2)."""

from __future__ import annotations

from wsconform.native.casedef import SendFrame
from wsconform.native.cases.patterns import HELLO, bad_frame, echo_then_bad

CASES = (
    bad_frame("3.1", SendFrame(1, HELLO, rsv=1)),
    echo_then_bad("3.2", 1, HELLO, rsv=2),
    echo_then_bad("3.3", 1, HELLO, rsv=3, how="sync"),
    echo_then_bad("3.4", 1, HELLO, rsv=4, how="chop"),
    bad_frame("3.5", SendFrame(2, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)),
    bad_frame("3.6", SendFrame(2, HELLO, rsv=6)),
    bad_frame("3.7", SendFrame(8, rsv=7)),
)
