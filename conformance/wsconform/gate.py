"""Pass rules over a run's results: presets, expectations files, baseline diffs, exit codes.

Invariants:
- Pure: ``evaluate`` and ``diff`` are functions of their arguments; only ``load_expectations``
  reads a file.
- Every case the run knows of gets exactly one ``CaseVerdict``: each result, each selected case
  without a result, each excluded case. Verdicts come in the fuzzer's order.
- A gate never passes a run that proves nothing: no result at all is ``EXIT_RUN_ERROR``; a
  partial (interrupted) run fails.

Presets (how other projects gate; there is no common rule):

========  =========================================================================
strict    behavior/behaviorClose are OK/OK or INFORMATIONAL/INFORMATIONAL
standard  behavior in OK, NON-STRICT, INFORMATIONAL; behaviorClose in OK, INFORMATIONAL
lenient   behavior in OK, NON-STRICT, INFORMATIONAL; behaviorClose ignored
========  =========================================================================

UNIMPLEMENTED (12.x/13.x when permessage-deflate was not negotiated) fails under every preset
unless ``allow_unimplemented``; then it is ``"unimplemented"`` and not counted as failed.

Outcomes: ``passed`` / ``informational`` / ``non-strict`` (accepted by the preset),
``failed``, ``unimplemented``, ``skipped`` (excluded, or not run in a partial run), and for
cases listed in an expectations file: ``expected-failure`` (fails the preset exactly as
listed: does not fail the gate), ``changed-failure`` (fails in another way: fails the gate),
``unexpected-pass`` (now passes: reported prominently but does NOT fail the gate, so fixing a
bug never breaks CI; remove the entry to lock the fix in).

Expectations file (TOML)::

    [[expect]]
    case = "9.3.*"            # a case id or a wstest pattern
    behavior = ["FAILED"]     # expected behavior verdict(s)
    behavior_close = ["OK"]   # optional: expected behaviorClose verdict(s)
    result = "..."            # optional: the exact result text
    reason = "quadratic reassembly in the testee"   # required

When several entries select a case, an entry naming the exact id wins over patterns, then the
first in file order.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsconform import catalog
from wsconform.results import BEHAVIORS, CLOSE_BEHAVIORS, CaseResult, RunResults

__all__ = [
    "EXIT_FAILURES",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "EXIT_RUN_ERROR",
    "EXIT_USAGE",
    "FAILING_OUTCOMES",
    "OUTCOMES",
    "PRESETS",
    "PRESET_RULES",
    "CaseChange",
    "CaseVerdict",
    "DiffReport",
    "Expectation",
    "GateConfigError",
    "GateReport",
    "diff",
    "evaluate",
    "load_expectations",
    "parse_expectations",
]

# Exit codes of every wsconform command (documented in the README and --help).
EXIT_OK = 0  # the gate passed
EXIT_FAILURES = 1  # conformance failures (or a partial run)
EXIT_USAGE = 2  # usage or configuration error (bad option, expectations file, index.json)
EXIT_RUN_ERROR = 3  # the fuzzer or the testee could not run (no result at all)
EXIT_REGRESSION = 4  # regression against a baseline (wsconform diff)

#: What each preset accepts of a case's behavior/behaviorClose, in words (for --help).
PRESET_RULES = {
    "strict": "both OK, or both INFORMATIONAL",
    "standard": "behavior OK, NON-STRICT or INFORMATIONAL, and close OK or INFORMATIONAL",
    "lenient": "behavior OK, NON-STRICT or INFORMATIONAL; the close is not judged",
}
PRESETS = tuple(PRESET_RULES)

OUTCOMES = (
    "passed",
    "informational",
    "non-strict",
    "expected-failure",
    "unexpected-pass",
    "unimplemented",
    "changed-failure",
    "failed",
    "skipped",
)
FAILING_OUTCOMES = frozenset({"failed", "changed-failure"})

_ACCEPTED_BEHAVIOR = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
_ACCEPTED_CLOSE = frozenset({"OK", "INFORMATIONAL"})
_STRICT_PAIRS = frozenset({("OK", "OK"), ("INFORMATIONAL", "INFORMATIONAL")})
_ALL_VERDICTS = tuple(dict.fromkeys((*BEHAVIORS, *CLOSE_BEHAVIORS)))


class GateConfigError(ValueError):
    """An unknown preset or a bad expectations file: a usage error (exit 2)."""


# --- expectations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    """A known failure: which cases, which verdicts, optionally which exact result, and why."""

    pattern: str
    behavior: frozenset[str]
    behavior_close: frozenset[str] | None
    result: str | None
    reason: str

    def selects(self, case_id: str) -> bool:
        """Does this entry cover ``case_id`` (wstest pattern semantics)?"""
        return catalog.matches(self.pattern, case_id)

    def describe(self) -> str:
        """The expected verdicts as a reader would write them."""
        text = "behavior " + "/".join(sorted(self.behavior))
        if self.behavior_close is not None:
            text += ", behaviorClose " + "/".join(sorted(self.behavior_close))
        if self.result is not None:
            text += f", result {self.result!r}"
        return text


_ENTRY_KEYS = ("case", "behavior", "behavior_close", "result", "reason")
_TOP_KEYS = ("expect",)
_ENTRY_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*expect[ \t]*\]\]", re.MULTILINE)


def _closest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _verdict_set(value: Any, key: str, allowed: Sequence[str], where: str) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise GateConfigError(f"{where}: {key!r} should be a verdict or a non-empty list of them")
    for item in items:
        if item not in allowed:
            raise GateConfigError(
                f"{where}: {key!r} has unknown verdict {item!r}{_closest(item, allowed)} "
                f"(valid: {', '.join(allowed)})"
            )
    return frozenset(items)


def _parse_entry(entry: Any, where: str) -> Expectation:
    if not isinstance(entry, dict):
        raise GateConfigError(f"{where}: should be a table with keys {', '.join(_ENTRY_KEYS)}")
    for key in entry:
        if key not in _ENTRY_KEYS:
            raise GateConfigError(
                f"{where}: unknown key {key!r}{_closest(key, _ENTRY_KEYS)} "
                f"(valid: {', '.join(_ENTRY_KEYS)})"
            )
    for key in ("case", "behavior", "reason"):
        if key not in entry:
            raise GateConfigError(f"{where}: missing required key {key!r}")
    pattern = entry["case"]
    if not isinstance(pattern, str) or not pattern.strip():
        raise GateConfigError(f"{where}: 'case' should be a case id or pattern")
    try:
        catalog.resolve([pattern])
    except catalog.CaseSelectionError as exc:
        raise GateConfigError(f"{where}: {exc}") from None
    reason = entry["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise GateConfigError(f"{where}: 'reason' should say why the case fails (non-empty)")
    result = entry.get("result")
    if result is not None and not isinstance(result, str):
        raise GateConfigError(f"{where}: 'result' should be the exact result text")
    close = entry.get("behavior_close")
    return Expectation(
        pattern=pattern,
        behavior=_verdict_set(entry["behavior"], "behavior", BEHAVIORS, where),
        behavior_close=None
        if close is None
        else _verdict_set(close, "behavior_close", CLOSE_BEHAVIORS, where),
        result=result,
        reason=reason.strip(),
    )


def parse_expectations(text: str, source: str = "<expectations>") -> list[Expectation]:
    """Parse an expectations document; errors name the source, the entry and its line."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GateConfigError(f"{source}: not valid TOML: {exc}") from None
    for key in document:
        if key not in _TOP_KEYS:
            raise GateConfigError(
                f"{source}: unknown top-level key {key!r}{_closest(key, _TOP_KEYS)} "
                "(entries are [[expect]] tables)"
            )
    entries = document.get("expect", [])
    if not isinstance(entries, list):
        raise GateConfigError(f"{source}: 'expect' should be an array of tables ([[expect]])")
    lines = [text.count("\n", 0, m.start()) + 1 for m in _ENTRY_HEADER.finditer(text)]
    parsed = []
    for number, entry in enumerate(entries, start=1):
        line = f", line {lines[number - 1]}" if len(lines) == len(entries) else ""
        parsed.append(_parse_entry(entry, f"{source}: [[expect]] entry {number}{line}"))
    return parsed


