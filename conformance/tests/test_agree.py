"""The agreement suite: its rules over runs written by hand in the fuzzer's format (differences,
the 9.x timing rule, Autobahn disagreeing with itself), and ``wsconform agree`` for real: the
real fuzzer and the native engine against a real testee, including one whose behaviour changes
from one start to the next (the difference is forced, not simulated)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wsconform import agreement
from wsconform.agreement import CaseSide, Comparison
from wsconform.native import report

RUN_TIMEOUT = 300
PYTHON = shlex.quote(sys.executable)
BROKEN_ECHO = Path(__file__).resolve().parents[1] / "testees" / "broken_echo.py"


def write_run(where: Path, verdicts: dict[str, tuple[str, str, int]]) -> Path:
    """A run in the fuzzer's format: case -> (behavior, behaviorClose, duration in ms)."""
    where.mkdir(parents=True)
    entries = {}
    for case_id, (behavior, close, duration) in verdicts.items():
        name = report.report_filename("t", case_id)
        report.write_case(where, {"agent": "t", "id": case_id, "received": []})
        entries[case_id] = report.IndexEntry(behavior, close, duration, 1000, name)
    report.write_index(where, "t", entries)
    return where


def side(behavior: str, duration_ms: int, close: str = "OK") -> CaseSide:
    return CaseSide(behavior, close, 1000, True, True, False, (), "", duration_ms)


def compared(autobahn: CaseSide, native: CaseSide, case_id: str = "9.1.1") -> Comparison:
    return agreement.comparisons({case_id: autobahn}, {case_id: native})[0]


def test_kinds_show_one_count_where_both_engines_agree_and_both_where_not(
    tmp_path: Path,
) -> None:
    fuzzer = write_run(tmp_path / "a", {"4.2.5": ("OK", "OK", 1), "1.1.1": ("OK", "UNCLEAN", 1)})
    ours = write_run(
        tmp_path / "n", {"4.2.5": ("NON-STRICT", "OK", 1), "1.1.1": ("OK", "UNCLEAN", 1)}
    )
    found = agreement.compare(fuzzer, ours, label="m", agent="t")
    assert [(f.first.case_id, f.status) for f in found.findings] == [("4.2.5", "differs")]
    row = agreement.kinds_markdown([found]).splitlines()[2]
    # behavior OK, NON-STRICT, INFORMATIONAL, FAILED; close OK, INFO, WRONG CODE, UNCLEAN, ...
    assert row == "| m | 2 / 1 | 0 / 1 | · | · | 1 | · | · | 1 | · | · |"


def test_a_9x_pass_near_its_limit_against_a_time_out_is_timing(tmp_path: Path) -> None:
    # 9.1.1's limit is 10 s: Autobahn's echo came at 9.6 s, the native engine gave up at 10 s.
    fuzzer = write_run(tmp_path / "a", {"9.1.1": ("OK", "OK", 9600)})
    ours = write_run(tmp_path / "n", {"9.1.1": ("FAILED", "OK", 10004)})
    first = agreement.compare(fuzzer, ours, label="m", agent="t")
    assert [f.status for f in first.findings] == ["timing"]
    assert not first.differs
    markdown = agreement.markdown([first])
    assert "| m | 9 Limits/Performance | 1 | 0 | 0 | 1 | 0 |" in markdown
    assert "case 9.1.1**: timing" in markdown


def test_a_9x_pass_well_inside_its_limit_against_a_time_out_differs() -> None:
    first = compared(side("OK", 1200), side("FAILED", 10004))
    assert not agreement.near_limit(first)
    assert agreement.judge(first) == "differs"
    # The rerun agreeing does not excuse it: Autobahn passed well inside the limit.
    assert agreement.judge(first, [compared(side("OK", 1100), side("OK", 1300))]) == "differs"


def test_a_timing_case_is_timing_only_if_its_rerun_agrees() -> None:
    first = compared(side("OK", 9500), side("FAILED", 10001))
    assert agreement.near_limit(first)
    assert agreement.judge(first, [compared(side("OK", 9400), side("OK", 9700))]) == "timing"
    assert agreement.judge(first, [compared(side("OK", 9400), side("FAILED", 10002))]) == "differs"


def test_a_case_whose_autobahn_verdict_changes_between_its_runs_is_unstable() -> None:
    first = compared(side("OK", 5), side("NON-STRICT", 5), "3.4")
    assert agreement.judge(first, [compared(side("NON-STRICT", 6), side("NON-STRICT", 5))]) == (
        "unstable"
    )
    # Autobahn the same every time: the native engine's first answer stands as a difference.
    same = compared(side("OK", 6), side("OK", 5))
    assert agreement.judge(first, [same]) == "differs"
    assert agreement.judge(first, [same] * agreement.RERUNS) == "differs"
    # A race shows late as often as early: any rerun Autobahn judges another way counts.
    flipped = compared(side("NON-STRICT", 6), side("OK", 5))
    assert agreement.judge(first, [same, same, flipped]) == "unstable"
    assert agreement.judge(compared(side("OK", 5), side("OK", 9))) is None


