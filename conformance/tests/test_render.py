"""render: the four report formats, from runs the real fuzzer made."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fuzzer_runs import real_run

from wsconform import catalog, gate, render, results
from wsconform.backends import LocalBackend
from wsconform.results import CaseResult, RunResults

KNOWN_7_1_5 = gate.parse_expectations(
    '[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\nreason = "websockets answers 1002"\n'
)


@pytest.fixture(scope="module")
def rundir(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> Path:
    """Our layout: the fuzzer's output in <run>/raw, the reports in <run>."""
    run = tmp_path_factory.mktemp("render") / "run"
    shutil.copytree(real_run(tmp_path_factory, "websockets", local_backend), run / "raw")
    return run


@pytest.fixture(scope="module")
def websockets_run(rundir: Path) -> RunResults:
    run = results.load(rundir / "raw")
    run.selected = [*run.cases]
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> RunResults:
    return results.load(real_run(tmp_path_factory, "plain", local_backend), "plain-a")


def test_summary_line_counts_the_run(websockets_run: RunResults) -> None:
    strict = gate.evaluate(websockets_run, "strict")
    assert render.summary_line(strict) == "13 cases: 8 passed, 3 informational, 2 failed (strict)"
    standard = gate.evaluate(websockets_run, "standard", KNOWN_7_1_5)
    assert render.summary_line(standard) == (
        "13 cases: 8 passed, 3 informational, 1 non-strict, 1 expected failure, 0 failed (standard)"
    )
    partial = dataclasses.replace(websockets_run, partial=True, excluded=["2.10"])
    assert render.summary_line(gate.evaluate(partial, "lenient")).endswith(
        "1 failed, 1 skipped (lenient), partial run"
    )


# --- summary.json ---------------------------------------------------------------------------


def test_summary_json_follows_its_schema(websockets_run: RunResults, rundir: Path) -> None:
    report = gate.evaluate(websockets_run, "strict")
    data = render.summary_json(websockets_run, report, rundir)
    assert json.loads(json.dumps(data)) == data  # JSON all the way down
    assert data["schema"] == "wsconform/summary/v1"
    assert data["agent"] == "ws echo/1.0 (deflate)"
    assert data["raw_dir"] == "raw"
    assert (data["preset"], data["passed"], data["exit_code"]) == ("strict", False, 1)
    assert data["summary"] == render.summary_line(report)
    assert set(data["counts"]) == set(gate.OUTCOMES)
    assert sum(data["counts"].values()) == len(data["cases"]) == 13
    assert [c["id"] for c in data["cases"]] == list(websockets_run.cases)
    failed = next(c for c in data["cases"] if c["id"] == "7.1.5")
    assert failed == {
        "id": "7.1.5",
        "category": "7",
        "outcome": "failed",
        "reason": failed["reason"],
        "behavior": "FAILED",
        "behavior_close": "WRONG CODE",
        "duration_ms": websockets_run.cases["7.1.5"].duration_ms,
        "remote_close_code": 1002,
        "report_file": "ws_echo_1_0__deflate_case_7_1_5.json",
        "result": "The close code should have been 1000 or empty",
        "result_close": "The close code should have been 1000 or empty",
    }
    seven = next(c for c in data["categories"] if c["id"] == "7")
    assert (seven["name"], seven["cases"], seven["counts"]["failed"]) == ("Close Handling", 8, 1)


# --- summary.md -----------------------------------------------------------------------------


def test_markdown_has_a_table_then_failures_then_next_steps(
    websockets_run: RunResults, rundir: Path
) -> None:
    report = gate.evaluate(websockets_run, "standard")
    text = render.markdown(websockets_run, report, report_dir=rundir)
    assert text.startswith("# wsconform: ws echo/1.0 (deflate): FAILED (standard gate)")
    table = text.index("| Category | Cases | Passed | Informational | Non-strict |")
    assert "\n| 7 Close Handling | 8 | 4 | 3 | 0 | 1 | 0 |\n" in text
    failure = text.index("### 7.1.5: FAILED / WRONG CODE (close code 1002)")
    assert "- Description: Send message fragment1 followed by close then fragment" in text
    assert "- Expectation: Clean close with normal code." in text
    assert "- Result: The close code should have been 1000 or empty" in text
    assert "(raw/ws_echo_1_0__deflate_case_7_1_5.html)" in text
    steps = text.index("## Next steps")
    assert table < failure < steps
    assert f"`{rundir / 'index.html'}`" in text[steps:]
    assert "wsconform cases 7.1.5" in text[steps:]


