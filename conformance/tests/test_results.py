"""results: reading what the real fuzzer wrote.

The runs here are real: wstest from the local backend's cache against websockets echo servers
on loopback (``fuzzer_runs.real_run``, shared with test_gate and test_render).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fuzzer_runs import RUNS, real_run

from wsconform import catalog, results
from wsconform.backends import LocalBackend


@pytest.fixture(scope="module")
def websockets_run(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> Path:
    return real_run(tmp_path_factory, "websockets", local_backend)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> Path:
    return real_run(tmp_path_factory, "plain", local_backend)


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> Path:
    return real_run(tmp_path_factory, "dead", local_backend)


def copy_run(source: Path, target: Path) -> Path:
    """A private copy of a shared run, for tests that damage it."""
    shutil.copytree(source, target)
    return target


# --- reading a real run ---------------------------------------------------------------------


def test_load_reads_every_case_the_fuzzer_ran_in_its_order(websockets_run: Path) -> None:
    _, _, cases, exclude = RUNS["websockets"]
    run = results.load(websockets_run)
    assert run.agent == "ws echo/1.0 (deflate)"
    # catalog.select predicted exactly what wstest ran, in numeric (not string) order.
    assert list(run.cases) == catalog.select(cases, exclude)
    assert list(run.cases)[-3:] == ["7.13.1", "7.13.2", "12.1.1"]
    assert "2.10" not in run.cases and "2.11" in run.cases


def test_load_reads_verdicts_and_the_per_case_reports(websockets_run: Path) -> None:
    run = results.load(websockets_run)
    ok = run.cases["1.1.1"]
    assert (ok.behavior, ok.behavior_close, ok.remote_close_code) == ("OK", "OK", 1000)
    assert ok.report_file == "ws_echo_1_0__deflate_case_1_1_1.json"
    assert (websockets_run / ok.report_file).is_file()
    assert ok.report_html is not None and (websockets_run / ok.report_html).is_file()
    assert ok.description == "Send text message with payload 0."
    assert ok.result == "Actual events match at least one expected."
    assert isinstance(ok.duration_ms, int)
    # websockets answers 1002 to a close frame inside a fragmented message: FAILED here.
    bad = run.cases["7.1.5"]
    assert (bad.behavior, bad.behavior_close) == ("FAILED", "WRONG CODE")
    assert bad.result == "The close code should have been 1000 or empty"
    assert run.cases["3.2"].behavior == "NON-STRICT"
    assert run.cases["7.1.6"].behavior == "INFORMATIONAL"
    assert run.cases["12.1.1"].behavior == "OK"


def test_descriptions_are_plain_text_not_the_fuzzers_html(websockets_run: Path) -> None:
    run = results.load(websockets_run)
    report_file = run.cases["3.2"].report_file
    assert report_file is not None
    raw = json.loads((websockets_run / report_file).read_text())
    assert "<b>" in raw["description"]
    assert run.cases["3.2"].description == (
        "Send small text message, then send again with RSV = 2, then send Ping."
    )


def test_a_run_with_several_agents_needs_a_choice(plain_run: Path) -> None:
    with pytest.raises(results.ResultsError, match=r"several agents.*'plain-a', 'plain-b'"):
        results.load(plain_run)
    run = results.load(plain_run, "plain-b")
    assert run.agent == "plain-b"
    assert [run.cases[c].behavior for c in run.cases] == ["OK", "UNIMPLEMENTED", "UNIMPLEMENTED"]
    with pytest.raises(results.ResultsError, match="no results for agent 'plain-c'"):
        results.load(plain_run, "plain-c")


def test_a_run_where_the_fuzzer_reached_nobody_is_an_error(dead_run: Path) -> None:
    with pytest.raises(results.ResultsError, match="no results at all"):
        results.load(dead_run)


def test_missing_per_case_reports_are_noted_not_fatal(websockets_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(websockets_run, tmp_path / "run")
    (run_dir / "ws_echo_1_0__deflate_case_7_1_5.json").unlink()
    run = results.load(run_dir)
    assert run.cases["7.1.5"].behavior == "FAILED"
    assert run.cases["7.1.5"].result == ""
    # The catalog still knows what the case is about.
    assert run.cases["7.1.5"].description == catalog.describe("7.1.5").description
    assert any("1 per-case report file(s) missing" in note for note in run.notes)


# --- malformed input ------------------------------------------------------------------------
# These need broken files, which the fuzzer never writes: each test damages a copy of a real
# run, or writes a minimal index.json by hand, and says why.


def test_a_directory_without_index_json_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(results.ResultsError, match=r"no index\.json"):
        results.load(tmp_path)
    with pytest.raises(results.ResultsError, match="not a directory"):
        results.load(tmp_path / "absent")


def test_truncated_index_json_is_an_error_naming_the_place(
    websockets_run: Path, tmp_path: Path
) -> None:
    run_dir = copy_run(websockets_run, tmp_path / "run")
    text = (run_dir / "index.json").read_text()
    (run_dir / "index.json").write_text(text[: len(text) // 2])  # as a crash mid-write leaves it
    with pytest.raises(results.ResultsError, match=r"not valid JSON \(line \d+, column \d+"):
        results.load(run_dir)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ([], "not the fuzzer's index"),  # a list, not {agent: ...}
        ({"a": {"1.1.1": []}}, "case 1.1.1 should be an object"),
        ({"a": {"1.1.1": {"behaviorClose": "OK"}}}, "'behavior' should be a non-empty string"),
        ({"a": {"x.y": {"behavior": "OK", "behaviorClose": "OK"}}}, "not an Autobahn case id"),
        (
            {"a": {"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "duration": "fast"}}},
            "'duration' should be an integer",
        ),
        (
            {"a": {"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "reportfile": "../x"}}},
            "'reportfile' should be a file name",
        ),
    ],
)
def test_malformed_index_entries_are_errors(index: object, message: str, tmp_path: Path) -> None:
    # Hand-written: each shape is one a hand-edited or foreign index.json could have.
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(results.ResultsError, match=message):
        results.load(tmp_path)


def test_string_sorted_keys_come_back_in_case_order(tmp_path: Path) -> None:
    # Hand-written: only the order of keys matters here, no fuzzer run needed to show it.
    entry = {"behavior": "OK", "behaviorClose": "OK", "duration": 1, "remoteCloseCode": 1000}
    index = {"a": {c: entry for c in ["1.1.1", "1.1.10", "1.1.2", "10.1.1", "9.1.1"]}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    assert list(results.load(tmp_path).cases) == ["1.1.1", "1.1.2", "1.1.10", "9.1.1", "10.1.1"]


# --- cases that never ran -------------------------------------------------------------------


def test_mark_missing_records_cases_that_never_ran_as_failed(websockets_run: Path) -> None:
    run = results.load(websockets_run)
    marked = results.mark_missing(run, ["1.1.1", "1.1.2", "9.1.1"], "the testee exited with 1")
    assert "1.1.2" not in run.cases  # the original is untouched
    assert marked.cases["1.1.1"] == run.cases["1.1.1"]  # a real result is never overwritten
    for case_id in ("1.1.2", "9.1.1"):
        case = marked.cases[case_id]
        assert (case.behavior, case.result, case.report_file) == (
            "FAILED",
            "the testee exited with 1",
            None,
        )
    assert list(marked.cases) == sorted(marked.cases, key=catalog.case_sort_key)
    assert "2 case(s) did not run" in marked.notes[-1]


def test_load_takes_over_what_our_summary_recorded(websockets_run: Path, tmp_path: Path) -> None:
    # Our layout: reports in the run directory, the fuzzer's output in raw/. What only the
    # harness knew (selection, cases that never ran, partial) comes back from summary.json.
    from wsconform import gate, render

    rundir = tmp_path / "run"
    raw = copy_run(websockets_run, rundir / "raw")
    run = results.load(raw)
    run.selected = [*run.cases, "1.1.2"]
    run.excluded = ["2.10"]
    run = results.mark_missing(run, ["1.1.2"], "the testee died")
    render.write_reports(run, gate.evaluate(run), rundir, environ={})

    again = results.load(rundir)
    assert again.outdir == raw
    assert again.selected == run.selected and again.excluded == ["2.10"]
    assert again.cases == run.cases
    assert again.cases["1.1.2"].result == "the testee died"
    assert again.notes == run.notes

    shutil.rmtree(raw)  # the raw output moved away: the summary alone still holds the run
    alone = results.load(rundir)
    assert {c: (r.behavior, r.result) for c, r in alone.cases.items()} == {
        c: (r.behavior, r.result) for c, r in run.cases.items()
    }
    assert any("raw fuzzer output not found" in n for n in alone.notes)
