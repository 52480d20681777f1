"""The native fuzzing engine: Autobahn|Testsuite 25.10.1's server cases and verdicts on
Python 3 alone.

It imports nothing from ``rfc6455`` (the judge is independent of what it judges). Entry
point: ``run(url, agent, case_ids, outdir, seed=..., progress=..., stop=...)``; layout:

- ``frames`` (frame writer, masking keys), ``utf8`` (fail-fast validation), ``handshake``
- ``connection``: the fuzzer's own WebSocket client layer (handshake, failing, closing),
  composed of ``refusals`` (what it refuses in what the testee sends), ``frame_reader``,
  ``frame_writer``, ``outbox`` (how its writes leave) and ``lifecycle`` (states, timers)
- ``record`` (events, wire log), ``session`` (plays one case), ``verdict`` (the rules)
- ``casedef`` (how a case is declared) and ``cases/`` (one module per category)
- ``report`` (the fuzzer's file format), ``engine`` (the run); comparing it with Autobahn is
  ``wsconform.agreement``'s
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsconform.native.engine import CaseEvent, CaseOutcome, Stop, run

__all__ = ["CaseEvent", "CaseOutcome", "Stop", "run"]


def __getattr__(name: str) -> Any:
    # The engine (and every case) is imported on first use, not with the package: a command
    # that only asks which cases exist, or a run still starting its testee, does not pay it.
    if name in __all__:
        from wsconform.native import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