def test_markdown_lists_unexpected_passes_before_failures(websockets_run: RunResults) -> None:
    known = gate.parse_expectations(
        '[[expect]]\ncase = "1.1.1"\nbehavior = "FAILED"\nreason = "flaky once"\n'
    )
    text = render.markdown(websockets_run, gate.evaluate(websockets_run, "standard", known))
    assert text.index("## Unexpected passes (1)") < text.index("## Failures (1)")
    assert "**1.1.1**: listed as failing (flaky once)" in text


def test_markdown_groups_unimplemented_cases(plain_run: RunResults) -> None:
    refused = render.markdown(plain_run, gate.evaluate(plain_run, "strict"))
    assert "### 2 cases UNIMPLEMENTED" in refused
    assert "12.1.1, 13.1.1" in refused
    allowed = render.markdown(
        plain_run, gate.evaluate(plain_run, "strict", allow_unimplemented=True)
    )
    assert "## Unimplemented (2, allowed)" in allowed and "## Failures" not in allowed


def many_failures(tmp_path: Path, result_size: int) -> RunResults:
    """Hand-built: 517 failures with long result texts, far more than a real run gives,
    to push summary.md over its size limit."""
    cases = {
        case_id: CaseResult(
            case_id,
            "FAILED",
            "UNCLEAN",
            5,
            1006,
            None,
            description=catalog.describe(case_id).description,
            expectation=catalog.describe(case_id).expectation,
            result="x" * result_size,
        )
        for case_id in catalog.ALL_CASES
    }
    return RunResults(agent="huge", outdir=tmp_path, cases=cases)


def test_markdown_stays_under_one_mebibyte(tmp_path: Path) -> None:
    run = many_failures(tmp_path, 4000)
    text = render.markdown(run, gate.evaluate(run, "strict"))
    assert len(text.encode()) < 1024 * 1024
    assert "> **Truncated**:" in text
    assert "### 1.1.1: FAILED / UNCLEAN" in text  # the first failures are kept in full
    assert text.rstrip().splitlines()[0] == "# wsconform: huge: FAILED (strict gate)"
    assert "## Next steps" in text  # and the reader still learns what to do next
    small = render.markdown(run, gate.evaluate(run, "strict"), max_bytes=20_000)
    assert len(small.encode()) < 20_000


def test_markdown_escapes_what_the_testee_sent(websockets_run: RunResults) -> None:
    # Hand-made result text: a testee's close reason may hold Markdown and HTML.
    case = dataclasses.replace(websockets_run.cases["7.1.5"], result="<img src=x> | *bold*")
    run = dataclasses.replace(websockets_run, cases={**websockets_run.cases, "7.1.5": case})
    text = render.markdown(run, gate.evaluate(run, "strict"))
    assert r"- Result: &lt;img src=x> \| \*bold\*" in text
    assert "<img" not in text


# --- junit.xml ------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_case(websockets_run: RunResults) -> None:
    run = dataclasses.replace(websockets_run, excluded=["2.10"])
    report = gate.evaluate(run, "standard")
    root = ET.fromstring(render.junit(run, report))
    testcases = root.findall("./testsuite/testcase")
    assert [t.get("name") for t in testcases] == [v.case_id for v in report.verdicts]
    assert len(testcases) == 14
    by_name = {t.get("name"): t for t in testcases}
    assert by_name["7.1.5"].get("classname") == "7 Close Handling"
    failure = by_name["7.1.5"].find("failure")
    assert failure is not None
    assert failure.get("message") == "The close code should have been 1000 or empty"
    assert failure.get("type") == "FAILED/WRONG CODE"
    skipped = by_name["2.10"].find("skipped")
    assert skipped is not None and skipped.get("message") == "excluded"
    assert by_name["1.1.1"].find("failure") is None and by_name["1.1.1"].find("skipped") is None
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("14", "1", "1")


def test_junit_skips_unimplemented_only_when_allowed(plain_run: RunResults) -> None:
    allowed = ET.fromstring(
        render.junit(plain_run, gate.evaluate(plain_run, "strict", allow_unimplemented=True))
    )
    assert allowed.find("./testsuite/testcase[@name='12.1.1']/skipped") is not None
    refused = ET.fromstring(render.junit(plain_run, gate.evaluate(plain_run, "strict")))
    failure = refused.find("./testsuite/testcase[@name='12.1.1']/failure")
    assert failure is not None
    assert failure.get("message") == plain_run.cases["12.1.1"].result


