"""The product's acceptance runs: the real fuzzer over whole profiles (tens of seconds each).

- Our own CI compliance gate: the reference server through the quick profile, strict gate.
- The websockets echo testee through the no-deflate profile: wsconform's verdict counts are
  the raw fuzzer's own, its FAILED cases exit 1, and the committed expectations file turns
  the same run into exit 0.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from harness_runs import wsconform

from wsconform import backends, catalog, testee

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS = ROOT / "conformance" / "testees" / "websockets.expectations.toml"

pytestmark = [pytest.mark.autobahn, pytest.mark.timeout(600)]


#: Seconds one whole-profile run gets (within the test's own 600).
RUN_TIMEOUT = 580


# A sample of the permessage-deflate cases for the CI gate: one of every 12.x payload set and
# every 13.x parameter set, 13.3-13.7 (the small-window offers many libraries exclude) among
# them. The whole of 12 and 13 takes about 17 minutes: `make conformance` runs it.
DEFLATE_SAMPLE = (
    "12.1.3", "12.2.5", "12.3.7", "12.4.4", "12.5.9",
    "13.1.2", "13.2.6", "13.3.1", "13.4.5", "13.5.9", "13.6.3", "13.7.7",
)  # fmt: skip


def test_reference_server_passes_the_quick_profile_under_the_strict_gate(
    local_backend: backends.LocalBackend, tmp_path: Path, env_without_ci_summary: dict[str, str]
) -> None:
    if importlib.util.find_spec("rfc6455.__main__") is None:
        pytest.skip("the reference server (python -m rfc6455 serve) is not written yet")
    quick, _ = catalog.PROFILES["quick"]
    cases = ",".join([*quick, *DEFLATE_SAMPLE])
    done = wsconform(
        "run", "--cases", cases, "--gate", "strict", "--outdir", str(tmp_path),
        "--backend", "local", env=env_without_ci_summary, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["agent"] == "reference"
    assert summary["passed"] is True
    # Categories 1-7 and 10, and the deflate sample, every one of them passed.
    assert len(summary["selected"]) == 247 + len(DEFLATE_SAMPLE)
    assert "UNIMPLEMENTED" not in done.stdout + done.stderr


def _raw_fuzzer_counts(
    venv: Path, echo_cmd: str, workdir: Path
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Behavior and behaviorClose counts from wstest run by hand, as maintainers do today."""
    outdir = workdir / "raw-by-hand"
    running = testee.start(echo_cmd, workdir / "testee")
    with running:
        running.wait_ready()
        spec = {
            "outdir": str(outdir),
            "servers": [{"url": running.url, "agent": "websockets", "options": {"version": 18}}],
            "cases": ["*"],
            "exclude-cases": ["12.*", "13.*"],
            "exclude-agent-cases": {},
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        subprocess.run(
            [str(venv / "bin" / "python"), str(venv / "bin" / "wstest"),
             "-m", "fuzzingclient", "-s", str(workdir / "spec.json")],
            capture_output=True, timeout=400, check=True,
        )  # fmt: skip
    index = json.loads((outdir / "index.json").read_text())["websockets"]
    return (
        collections.Counter(case["behavior"] for case in index.values()),
        collections.Counter(case["behaviorClose"] for case in index.values()),
    )


def test_websockets_no_deflate_matches_the_raw_fuzzer_and_gates_on_its_failures(
    local_backend: backends.LocalBackend,
    tmp_path: Path,
    echo_cmd: str,
    env_without_ci_summary: dict[str, str],
) -> None:
    outdir = tmp_path / "websockets"
    done = wsconform(
        "run", "--server-cmd", echo_cmd, "--agent", "websockets", "--gate", "standard",
        "--profile", "no-deflate", "--outdir", str(outdir), "--backend", "local",
        env=env_without_ci_summary, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((outdir / "summary.json").read_text())
    ours = [case for case in summary["cases"] if case["behavior"] is not None]
    assert len(ours) == 301
    failed = sorted(case["id"] for case in summary["cases"] if case["outcome"] == "failed")
    assert failed == ["7.1.5", "9.3.1", "9.3.2", "9.3.3", "9.4.1", "9.4.2", "9.4.3"]

    # What wsconform reports is exactly what the fuzzer wrote in this run.
    raw = json.loads((outdir / "raw" / "index.json").read_text())["websockets"]
    assert collections.Counter(case["behavior"] for case in ours) == collections.Counter(
        case["behavior"] for case in raw.values()
    )
    assert {case["id"]: case["behavior_close"] for case in ours} == {
        case_id: case["behaviorClose"] for case_id, case in raw.items()
    }

    # And a run of wstest by hand agrees. websockets' OK / NON-STRICT split on 3.4 and 4.1.5
    # depends on timing (whether the echo of the message before the bad frame is flushed
    # before the connection fails), so those two verdicts are compared as "accepted".
    assert local_backend.venv is not None
    behavior, behavior_close = _raw_fuzzer_counts(local_backend.venv, echo_cmd, tmp_path)
    ours_behavior = collections.Counter(case["behavior"] for case in ours)
    for counts in (ours_behavior, behavior):
        counts["accepted"] = counts.pop("OK", 0) + counts.pop("NON-STRICT", 0)
    assert ours_behavior == behavior
    assert collections.Counter(case["behavior_close"] for case in ours) == behavior_close

    regated = wsconform(
        "gate", str(outdir), "--gate", "standard", "--expectations", str(EXPECTATIONS),
        env=env_without_ci_summary, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert regated.returncode == 0, regated.stdout + regated.stderr
    assert "7 expected failures, 0 failed" in regated.stdout
