"""The HTML reports in a real headless Chromium: every text a person is shown is readable.

Each page is rendered from real fuzzer runs (``fuzzer_runs``) gated so that, together, the
pages show every outcome and every verdict colour: failures with their details, a changed
failure, an unexpected pass, a partial run, an unimplemented case, and a comparison matrix of
agents that differ. Chromium loads the written file; ``contrast.js`` opens every ``<details>``
and measures, for each element with its own visible text, the WCAG 2.x contrast ratio of its
colour against the background it is drawn on (the ancestors' background colours composited
with their alpha over the white canvas). Every ratio must be at least 4.5 (WCAG 1.4.3, level
AA, normal text). A PNG of each whole page is written beside it (``index.png`` or
``compare.png`` under pytest's tmp dir), for a person to look at; ``pytest -rP`` prints where.
The case pages we write are checked too: one of a native run (``fuzzer_runs.native_run``), and
one from an Autobahn report, its wire log cut short so the "not shown" note is measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fuzzer_runs import native_run, real_run
from headless_chromium import DEADLINE, chromium, require_chromium

from wsconform import compare, gate, render, results
from wsconform.backends import LocalBackend

MINIMUM_RATIO = 4.5  # WCAG 2.x success criterion 1.4.3 (AA), normal-size text
CONTRAST_SCRIPT = (Path(__file__).parent / "contrast.js").read_text("utf-8")

# 7.1.5 fails exactly as listed; 3.2 (NON-STRICT, failing the strict gate) was listed as
# FAILED, so it fails in another way; 1.1.1 was listed and passes now.
EXPECTATIONS = gate.parse_expectations(
    '[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\nbehavior_close = "WRONG CODE"\n'
    'reason = "websockets answers 1002"\n'
    '[[expect]]\ncase = "3.2"\nbehavior = "FAILED"\nreason = "reserved bits"\n'
    '[[expect]]\ncase = "1.1.1"\nbehavior = "FAILED"\nreason = "empty text message"\n'
)

Page = Callable[[pytest.TempPathFactory, LocalBackend, Path], tuple[Path, list[str]]]


def failing_partial_report(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """Standard gate: a failure, a non-strict case, an excluded case, a partial-run banner."""
    run = results.load(real_run(factory, "websockets", fuzzer))
    run = dataclasses.replace(run, partial=True, excluded=["2.10"])
    report = gate.evaluate(run, "standard")
    assert {"failed", "non-strict", "skipped"} <= {v.outcome for v in report.verdicts}
    page = render.write_reports(run, report, outdir)["html"]
    return page, [run.cases["7.1.5"].result, run.cases["7.1.5"].expectation]


def expectations_report(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """Strict gate with an expectations file: expected, changed and unexpectedly passing."""
    run = results.load(real_run(factory, "websockets", fuzzer))
    report = gate.evaluate(run, "strict", EXPECTATIONS)
    outcomes = {v.case_id: v.outcome for v in report.verdicts}
    assert (outcomes["7.1.5"], outcomes["3.2"], outcomes["1.1.1"]) == (
        "expected-failure",
        "changed-failure",
        "unexpected-pass",
    )
    page = render.write_reports(run, report, outdir)["html"]
    changed = next(v for v in report.verdicts if v.case_id == "3.2")
    return page, [changed.reason, run.cases["3.2"].description]


def unimplemented_report(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """A passing run whose 12.x/13.x cases are UNIMPLEMENTED, allowed."""
    run = results.load(real_run(factory, "plain", fuzzer), "plain-a")
    report = gate.evaluate(run, "strict", allow_unimplemented=True)
    assert report.passed and report.counts["unimplemented"] == 2
    return render.write_reports(run, report, outdir)["html"], ["PASSED"]


def comparison_matrix(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """Three agents: every verdict colour, cases one agent did not run, a 9.x speed table."""
    runs = [
        results.load(real_run(factory, "websockets", fuzzer)),
        results.load(real_run(factory, "speed", fuzzer), "speed-a"),
        results.load(real_run(factory, "speed", fuzzer), "speed-b"),
    ]
    matrix = compare.build(runs)
    shown = {
        case.behavior if case is not None else "none"
        for difference in matrix.differences()
        for case in difference.by_agent.values()
    }
    assert {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "none"} <= shown
    assert matrix.durations()
    failed = runs[0].cases["7.1.5"]
    return compare.write(matrix, outdir)["html"], [failed.result, "not run"]


def native_case_page(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """The page of 6.4.1 that a native run's reports get: timers, hex and text payloads."""
    shutil.copytree(native_run(factory, "reference"), outdir / "raw")
    run = results.load(outdir / "raw")
    render.write_reports(run, gate.evaluate(run), outdir)
    case = run.cases["6.4.1"]
    assert case.report_file is not None and case.report_html is not None
    log = json.loads((run.outdir / case.report_file).read_text())["wirelog"]
    first = next(e for e in log if e["kind"] == "tx-frame")
    return run.outdir / case.report_html, [case.description, first["mask"], "1007"]


