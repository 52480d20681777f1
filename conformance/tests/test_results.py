"""results: reading what the real fuzzer wrote.

The runs here are real: wstest from the local backend's cache against websockets echo servers
on loopback. ``real_run`` makes each named run once per test session; test_gate and test_render
read the same runs through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from wsconform import catalog, results

FUZZER_VERSION = "25.10.1"


def wstest_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "wsconform" / f"autobahn-{FUZZER_VERSION}" / "bin" / "wstest"


@contextmanager
def echo_server(compression: str | None) -> Iterator[int]:
    """A websockets echo server on a free loopback port, in a thread; yields the port."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    started = threading.Event()
    stop = asyncio.Event()

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> None:
        async with serve(
            echo, "127.0.0.1", 0, compression=compression, max_size=2**25, ping_interval=None
        ) as server:
            ready.append(next(iter(server.sockets)).getsockname()[1])
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "echo server did not start"
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# name -> (compression of the echo server, [(agent, reachable)], cases, exclude)
RUNS: dict[str, tuple[str | None, list[tuple[str, bool]], list[str], list[str]]] = {
    # "2.1*" and "7.1*" exercise wstest's start-anchored patterns (2.1, 2.10, 2.11; 7.1.x and
    # 7.13.x); the agent has characters the fuzzer removes from report file names.
    "websockets": (
        "deflate",
        [("ws echo/1.0 (deflate)", True)],
        ["1.1.1", "2.1*", "3.2", "7.1*", "12.1.1"],
        ["2.10"],
    ),
    # No permessage-deflate: 12.x/13.x are UNIMPLEMENTED. Two agents in one index.json.
    "plain": (None, [("plain-a", True), ("plain-b", True)], ["1.1.1", "12.1.1", "13.1.1"], []),
    # Nothing listens: the fuzzer writes an index without any result.
    "dead": (None, [("nobody", False)], ["1.1.1"], []),
}
_MADE: dict[str, Path] = {}


def real_run(factory: pytest.TempPathFactory, name: str) -> Path:
    """The fuzzer's output directory for run ``name`` (made on first use in the session)."""
    if name in _MADE:
        return _MADE[name]
    wstest = wstest_path()
    if not wstest.exists():
        pytest.skip(f"the Autobahn testsuite is not provisioned at {wstest.parent.parent}")
    compression, agents, cases, exclude = RUNS[name]
    workdir = factory.mktemp(f"run-{name}")
    outdir = workdir / "out"
    with echo_server(compression) as port:
        spec = {
            "outdir": str(outdir),
            "servers": [
                {"agent": agent, "url": f"ws://127.0.0.1:{port if up else unused_port()}"}
                for agent, up in agents
            ],
            "cases": cases,
            "exclude-cases": exclude,
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.run(
            [str(wstest), "-m", "fuzzingclient", "-s", "spec.json"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert (outdir / "index.json").exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    _MADE[name] = outdir
    return outdir


@pytest.fixture(scope="module")
def websockets_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_run(tmp_path_factory, "websockets")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_run(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_run(tmp_path_factory, "dead")


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
