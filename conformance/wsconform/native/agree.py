"""Do two engines agree? Case by case, from the two runs' own files.

Invariants:
- Two runs agree on a case when ``behavior``, ``behaviorClose``, ``remoteCloseCode``, who
  closed, whether the close was clean, who dropped TCP and the received events (as the
  reports show them) are all equal: agreeing verdicts reached for different reasons count as
  a difference.
- A case present in one run only is a difference (its missing side is ``None``).
- Pure reading and comparing: running the engines is the caller's job (``compare_engines``
  runs both against one command-started testee each, for the agreement suite).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from wsconform import backends, catalog, testee
from wsconform.native import engine

__all__ = [
    "Agreement",
    "CaseSide",
    "Difference",
    "Timing",
    "compare",
    "kinds_markdown",
    "markdown",
    "run_both",
]


@dataclass(frozen=True, slots=True)
class CaseSide:
    """What one engine says about one case: the fields agreement is judged on."""

    behavior: str
    behavior_close: str
    remote_close_code: int | None
    closed_by_me: bool | None
    was_clean: bool | None
    dropped_by_me: bool | None
    received: tuple[str, ...]
    result: str


@dataclass(frozen=True, slots=True)
class Difference:
    """One case the engines disagree on, with both sides and the fields that differ."""

    case_id: str
    fields: tuple[str, ...]
    reference: CaseSide | None
    candidate: CaseSide | None


@dataclass
class Agreement:
    """The comparison of one panel member's two runs."""

    label: str
    cases: list[str]
    differences: list[Difference]
    # How many cases each engine gave each verdict: "behavior" and "close" kinds.
    reference_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    candidate_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def agreeing(self) -> int:
        return len(self.cases) - len(self.differences)


def _read(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _sides(rundir: Path, agent: str | None) -> dict[str, CaseSide]:
    index = _read(rundir / "index.json")
    chosen = agent if agent is not None else next(iter(index))
    sides: dict[str, CaseSide] = {}
    for case_id, entry in index[chosen].items():
        report_path = rundir / entry["reportfile"]
        report = _read(report_path) if report_path.is_file() else {}
        sides[case_id] = CaseSide(
            behavior=entry["behavior"],
            behavior_close=entry["behaviorClose"],
            remote_close_code=entry["remoteCloseCode"],
            closed_by_me=report.get("closedByMe"),
            was_clean=report.get("wasClean"),
            dropped_by_me=report.get("droppedByMe"),
            received=tuple(json.dumps(e) for e in report.get("received", [])),
            result=report.get("result", ""),
        )
    return sides


_JUDGED = tuple(f.name for f in fields(CaseSide) if f.name != "result")


def compare(
    reference: Path, candidate: Path, *, label: str = "", agent: str | None = None
) -> Agreement:
    """Compare the run in ``candidate`` against the one in ``reference`` (each a directory
    holding ``index.json`` and the case reports)."""
    ours = _sides(reference, agent)
    theirs = _sides(candidate, agent)
    ids = sorted(set(ours) | set(theirs), key=catalog.case_sort_key)
    differences = []
    for case_id in ids:
        left, right = ours.get(case_id), theirs.get(case_id)
        if left is None or right is None:
            differences.append(Difference(case_id, ("missing",), left, right))
            continue
        differing = tuple(name for name in _JUDGED if getattr(left, name) != getattr(right, name))
        if differing:
            differences.append(Difference(case_id, differing, left, right))
    return Agreement(
        label or str(candidate), ids, differences, _kinds(ours.values()), _kinds(theirs.values())
    )


def _kinds(sides: Iterable[CaseSide]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for side in sides:
        counts["behavior", side.behavior] += 1
        counts["close", side.behavior_close] += 1
    return counts


# The verdict kinds in the order reports list them (the fuzzer's own strings).
_KINDS = (
    ("behavior", ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED")),
    ("close", ("OK", "INFORMATIONAL", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT", "FAILED")),
)


def _kind_cell(agreement: Agreement, key: tuple[str, str]) -> str:
    ours, theirs = agreement.reference_kinds[key], agreement.candidate_kinds[key]
    if ours == theirs:
        return str(ours) if ours else "·"
    return f"{ours} / {theirs}"


def kinds_markdown(agreements: Sequence[Agreement]) -> str:
    """Per member, how many cases got each verdict kind (one number where both engines gave
    the same count, ``reference / candidate`` where not)."""
    head = [f"{part}: {kind}" for part, kinds in _KINDS for kind in kinds]
    lines = [
        "| panel member | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for agreement in agreements:
        cells = [_kind_cell(agreement, (part, kind)) for part, kinds in _KINDS for kind in kinds]
        lines.append(f"| {agreement.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _side_text(side: CaseSide | None) -> str:
    if side is None:
        return "(no result)"
    events = "; ".join(side.received) or "no events"
    return (
        f"{side.behavior} / {side.behavior_close}, code {side.remote_close_code}, "
        f"closedByMe {side.closed_by_me}, clean {side.was_clean}, "
        f"droppedByMe {side.dropped_by_me}; {events}"
    )


def markdown(
    agreements: Sequence[Agreement], names: tuple[str, str] = ("Autobahn", "native")
) -> str:
    """A panel table (member x category: cases, agreeing, differing) and every difference."""
    lines = [
        "| panel member | category | cases | agreeing | differing |",
        "|---|---|---:|---:|---:|",
    ]
    by_category: Callable[[str], str] = catalog.category_of
    for agreement in agreements:
        categories = sorted({by_category(c) for c in agreement.cases}, key=int)
        for category in categories:
            ids = [c for c in agreement.cases if by_category(c) == category]
            differing = sum(1 for d in agreement.differences if by_category(d.case_id) == category)
            lines.append(
                f"| {agreement.label} | {catalog.category_label(category)} | {len(ids)} "
                f"| {len(ids) - differing} | {differing} |"
            )
    for agreement in agreements:
        for diff in agreement.differences:
            lines += [
                "",
                f"**{agreement.label}, case {diff.case_id}** ({', '.join(diff.fields)})",
                f"- {names[0]}: {_side_text(diff.reference)}",
                f"- {names[1]}: {_side_text(diff.candidate)}",
            ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall time of each engine's run of the same selection, in seconds."""

    autobahn: float
    native: float


def run_both(
    command: str, case_ids: Sequence[str], workdir: Path, *, label: str, agent: str = "testee"
) -> tuple[Agreement, Timing]:
    """Run the real fuzzer and the native engine, each against a fresh testee started from
    ``command`` (a ``{port}`` template), on ``case_ids``; compare them. The runs stay in
    ``workdir/autobahn`` and ``workdir/native``."""
    fuzzer = backends.LocalBackend()
    fuzzer.check()
    with testee.start(command, workdir / "autobahn-testee") as server:
        server.wait_ready()
        began = time.monotonic()
        process = fuzzer.start(
            backends.FuzzerSpec(url=server.url, agent=agent, cases=list(case_ids)),
            workdir / "autobahn",
        )
        for _ in process.lines():
            pass
        process.wait()
        autobahn_time = time.monotonic() - began
    with testee.start(command, workdir / "native-testee") as server:
        server.wait_ready()
        began = time.monotonic()
        engine.run(server.url, agent, list(case_ids), workdir / "native", seed=0)
        native_time = time.monotonic() - began
    agreement = compare(
        workdir / "autobahn" / backends.RAW_DIR, workdir / "native", label=label, agent=agent
    )
    return agreement, Timing(autobahn_time, native_time)