def load_expectations(path: Path) -> list[Expectation]:
    """Read an expectations file (TOML, format in the module docstring)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateConfigError(f"cannot read expectations file {path}: {exc}") from None
    return parse_expectations(text, str(path))


def _expectation_for(case_id: str, expectations: Sequence[Expectation]) -> Expectation | None:
    exact = [e for e in expectations if e.pattern == case_id]
    if exact:
        return exact[0]
    return next((e for e in expectations if e.selects(case_id)), None)


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseVerdict:
    """The gate's decision on one case, with the reason a reader needs."""

    case_id: str
    outcome: str
    reason: str
    result: CaseResult | None

    @property
    def failing(self) -> bool:
        """Does this verdict fail the gate?"""
        return self.outcome in FAILING_OUTCOMES


@dataclass
class GateReport:
    """All verdicts of one run under one preset, their counts, and the exit code."""

    preset: str
    verdicts: list[CaseVerdict]
    counts: dict[str, int]
    passed: bool
    exit_code: int
    partial: bool
    allow_unimplemented: bool = False
    notes: list[str] = field(default_factory=list)

    def by_outcome(self, *outcomes: str) -> list[CaseVerdict]:
        """The verdicts with one of ``outcomes``, in case order."""
        return [v for v in self.verdicts if v.outcome in outcomes]


