"""The waits in two engines' wire logs, case by case: do the native engine's timers last as
long as Autobahn's?

Invariants:
- Compared are the case timers, the only waits the fuzzer writes into its wire log: armed
  (``CT`` continue-later, ``KL`` kill-after, ``TI`` close-after, each with its delay in
  seconds) and fired (``CTE``, ``KLE``, ``TIE``), in order, without times. The native engine
  logs the same timers as ``continue``, ``kill`` and ``close`` (delay, then ``fired``), each
  entry stamped with the seconds since connect, so its log also shows how long each wait lasted.
- The protocol timers (opening and closing handshake, the wait for the server to drop TCP)
  are in the native log only: the fuzzer runs them without logging them, so they are not
  compared here.
- Durations are each case report's ``duration`` (milliseconds), as both engines write it.
- Reading only: the run directories are ``wsconform run`` outputs (``raw/index.json`` and
  the per-case reports, the fuzzer's format).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsconform import catalog

__all__ = ["WaitComparison", "autobahn_waits", "compare_runs", "native_overruns", "native_waits"]

#: One wait as both logs can show it: ("arm", timer, delay in s) or ("fire", timer, None).
Wait = tuple[str, str, float | None]

AUTOBAHN_ARMED = {"CT": "continue", "KL": "kill", "TI": "close"}
AUTOBAHN_FIRED = {"CTE": "continue", "KLE": "kill", "TIE": "close"}
CASE_TIMERS = frozenset(AUTOBAHN_ARMED.values())


def autobahn_waits(wirelog: Sequence[Sequence[Any]]) -> list[Wait]:
    """The case timers of a fuzzer report's ``wirelog`` (rows like ``["CT", 1, "A"]``)."""
    waits: list[Wait] = []
    for row in wirelog:
        if row[0] in AUTOBAHN_ARMED:
            waits.append(("arm", AUTOBAHN_ARMED[row[0]], float(row[1])))
        elif row[0] in AUTOBAHN_FIRED:
            waits.append(("fire", AUTOBAHN_FIRED[row[0]], None))
    return waits


def native_waits(wirelog: Sequence[dict[str, Any]]) -> list[Wait]:
    """The case timers of a native report's ``wirelog`` (``timer`` and ``fired`` entries)."""
    waits: list[Wait] = []
    for entry in wirelog:
        if entry.get("name") not in CASE_TIMERS:
            continue
        if entry["kind"] == "timer":
            waits.append(("arm", entry["name"], float(entry["delay"])))
        elif entry["kind"] == "fired":
            waits.append(("fire", entry["name"], None))
    return waits


def native_overruns(wirelog: Sequence[dict[str, Any]]) -> list[float]:
    """For each case timer that fired: seconds it lasted beyond its delay, from the log's
    times (each firing pairs with the earliest still-pending timer of its name)."""
    pending: dict[str, list[tuple[float, float]]] = defaultdict(list)
    overruns = []
    for entry in wirelog:
        name = entry.get("name")
        if name not in CASE_TIMERS:
            continue
        if entry["kind"] == "timer":
            pending[name].append((float(entry["t"]), float(entry["delay"])))
        elif entry["kind"] == "fired" and pending[name]:
            armed, delay = pending[name].pop(0)
            overruns.append(float(entry["t"]) - armed - delay)
    return overruns