def autobahn_case_page(
    factory: pytest.TempPathFactory, fuzzer: LocalBackend, outdir: Path
) -> tuple[Path, list[str]]:
    """Our page of an Autobahn report (7.1.5: FAILED / WRONG CODE), its log cut to 8 rows."""
    run = results.load(real_run(factory, "websockets", fuzzer))
    case = run.cases["7.1.5"]
    assert case.report_file is not None
    report = json.loads((run.outdir / case.report_file).read_text())
    outdir.mkdir(parents=True)
    page = outdir / "case.html"
    page.write_text(render.case_html(report, max_rows=8), "utf-8")
    return page, [case.result, "more frames not shown", "WRONG CODE"]


PAGES: dict[str, Page] = {
    "failing-partial": failing_partial_report,
    "expectations": expectations_report,
    "unimplemented": unimplemented_report,
    "compare": comparison_matrix,
    "native-case": native_case_page,
    "autobahn-case": autobahn_case_page,
}


async def measure(page: Path, profile: Path, screenshot: Path) -> dict[str, Any]:
    """``contrast.js``'s findings on ``page``, and a PNG of the whole page at ``screenshot``."""
    url = page.resolve().as_uri()
    async with asyncio.timeout(DEADLINE), chromium(profile) as devtools:
        session = await devtools.open(url)
        await devtools.evaluate(
            session,
            "document.readyState === 'complete' || "
            "new Promise((done) => addEventListener('load', done))",
            url,
        )
        findings: dict[str, Any] = await devtools.evaluate(session, CONTRAST_SCRIPT, url)
        await devtools.screenshot(session, screenshot)
    return findings


def _row(text: dict[str, Any]) -> str:
    return (
        f"{text['ratio']:.2f}  {text['color']} on {text['background']}  "
        f"{text['element']}: {text['text']!r}"
    )


@pytest.mark.parametrize("name", PAGES)
def test_every_text_of_the_html_report_is_readable(
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    local_backend: LocalBackend,
    tmp_path: Path,
) -> None:
    require_chromium()
    page, must_show = PAGES[name](tmp_path_factory, local_backend, tmp_path / "report")
    screenshot = page.with_suffix(".png")
    findings = asyncio.run(measure(page, tmp_path / "profile", screenshot))
    print(f"{name}: screenshot of {page} at {screenshot}")

    texts = findings["texts"]
    assert findings["unmeasured"] == [], "paint the contrast check cannot follow"
    shown = " ".join(t["text"] for t in texts)
    for expected in must_show:  # the check saw the failure details, not only the page's frame
        assert " ".join(expected.split())[:60] in shown, expected
    unreadable = [t for t in texts if t["ratio"] < MINIMUM_RATIO]
    assert not unreadable, (
        f"{len(unreadable)} of {len(texts)} texts below {MINIMUM_RATIO}:1 ({screenshot}):\n"
        + "\n".join(_row(t) for t in unreadable)
    )
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