def test_agreeing_verdicts_reached_for_different_reasons_differ() -> None:
    fuzzer = CaseSide("OK", "OK", 1000, True, True, False, ('["message", "a", false]',))
    ours = CaseSide("OK", "OK", 1000, False, True, False, ())
    assert compared(fuzzer, ours, "1.1.1").fields == ("closed_by_me", "received")


# ------------------------------------------------------------------ the command, for real


def agree(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsconform", "agree", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def changing_testee(tmp_path: Path, modes: list[str]) -> str:
    """A --server-cmd whose Nth start runs broken_echo in ``modes[N-1]`` (the last one after
    that): the first run is Autobahn's, the second native's, then the reruns."""
    script = tmp_path / "changing_echo.py"
    script.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        f"count = Path({str(tmp_path / 'starts')!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        f"modes = {modes!r}\n"
        f"echo = {str(BROKEN_ECHO)!r}\n"
        "mode = modes[min(n, len(modes) - 1)]\n"
        "os.execv(sys.executable, [sys.executable, echo, sys.argv[1], mode])\n"
    )
    return f"{PYTHON} {shlex.quote(str(script))} {{port}}"


def test_agree_on_the_reference_exits_0(local_backend: object, tmp_path: Path) -> None:
    done = agree("--cases", "1.1.1,2.2,7.1.1", "--outdir", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reference: 3 cases: 3 agree, 0 differ, 0 timing, 0 unstable in Autobahn" in (
        done.stdout
    )
    table = (tmp_path / "out" / "agreement.md").read_text()
    assert "| reference | 7 Close Handling | 1 | 1 | 0 | 0 | 0 |" in table
    assert (tmp_path / "out" / "reference" / "autobahn" / "raw" / "index.json").is_file()
    assert (tmp_path / "out" / "reference" / "native" / "raw" / "index.json").is_file()


def test_a_testee_that_differs_under_each_engine_exits_1_with_both_sides(
    local_backend: object, tmp_path: Path
) -> None:
    # Autobahn's runs meet wrong-close-code (1000 for an invalid close code), native's the
    # conformant echo: 7.9.1 differs every time, the rest agrees.
    testee = changing_testee(tmp_path, ["wrong-close-code", "conformant"] * (1 + agreement.RERUNS))
    done = agree(
        "--server-cmd", testee, "--cases", "1.1.1,7.9.1", "--markdown", "agree.md", cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "testee: 2 cases: 1 agree, 1 differ, 0 timing, 0 unstable in Autobahn" in out
    assert "**testee, case 7.9.1**: differs (behavior, behavior_close, remote_close_code)" in out
    assert "- Autobahn: FAILED / WRONG CODE, close code 1000, closed by the fuzzer" in out
    assert "- native: OK / OK, close code 1002, closed by the fuzzer" in out
    for number in range(1, agreement.RERUNS + 1):  # Autobahn never judges it another way
        assert (
            f"- rerun {number} (differ in behavior, behavior_close, remote_close_code): "
            "Autobahn: FAILED / WRONG CODE" in out
        )
    assert (
        "| testee | 7 Close Handling | 1 | 0 | 1 | 0 | 0 |" in (tmp_path / "agree.md").read_text()
    )


def test_a_case_autobahn_itself_judges_two_ways_is_unstable_not_agreeing(
    local_backend: object, tmp_path: Path
) -> None:
    # Only Autobahn's first run meets the broken mode: its rerun disagrees with itself.
    testee = changing_testee(tmp_path, ["wrong-close-code", "conformant"])
    done = agree("--server-cmd", testee, "--cases", "7.9.1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "testee: 1 cases: 0 agree, 0 differ, 0 timing, 1 unstable in Autobahn" in done.stdout
    assert "**testee, case 7.9.1**: unstable in Autobahn (its own runs differ)" in done.stdout
    # Judged two ways by Autobahn after one rerun: no more are needed.
    assert "- rerun (agree): Autobahn: OK / OK" in done.stdout
    assert "rerun 2" not in done.stdout
    assert (
        "| testee | 7 Close Handling | 1 | 0 | 0 | 0 | 1 |"
        in (tmp_path / "reports" / "runs" / "agree" / "agreement.md").read_text()
    )


@pytest.mark.parametrize("member", ["broken:no-such-mode", "nosuchagent"])
def test_an_unknown_member_is_a_usage_error(member: str, tmp_path: Path) -> None:
    done = agree("--agent", member, cwd=tmp_path)
    assert done.returncode == 2
    assert "--agent" in done.stderr