def _preset_outcome(case: CaseResult, preset: str) -> tuple[str, str]:
    """The outcome of one result under a preset alone, and why."""
    behavior, close = case.behavior, case.behavior_close
    pair = f"{behavior}/{close}"
    if preset == "strict":
        if (behavior, close) in _STRICT_PAIRS:
            return ("passed" if behavior == "OK" else "informational"), pair
        return "failed", f"{pair} is not OK/OK or INFORMATIONAL/INFORMATIONAL (strict)"
    if behavior not in _ACCEPTED_BEHAVIOR:
        return "failed", f"behavior {behavior} is not OK, NON-STRICT or INFORMATIONAL ({preset})"
    if preset == "standard" and close not in _ACCEPTED_CLOSE:
        return "failed", f"behaviorClose {close} (standard accepts OK, INFORMATIONAL)"
    outcome = {"OK": "passed", "INFORMATIONAL": "informational"}.get(behavior, "non-strict")
    return outcome, pair


def _judge(
    case: CaseResult, preset: str, expectation: Expectation | None, allow_unimplemented: bool
) -> CaseVerdict:
    if case.behavior == "UNIMPLEMENTED" and allow_unimplemented:
        return CaseVerdict(
            case.case_id,
            "unimplemented",
            "UNIMPLEMENTED: the extension was not negotiated (allowed)",
            case,
        )
    outcome, reason = _preset_outcome(case, preset)
    if outcome == "failed" and case.behavior == "UNIMPLEMENTED":
        reason = (
            "UNIMPLEMENTED: the testee did not negotiate the extension this case needs "
            "(allow with --allow-unimplemented)"
        )
    if expectation is None:
        return CaseVerdict(case.case_id, outcome, reason, case)
    if outcome != "failed":
        return CaseVerdict(
            case.case_id,
            "unexpected-pass",
            f"listed as failing ({expectation.reason}) but now {case.behavior}/"
            f"{case.behavior_close}: remove its entry from the expectations file",
            case,
        )
    differences = []
    if case.behavior not in expectation.behavior:
        differences.append(f"behavior {case.behavior}")
    if expectation.behavior_close is not None and case.behavior_close not in (
        expectation.behavior_close
    ):
        differences.append(f"behaviorClose {case.behavior_close}")
    if expectation.result is not None and case.result != expectation.result:
        differences.append(f"result {case.result!r}")
    if differences:
        return CaseVerdict(
            case.case_id,
            "changed-failure",
            f"expected {expectation.describe()} ({expectation.reason}); got "
            + ", ".join(differences),
            case,
        )
    return CaseVerdict(case.case_id, "expected-failure", expectation.reason, case)


