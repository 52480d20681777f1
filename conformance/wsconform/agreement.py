"""The agreement suite: the real fuzzer and the native engine against the same testee, case by
case, from the two runs' own files.

Invariants:
- Two runs agree on a case when ``behavior``, ``behaviorClose``, ``remoteCloseCode``, who
  closed, whether the close was clean, who dropped TCP and the received events (as the reports
  show them) are all equal: agreeing verdicts reached for different reasons are a difference.
  A case present in one run only is a difference (its missing side is ``None``).
- Each engine runs through the one pipeline (`runner.execute`) against a fresh testee of its
  own (a command's), or the same running server (a URL, a spec's server).
- Every differing case is run again in both engines: a 9.x case decided near its limit once,
  alone; the others together, up to ``RERUNS`` times, until Autobahn has judged each of them
  two ways (a testee racing against the pace of the writes, such as websockets in 3.4, can
  go either way under either engine). Then, in this order: Autobahn's side changed between
  its own runs → ``unstable`` (the oracle disagrees with itself: no evidence either way); the
  first run was a 9.x pass and a time-out both within ``NEAR_LIMIT`` of the case's limit →
  ``timing`` when the rerun agrees; anything else → ``differs``. Only ``differs`` fails the
  suite; the other two are listed with every run's sides, never counted as agreeing.
- `compare` and `judge` are pure: tests feed them run directories written by hand.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from wsconform import access, agents, catalog, engines, pipeline, progress, results, runner
from wsconform.native import cases as native_cases
from wsconform.native.verdict import EchoCheck

__all__ = [
    "Agreement",
    "CaseSide",
    "Comparison",
    "Finding",
    "Member",
    "compare",
    "judge",
    "kinds_markdown",
    "markdown",
    "members",
    "run_member",
]

#: A 9.x verdict reached after this share of the case's time limit is a coin toss on a
#: shared machine: such a difference is "timing" and gets a run of its own.
NEAR_LIMIT = 0.9
#: How many more times a differing case (not a timing one) is run in both engines, at most.
RERUNS = 4
BROKEN_ECHO = agents.TESTEES / "broken_echo.py"
BROKEN = "broken:"

Status = Literal["differs", "timing", "unstable"]


@dataclass(frozen=True, slots=True)
class CaseSide:
    """What one engine says about one case: the fields agreement is judged on, its result
    text and duration (shown, not judged)."""

    behavior: str
    behavior_close: str
    remote_close_code: int | None
    closed_by_me: bool | None
    was_clean: bool | None
    dropped_by_me: bool | None
    received: tuple[str, ...]
    result: str = ""
    duration_ms: int = 0


_JUDGED = tuple(f.name for f in fields(CaseSide) if f.name not in ("result", "duration_ms"))


@dataclass(frozen=True, slots=True)
class Comparison:
    """One case in both runs, and the judged fields that differ (none: they agree)."""

    case_id: str
    fields: tuple[str, ...]
    autobahn: CaseSide | None
    native: CaseSide | None


@dataclass(frozen=True, slots=True)
class Finding:
    """A case that differed in the first runs: what its reruns made of it."""

    status: Status
    first: Comparison
    reruns: tuple[Comparison, ...] = ()


@dataclass
class Agreement:
    """One panel member's comparison."""

    label: str
    cases: list[str]
    findings: list[Finding]
    # How many cases each engine gave each verdict: ("behavior" | "close", verdict).
    autobahn_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    native_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status == status)

    @property
    def agreeing(self) -> int:
        return len(self.cases) - len(self.findings)

    @property
    def differs(self) -> bool:
        return self.count("differs") > 0


# ------------------------------------------------------------------ reading and comparing


