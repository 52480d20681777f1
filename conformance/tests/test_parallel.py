"""Parallel and sharded runs: slicing, and merges of real runs that equal a one-process run.

The real runs fuzz the reference server over a small selection (a few dozen fast cases), once
in one process, once with ``--jobs 2``, and once as two ``--shard K/2`` runs merged by
``wsconform merge``; verdicts and file sets must be the same. The native engine's runs do the
same with a selection that holds 12.x and 13.x cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from harness_runs import interrupted, wsconform

from wsconform import (
    backends,
    catalog,
    gate,
    parallel,
    pipeline,
    progress,
    results,
    runner,
    testee,
)
from wsconform.engines.autobahn import AutobahnEngine
from wsconform.engines.native import NativeEngine

# Fast cases from several categories (framing, pings, close handling, one 9.x).
SELECTION = "1.1.*,2.*,5.1,5.2,5.3,7.1.*,7.9.1,9.1.1"
CASES = catalog.select(SELECTION.split(","))
# The native engine's: fast cases, and permessage-deflate cases of both categories.
NATIVE_SELECTION = "1.1.*,2.1,2.2,5.1,7.1.*,12.1.1,12.2.1,13.2.1,13.7.1"


class _Silent:
    def update(self, progress: progress.Progress) -> None:
        pass

    def category_done(self, progress: progress.Progress, category: str, count: int) -> None:
        pass

    def close(self, progress: progress.Progress) -> None:
        pass


def files(directory: Path) -> set[str]:
    """Every file under `directory`, relative, without the run lock."""
    return {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.name != pipeline.LOCK_FILE
    }


def verdicts(directory: Path) -> dict[str, tuple[str, str]]:
    run = pipeline.load_run(directory)
    return {c.case_id: (c.behavior, c.behavior_close) for c in run.cases.values()}


# --- real runs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_process(
    local_backend: backends.LocalBackend, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The selection fuzzed in one fuzzer process against the reference server."""
    outdir = tmp_path_factory.mktemp("one") / "run"
    config = runner.RunConfig(agent="reference", outdir=outdir, cases=SELECTION.split(","))
    outcome = runner.execute(config, AutobahnEngine(local_backend), _Silent(), lambda _: None)
    assert len(outcome.results.cases) == len(CASES)
    return outdir


