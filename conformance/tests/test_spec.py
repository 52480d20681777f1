"""``--spec fuzzingclient.json``: a spec like the ones users keep next to their servers (two
servers, patterns, exclusions, per-agent exclusions, options) read as wstest reads it, then run
unchanged by both engines against real running echo servers."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness_runs import wsconform

from wsconform import access, spec, testee

RUN_TIMEOUT = 300
ECHO = Path(__file__).resolve().parents[1] / "testees" / "websockets_echo.py"
ECHO_COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(ECHO))} {{port}}"


def write_spec(where: Path, body: dict[str, object]) -> Path:
    path = where / "fuzzingclient.json"
    path.write_text(json.dumps(body, indent=2))
    return path


def users_spec(first: str, second: str) -> dict[str, object]:
    """Two servers, shared options, patterns and exclusions, as users write them."""
    return {
        "outdir": "./reports/servers",
        "options": {"failByDrop": False},
        "servers": [
            {"agent": "echo-a", "url": first, "options": {"version": 18}},
            {"agent": "echo-b", "url": f"{second}/chat?room=1", "options": {"version": 18}},
        ],
        "cases": ["1.1.*", "2.1", "7.1.1"],
        "exclude-cases": ["1.1.8"],
        "exclude-agent-cases": {"echo-b": ["1.1.*"], "echo-a*": ["7.1.1"]},
    }


def test_a_spec_reads_as_wstest_reads_it(tmp_path: Path) -> None:
    loaded = spec.load(write_spec(tmp_path, users_spec("ws://127.0.0.1:1", "ws://[::1]:2")))
    first, second = loaded.servers
    assert (first.agent, first.url) == ("echo-a", "ws://127.0.0.1:1")
    assert second.url == "ws://[::1]:2/chat?room=1"
    assert dict(first.reach.options) == {"failByDrop": False, "version": 18}
    assert first.excluded == ("7.1.1",)
    assert second.excluded[:2] == ("1.1.1", "1.1.2") and "2.1" not in second.excluded
    assert loaded.outdir == Path("reports/servers")
    assert loaded.exclude_for(second) == ["1.1.8", *second.excluded]


def test_exclude_agent_cases_are_anchored_at_both_ends_unlike_cases(tmp_path: Path) -> None:
    # wstest compiles exclude-agent-cases as ^...$: "12.*.1" does not reach 12.1.10 there.
    body = {
        "servers": [{"url": "ws://127.0.0.1:1"}, {"url": "ws://127.0.0.1:2", "agent": "b"}],
        "cases": ["*"],
        "exclude-agent-cases": {"server-*": ["12.*.1"]},
    }
    first, second = spec.load(write_spec(tmp_path, body)).servers
    assert first.agent == "server-1" and second.agent == "b"
    assert "12.1.1" in first.excluded and "12.2.1" in first.excluded
    assert "12.1.10" not in first.excluded
    assert second.excluded == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cases": ["*"]}, "'servers' must list at least one server"),
        ({"servers": [{"agent": "x"}]}, "servers[0] needs a 'url'"),
        ({"servers": [{"url": "ws://h:1", "hostname": "h"}]}, "hostname"),
        ({"servers": [{"url": "ws://h:1", "agent": "a b"}]}, "agent 'a b'"),
        ({"servers": [{"url": "ws://h:1"}], "cases": "1.*"}, "'cases' must be a list"),
    ],
)
def test_a_spec_wstest_would_misread_is_refused_naming_the_key(
    tmp_path: Path, body: dict[str, object], message: str
) -> None:
    with pytest.raises(spec.SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        spec.load(write_spec(tmp_path, body))


def test_the_native_engine_refuses_options_it_does_not_behave_as(tmp_path: Path) -> None:
    reach = access.Access(options={"version": 18, "autoFragmentSize": 4})
    refusal = access.native_refusal("ws://127.0.0.1:1/", reach)
    assert refusal is not None and "autoFragmentSize=4" in refusal
    assert access.native_refusal("ws://h:1/", access.Access(options={"failByDrop": False})) is None


@pytest.fixture
def two_echo_servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    first = testee.start(ECHO_COMMAND, tmp_path / "echo-a-logs")
    second = testee.start(ECHO_COMMAND, tmp_path / "echo-b-logs")
    with first, second:
        first.wait_ready()
        second.wait_ready()
        yield first.url, second.url


def index(path: Path) -> dict[str, object]:
    found: dict[str, dict[str, object]] = json.loads((path / "raw" / "index.json").read_text())
    return next(iter(found.values()))


@pytest.mark.parametrize("engine", ["native", "autobahn"])
def test_run_with_a_users_spec_runs_each_server_with_its_own_cases(
    local_backend: object, engine: str, tmp_path: Path, two_echo_servers: tuple[str, str]
) -> None:
    spec_file = write_spec(tmp_path, users_spec(*two_echo_servers))
    done = wsconform(
        "run", "--spec", str(spec_file), "--engine", engine, "-q", cwd=tmp_path, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    servers = tmp_path / "reports" / "servers"
    assert sorted(index(servers / "echo-a")) == [f"1.1.{n}" for n in range(1, 8)] + ["2.1"]
    assert sorted(index(servers / "echo-b")) == ["2.1", "7.1.1"]
    assert "8 cases: 8 passed" in done.stdout and "2 cases: 2 passed" in done.stdout
    # The path and query reached the testee in the request line.
    report = json.loads((servers / "echo-b" / "raw" / "echo_b_case_2_1.json").read_text())
    assert report["httpRequest"].startswith("GET /chat?room=1 HTTP/1.1\r\n")


def test_agree_with_a_users_spec_compares_each_server(
    local_backend: object, tmp_path: Path, two_echo_servers: tuple[str, str]
) -> None:
    spec_file = write_spec(tmp_path, users_spec(*two_echo_servers))
    done = wsconform(
        "agree",
        "--spec",
        str(spec_file),
        "-q",
        "--outdir",
        "out",
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "echo-a: 8 cases: 8 agree, 0 differ" in done.stdout
    assert "echo-b: 2 cases: 2 agree, 0 differ" in done.stdout


def test_spec_and_the_options_it_gives_are_exclusive(tmp_path: Path) -> None:
    spec_file = write_spec(tmp_path, users_spec("ws://127.0.0.1:1", "ws://127.0.0.1:2"))
    done = wsconform(
        "run", "--spec", str(spec_file), "--cases", "1.*", cwd=tmp_path, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 2
    assert "--spec gives the testees and the cases; drop --cases" in done.stderr