def _read(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def read_sides(raw: Path, agent: str | None = None) -> dict[str, CaseSide]:
    """Each case of the run in `raw` (``index.json`` and the case reports)."""
    index = _read(raw / results.INDEX_FILE)
    chosen = agent if agent is not None else next(iter(index))
    sides: dict[str, CaseSide] = {}
    for case_id, entry in index[chosen].items():
        path = raw / entry["reportfile"]
        report = _read(path) if path.is_file() else {}
        sides[case_id] = CaseSide(
            behavior=entry["behavior"],
            behavior_close=entry["behaviorClose"],
            remote_close_code=entry["remoteCloseCode"],
            closed_by_me=report.get("closedByMe"),
            was_clean=report.get("wasClean"),
            dropped_by_me=report.get("droppedByMe"),
            received=tuple(json.dumps(e) for e in report.get("received", [])),
            result=report.get("result", ""),
            duration_ms=int(entry.get("duration", 0)),
        )
    return sides


def comparisons(autobahn: dict[str, CaseSide], native: dict[str, CaseSide]) -> list[Comparison]:
    """Every case of either run, in the fuzzer's order."""
    found = []
    for case_id in sorted(set(autobahn) | set(native), key=catalog.case_sort_key):
        left, right = autobahn.get(case_id), native.get(case_id)
        if left is None or right is None:
            differing: tuple[str, ...] = ("missing",)
        else:
            differing = tuple(n for n in _JUDGED if getattr(left, n) != getattr(right, n))
        found.append(Comparison(case_id, differing, left, right))
    return found


def _limit_ms(case_id: str) -> float | None:
    """A 9.x case's time limit in ms; None for cases without one."""
    spec = native_cases.DEFINED.get(case_id)
    return 1000 * spec.rule.limit if spec is not None and isinstance(spec.rule, EchoCheck) else None


def near_limit(first: Comparison) -> bool:
    """A pass and a fail of a timed case, both decided within `NEAR_LIMIT` of its limit."""
    limit = _limit_ms(first.case_id)
    ours, theirs = first.autobahn, first.native
    if limit is None or ours is None or theirs is None:
        return False
    if {ours.behavior, theirs.behavior} != {"OK", "FAILED"}:
        return False
    return min(ours.duration_ms, theirs.duration_ms) >= NEAR_LIMIT * limit


def _judged(side: CaseSide | None) -> tuple[Any, ...] | None:
    return None if side is None else tuple(getattr(side, n) for n in _JUDGED)


def judge(first: Comparison, reruns: Sequence[Comparison] = ()) -> Status | None:
    """What a case is, from its first runs and its reruns (None: it agreed the first time)."""
    if not first.fields:
        return None
    if any(_judged(again.autobahn) != _judged(first.autobahn) for again in reruns):
        return "unstable"
    if near_limit(first) and all(not again.fields for again in reruns):
        return "timing"
    return "differs"


def _kinds(sides: Iterable[CaseSide]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for side in sides:
        counts["behavior", side.behavior] += 1
        counts["close", side.behavior_close] += 1
    return counts


def compare(
    autobahn: Path,
    native: Path,
    *,
    label: str,
    agent: str | None = None,
    reruns: Mapping[str, Sequence[Comparison]] | None = None,
) -> Agreement:
    """The member's agreement from its two runs' raw directories and each case's reruns'
    comparisons (none: each difference judged on the first runs alone)."""
    ours, theirs = read_sides(autobahn, agent), read_sides(native, agent)
    first = comparisons(ours, theirs)
    findings = []
    for comparison in first:
        again = tuple((reruns or {}).get(comparison.case_id, ()))
        status = judge(comparison, again)
        if status is not None:
            findings.append(Finding(status, comparison, again))
    ids = [c.case_id for c in first]
    return Agreement(label, ids, findings, _kinds(ours.values()), _kinds(theirs.values()))


# ------------------------------------------------------------------ rendering

_STATUS_TEXT = {
    "differs": "differs",
    "timing": "timing (decided near its time limit; the rerun agreed)",
    "unstable": "unstable in Autobahn (its own runs differ)",
}


def side_text(side: CaseSide | None) -> str:
    """One engine's account of a case, every judged field named."""
    if side is None:
        return "(no result)"
    closer = {True: "the fuzzer", False: "the testee", None: "nobody"}[side.closed_by_me]
    clean = {True: "clean", False: "not clean", None: "clean?"}[side.was_clean]
    dropped = {True: "the fuzzer dropped TCP", False: "", None: ""}[side.dropped_by_me]
    events = "; ".join(side.received) or "no events"
    parts = [
        f"{side.behavior} / {side.behavior_close}",
        f"close code {side.remote_close_code}",
        f"closed by {closer}",
        clean,
        *([dropped] if dropped else []),
        f"{side.duration_ms} ms",
    ]
    return ", ".join(parts) + f"; received: {events}"


def finding_lines(label: str, finding: Finding) -> list[str]:
    """A finding as Markdown: the case, its status, both sides of each run."""
    first = finding.first
    lines = [
        f"**{label}, case {first.case_id}**: {_STATUS_TEXT[finding.status]}"
        f" ({', '.join(first.fields)})",
        f"- Autobahn: {side_text(first.autobahn)}",
        f"- native: {side_text(first.native)}",
    ]
    for number, again in enumerate(finding.reruns, 1):
        verdict = "agree" if not again.fields else f"differ in {', '.join(again.fields)}"
        rerun = "rerun" if len(finding.reruns) == 1 else f"rerun {number}"
        lines += [
            f"- {rerun} ({verdict}): Autobahn: {side_text(again.autobahn)}",
            f"- {rerun}: native: {side_text(again.native)}",
        ]
    return lines


def summary_line(agreement: Agreement) -> str:
    """``label: N cases: A agree, D differ, T timing, U unstable in Autobahn``."""
    return (
        f"{agreement.label}: {len(agreement.cases)} cases: {agreement.agreeing} agree, "
        f"{agreement.count('differs')} differ, {agreement.count('timing')} timing, "
        f"{agreement.count('unstable')} unstable in Autobahn"
    )


def markdown(agreements: Sequence[Agreement]) -> str:
    """Member x category (cases, agreeing, differing, timing, unstable), then every finding."""
    lines = [
        "| panel member | category | cases | agreeing | differing | timing "
        "| unstable in Autobahn |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    of: Callable[[str], str] = catalog.category_of
    for agreement in agreements:
        for category in sorted({of(c) for c in agreement.cases}, key=int):
            ids = [c for c in agreement.cases if of(c) == category]
            mine = [f for f in agreement.findings if of(f.first.case_id) == category]
            counts = [sum(1 for f in mine if f.status == s) for s in ("differs", "timing")]
            unstable = sum(1 for f in mine if f.status == "unstable")
            lines.append(
                f"| {agreement.label} | {catalog.category_label(category)} | {len(ids)} "
                f"| {len(ids) - len(mine)} | {counts[0]} | {counts[1]} | {unstable} |"
            )
    for agreement in agreements:
        for finding in agreement.findings:
            lines += ["", *finding_lines(agreement.label, finding)]
    return "\n".join(lines) + "\n"


# The verdict kinds in the order reports list them (the fuzzer's own strings).
_KINDS = (
    ("behavior", ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED")),
    ("close", ("OK", "INFORMATIONAL", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT", "FAILED")),
)


def _kind_cell(agreement: Agreement, key: tuple[str, str]) -> str:
    ours, theirs = agreement.autobahn_kinds[key], agreement.native_kinds[key]
    if ours == theirs:
        return str(ours) if ours else "·"
    return f"{ours} / {theirs}"


def kinds_markdown(agreements: Sequence[Agreement]) -> str:
    """Per member, how many cases got each verdict kind in the first runs (one number where
    both engines gave the same count, ``Autobahn / native`` where not)."""
    head = [f"{part}: {kind}" for part, kinds in _KINDS for kind in kinds]
    lines = ["| panel member | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for agreement in agreements:
        cells = [_kind_cell(agreement, (part, kind)) for part, kinds in _KINDS for kind in kinds]
        lines.append(f"| {agreement.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(agreements: Sequence[Agreement]) -> str:
    """The whole Markdown report: agreement per category, findings, verdict kinds."""
    return (
        "## Agreement per category\n\n"
        + markdown(agreements)
        + "\n## Verdict kinds (one number: both engines; A / N: Autobahn / native)\n\n"
        + kinds_markdown(agreements)
    )


# ------------------------------------------------------------------ the panel and its runs


@dataclass(frozen=True)
class Member:
    """One testee of the panel: started from `command` (fresh for every run) or at `url`."""

    label: str
    name: str  # the agent name of its runs and its folder under the work directory
    command: str | None = None
    url: str | None = None
    reach: access.Access = access.PLAIN


def broken_modes() -> list[str]:
    """The modes of broken_echo.py, in its own order (read from the testee itself)."""
    spec = importlib.util.spec_from_file_location("broken_echo", BROKEN_ECHO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return list(module.MODES)


def members(names: Sequence[str]) -> list[Member]:
    """Known agents, ``NAME=CMD``, ``broken:MODE`` and ``broken:all`` as panel members;
    ValueError for a name that cannot run here."""
    found: list[Member] = []
    for name in names:
        if name == f"{BROKEN}all":
            found += members([f"{BROKEN}{mode}" for mode in broken_modes()])
        elif name.startswith(BROKEN):
            mode = name.removeprefix(BROKEN)
            if mode not in broken_modes():
                raise ValueError(f"broken_echo has no mode {mode!r} ({', '.join(broken_modes())})")
            script = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROKEN_ECHO))}"
            found.append(
                Member(f"broken_echo {mode}", f"broken-{mode}", f"{script} {{port}} {mode}")
            )
        else:
            agent, command = agents.resolve(name)
            found.append(Member(agent, agent, command))
    return found


@dataclass(frozen=True)
class Engines:
    """The two engines of the suite and how their runs are shown."""

    autobahn: engines.Engine
    native: engines.Engine
    view: Callable[[], progress.View]
    say: pipeline.Say


def _run(
    member: Member, engine: engines.Engine, ids: Sequence[str], outdir: Path, with_: Engines
) -> Path:
    """One engine's run of `ids` against the member; its raw directory."""
    config = runner.RunConfig(
        agent=member.name,
        outdir=outdir,
        cases=list(ids),
        url=member.url,
        server_cmd=member.command,
        reach=member.reach,
        preset="lenient",
    )
    runner.execute(config, engine, with_.view(), with_.say)
    return outdir / results.RAW_DIR


def _both(member: Member, ids: Sequence[str], workdir: Path, with_: Engines) -> list[Comparison]:
    ours = _run(member, with_.autobahn, ids, workdir / "autobahn", with_)
    theirs = _run(member, with_.native, ids, workdir / "native", with_)
    return comparisons(read_sides(ours, member.name), read_sides(theirs, member.name))


def run_member(member: Member, ids: Sequence[str], workdir: Path, with_: Engines) -> Agreement:
    """Both engines on `ids` against the member, then each difference once more (see the
    module's invariants); the runs stay under `workdir`. pipeline.RunError when a run cannot
    happen."""
    first = _both(member, ids, workdir, with_)
    differing = [c for c in first if c.fields]
    reruns: dict[str, list[Comparison]] = {c.case_id: [] for c in differing}
    oracle = {c.case_id: _judged(c.autobahn) for c in first}
    together = [c.case_id for c in differing if not near_limit(c)]
    for number in range(1, RERUNS + 1):
        if not together:
            break
        with_.say(f"{member.label}: {len(together)} differing case(s) run again ({number})")
        name = "rerun" if number == 1 else f"rerun{number}"
        for again in _both(member, together, workdir / name, with_):
            reruns[again.case_id].append(again)
        # Run on until Autobahn has judged a case two ways: it is unstable then.
        together = [i for i in together if all(_judged(r.autobahn) == oracle[i] for r in reruns[i])]
    for alone in (c.case_id for c in differing if near_limit(c)):
        with_.say(f"{member.label}: {alone} was decided near its time limit: run alone again")
        reruns[alone] += _both(member, [alone], workdir / f"rerun-{alone}", with_)
    return compare(
        workdir / "autobahn" / results.RAW_DIR,
        workdir / "native" / results.RAW_DIR,
        label=member.label,
        agent=member.name,
        reruns=reruns,
    )
