"""One run end to end through the Python API: real fuzzer, real testees, real reports.

Also the progress parser, fed with the lines wstest really prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from wsconform import backends, gate, pipeline, progress, results, runner
from wsconform.engines.autobahn import AutobahnEngine


class RecordingView:
    """A progress view that remembers what it was told."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int, str | None]] = []
        self.categories: list[tuple[str, int, int]] = []
        self.closed = False

    def update(self, state: progress.Progress) -> None:
        self.updates.append((state.done, state.total, state.current))

    def category_done(self, state: progress.Progress, category: str, count: int) -> None:
        self.categories.append((category, count, state.done))

    def close(self, state: progress.Progress) -> None:
        self.closed = True


def _quiet(_: str) -> None:
    pass


def _run(
    backend: backends.Backend, outdir: Path, view: progress.View | None = None, **config: object
) -> pipeline.RunOutcome:
    settings: dict[str, object] = {"agent": "echo", "outdir": outdir}
    settings.update(config)
    run_config = runner.RunConfig(**settings)  # type: ignore[arg-type]
    return runner.execute(run_config, AutobahnEngine(backend), view or RecordingView(), _quiet)


# ----------------------------------------------------------------------------------- progress


def test_parse_line_reads_the_fuzzers_announcements() -> None:
    assert progress.parse_line(
        "Ok, will run 14 test cases against 1 servers"
    ) == progress.TotalAnnounced(14)
    assert progress.parse_line(
        "Running test case ID 6.4.1 for agent websockets from peer tcp4:127.0.0.1:9101"
    ) == progress.CaseStarted("6.4.1", "websockets")
    assert progress.parse_line(
        "Connection to ws://127.0.0.1:9101 failed (Connection was refused by other side: "
        "111: Connection refused.)"
    ) == progress.ConnectionFailed(
        "ws://127.0.0.1:9101", "Connection was refused by other side: 111: Connection refused."
    )
    assert progress.parse_line("Using explicit spec file 'spec.json'") is None


def test_eta_weights_remaining_cases_by_category_cost() -> None:
    now = [0.0]
    view = RecordingView()
    state = progress.Progress(view, cases=["1.1.1", "1.1.2", "12.1.1"], clock=lambda: now[0])
    assert state.eta() is None  # nothing measured yet
    state.feed("Running test case ID 1.1.1 for agent a from peer p")
    now[0] = 1.0
    state.feed("Running test case ID 1.1.2 for agent a from peer p")
    # One framing case took 1 s; left: one framing case and one deflate case, 60x the cost.
    expected = (progress.DEFAULT_CASE_COST + progress.CASE_COST["12"]) / progress.DEFAULT_CASE_COST
    assert state.eta() == pytest.approx(expected)
    assert progress.format_seconds(3725) == "1:02:05"
    assert progress.format_seconds(None) == "-:--:--"


def test_line_view_prints_one_line_per_finished_category(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as out:
        state = progress.Progress(progress.LineView(out), cases=["1.1.1", "2.1", "2.2"])
        for case in ("1.1.1", "2.1", "2.2"):
            state.feed(f"Running test case ID {case} for agent a from peer p")
        state.finish(completed=True)
    lines = (tmp_path / "log").read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/3] 1 Framing: 1 cases done")
    assert lines[1].startswith("[3/3] 2 Pings/Pongs: 2 cases done")


# --------------------------------------------------------------------------------- real runs


def test_run_against_echo_testee_passes_strict_and_writes_reports(
    local_backend: backends.LocalBackend, tmp_path: Path, echo_cmd: str
) -> None:
    view = RecordingView()
    outcome = _run(
        local_backend, tmp_path / "out", view, server_cmd=echo_cmd, cases=["1.1.*", "2.1"]
    )
    assert outcome.exit_code == gate.EXIT_OK
    assert outcome.report.counts["passed"] == 9
    assert list(outcome.results.cases) == [*(f"1.1.{i}" for i in range(1, 9)), "2.1"]
    for kind in ("json", "markdown", "junit", "html"):
        assert outcome.paths[kind].is_file()
    out = tmp_path / "out"
    assert (out / "raw" / "index.json").is_file()
    spec = json.loads((out / "spec.json").read_text())
    assert spec["cases"] == outcome.results.selected
    assert spec["servers"][0]["agent"] == "echo"
    assert "Running test case ID 2.1 for agent echo" in (out / pipeline.FUZZER_LOG).read_text()
    # Progress came from the fuzzer's own output, category by category.
    assert view.categories == [("1", 8, 8), ("2", 1, 9)]
    assert view.updates[-1] == (9, 9, None) or view.closed
    assert view.closed


def test_second_run_into_the_same_outdir_replaces_the_raw_output(
    local_backend: backends.LocalBackend, tmp_path: Path, echo_cmd: str
) -> None:
    _run(local_backend, tmp_path, server_cmd=echo_cmd, cases=["1.1.1", "1.1.2"])
    outcome = _run(local_backend, tmp_path, server_cmd=echo_cmd, cases=["2.1"])
    assert list(outcome.results.cases) == ["2.1"]
    assert sorted(p.name for p in (tmp_path / "raw").glob("*.json")) == [
        "echo_case_2_1.json",
        "index.json",
    ]


def test_run_against_a_running_url(
    local_backend: backends.LocalBackend, tmp_path: Path, echo_server: str
) -> None:
    outcome = _run(local_backend, tmp_path, url=echo_server, cases=["1.1.1"])
    assert outcome.exit_code == gate.EXIT_OK
    assert json.loads((tmp_path / "spec.json").read_text())["servers"][0]["url"] == echo_server