def test_junit_is_valid_xml_whatever_the_testee_sent(websockets_run: RunResults) -> None:
    # Hand-made result text: control characters XML 1.0 cannot carry, as a close reason can.
    case = dataclasses.replace(
        websockets_run.cases["7.1.5"], result="bad\x00close\x1b[31m reason \ufffe & <x>"
    )
    run = dataclasses.replace(websockets_run, cases={**websockets_run.cases, "7.1.5": case})
    root = ET.fromstring(render.junit(run, gate.evaluate(run, "strict")))
    failure = root.find("./testsuite/testcase[@name='7.1.5']/failure")
    assert failure is not None
    assert failure.get("message") == "bad\\x00close\\x1b[31m reason \\xfffe & <x>"


# --- index.html -----------------------------------------------------------------------------


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href and not href.startswith("#"):
            self.hrefs.append(href)


def test_html_links_every_case_to_the_fuzzers_own_page(
    websockets_run: RunResults, rundir: Path
) -> None:
    page = render.html(websockets_run, gate.evaluate(websockets_run, "strict"), rundir)
    links = Links()
    links.feed(page)
    case_links = [h for h in links.hrefs if h.endswith(".html")]
    assert len(set(case_links)) == 13
    for href in case_links:
        assert (rundir / href).is_file(), href
    assert "raw/ws_echo_1_0__deflate_case_7_1_5.html" in case_links
    assert "13 cases: 8 passed, 3 informational, 2 failed (strict)" in page
    assert re.search(r'<a href="#cat-7">7 Close Handling</a></td><td>8</td>', page)


def test_html_escapes_names_and_texts(tmp_path: Path) -> None:
    # Hand-built: an agent name is whatever the testee's Server header said.
    case = CaseResult("1.1.1", "FAILED", "OK", 1, 1000, None, result="<script>x()</script>")
    run = RunResults(agent="<script>alert(1)</script>", outdir=tmp_path, cases={"1.1.1": case})
    page = render.html(run, gate.evaluate(run, "strict"))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- writing --------------------------------------------------------------------------------


def test_write_reports_writes_all_four(
    websockets_run: RunResults, rundir: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    report = gate.evaluate(websockets_run, "standard", KNOWN_7_1_5)
    paths = render.write_reports(
        websockets_run, report, rundir, environ={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert {k: p.name for k, p in paths.items()} == {
        "json": "summary.json",
        "markdown": "summary.md",
        "junit": "junit.xml",
        "html": "index.html",
        "step_summary": "step-summary.md",
    }
    assert all(p.parent == rundir for k, p in paths.items() if k != "step_summary")
    assert json.loads(paths["json"].read_text())["passed"] is True
    ET.parse(paths["junit"])
    assert summary.read_text() == "earlier step\n" + paths["markdown"].read_text()
    assert not list(rundir.glob(".*.tmp"))


def test_the_step_summary_is_cut_to_fit_what_is_left(tmp_path: Path) -> None:
    run = many_failures(tmp_path / "raw", 200)
    (tmp_path / "raw").mkdir()
    summary = tmp_path / "step-summary.md"
    summary.write_text("x" * (render.MAX_SUMMARY_BYTES - 50_000))
    render.write_reports(
        run, gate.evaluate(run, "strict"), tmp_path, environ={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert summary.stat().st_size < render.MAX_SUMMARY_BYTES
    assert "> **Truncated**:" in summary.read_text()
    assert "> **Truncated**:" not in (tmp_path / "summary.md").read_text()


def test_reports_beside_the_raw_output_keep_the_fuzzers_index(
    websockets_run: RunResults, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(websockets_run.outdir, raw)
    before = (raw / "index.html").read_text()
    run = results.load(raw)
    paths = render.write_reports(run, gate.evaluate(run), raw, environ={})
    assert paths["html"].name == "report.html"
    assert (raw / "index.html").read_text() == before
    assert results.load(raw).cases == run.cases  # still readable as a fuzzer directory


def test_diff_markdown_leads_with_regressions(
    websockets_run: RunResults, plain_run: RunResults
) -> None:
    text = render.diff_markdown(gate.diff(websockets_run, plain_run))
    assert "**1 regression, 0 fixes, 0 otherwise changed, 1 unchanged**" in text
    assert "## Regressions (1)\n\n- 12.1.1: OK/OK -> UNIMPLEMENTED/OK" in text
    assert text.index("## Regressions") < text.index("## Next steps")
    assert "wsconform cases 12.1.1" in text
