"""The deliberately broken echo testee against the real fuzzer: each mode earns its verdicts.

Each mode runs through a few cases chosen to show the verdict kind it exists for; the
``conformant`` run covers every one of those cases and must get OK/OK on them (INFORMATIONAL
where the case is informational), so each mode's verdicts are its own fault, not the cases'.
The full table over cases 1-7 and 10 is in conformance/testees/broken_echo.md.
"""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

import pytest

from wsconform import backends, progress, runner
from wsconform.engines.autobahn import AutobahnEngine

TESTEE = Path(__file__).resolve().parents[1] / "testees" / "broken_echo.py"

pytestmark = [pytest.mark.autobahn, pytest.mark.timeout(180)]

# mode -> {case: (behavior, behaviorClose)}, as Autobahn 25.10.1 decides them.
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "late-utf8": {"6.4.1": ("NON-STRICT", "OK")},
    "no-utf8": {"6.3.1": ("FAILED", "FAILED")},
    "wrong-close-code": {"7.9.1": ("FAILED", "WRONG CODE")},
    "drop-tcp": {"1.1.1": ("OK", "UNCLEAN")},
    "no-tcp-close": {"2.2": ("OK", "UNCLEAN"), "2.5": ("OK", "FAILED BY CLIENT")},
    "no-pong": {"2.2": ("FAILED", "OK")},
    "ignore-rsv": {"3.1": ("FAILED", "FAILED")},
    "no-echo-before-fail": {"3.2": ("NON-STRICT", "OK"), "5.15": ("NON-STRICT", "OK")},
    "server-closes-first": {"1.1.1": ("OK", "FAILED")},
    "bad-accept": {"1.1.1": ("FAILED", "FAILED")},
    "echo-as-binary": {"1.1.1": ("FAILED", "WRONG CODE"), "9.7.1": ("FAILED", "OK")},
}
INFORMATIONAL = ("INFORMATIONAL", "INFORMATIONAL")
EXPECTED["conformant"] = {
    case: ("OK", "OK") for verdicts in EXPECTED.values() for case in verdicts
} | {"7.1.6": INFORMATIONAL}


def fuzz(
    mode: str, cases: list[str], fuzzer: backends.Backend, outdir: Path
) -> dict[str, tuple[str, str]]:
    """The fuzzer's (behavior, behaviorClose) per case for the testee in `mode`."""
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(TESTEE))} {{port}} {mode}"
    config = runner.RunConfig(
        agent=f"broken-{mode}", outdir=outdir, cases=cases, preset="lenient", server_cmd=command
    )
    view = progress.LineView(io.StringIO())
    outcome = runner.execute(config, AutobahnEngine(fuzzer), view, lambda _: None)
    return {
        case: (result.behavior, result.behavior_close)
        for case, result in outcome.results.cases.items()
    }


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_broken_echo_mode_earns_its_verdicts(
    mode: str, local_backend: backends.LocalBackend, tmp_path: Path
) -> None:
    expected = EXPECTED[mode]
    assert fuzz(mode, sorted(expected), local_backend, tmp_path) == expected
