"""A comparison matrix of several implementations' runs of the same cases.

Collect, then render: `build` turns finished runs (``results.RunResults``, one per agent) into
a `Matrix`, pure data; `markdown` and `html` render it. The matrix holds, per category, each
agent's count of fuzzer verdicts (the raw ``behavior``, not a gate's judgement: a comparison
must not depend on one project's pass rule); every case whose verdicts differ between agents,
with each agent's result text; and the 9.x (limits/performance) durations side by side, the
only speed comparison the fuzzer offers, made under the same fuzzer on the same machine.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from wsconform import backends, catalog, results

# The order verdicts are shown in, best first (results.BEHAVIORS is the fuzzer's set).
VERDICT_ORDER = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
SHORT = {"NON-STRICT": "NS", "INFORMATIONAL": "INFO", "UNIMPLEMENTED": "UNIMPL"}
SPEED_CATEGORY = "9"
MARKDOWN_FILE = "compare.md"
HTML_FILE = "compare.html"
# Result texts are long prose; the Markdown table shows their start, the HTML all of them.
MD_RESULT_CHARS = 90

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("wsconform", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Difference:
    """One case whose verdicts differ between agents (None: the agent did not run it)."""

    case_id: str
    description: str
    by_agent: dict[str, results.CaseResult | None]


@dataclass
class Matrix:
    """Several agents' runs over the same cases, arranged for comparison."""

    agents: list[str]
    runs: dict[str, results.RunResults]
    cases: list[str]  # every case any agent ran, in the fuzzer's order
    notes: dict[str, str] = field(default_factory=dict)  # agent -> how it ran (command)
    wall_seconds: dict[str, float] = field(default_factory=dict)

    def categories(self) -> list[str]:
        """The categories present, in the fuzzer's order."""
        return list(dict.fromkeys(catalog.category_of(c) for c in self.cases))

    def counts(self, agent: str, category: str | None = None) -> Counter[str]:
        """How many of `agent`'s cases (in `category`, or all) got each behavior verdict."""
        return Counter(
            case.behavior
            for case in self.runs[agent].cases.values()
            if category is None or case.category == category
        )

    def differences(self) -> list[Difference]:
        """Every case where the agents' (behavior, behaviorClose) pairs are not all equal."""
        found = []
        for case_id in self.cases:
            by_agent = {a: self.runs[a].cases.get(case_id) for a in self.agents}
            pairs = {(c.behavior, c.behavior_close) if c else None for c in by_agent.values()}
            if len(pairs) > 1:
                found.append(Difference(case_id, _description(case_id, by_agent), by_agent))
        return found

    def durations(self, category: str = SPEED_CATEGORY) -> list[tuple[str, dict[str, int | None]]]:
        """Per case of `category`: each agent's duration in ms (None when not measured)."""
        rows = []
        for case_id in self.cases:
            if catalog.category_of(case_id) != category:
                continue
            row = {}
            for agent in self.agents:
                case = self.runs[agent].cases.get(case_id)
                row[agent] = case.duration_ms if case is not None else None
            rows.append((case_id, row))
        return rows

    def duration_totals(self, category: str = SPEED_CATEGORY) -> dict[str, int | None]:
        """Each agent's summed duration over `category` (None when a case is unmeasured)."""
        totals: dict[str, int | None] = {}
        rows = self.durations(category)
        for agent in self.agents:
            values = [row[agent] for _, row in rows]
            known = [v for v in values if v is not None]
            totals[agent] = sum(known) if rows and len(known) == len(values) else None
        return totals


def _description(case_id: str, by_agent: Mapping[str, results.CaseResult | None]) -> str:
    for case in by_agent.values():
        if case is not None and case.description:
            return case.description
    return catalog.describe(case_id).description if case_id in catalog.ALL_CASES else ""


