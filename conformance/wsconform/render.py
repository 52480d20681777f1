"""Reports from a gated run: summary.json, summary.md, junit.xml, index.html and case pages.

Invariants:
- ``summary_json``, ``markdown``, ``junit``, ``html``, ``summary_line`` and ``diff_markdown``
  are pure functions of (results, gate report), ``case_html`` of one case report; only
  ``write_reports`` touches the disk.
- Every case links to one page, the fuzzer's name for it (``CaseResult.report_html``) beside
  its JSON report: Autobahn writes its own there; where an engine wrote none (the native
  engine), ``write_reports`` writes ours (``case_html``, marked by its generator ``<meta>``),
  rewriting only pages of ours, never the fuzzer's.
- Every case verdict appears in every format, in the fuzzer's order; every human-facing report
  ends with the next step for the reader.
- ``summary.md`` stays under ``MAX_SUMMARY_BYTES`` (GitHub's job summary limit is 1 MiB):
  failure details are cut, with a note saying how many were left out and where they are.
- ``junit.xml`` is valid XML 1.0 whatever the testee sent: characters XML cannot carry are
  written as ``\\xNN`` escapes.

summary.json, schema ``wsconform/summary/v1`` (fields are only ever added within v1)::

    {
      "schema": "wsconform/summary/v1",
      "tool": {"name": "wsconform", "version": str, "testsuite": str},
      "agent": str,                 # the fuzzer's agent name
      "engine": {"name": "autobahn" | "native", "detail": str} | null,  # null: unknown
      "raw_dir": str,               # the fuzzer's output, relative to this file's directory
      "preset": "strict" | "standard" | "lenient",
      "allow_unimplemented": bool,
      "passed": bool, "exit_code": int, "partial": bool,
      "summary": str,               # summary_line(): "517 cases: 514 passed, ... (strict)"
      "notes": [str],               # what the harness noticed (testee died, interrupted, ...)
      "gate_notes": [str],          # what the gate noticed (unexpected passes, no result, ...)
      "counts": {outcome: int},     # every gate.OUTCOMES key, zeros included
      "selected": [case_id], "excluded": [case_id],
      "categories": [{"id": "6", "name": "UTF-8 Handling", "cases": int,
                      "counts": {outcome: int}}],
      "cases": [{"id": str, "category": str, "outcome": str, "reason": str,
                 "behavior": str | null, "behavior_close": str | null,   # null: no result
                 "duration_ms": int | null, "remote_close_code": int | null,
                 "report_file": str | null,   # the fuzzer's per-case JSON, in raw_dir
                 "result": str, "result_close": str}]
    }
"""

from __future__ import annotations

import functools
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsconform import __version__, casereport, catalog
from wsconform.gate import FAILING_OUTCOMES, OUTCOMES, CaseVerdict, DiffReport, GateReport
from wsconform.results import SUMMARY_FILE, EngineInfo, RunResults

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "MAX_SUMMARY_BYTES",
    "SUMMARY_SCHEMA",
    "case_html",
    "diff_markdown",
    "engine_line",
    "html",
    "index_page",
    "junit",
    "markdown",
    "summary_json",
    "summary_line",
    "write_case_page",
    "write_reports",
]

SUMMARY_SCHEMA = "wsconform/summary/v1"
# GitHub refuses job summaries over 1 MiB; stay below with room for other steps' text.
MAX_SUMMARY_BYTES = 1024 * 1024 - 1024

OUTCOME_LABELS: Mapping[str, str] = {
    "passed": "Passed",
    "informational": "Informational",
    "non-strict": "Non-strict",
    "expected-failure": "Expected failure",
    "unexpected-pass": "Unexpected pass",
    "unimplemented": "Unimplemented",
    "changed-failure": "Changed failure",
    "failed": "Failed",
    "skipped": "Skipped",
}
# Column order of the reports, and the columns always shown (others only when some case has
# them).
_DISPLAY_ORDER = (
    "passed",
    "informational",
    "non-strict",
    "failed",
    "changed-failure",
    "expected-failure",
    "unexpected-pass",
    "unimplemented",
    "skipped",
)
_ALWAYS_SHOWN = ("passed", "informational", "non-strict", "failed", "unimplemented")