def evaluate(
    results: RunResults,
    preset: str = "strict",
    expectations: Sequence[Expectation] = (),
    allow_unimplemented: bool = False,
) -> GateReport:
    """Judge every case of ``results`` under ``preset`` and the expectations."""
    if preset not in PRESETS:
        raise GateConfigError(
            f"unknown gate preset {preset!r}{_closest(preset, PRESETS)} "
            f"(valid: {', '.join(PRESETS)})"
        )
    verdicts: list[CaseVerdict] = []
    for case in results.cases.values():
        expectation = _expectation_for(case.case_id, expectations)
        verdicts.append(_judge(case, preset, expectation, allow_unimplemented))
    for case_id in results.missing():
        if results.partial:
            verdicts.append(
                CaseVerdict(case_id, "skipped", "not run: the run was interrupted", None)
            )
        else:
            verdicts.append(
                CaseVerdict(
                    case_id, "failed", "selected, but the fuzzer reported no result for it", None
                )
            )
    for case_id in results.excluded:
        if case_id not in results.cases:
            verdicts.append(CaseVerdict(case_id, "skipped", "excluded", None))
    verdicts.sort(key=lambda v: catalog.case_sort_key(v.case_id))

    counts = dict.fromkeys(OUTCOMES, 0)
    for verdict in verdicts:
        counts[verdict.outcome] = counts.get(verdict.outcome, 0) + 1
    notes = []
    if not results.cases:
        exit_code = EXIT_RUN_ERROR
        notes.append("no case produced a result: the fuzzer or the testee could not run")
    elif any(v.failing for v in verdicts):
        exit_code = EXIT_FAILURES
    elif results.partial:
        exit_code = EXIT_FAILURES
        notes.append("the run was interrupted: a partial run cannot pass the gate")
    else:
        exit_code = EXIT_OK
    if counts["unexpected-pass"]:
        notes.append(
            f"{counts['unexpected-pass']} case(s) listed in the expectations file now pass: "
            "remove their entries"
        )
    return GateReport(
        preset=preset,
        verdicts=verdicts,
        counts=counts,
        passed=exit_code == EXIT_OK,
        exit_code=exit_code,
        partial=results.partial,
        allow_unimplemented=allow_unimplemented,
        notes=notes,
    )


# --- baseline diff --------------------------------------------------------------------------

# How bad a verdict is, for ordering two runs of the same case. INFORMATIONAL is as good as OK:
# the RFC leaves those outcomes open.
_BEHAVIOR_RANK: Mapping[str, int] = {
    "OK": 0,
    "INFORMATIONAL": 0,
    "NON-STRICT": 1,
    "UNIMPLEMENTED": 2,
    "FAILED": 3,
}
_CLOSE_RANK: Mapping[str, int] = {"OK": 0, "INFORMATIONAL": 0}


def _rank(case: CaseResult) -> tuple[int, int]:
    return _BEHAVIOR_RANK.get(case.behavior, 3), _CLOSE_RANK.get(case.behavior_close, 1)


@dataclass(frozen=True, slots=True)
class CaseChange:
    """One case whose verdicts differ between a baseline and a new run."""

    case_id: str
    before: CaseResult | None
    after: CaseResult | None

    def describe(self) -> str:
        """``"7.1.5: OK/OK -> FAILED/WRONG CODE"``."""

        def pair(c: CaseResult | None) -> str:
            return "absent" if c is None else f"{c.behavior}/{c.behavior_close}"

        return f"{self.case_id}: {pair(self.before)} -> {pair(self.after)}"


@dataclass
class DiffReport:
    """Verdict changes between two runs, durations ignored."""

    base_agent: str
    new_agent: str
    regressions: list[CaseChange]
    fixes: list[CaseChange]
    changed: list[CaseChange]  # different verdicts, neither better nor worse
    added: list[str]  # cases only in the new run
    removed: list[str]  # cases only in the baseline
    unchanged: int = 0

    def exit_code(self, fail_on_regression: bool = True) -> int:
        """``EXIT_REGRESSION`` when asked and anything got worse, else ``EXIT_OK``."""
        return EXIT_REGRESSION if fail_on_regression and self.regressions else EXIT_OK


def diff(base: RunResults, new: RunResults) -> DiffReport:
    """Regressions and fixes between a baseline and a new run (verdicts only, not durations)."""
    regressions: list[CaseChange] = []
    fixes: list[CaseChange] = []
    changed: list[CaseChange] = []
    unchanged = 0
    for case_id, after in new.cases.items():
        before = base.cases.get(case_id)
        if before is None:
            continue
        if (before.behavior, before.behavior_close) == (after.behavior, after.behavior_close):
            unchanged += 1
            continue
        change = CaseChange(case_id, before, after)
        if _rank(after) > _rank(before):
            regressions.append(change)
        elif _rank(after) < _rank(before):
            fixes.append(change)
        else:
            changed.append(change)
    return DiffReport(
        base_agent=base.agent,
        new_agent=new.agent,
        regressions=regressions,
        fixes=fixes,
        changed=changed,
        added=[c for c in new.cases if c not in base.cases],
        removed=[c for c in base.cases if c not in new.cases],
        unchanged=unchanged,
    )
