"""Case shapes several categories share, so each category module stays a table.

- ``bad_frame``: one frame the testee must fail the connection on (1002), nothing echoed.
- ``echo_then_bad``: a valid text message, then a bad frame, then a ping. Strict (OK): the
  echo arrives before the testee fails; NON-STRICT: it fails first, with no echo; the pong
  must never come. ``how`` is the write pattern: ``"plain"`` (one write each), ``"sync"``
  (each frame its own TCP write) or ``"chop"`` (one byte per write).
"""

from __future__ import annotations

from typing import Literal

from wsconform.native.casedef import CaseSpec, KillAfter, SendFrame, testee_fails
from wsconform.native.record import Message
from wsconform.native.verdict import NON_STRICT, OK

__all__ = ["HELLO", "bad_frame", "echo_then_bad"]

HELLO = b"Hello, world!"
PING = 9

Writes = Literal["plain", "sync", "chop"]


def bad_frame(case_id: str, *frames: SendFrame) -> CaseSpec:
    """``frames`` (ending in the bad one), then wait 1 s for the testee to fail."""
    return CaseSpec(case_id, (*frames, KillAfter(1)), {OK: ()}, testee_fails())


def echo_then_bad(
    case_id: str, opcode: int, payload: bytes = b"", rsv: int = 0, how: Writes = "plain"
) -> CaseSpec:
    """Hello, the bad frame (``opcode``/``payload``/``rsv``), a ping; see the module doc."""
    sync = how == "sync"
    chop = 1 if how == "chop" else None
    script = (
        SendFrame(1, HELLO, sync=sync, chop=chop),
        SendFrame(opcode, payload, rsv=rsv, sync=sync, chop=chop),
        SendFrame(PING, sync=sync, chop=chop),
        KillAfter(1),
    )
    expected = {OK: (Message(HELLO, False),), NON_STRICT: ()}
    return CaseSpec(case_id, script, expected, testee_fails())