# --- shared views ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CategoryRow:
    category: str
    label: str
    verdicts: tuple[CaseVerdict, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for v in self.verdicts if v.outcome == outcome)


def _categories(report: GateReport) -> list[_CategoryRow]:
    grouped: dict[str, list[CaseVerdict]] = {}
    for verdict in report.verdicts:
        grouped.setdefault(catalog.category_of(verdict.case_id), []).append(verdict)
    return [
        _CategoryRow(cat, catalog.category_label(cat), tuple(grouped[cat]))
        for cat in sorted(grouped, key=lambda c: catalog.case_sort_key(c))
    ]


def _shown_outcomes(report: GateReport) -> list[str]:
    return [o for o in _DISPLAY_ORDER if o in _ALWAYS_SHOWN or report.counts.get(o, 0)]


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def engine_line(engine: EngineInfo) -> str:
    """What ran the cases, in one line: ``native (native engine, in-process (Python 3.12))``."""
    return f"{engine.name} ({engine.detail})" if engine.detail else engine.name


def summary_line(report: GateReport) -> str:
    """One line for the console: ``517 cases: 514 passed, 3 informational, 0 failed (strict)``."""
    c = report.counts
    ran = len(report.verdicts) - c.get("skipped", 0)
    parts = [f"{c.get('passed', 0)} passed", f"{c.get('informational', 0)} informational"]
    optional = (
        ("non-strict", "non-strict", "non-strict"),
        ("expected-failure", "expected failure", "expected failures"),
        ("unexpected-pass", "unexpected pass", "unexpected passes"),
        ("unimplemented", "unimplemented", "unimplemented"),
        ("changed-failure", "changed failure", "changed failures"),
    )
    for key, singular, plural in optional:
        if c.get(key, 0):
            parts.append(_plural(c[key], singular, plural))
    parts.append(f"{c.get('failed', 0)} failed")
    if c.get("skipped", 0):
        parts.append(f"{c['skipped']} skipped")
    line = f"{_plural(ran, 'case')}: {', '.join(parts)} ({report.preset})"
    if report.partial:
        line += ", partial run"
    return line


def _relative(target: Path, start: Path) -> str:
    """A link from ``start`` to ``target`` that survives moving the whole report tree."""
    try:
        return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:  # different drives on Windows
        return target.as_posix()


def _case_link(results: RunResults, verdict: CaseVerdict, report_dir: Path) -> str | None:
    if verdict.result is None or verdict.result.report_html is None:
        return None
    return _relative(results.outdir / verdict.result.report_html, report_dir)


# --- summary.json ---------------------------------------------------------------------------


def summary_json(
    results: RunResults, report: GateReport, report_dir: Path | None = None
) -> dict[str, Any]:
    """The machine-readable summary (schema in the module docstring)."""
    report_dir = results.outdir if report_dir is None else report_dir
    cases = []
    for v in report.verdicts:
        r = v.result
        cases.append(
            {
                "id": v.case_id,
                "category": catalog.category_of(v.case_id),
                "outcome": v.outcome,
                "reason": v.reason,
                "behavior": r.behavior if r else None,
                "behavior_close": r.behavior_close if r else None,
                "duration_ms": r.duration_ms if r else None,
                "remote_close_code": r.remote_close_code if r else None,
                "report_file": r.report_file if r else None,
                "result": r.result if r else "",
                "result_close": r.result_close if r else "",
            }
        )
    return {
        "schema": SUMMARY_SCHEMA,
        "tool": {
            "name": "wsconform",
            "version": __version__,
            "testsuite": catalog.TESTSUITE_SOURCE,
        },
        "agent": results.agent,
        "engine": (
            {"name": results.engine.name, "detail": results.engine.detail}
            if results.engine is not None
            else None
        ),
        "raw_dir": _relative(results.outdir, report_dir),
        "preset": report.preset,
        "allow_unimplemented": report.allow_unimplemented,
        "passed": report.passed,
        "exit_code": report.exit_code,
        "partial": report.partial,
        "summary": summary_line(report),
        "notes": list(results.notes),
        "gate_notes": list(report.notes),
        "counts": {o: report.counts.get(o, 0) for o in OUTCOMES},
        "selected": list(results.selected),
        "excluded": list(results.excluded),
        "categories": [
            {
                "id": row.category,
                "name": catalog.CATEGORIES.get(row.category, ""),
                "cases": len(row.verdicts),
                "counts": {o: row.count(o) for o in OUTCOMES},
            }
            for row in _categories(report)
        ],
        "cases": cases,
    }