def test_concurrent_runs_never_share_an_outdir(
    local_backend: backends.LocalBackend, tmp_path: Path, echo_cmd: str
) -> None:
    with pipeline.exclusive(tmp_path), pytest.raises(pipeline.OutdirBusy) as caught:
        _run(local_backend, tmp_path, server_cmd=echo_cmd, cases=["1.1.1"])
    assert caught.value.exit_code == gate.EXIT_USAGE
    assert "another wsconform run" in str(caught.value)
    assert not (tmp_path / "raw").exists()


def test_testee_dying_mid_run_fails_the_cases_it_never_answered(
    local_backend: backends.LocalBackend, tmp_path: Path, faulty_cmd: Callable[..., str]
) -> None:
    # Connection 5 is case 1.1.5: the testee exits as it arrives. The fuzzer records 1.1.5
    # itself (FAILED: the connection dropped), sometimes 1.1.6 too (a connection the dying
    # kernel socket still accepted), then cannot connect and stops.
    view = RecordingView()
    outcome = _run(local_backend, tmp_path, view, server_cmd=faulty_cmd("die", 5), cases=["1.1.*"])
    assert outcome.exit_code == gate.EXIT_FAILURES
    cases = outcome.results.cases
    assert [cases[f"1.1.{i}"].behavior for i in range(1, 9)] == ["OK"] * 4 + ["FAILED"] * 4
    never_ran = [r for r in cases.values() if r.report_file is None]
    assert never_ran and never_ran[-1].case_id == "1.1.8"
    assert {r.case_id for r in never_ran} <= {"1.1.6", "1.1.7", "1.1.8"}
    assert all("exited with status 3 during the run" in r.result for r in never_ran)
    assert all("dying on purpose at connection 5" in r.result for r in never_ran)
    assert any("dying on purpose" in note for note in outcome.results.notes)
    assert outcome.paths["junit"].is_file()
    summary = json.loads(outcome.paths["json"].read_text())
    assert summary["counts"]["failed"] == 4
    assert view.categories == [("1", 4, 4)]  # the progress saw 1.1.1-1.1.4 start and end


def test_testee_that_never_starts_is_a_run_error_with_its_stderr(
    local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    command = "sh -c 'echo address already in use >&2; sleep 600' {port}"
    with pytest.raises(pipeline.RunError) as caught:
        _run(local_backend, tmp_path, server_cmd=command, cases=["1.1.1"], startup_timeout=0.5)
    assert caught.value.exit_code == gate.EXIT_RUN_ERROR
    assert "address already in use" in str(caught.value)


def test_url_where_nothing_listens_is_a_run_error_saying_the_port_refused(
    local_backend: backends.LocalBackend, tmp_path: Path, unused_port: int
) -> None:
    with pytest.raises(pipeline.RunError, match=f"refused connections on port {unused_port}"):
        _run(local_backend, tmp_path, url=f"ws://127.0.0.1:{unused_port}", cases=["1.1.1"])
    assert not (tmp_path / "raw").exists()


def test_fuzzer_crash_is_a_run_error_with_its_output_tail(
    tmp_path: Path, fake_fuzzer_cache: Path, echo_cmd: str
) -> None:
    backend = backends.LocalBackend(root=fake_fuzzer_cache)
    with pytest.raises(pipeline.FuzzerCrashed) as caught:
        _run(backend, tmp_path / "out", server_cmd=echo_cmd, cases=["1.1.1"])
    assert caught.value.exit_code == gate.EXIT_RUN_ERROR
    assert "No module named twisted" in str(caught.value)


def test_selection_that_matches_nothing_is_a_config_error(tmp_path: Path) -> None:
    backend = backends.LocalBackend()
    with pytest.raises(pipeline.ConfigError, match=r"unknown case id .1\.1\.99."):
        _run(backend, tmp_path, cases=["1.1.99"])
    with pytest.raises(pipeline.ConfigError, match="no case matches"):
        _run(backend, tmp_path, cases=["1.1.1"], exclude=["1.*"])


def test_regression_against_a_baseline_exits_4(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    echo_cmd: str,
    faulty_cmd: Callable[..., str],
) -> None:
    _run(local_backend, tmp_path / "base", server_cmd=echo_cmd, cases=["1.1.1", "1.1.2"])
    outcome = _run(
        local_backend,
        tmp_path / "new",
        server_cmd=faulty_cmd("mute"),
        cases=["1.1.1", "1.1.2"],
        baseline=tmp_path / "base",
    )
    assert outcome.exit_code == gate.EXIT_REGRESSION
    assert outcome.regressions is not None
    assert [c.case_id for c in outcome.regressions.regressions] == ["1.1.1", "1.1.2"]
    assert (tmp_path / "new" / pipeline.BASELINE_DIFF).is_file()


def test_load_run_reads_ours_and_the_fuzzers_own_directories(
    local_backend: backends.LocalBackend, tmp_path: Path, echo_cmd: str
) -> None:
    _run(local_backend, tmp_path, server_cmd=echo_cmd, cases=["1.1.1"])
    ours = pipeline.load_run(tmp_path)
    theirs = pipeline.load_run(tmp_path / "raw")
    assert list(ours.cases) == list(theirs.cases) == ["1.1.1"]
    with pytest.raises(results.ResultsError):
        pipeline.load_run(tmp_path / "nowhere")
