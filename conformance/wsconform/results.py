"""Typed model of a fuzzer run: ``<outdir>/index.json`` plus each case's report JSON.

Invariants:
- Reading only; nothing here judges a verdict (that is ``gate``) or formats it (``render``).
- ``RunResults.cases`` is ordered by ``catalog.case_sort_key`` (``index.json`` sorts its keys
  as strings: "1.1.1", "10.1.1", "12.1.1", ...).
- A run is read from what the fuzzer wrote, whoever ran it. When the directory also holds our
  own ``summary.json`` (``render.SUMMARY_SCHEMA``), what only we know is taken from it: the
  selection, the excluded cases, whether the run was partial, the notes, the engine, and the
  cases that never ran (``mark_missing``). With only a ``summary.json`` (the raw output moved
  away), the run is rebuilt from it alone.
- Anything that is not the fuzzer's format raises ``ResultsError`` (exit 2), naming the file
  and the entry.

``index.json``: ``{agent: {case_id: {behavior, behaviorClose, duration, remoteCloseCode,
reportfile}}}``; the per-case report adds ``description``, ``expectation``, ``result`` and
``resultClose`` (HTML fragments in the testsuite; stored here as plain text, except ``result``
and ``resultClose``, kept exactly, because expectations files compare them verbatim).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsconform import catalog

__all__ = [
    "BEHAVIORS",
    "CLOSE_BEHAVIORS",
    "INDEX_FILE",
    "RAW_DIR",
    "SUMMARY_FILE",
    "CaseResult",
    "EngineInfo",
    "RenderedPages",
    "ResultsError",
    "RunResults",
    "load",
    "mark_missing",
    "page_name",
]

INDEX_FILE = "index.json"
#: Where a run directory of ours keeps the engine's own output (index.json, case reports).
RAW_DIR = "raw"
SUMMARY_FILE = "summary.json"
# Must equal render.SUMMARY_SCHEMA; kept here so reading never imports the renderer.
_SUMMARY_SCHEMA = "wsconform/summary/v1"

# The verdict strings the fuzzer writes (autobahntestsuite.case.Case constants).
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
CLOSE_BEHAVIORS = ("OK", "INFORMATIONAL", "FAILED", "UNCLEAN", "WRONG CODE", "FAILED BY CLIENT")


class ResultsError(Exception):
    """A run that cannot be read: missing or malformed ``index.json``, ambiguous agent."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's verdicts for one agent, as the fuzzer reported them."""

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int | None
    remote_close_code: int | None
    report_file: str | None
    description: str = ""
    expectation: str = ""
    result: str = ""
    result_close: str = ""

    @property
    def category(self) -> str:
        """``"6.4.1"`` -> ``"6"``."""
        return catalog.category_of(self.case_id)

    @property
    def report_html(self) -> str | None:
        """The fuzzer's per-case HTML report, written next to the JSON one."""
        return None if self.report_file is None else page_name(self.report_file)


def page_name(report_file: str) -> str:
    """A case page's file name: its JSON report's, ending in ``.html``."""
    stem = report_file[:-5] if report_file.endswith(".json") else report_file
    return stem + ".html"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What ran the cases: ``autobahn`` or ``native``, and how (backend, versions)."""

    name: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RenderedPages:
    """Case pages of ours written while the run went on (``casepages``): their file names
    in the run's ``outdir`` and the index page they link to."""

    index_page: Path
    names: frozenset[str]


@dataclass
class RunResults:
    """Every case result of one agent in one run, plus what the harness knows about the run.

    ``selected`` is what was asked for (a selected case without a result did not run); when
    empty, the selection is unknown and taken to be the cases present. ``excluded`` lists the
    cases the exclude patterns removed. ``outdir`` is where the fuzzer's files are.
    """

    agent: str
    outdir: Path
    cases: dict[str, CaseResult]
    partial: bool = False
    notes: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    engine: EngineInfo | None = None  # None: unknown (a run we did not make)
    rendered: RenderedPages | None = None  # case pages already written while it ran

    def missing(self) -> list[str]:
        """Selected cases with no result, in the fuzzer's order."""
        return [c for c in self.selected if c not in self.cases and c not in self.excluded]


def _sorted_cases(cases: Iterable[CaseResult]) -> dict[str, CaseResult]:
    return {c.case_id: c for c in sorted(cases, key=lambda c: catalog.case_sort_key(c.case_id))}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path} is not UTF-8: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _optional_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResultsError(f"{what} should be an integer or null, not {value!r}")
    return value


def _required_str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ResultsError(f"{where}: {key!r} should be a non-empty string, not {value!r}")
    return value