# --- summary.md -----------------------------------------------------------------------------

# Mid-line, only these change how Markdown shows text ("#" and ">" matter at line starts only,
# and every line written here starts with our own text).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md_inline(text: str) -> str:
    """Text that Markdown shows as written, on one line (line breaks become <br>)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    return "<br>".join(line for line in escaped.splitlines() if line.strip())


def _compress_ids(case_ids: Sequence[str]) -> str:
    """``12.1.1 .. 12.1.18, 12.2.1 ..`` gets long; group by subcategory: ``12.1.* (18)``."""
    groups: dict[str, int] = {}
    for case_id in case_ids:
        prefix = ".".join(case_id.split(".")[:2])
        groups[prefix] = groups.get(prefix, 0) + 1
    parts = []
    for prefix, n in groups.items():
        full = sum(1 for c in catalog.ALL_CASES if c.startswith(prefix + "."))
        if n > 1 and n == full:
            parts.append(f"{prefix}.* ({n})")
        else:
            parts.extend(c for c in case_ids if c.startswith(prefix + ".") or c == prefix)
    return ", ".join(parts)


def _failure_md(results: RunResults, verdict: CaseVerdict, report_dir: Path) -> str:
    r = verdict.result
    title = f"### {verdict.case_id}"
    if r is not None:
        title += f": {r.behavior} / {r.behavior_close}"
        if r.remote_close_code is not None:
            title += f" (close code {r.remote_close_code})"
    lines = [title, ""]
    info = catalog.describe(verdict.case_id) if verdict.case_id in catalog.ALL_CASES else None
    lines.append(
        f"- Category: {_md_inline(catalog.category_label(catalog.category_of(verdict.case_id)))}"
    )
    description = (r.description if r else "") or (info.description if info else "")
    expectation = (r.expectation if r else "") or (info.expectation if info else "")
    if description:
        lines.append(f"- Description: {_md_inline(description)}")
    if expectation:
        lines.append(f"- Expectation: {_md_inline(expectation)}")
    if r is not None and r.result:
        lines.append(f"- Result: {_md_inline(r.result)}")
    if r is not None and r.result_close and r.result_close != r.result:
        lines.append(f"- Close: {_md_inline(r.result_close)}")
    lines.append(f"- Gate ({verdict.outcome}): {_md_inline(verdict.reason)}")
    link = _case_link(results, verdict, report_dir)
    if link:
        lines.append(f"- Case report: [{_md_inline(link)}]({link.replace(' ', '%20')})")
    return "\n".join(lines) + "\n"


def _table_md(report: GateReport) -> str:
    outcomes = _shown_outcomes(report)
    header = ["Category", "Cases", *(OUTCOME_LABELS[o] for o in outcomes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in _categories(report):
        cells = [
            _md_inline(row.label),
            str(len(row.verdicts)),
            *(str(row.count(o)) for o in outcomes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    total = [
        "**Total**",
        str(len(report.verdicts)),
        *(str(report.counts.get(o, 0)) for o in outcomes),
    ]
    lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines) + "\n"


def _next_steps_md(results: RunResults, report: GateReport, report_dir: Path) -> str:
    html_path = report_dir / "index.html"
    lines = ["## Next steps", ""]
    lines.append(
        f"- Open the HTML report: `{html_path}` (each case links to its own page, with the "
        "wire log)."
    )
    if report.by_outcome(*FAILING_OUTCOMES):
        first = report.by_outcome(*FAILING_OUTCOMES)[0].case_id
        lines.append(f"- Read what a case checks: `wsconform cases {first}`.")
        lines.append(
            "- Known failures can be listed with a reason in an expectations file "
            f"(`[[expect]]` entries) and re-gated without re-running: "
            f"`wsconform gate {report_dir} --gate {report.preset} --expectations FILE`."
        )
    elif report.by_outcome("unexpected-pass"):
        lines.append(
            "- Remove the entries of the unexpectedly passing cases from the expectations file."
        )
    else:
        lines.append(
            f"- Re-gate this run under another preset without re-running: "
            f"`wsconform gate {report_dir} --gate strict`."
        )
    return "\n".join(lines) + "\n"


def markdown(
    results: RunResults,
    report: GateReport,
    *,
    report_dir: Path | None = None,
    max_bytes: int = MAX_SUMMARY_BYTES,
) -> str:
    """summary.md: verdict, per-category table, failures in detail, next steps (< max_bytes)."""
    report_dir = results.outdir if report_dir is None else report_dir
    verdict_word = "PASSED" if report.passed else "FAILED"
    head = [
        f"# wsconform: {_md_inline(results.agent)}: {verdict_word} ({report.preset} gate)",
        "",
        f"**{_md_inline(summary_line(report))}**",
        "",
    ]
    if results.engine is not None:
        head += [f"Engine: {_md_inline(engine_line(results.engine))}", ""]
    if report.partial:
        head += ["> **Partial run**: interrupted before every case ran; not a verdict.", ""]
    notes = [*results.notes, *(n for n in report.notes if n not in results.notes)]
    if notes:
        head += [f"- {_md_inline(n)}" for n in notes] + [""]
    head += ["## By category", "", _table_md(report)]

    blocks: list[str] = []
    surprises = report.by_outcome("unexpected-pass")
    if surprises:
        blocks.append(
            f"## Unexpected passes ({len(surprises)})\n\nListed as failing, now passing:\n"
        )
        blocks += [f"- **{v.case_id}**: {_md_inline(v.reason)}\n" for v in surprises]
        blocks.append("\n")
    failing = report.by_outcome(*FAILING_OUTCOMES)
    unimplemented = [
        v for v in failing if v.result is not None and v.result.behavior == "UNIMPLEMENTED"
    ]
    detailed = [v for v in failing if v not in unimplemented]
    if failing:
        blocks.append(f"## Failures ({len(failing)})\n\n")
    if unimplemented:
        ids = [v.case_id for v in unimplemented]
        blocks.append(
            f"### {_plural(len(ids), 'case')} UNIMPLEMENTED\n\n"
            f"The testee did not negotiate the extension these cases need "
            f"(permessage-deflate): {_compress_ids(ids)}.\n\n"
        )
    blocks += [_failure_md(results, v, report_dir) + "\n" for v in detailed]
    allowed = report.by_outcome("unimplemented")
    if allowed:
        ids = [v.case_id for v in allowed]
        blocks.append(f"## Unimplemented ({len(ids)}, allowed)\n\n{_compress_ids(ids)}\n\n")
    expected = report.by_outcome("expected-failure")
    if expected:
        table_head = "| Case | Verdict | Reason |\n|---|---|---|\n"
        blocks.append(f"## Expected failures ({len(expected)})\n\n{table_head}")
        for v in expected:
            pair = f"{v.result.behavior} / {v.result.behavior_close}" if v.result else ""
            blocks.append(f"| {v.case_id} | {_md_inline(pair)} | {_md_inline(v.reason)} |\n")
        blocks.append("\n")

    tail = _next_steps_md(results, report, report_dir)
    text = "\n".join(head) + "\n"
    budget = max_bytes - len(tail.encode()) - 512  # room for the truncation note
    for index, block in enumerate(blocks):
        if len(text.encode()) + len(block.encode()) > budget:
            left = len(blocks) - index
            text += (
                f"\n> **Truncated**: {left} more section(s) left out to stay under "
                f"{max_bytes // 1024} KiB; every case is in `summary.json`, `junit.xml` "
                "and `index.html`.\n\n"
            )
            break
        text += block
    return text + tail


# --- junit.xml ------------------------------------------------------------------------------

# XML 1.0 §2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can carry: other code points become visible ``\\xNN`` escapes."""
    return _NOT_XML_CHAR.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _case_body(verdict: CaseVerdict) -> str:
    r = verdict.result
    lines = []
    if r is not None:
        lines.append(f"behavior: {r.behavior}, behaviorClose: {r.behavior_close}")
        if r.remote_close_code is not None:
            lines.append(f"remote close code: {r.remote_close_code}")
        if r.description:
            lines.append(f"description: {r.description}")
        if r.expectation:
            lines.append(f"expectation: {r.expectation}")
        if r.result:
            lines.append(f"result: {r.result}")
        if r.result_close:
            lines.append(f"close: {r.result_close}")
    lines.append(f"gate: {verdict.outcome}: {verdict.reason}")
    return "\n".join(lines)


