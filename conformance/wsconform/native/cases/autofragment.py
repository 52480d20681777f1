"""Category 10, auto-fragmentation: a 64 KiB text message sent through the message API with
1300-byte auto-fragmentation must come back whole; the case also checks it sent 1 text frame
and 50 continuation frames."""

from __future__ import annotations

from wsconform.native.casedef import CaseSpec, KillAfter, SendMessage, fuzzer_closes
from wsconform.native.record import Message
from wsconform.native.verdict import OK, Rule

_PAYLOAD = b"*" * 65536

CASES = (
    CaseSpec(
        "10.1.1",
        (SendMessage(_PAYLOAD, fragment=1300), KillAfter(10)),
        {OK: (Message(_PAYLOAD, False),)},
        fuzzer_closes(),
        rule=Rule.FRAME_COUNT,
    ),
)