def _optional_text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def _pick_agent(index: Mapping[str, Any], agent: str | None, where: Path) -> str:
    agents = sorted(index)
    if agent is not None:
        if agent not in index:
            listed = ", ".join(repr(a) for a in agents) or "none"
            raise ResultsError(f"{where} has no results for agent {agent!r} (agents: {listed})")
        return agent
    if len(agents) == 1:
        return agents[0]
    if not agents:
        raise ResultsError(
            f"{where} holds no results at all: the fuzzer could not reach the testee"
        )
    listed = ", ".join(repr(a) for a in agents)
    raise ResultsError(f"{where} holds several agents ({listed}); choose one with --agent")


def _case_from_index(
    case_id: str, entry: Any, raw_dir: Path, index_path: Path
) -> tuple[CaseResult, bool]:
    """One ``index.json`` entry and its report; the flag says the report file was missing."""
    where = f"{index_path}: case {case_id}"
    if not isinstance(entry, dict):
        raise ResultsError(f"{where} should be an object, not {type(entry).__name__}")
    try:
        catalog.case_sort_key(case_id)
    except ValueError:
        raise ResultsError(f"{index_path}: {case_id!r} is not an Autobahn case id") from None
    behavior = _required_str(entry, "behavior", where)
    behavior_close = _required_str(entry, "behaviorClose", where)
    duration = _optional_int(entry.get("duration"), f"{where}: 'duration'")
    close_code = _optional_int(entry.get("remoteCloseCode"), f"{where}: 'remoteCloseCode'")
    report_file = entry.get("reportfile")
    if report_file is not None and (
        not isinstance(report_file, str) or Path(report_file).name != report_file
    ):
        raise ResultsError(f"{where}: 'reportfile' should be a file name, not {report_file!r}")
    report: dict[str, Any] = {}
    report_missing = False
    if report_file is not None:
        path = raw_dir / report_file
        if path.is_file():
            loaded = _read_json(path)
            if not isinstance(loaded, dict):
                raise ResultsError(f"{path} should hold a JSON object")
            report = loaded
        else:
            report_missing = True
    known_description, known_expectation = _catalog_text(case_id)
    description = catalog.plain_text(_optional_text(report, "description"))
    expectation = catalog.plain_text(_optional_text(report, "expectation"))
    result = CaseResult(
        case_id=case_id,
        behavior=behavior,
        behavior_close=behavior_close,
        duration_ms=duration,
        remote_close_code=close_code,
        report_file=report_file,
        description=description or known_description,
        expectation=expectation or known_expectation,
        result=_optional_text(report, "result"),
        result_close=_optional_text(report, "resultClose"),
    )
    return result, report_missing


def _read_index(raw_dir: Path, agent: str | None) -> tuple[str, list[CaseResult], list[str]]:
    index_path = raw_dir / INDEX_FILE
    index = _read_json(index_path)
    if not isinstance(index, dict) or not all(isinstance(v, dict) for v in index.values()):
        raise ResultsError(
            f"{index_path} is not the fuzzer's index: expected {{agent: {{case: verdicts}}}}"
        )
    chosen = _pick_agent(index, agent, index_path)
    cases: list[CaseResult] = []
    without_report: list[str] = []
    for case_id, entry in index[chosen].items():
        case, report_missing = _case_from_index(case_id, entry, raw_dir, index_path)
        cases.append(case)
        if report_missing:
            without_report.append(case_id)
    notes = []
    if without_report:
        shown = ", ".join(sorted(without_report, key=catalog.case_sort_key)[:10])
        more = f" and {len(without_report) - 10} more" if len(without_report) > 10 else ""
        notes.append(
            f"{len(without_report)} per-case report file(s) missing in {raw_dir} "
            f"({shown}{more}); their result texts are unknown"
        )
    return chosen, cases, notes


def _string_list(summary: Mapping[str, Any], key: str, path: Path) -> list[str]:
    value = summary.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ResultsError(f"{path}: {key!r} should be a list of strings")
    return list(value)


def _case_from_summary(entry: Any, path: Path) -> CaseResult:
    if not isinstance(entry, dict):
        raise ResultsError(f"{path}: every entry of 'cases' should be an object")
    case_id = _required_str(entry, "id", f"{path}: a case")
    where = f"{path}: case {case_id}"
    report_file = entry.get("report_file")
    description, expectation = _catalog_text(case_id)
    return CaseResult(
        case_id=case_id,
        behavior=_required_str(entry, "behavior", where),
        behavior_close=_required_str(entry, "behavior_close", where),
        duration_ms=_optional_int(entry.get("duration_ms"), f"{where}: 'duration_ms'"),
        remote_close_code=_optional_int(
            entry.get("remote_close_code"), f"{where}: 'remote_close_code'"
        ),
        report_file=report_file if isinstance(report_file, str) else None,
        description=description,
        expectation=expectation,
        result=_optional_text(entry, "result"),
        result_close=_optional_text(entry, "result_close"),
    )


def _read_summary(outdir: Path) -> dict[str, Any] | None:
    path = outdir / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = _read_json(path)
    if not isinstance(summary, dict) or summary.get("schema") != _SUMMARY_SCHEMA:
        raise ResultsError(f"{path} is not a wsconform summary (schema {_SUMMARY_SCHEMA})")
    return summary