def junit(results: RunResults, report: GateReport) -> str:
    """JUnit XML: one testcase per case, classname = category, failure message = result text."""
    failures = sum(1 for v in report.verdicts if v.failing)
    skipped = report.counts.get("skipped", 0) + report.counts.get("unimplemented", 0)
    total_ms = sum(v.result.duration_ms or 0 for v in report.verdicts if v.result is not None)
    suites = ET.Element(
        "testsuites",
        name="wsconform",
        tests=str(len(report.verdicts)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{total_ms / 1000:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=_xml_text(f"autobahn {results.agent}"),
        tests=str(len(report.verdicts)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{total_ms / 1000:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("agent", results.agent),
        ("preset", report.preset),
        ("partial", str(report.partial).lower()),
        ("summary", summary_line(report)),
    ):
        ET.SubElement(properties, "property", name=name, value=_xml_text(value))
    for verdict in report.verdicts:
        r = verdict.result
        attributes = {
            "name": verdict.case_id,
            "classname": _xml_text(catalog.category_label(catalog.category_of(verdict.case_id))),
        }
        if r is not None and r.duration_ms is not None:
            attributes["time"] = f"{r.duration_ms / 1000:.3f}"
        case = ET.SubElement(suite, "testcase", attributes)
        body = _xml_text(_case_body(verdict))
        if verdict.failing:
            message = (r.result if r is not None and r.result else "") or verdict.reason
            kind = f"{r.behavior}/{r.behavior_close}" if r is not None else "NOT RUN"
            failure = ET.SubElement(
                case, "failure", message=_xml_text(message), type=_xml_text(kind)
            )
            failure.text = body
        elif verdict.outcome in ("skipped", "unimplemented"):
            ET.SubElement(case, "skipped", message=_xml_text(verdict.reason))
        elif verdict.outcome != "passed":
            out = ET.SubElement(case, "system-out")
            out.text = body
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


# --- index.html -----------------------------------------------------------------------------


@functools.cache
def environment() -> jinja2.Environment:
    """The templates' environment, made on first use: a run that renders no page (or renders
    them at its end) does not load jinja2 before its testee starts."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("wsconform", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(results: RunResults, report: GateReport, report_dir: Path | None = None) -> str:
    """index.html: a category-by-verdict overview; every case links to its own page."""
    report_dir = results.outdir if report_dir is None else report_dir
    outcomes = _shown_outcomes(report)
    if report.counts.get("skipped", 0) and "skipped" not in outcomes:
        outcomes.append("skipped")
    rows = []
    for row in _categories(report):
        rows.append(
            {
                "id": row.category,
                "label": row.label,
                "total": len(row.verdicts),
                "counts": {o: row.count(o) for o in outcomes},
                "cases": [
                    {
                        "id": v.case_id,
                        "outcome": v.outcome,
                        "href": _case_link(results, v, report_dir),
                        "title": _case_title(v),
                    }
                    for v in row.verdicts
                ],
            }
        )
    failing = [
        {
            "id": v.case_id,
            "outcome": v.outcome,
            "reason": v.reason,
            "href": _case_link(results, v, report_dir),
            "behavior": f"{v.result.behavior} / {v.result.behavior_close}"
            if v.result
            else "not run",
            "description": v.result.description if v.result else "",
            "expectation": v.result.expectation if v.result else "",
            "result": v.result.result if v.result else "",
        }
        for v in report.by_outcome(*FAILING_OUTCOMES, "unexpected-pass")
        if not (v.result is not None and v.result.behavior == "UNIMPLEMENTED")
    ]
    template = environment().get_template("index.html.j2")
    return template.render(
        agent=results.agent,
        engine=engine_line(results.engine) if results.engine is not None else "",
        summary=summary_line(report),
        passed=report.passed,
        preset=report.preset,
        partial=report.partial,
        notes=[*results.notes, *(n for n in report.notes if n not in results.notes)],
        outcomes=[(o, OUTCOME_LABELS[o]) for o in outcomes],
        totals={o: report.counts.get(o, 0) for o in outcomes},
        total=len(report.verdicts),
        categories=rows,
        failing=failing,
        report_dir=str(report_dir),
        version=__version__,
    )


def _case_title(verdict: CaseVerdict) -> str:
    r = verdict.result
    text = f"{verdict.case_id}: {verdict.outcome}"
    if r is not None:
        text += f" ({r.behavior} / {r.behavior_close})"
        if r.description:
            text += f"\n{r.description}"
    else:
        text += f"\n{verdict.reason}"
    return text


# --- case pages -----------------------------------------------------------------------------

# In the first lines of every case page we write; a page without it is the fuzzer's own.
_GENERATOR = "wsconform"
_GENERATOR_TAG = f'<meta name="generator" content="{_GENERATOR}">'.encode()


def case_html(
    report: Mapping[str, Any],
    *,
    index_href: str | None = None,
    json_href: str | None = None,
    max_rows: int = casereport.MAX_ROWS,
) -> str:
    """One case's page from its JSON report, either engine's: the verdicts and the close, the
    expected and received events, the handshake and the wire log (at most ``max_rows`` rows)."""
    return (
        environment()
        .get_template("case.html.j2")
        .render(
            case=casereport.read(report, max_rows),
            index_href=index_href,
            json_href=json_href,
            preview_bytes=casereport.PREVIEW_BYTES,
            octets_bytes=casereport.OCTETS_PREVIEW_BYTES,
            generator=_GENERATOR,
            version=__version__,
        )
    )


def _is_ours(page: Path) -> bool:
    with page.open("rb") as handle:
        return _GENERATOR_TAG in handle.read(512)


def index_page(outdir: Path, raw_dir: Path) -> Path:
    """Where ``write_reports(results, report, outdir)`` puts the HTML report of a run whose
    fuzzer's files are in ``raw_dir``: the fuzzer writes its own ``index.html``, so ours is
    ``report.html`` when both share a directory."""
    same_dir = Path(outdir).resolve() == Path(raw_dir).resolve()
    return Path(outdir) / ("report.html" if same_dir else "index.html")


def write_case_page(
    target: Path, report: Mapping[str, Any], index_page: Path, *, json_href: str
) -> None:
    """Our page of one case at ``target``, linking to ``index_page`` and to its JSON."""
    index_href = _relative(index_page, target.parent)
    _write_atomically(target, case_html(report, index_href=index_href, json_href=json_href))


def _write_case_pages(results: RunResults, index_page: Path) -> None:
    """A page of ours for every case whose engine wrote none, where ``_case_link`` points
    (but those ``results.rendered`` says were written already for this index page)."""
    rendered = results.rendered
    done = rendered.names if rendered is not None and rendered.index_page == index_page else ()
    for case in results.cases.values():
        if case.report_file is None or case.report_html is None or case.report_html in done:
            continue
        source, target = results.outdir / case.report_file, results.outdir / case.report_html
        if not source.is_file() or (target.exists() and not _is_ours(target)):
            continue
        report = json.loads(source.read_text("utf-8"))
        if isinstance(report, dict):
            write_case_page(target, report, index_page, json_href=case.report_file)


# --- writing --------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file so an interrupted run never leaves half a report."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, "utf-8")
    temporary.replace(path)


def write_reports(
    results: RunResults,
    report: GateReport,
    outdir: Path,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write the four reports into ``outdir``; returns {"json", "markdown", "junit", "html"}.

    Cases whose engine wrote no page of their own get ours, beside their JSON reports (module
    docstring). The fuzzer writes its own ``index.html``; when ``outdir`` is the fuzzer's
    directory ours is written as ``report.html`` so the raw output is kept. When
    ``$GITHUB_STEP_SUMMARY`` is set the Markdown summary is appended to it (key
    ``"step_summary"``), cut so the file stays under ``MAX_SUMMARY_BYTES``.
    """
    environ = os.environ if environ is None else environ
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": outdir / SUMMARY_FILE,
        "markdown": outdir / "summary.md",
        "junit": outdir / "junit.xml",
        "html": index_page(outdir, results.outdir),
    }
    _write_atomically(
        paths["json"],
        json.dumps(summary_json(results, report, outdir), indent=2, ensure_ascii=False) + "\n",
    )
    summary_md = markdown(results, report, report_dir=outdir)
    _write_atomically(paths["markdown"], summary_md)
    _write_atomically(paths["junit"], junit(results, report))
    _write_case_pages(results, paths["html"])
    _write_atomically(paths["html"], html(results, report, outdir))

    step_summary = environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        target = Path(step_summary)
        used = target.stat().st_size if target.exists() else 0
        room = MAX_SUMMARY_BYTES - used
        if room > 4096:
            text = (
                summary_md
                if len(summary_md.encode()) <= room
                else markdown(results, report, report_dir=outdir, max_bytes=room)
            )
            with target.open("a", encoding="utf-8") as handle:
                handle.write(text)
            paths["step_summary"] = target
    return paths


# --- diff -----------------------------------------------------------------------------------


def diff_markdown(diff: DiffReport) -> str:
    """A baseline comparison as Markdown: regressions first, then fixes, then the rest."""
    title = (
        diff.new_agent
        if diff.base_agent == diff.new_agent
        else f"{diff.base_agent} -> {diff.new_agent}"
    )
    lines = [
        f"# wsconform diff: {_md_inline(title)}",
        "",
        f"**{_plural(len(diff.regressions), 'regression')}, "
        f"{_plural(len(diff.fixes), 'fix', 'fixes')}, {len(diff.changed)} otherwise changed, "
        f"{diff.unchanged} unchanged** (durations ignored)",
        "",
    ]
    for heading, changes in (
        ("Regressions", diff.regressions),
        ("Fixes", diff.fixes),
        ("Changed (neither better nor worse)", diff.changed),
    ):
        if not changes:
            continue
        lines += [f"## {heading} ({len(changes)})", ""]
        for change in changes:
            lines.append(f"- {_md_inline(change.describe())}")
            if change.after is not None and change.after.result and heading == "Regressions":
                lines.append(f"  - now: {_md_inline(change.after.result)}")
        lines.append("")
    if diff.added:
        lines += [f"## Only in the new run ({len(diff.added)})", "", _compress_ids(diff.added), ""]
    if diff.removed:
        lines += [
            f"## Only in the baseline ({len(diff.removed)})",
            "",
            _compress_ids(diff.removed),
            "",
        ]
    lines += ["## Next steps", ""]
    if diff.regressions:
        lines.append(
            "- Read what a regressed case checks: "
            f"`wsconform cases {diff.regressions[0].case_id}`, "
            "then open its page in the new run's HTML report."
        )
    else:
        lines.append("- Nothing got worse; refresh the baseline when the fixes are intended.")
    return "\n".join(lines) + "\n"
