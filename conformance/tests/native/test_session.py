"""The session's own timing: the no-progress guard never cuts a case before its own timers."""

from __future__ import annotations

from wsconform.native import cases
from wsconform.native.record import WireLog
from wsconform.native.session import GUARD, Session, longest_timer
from wsconform.native.verdict import EchoCheck


def test_the_guard_waits_beyond_every_9x_cases_own_limit() -> None:
    limits = {c: cases.get(c).rule for c in cases.supported() if c.startswith("9.")}
    assert len(limits) == 54
    for case_id, check in limits.items():
        assert isinstance(check, EchoCheck)
        session = Session(cases.get(case_id), WireLog())
        assert session.guard_delay >= GUARD + check.limit, case_id
    assert max(check.limit for check in limits.values() if isinstance(check, EchoCheck)) == 1000


def test_the_longest_timer_counts_waits_nested_in_continuations() -> None:
    # 6.4.1: part two after 1 s, part three 1 s later, then the case ends 1 s after that.
    assert longest_timer(cases.get("6.4.1").script) == 3
    assert longest_timer(cases.get("1.1.1").script) == 1