def build(
    runs: Sequence[results.RunResults],
    notes: Mapping[str, str] | None = None,
    wall_seconds: Mapping[str, float] | None = None,
) -> Matrix:
    """The matrix of `runs` (one per agent, in the order given); ValueError on a repeated agent."""
    names = [run.agent for run in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"agent(s) given twice: {', '.join(repeated)}")
    cases = sorted({c for run in runs for c in run.cases}, key=catalog.case_sort_key)
    return Matrix(
        agents=names,
        runs={run.agent: run for run in runs},
        cases=cases,
        notes=dict(notes or {}),
        wall_seconds=dict(wall_seconds or {}),
    )


# --- rendering ------------------------------------------------------------------------------


def _cell_counts(counts: Counter[str]) -> str:
    """``"140 OK, 4 NS, 1 FAILED"``: the verdicts present, best first."""
    parts = [f"{counts[v]} {SHORT.get(v, v)}" for v in VERDICT_ORDER if counts[v]]
    parts += [f"{n} {v}" for v, n in sorted(counts.items()) if v not in VERDICT_ORDER]
    return ", ".join(parts) or "-"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _verdict(case: results.CaseResult | None) -> str:
    if case is None:
        return "not run"
    return f"{case.behavior} / {case.behavior_close}"


def _short(text: str, limit: int = MD_RESULT_CHARS) -> str:
    text = " ".join(catalog.plain_text(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    whole = round(value)
    return f"{whole // 60}:{whole % 60:02d}"


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def summary_lines(matrix: Matrix) -> list[str]:
    """One line per agent: its verdict counts over all cases (the console's summary)."""
    width = max((len(a) for a in matrix.agents), default=0)
    return [
        f"{agent:<{width}}  {len(matrix.runs[agent].cases)} cases: "
        + _cell_counts(matrix.counts(agent))
        for agent in matrix.agents
    ]


def markdown(matrix: Matrix, fuzzer: str = backends.FUZZER_VERSION) -> str:
    """The matrix as Markdown: agents, verdicts per category, differences, 9.x durations."""
    agents = matrix.agents
    header = "| " + " | ".join(agents) + " |"
    rule = "|---" + "|---:" * len(agents) + "|"
    out = [
        f"# WebSocket implementations compared: Autobahn|Testsuite {fuzzer}",
        "",
        f"{len(matrix.cases)} cases, {len(agents)} agents, one fuzzer, one machine. Verdicts are"
        " the fuzzer's own (`behavior`); NS = NON-STRICT, INFO = INFORMATIONAL,"
        " UNIMPL = UNIMPLEMENTED (permessage-deflate not negotiated).",
        "",
        "| agent | cases | verdicts | wall time | how it ran |",
        "|---|---:|---|---:|---|",
    ]
    for agent in agents:
        out.append(
            f"| {agent} | {len(matrix.runs[agent].cases)} | {_cell_counts(matrix.counts(agent))}"
            f" | {_seconds(matrix.wall_seconds.get(agent))} | {_md(matrix.notes.get(agent, ''))} |"
        )
    out += ["", "## Verdicts per category", "", "| category " + header, rule]
    for category in matrix.categories():
        label = _md(catalog.category_label(category))
        cells = [_cell_counts(matrix.counts(agent, category)) for agent in agents]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"**{_cell_counts(matrix.counts(agent))}**" for agent in agents]
    out.append("| **all** | " + " | ".join(cells) + " |")

    differences = matrix.differences()
    out += ["", f"## Where the agents differ ({len(differences)} cases)", ""]
    if not differences:
        out.append("Every agent got the same verdicts on every case.")
    else:
        out += [
            "Each cell: behavior / behaviorClose, then the start of the fuzzer's result text.",
            "",
            "| case " + header,
            "|---" + "|---" * len(agents) + "|",
        ]
        for diff in differences:
            cells = []
            for agent in agents:
                case = diff.by_agent[agent]
                text = _short(case.result) if case is not None and case.result else ""
                cells.append(f"**{_verdict(case)}**" + (f": {_md(text)}" if text else ""))
            out.append(f"| {diff.case_id} | " + " | ".join(cells) + " |")

    rows = matrix.durations()
    if rows:
        totals = matrix.duration_totals()
        out += [
            "",
            f"## {_md(catalog.category_label(SPEED_CATEGORY))}: case durations (ms)",
            "",
            "The fastest agent of each case in bold. Durations are measured by the fuzzer,"
            " which is itself part of every number: compare agents within a row.",
            "",
            "| case " + header,
            rule,
        ]
        for case_id, row in [*rows, ("**total**", totals)]:
            known = [v for v in row.values() if v is not None]
            best = min(known) if len(known) > 1 else None
            cells = [
                f"**{_ms(row[a])}**" if row[a] is not None and row[a] == best else _ms(row[a])
                for a in agents
            ]
            out.append(f"| {case_id} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Next: open the HTML matrix for every result text and links to each case's report;"
        " rerun with `wsconform compare --agent NAME ...`.",
        "",
    ]
    return "\n".join(out)


def html(matrix: Matrix, report_dir: Path, fuzzer: str = backends.FUZZER_VERSION) -> str:
    """The matrix as one HTML page; case cells link each agent's fuzzer report."""

    def link(agent: str, case: results.CaseResult | None) -> str | None:
        if case is None or case.report_html is None:
            return None
        target = Path(matrix.runs[agent].outdir) / case.report_html
        return os.path.relpath(target, report_dir)

    def cell(agent: str, case: results.CaseResult | None) -> dict[str, str | None]:
        return {
            "verdict": _verdict(case),
            "behavior": case.behavior if case is not None else "none",
            "result": catalog.plain_text(case.result) if case is not None else "",
            "link": link(agent, case),
        }

    differences = [
        {
            "case_id": d.case_id,
            "description": d.description,
            "cells": [cell(a, d.by_agent[a]) for a in matrix.agents],
        }
        for d in matrix.differences()
    ]
    speed = []
    for case_id, row in matrix.durations():
        known = [v for v in row.values() if v is not None]
        best = min(known) if len(known) > 1 else None
        speed.append(
            {
                "case_id": case_id,
                "cells": [{"ms": _ms(row[a]), "best": row[a] == best} for a in matrix.agents],
            }
        )
    template = _ENVIRONMENT.get_template("compare.html.j2")
    return template.render(
        fuzzer=fuzzer,
        agents=matrix.agents,
        case_count=len(matrix.cases),
        overview=[
            {
                "name": a,
                "cases": len(matrix.runs[a].cases),
                "verdicts": _cell_counts(matrix.counts(a)),
                "wall": _seconds(matrix.wall_seconds.get(a)),
                "notes": matrix.notes.get(a, ""),
            }
            for a in matrix.agents
        ],
        categories=[
            {
                "label": catalog.category_label(category),
                "cells": [_cell_counts(matrix.counts(a, category)) for a in matrix.agents],
            }
            for category in matrix.categories()
        ],
        totals=[_cell_counts(matrix.counts(a)) for a in matrix.agents],
        differences=differences,
        speed_label=catalog.category_label(SPEED_CATEGORY),
        speed=speed,
        speed_totals=[_ms(v) for v in matrix.duration_totals().values()],
    )


def write(matrix: Matrix, outdir: Path, markdown_copy: Path | None = None) -> dict[str, Path]:
    """Write ``compare.md`` and ``compare.html`` into `outdir` (and the Markdown to a copy)."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": outdir / MARKDOWN_FILE, "html": outdir / HTML_FILE}
    text = markdown(matrix)
    paths["markdown"].write_text(text, encoding="utf-8")
    paths["html"].write_text(html(matrix, outdir), encoding="utf-8")
    if markdown_copy is not None:
        markdown_copy.parent.mkdir(parents=True, exist_ok=True)
        markdown_copy.write_text(text, encoding="utf-8")
        paths["markdown_copy"] = markdown_copy
    return paths