def _reports(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Case id -> its report JSON, for every case the run's ``raw/index.json`` lists."""
    raw = run_dir / "raw"
    index = json.loads((raw / "index.json").read_text())
    reports = {}
    for cases in index.values():
        for case_id, entry in cases.items():
            reports[case_id] = json.loads((raw / entry["reportfile"]).read_text())
    return reports


def _shown(waits: Sequence[Wait]) -> str:
    """A wait list for a table: fired timers with their delay, e.g. ``continue 1 s``."""
    fired: list[str] = []
    pending: dict[str, list[float | None]] = defaultdict(list)
    for action, name, delay in waits:
        if action == "arm":
            pending[name].append(delay)
        elif pending[name]:
            fired.append(f"{name} {pending[name].pop(0):g} s")
    return ", ".join(fired)


@dataclass
class WaitComparison:
    """Both engines' case timers and durations over paired runs of the same selection."""

    pairs: int = 0
    cases: set[str] = field(default_factory=set)
    with_timers: set[str] = field(default_factory=set)
    differing: dict[str, tuple[list[Wait], list[Wait]]] = field(default_factory=dict)
    fired: dict[str, str] = field(default_factory=dict)  # case -> the timers that fired
    durations: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    overruns: list[float] = field(default_factory=list)

    def add(self, autobahn_dir: Path, native_dir: Path) -> None:
        """Compare one Autobahn run with one native run of the same selection."""
        self.pairs += 1
        autobahn, native = _reports(autobahn_dir), _reports(native_dir)
        for case_id in sorted(autobahn.keys() & native.keys()):
            ours = native[case_id]["wirelog"]
            theirs, mine = autobahn_waits(autobahn[case_id]["wirelog"]), native_waits(ours)
            self.cases.add(case_id)
            if theirs or mine:
                self.with_timers.add(case_id)
            if theirs != mine:
                self.differing.setdefault(case_id, (theirs, mine))
            if any(action == "fire" for action, _, _ in theirs):
                self.fired[case_id] = _shown(theirs)
            durations = self.durations.setdefault(case_id, ([], []))
            durations[0].append(int(autobahn[case_id]["duration"]))
            durations[1].append(int(native[case_id]["duration"]))
            self.overruns += native_overruns(ours)

    def render(self) -> str:
        """The comparison as Markdown: what agrees, then the cases whose timers fired."""
        if not self.pairs:
            return "No Autobahn and native run of the same repeat to compare."
        lines = [
            f"Case timers in the wire logs ({self.pairs} pair(s) of runs, {len(self.cases)} "
            f"cases): {len(self.with_timers)} cases arm continue/kill/close timers; "
            + (
                "delays and firings are identical in every case."
                if not self.differing
                else f"they differ in {len(self.differing)}: "
                + "; ".join(
                    f"{case} Autobahn {theirs} native {mine}"
                    for case, (theirs, mine) in sorted(self.differing.items())
                )
            )
        ]
        if self.overruns:
            lines.append(
                f"Native waits measured in its log (fired time minus armed time minus delay): "
                f"{min(self.overruns) * 1000:+.1f} ms to {max(self.overruns) * 1000:+.1f} ms "
                f"over {len(self.overruns)} fired timers."
            )
        autobahn_total = sum(statistics.median(a) for a, _ in self.durations.values())
        native_total = sum(statistics.median(n) for _, n in self.durations.values())
        lines.append(
            f"Sum of case durations (median per case): Autobahn {autobahn_total / 1000:.1f} s, "
            f"native {native_total / 1000:.1f} s."
        )
        lines += ["", *self._by_category()]
        groups: dict[str, list[str]] = defaultdict(list)
        for case_id in sorted(self.fired, key=catalog.case_sort_key):
            shown = self.fired[case_id]
            groups[shown].append(case_id)
        if groups:
            lines += [
                "",
                "| timers that fired (Autobahn) | cases | Autobahn ms | native ms | "
                "native / Autobahn, min |",
                "|---|---|---|---|---|",
            ]
            for shown, cases in sorted(groups.items()):
                theirs = [d for c in cases for d in self.durations[c][0]]
                mine = [d for c in cases for d in self.durations[c][1]]
                ratios = [
                    n / a for c in cases for a, n in zip(*self.durations[c], strict=True) if a
                ]
                lines.append(
                    f"| {shown} | {len(cases)}: {_case_list(cases)} | {_span(theirs)} | "
                    f"{_span(mine)} | {min(ratios):.2f} |"
                )
        return "\n".join(lines)

    def _by_category(self) -> list[str]:
        """Case durations summed per category (median per case), both engines side by side."""
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for case_id, (theirs, mine) in self.durations.items():
            category = sums[case_id.split(".")[0]]
            category[0] += statistics.median(theirs) / 1000
            category[1] += statistics.median(mine) / 1000
        lines = ["| category | Autobahn s | native s |", "|---|---|---|"]
        for name in sorted(sums, key=int):
            lines.append(f"| {name} | {sums[name][0]:.1f} | {sums[name][1]:.1f} |")
        return lines


def _span(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def _case_list(cases: Sequence[str], shown: int = 6) -> str:
    listed = ", ".join(cases[:shown])
    return listed + (f", ... ({len(cases) - shown} more)" if len(cases) > shown else "")


def compare_runs(pairs: Sequence[tuple[Path, Path]]) -> WaitComparison:
    """Compare each (Autobahn run, native run) pair's case timers and durations."""
    comparison = WaitComparison()
    for autobahn_dir, native_dir in pairs:
        comparison.add(autobahn_dir, native_dir)
    return comparison