def test_jobs_2_equals_one_process_run(
    one_process: Path, local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    outdir = tmp_path / "jobs"
    config = runner.RunConfig(agent="reference", outdir=outdir, cases=SELECTION.split(","))
    engine = AutobahnEngine(local_backend)
    outcome = parallel.run_jobs(
        config, 2, engine, _Silent(), lambda _: None, ["--engine", "autobahn"]
    )
    assert verdicts(outdir) == verdicts(one_process)
    assert files(outdir) == files(one_process)
    assert not (outdir / parallel.JOBS_DIR).exists()
    merged = results.load(outdir)
    assert merged.selected == CASES
    assert not merged.partial
    assert outcome.exit_code == gate.EXIT_OK
    log = (outdir / pipeline.FUZZER_LOG).read_text()
    assert "=== slice 1/2" in log and "=== slice 2/2" in log


@pytest.fixture(scope="module")
def native_one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The native selection run by the native engine in one process."""
    outdir = tmp_path_factory.mktemp("native-one") / "run"
    config = runner.RunConfig(agent="reference", outdir=outdir, cases=NATIVE_SELECTION.split(","))
    outcome = runner.execute(config, NativeEngine(), _Silent(), lambda _: None)
    assert outcome.exit_code == gate.EXIT_OK
    return outdir


def test_native_jobs_2_equals_one_process_run(native_one_process: Path, tmp_path: Path) -> None:
    outdir = tmp_path / "jobs"
    config = runner.RunConfig(agent="reference", outdir=outdir, cases=NATIVE_SELECTION.split(","))
    outcome = parallel.run_jobs(
        config, 2, NativeEngine(), _Silent(), lambda _: None, ["--engine", "native"]
    )
    assert verdicts(outdir) == verdicts(native_one_process)
    assert files(outdir) == files(native_one_process)
    merged = results.load(outdir)
    assert merged.engine is not None and merged.engine.name == "native"
    assert outcome.exit_code == gate.EXIT_OK
    log = (outdir / pipeline.FUZZER_LOG).read_text()
    assert "=== slice 1/2" in log and "=== slice 2/2" in log
    testees = (outdir / testee.STDOUT_LOG).read_text()
    assert testees.count("serving on") == 2  # one testee per job
    # The jobs' case pages are the merged run's (not rendered again), and link to its index.
    pages = {p.name: p for p in (outdir / results.RAW_DIR).glob("*.html")}
    assert len(pages) == len(merged.cases)
    assert outcome.results.rendered is not None
    assert outcome.results.rendered.names == set(pages)
    for page in pages.values():
        links = re.findall(r'<a href="([^"]*index\.html)">&larr; all cases', page.read_text())
        assert [(page.parent / link).resolve() for link in links] == [
            (outdir / "index.html").resolve()
        ], page.name


def test_native_runs_in_one_process_unless_jobs_is_given(tmp_path: Path) -> None:
    done = wsconform(
        "run", "-q", "--engine", "native", "--cases", "1.1.1,1.1.2,2.1", "--outdir", "run",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "processes" not in done.stderr
    assert "=== slice" not in (tmp_path / "run" / pipeline.FUZZER_LOG).read_text()
    assert (tmp_path / "run" / testee.STDOUT_LOG).read_text().count("serving on") == 1


def test_merged_shards_equal_one_process_run(one_process: Path, tmp_path: Path) -> None:
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for k, shard in enumerate(shards, 1):
        done = wsconform(
            "run", "-q", "--cases", SELECTION, "--shard", f"{k}/2", "--outdir", str(shard),
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ran = results.load(shard)
        assert list(ran.cases) == catalog.shard_cases(CASES, k, 2)
    merged = tmp_path / "merged"
    done = wsconform("merge", *map(str, shards), "--outdir", str(merged), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(CASES)} cases:" in done.stdout
    assert verdicts(merged) == verdicts(one_process)
    assert files(merged) == files(one_process)
    summary = results.load(merged)
    assert summary.selected == CASES
    assert not any(parallel.SHARD_NOTE.fullmatch(note) for note in summary.notes)

    missing = wsconform("merge", str(shards[0]), "--outdir", str(tmp_path / "m2"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "2/2 missing" in missing.stderr


def test_merging_the_same_cases_twice_is_refused(one_process: Path, tmp_path: Path) -> None:
    with pytest.raises(parallel.MergeError, match="ran in both"):
        parallel.merge_runs([one_process, one_process], tmp_path / "merged")


def test_merging_into_a_slice_is_refused(one_process: Path) -> None:
    with pytest.raises(parallel.MergeError, match="both a slice and the merge target"):
        parallel.merge_runs([one_process], one_process)


def test_ctrl_c_on_parallel_jobs_keeps_a_partial_merged_report(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    faulty_cmd: Callable[..., str],
    wait_for: Callable[..., None],
    env_without_ci_summary: dict[str, str],
) -> None:
    # Slices (snake deal): 1 = 1.1.1, 2.2, 2.3 and 2 = 1.1.2, 2.1, 2.4. Each job's own testee
    # stalls its second handshake, so both jobs are surely under way when Ctrl-C comes.
    def both_jobs_stalled() -> None:
        for job in ("1", "2"):
            log = tmp_path / parallel.JOBS_DIR / job / "testee-stdout.log"
            wait_for(log, "stalling at connection 2")

    harness = interrupted(
        ["run", "-q", "--jobs", "2", "--server-cmd", faulty_cmd("stall", 2), "--agent", "stall",
         "--cases", "1.1.1,1.1.2,2.1,2.2,2.3,2.4", "--outdir", str(tmp_path)],
        env_without_ci_summary, both_jobs_stalled, timeout=180,
    )  # fmt: skip
    stdout, stderr = harness.stdout, harness.stderr
    assert harness.returncode == 1, stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["partial"] is True
    ran = {case["id"]: case["outcome"] for case in summary["cases"]}
    assert ran == {
        "1.1.1": "passed", "1.1.2": "passed",
        "2.1": "skipped", "2.2": "skipped", "2.3": "skipped", "2.4": "skipped",
    }  # fmt: skip
    assert "run it again to completion" in stdout
