"""Cases where the native engine once disagreed with Autobahn 25.10.1 on a non-conformant
testee, replayed against a real testee over loopback.

Each expected verdict is what the real fuzzer gave the same testee, measured here (the run
count is in each test); reports/agreement.md has the full table.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from wsconform import testee
from wsconform.native import engine

BROKEN_ECHO = Path(__file__).resolve().parents[2] / "testees" / "broken_echo.py"


def run_broken(mode: str, case_id: str, outdir: Path) -> dict[str, Any]:
    """The native engine's report of ``case_id`` against ``broken_echo.py`` in ``mode``."""
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROKEN_ECHO))} {{port}} {mode}"
    with testee.start(command, outdir / "testee") as server:
        server.wait_ready()
        engine.run(server.url, "t", [case_id], outdir / "run", seed=1)
    index = json.loads((outdir / "run" / "index.json").read_text("utf-8"))
    report: dict[str, Any] = json.loads(
        (outdir / "run" / index["t"][case_id]["reportfile"]).read_text("utf-8")
    )
    return report


def test_the_first_two_queued_frames_share_one_write_so_a_hold_back_testee_is_non_strict(
    tmp_path: Path,
) -> None:
    # 3.3 sends text, a frame with RSV = 3 and a Ping as three sync writes. The fuzzer's
    # reactor flushes its buffer after running its due timers, so the first two leave in one
    # TCP write; a testee that holds echoes until its input is read through never echoes.
    # Autobahn 25.10.1 against broken_echo no-echo-before-fail: NON-STRICT / OK, 4 runs of 4.
    report = run_broken("no-echo-before-fail", "3.3", tmp_path)
    writes = [e["length"] for e in report["wirelog"] if e["kind"] == "tx-octets"]
    # After the upgrade request: text + bad frame together. (The Ping follows a reactor turn
    # later, unless the testee's Close and EOF are in by then, as in Autobahn's runs too.)
    assert writes[1] == 19 + 19
    assert (report["behavior"], report["behaviorClose"]) == ("NON-STRICT", "OK")
    assert report["received"] == []