def load(
    outdir: Path,
    agent: str | None = None,
    *,
    selected: Sequence[str] | None = None,
    excluded: Sequence[str] | None = None,
) -> RunResults:
    """Read a run from ``outdir``: the fuzzer's directory, or one holding our summary.json.

    ``agent`` chooses among several agents in one ``index.json`` (an error lists them when it
    is needed and missing). ``selected`` / ``excluded`` override what a summary recorded.
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise ResultsError(f"{outdir} is not a directory")
    summary = _read_summary(outdir)
    summary_path = outdir / SUMMARY_FILE
    raw_dir = outdir
    if not (outdir / INDEX_FILE).is_file() and summary is not None:
        raw_value = summary.get("raw_dir", ".")
        if not isinstance(raw_value, str):
            raise ResultsError(f"{summary_path}: 'raw_dir' should be a path")
        raw_dir = outdir / raw_value

    notes: list[str] = []
    if (raw_dir / INDEX_FILE).is_file():
        if agent is None and summary is not None and isinstance(summary.get("agent"), str):
            agent = summary["agent"]
        chosen, cases, notes = _read_index(raw_dir, agent)
    elif summary is not None:
        chosen = _required_str(summary, "agent", str(summary_path))
        if agent is not None and agent != chosen:
            raise ResultsError(f"{summary_path} is a run of agent {chosen!r}, not {agent!r}")
        entries = summary.get("cases")
        if not isinstance(entries, list):
            raise ResultsError(f"{summary_path}: 'cases' should be a list")
        cases = [
            _case_from_summary(e, summary_path)
            for e in entries
            if not (isinstance(e, dict) and e.get("behavior") is None)
        ]
        notes.append(f"raw fuzzer output not found in {raw_dir}; read from {summary_path}")
    else:
        raise ResultsError(
            f"no {INDEX_FILE} in {outdir}: not a fuzzer output directory "
            f"(wstest writes {INDEX_FILE} into the spec's outdir)"
        )

    run = RunResults(agent=chosen, outdir=raw_dir, cases=_sorted_cases(cases), notes=notes)
    if summary is not None and summary.get("agent") == chosen:
        _apply_summary(run, summary, summary_path)
    if selected is not None:
        run.selected = list(selected)
    if excluded is not None:
        run.excluded = list(excluded)
    return run


def _apply_summary(run: RunResults, summary: Mapping[str, Any], path: Path) -> None:
    """Take over what only the harness knew: selection, partial, notes, never-run cases."""
    run.selected = _string_list(summary, "selected", path)
    run.excluded = _string_list(summary, "excluded", path)
    partial = summary.get("partial", False)
    if not isinstance(partial, bool):
        raise ResultsError(f"{path}: 'partial' should be true or false")
    run.partial = partial
    engine = summary.get("engine")
    if isinstance(engine, dict) and isinstance(engine.get("name"), str):
        detail = engine.get("detail")
        run.engine = EngineInfo(engine["name"], detail if isinstance(detail, str) else "")
    recorded = _string_list(summary, "notes", path)
    run.notes = recorded + [n for n in run.notes if n not in recorded]
    entries = summary.get("cases", [])
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: 'cases' should be a list")
    never_ran = [
        _case_from_summary(e, path)
        for e in entries
        if isinstance(e, dict)
        and e.get("id") not in run.cases
        and e.get("report_file") is None
        and isinstance(e.get("behavior"), str)
    ]
    if never_ran:
        run.cases = _sorted_cases([*run.cases.values(), *never_ran])


def _catalog_text(case_id: str) -> tuple[str, str]:
    """Description and expectation from the catalog, empty for ids it does not know."""
    if case_id not in catalog.ALL_CASES:
        return "", ""
    info = catalog.describe(case_id)
    return info.description, info.expectation


def mark_missing(results: RunResults, case_ids: Iterable[str], reason: str) -> RunResults:
    """A copy of ``results`` where each case without a result is recorded FAILED with ``reason``.

    For cases that never ran because the testee died: they must count as failures, not vanish.
    Cases that already have a result are left alone.
    """
    added = [
        CaseResult(
            case_id=case_id,
            behavior="FAILED",
            behavior_close="FAILED",
            duration_ms=None,
            remote_close_code=None,
            report_file=None,
            description=_catalog_text(case_id)[0],
            expectation=_catalog_text(case_id)[1],
            result=reason,
            result_close=reason,
        )
        for case_id in dict.fromkeys(case_ids)
        if case_id not in results.cases
    ]
    notes = list(results.notes)
    if added:
        notes.append(f"{len(added)} case(s) did not run and are recorded as failed: {reason}")
    return dataclasses.replace(
        results,
        cases=_sorted_cases([*results.cases.values(), *added]),
        notes=notes,
        selected=list(results.selected),
        excluded=list(results.excluded),
    )
