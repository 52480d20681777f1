"""bench/engines_side_by_side.py on a tiny selection, for real: both engines, its table and
its wait comparison; its refusal of wrong verdicts; its section in RESULTS.md. No timing is
asserted, only that the numbers are there and parse."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wsconform import backends, testee

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import engines_side_by_side as bench  # noqa: E402
import run as bench_run  # noqa: E402


def _table_rows(output: str) -> dict[str, list[str]]:
    """The rows of the printed Markdown table, by configuration."""
    lines = output.split("### Engines side by side")[1].split("\n\n")[1].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "configuration" and header[-1] == "wall / Autobahn sequential"
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: row for row in rows}


@pytest.mark.autobahn
def test_both_engines_on_a_tiny_selection(
    local_backend: backends.LocalBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--cases", "1.1.1,2.1,5.19", "--configs", "autobahn,native", "--repeats", "1"]
    status = bench.main([*argv, "--outdir", str(tmp_path)])
    output = capsys.readouterr().out
    assert status == 0, output
    rows = _table_rows(output)
    assert sorted(rows) == ["autobahn", "native"]
    for row in rows.values():
        assert row[1] == "1"
        wall, engine_cpu, testee_cpu = (float(cell) for cell in row[2:5])
        assert wall > 0 and engine_cpu > 0 and testee_cpu > 0
    assert rows["autobahn"][-1] == "1.00"
    assert float(rows["native"][-1]) > 0
    assert "delays and firings are identical in every case" in output
    assert "| continue 1 s | 1: 5.19 |" in output

    # The same run held to the no-deflate profile's counts is refused, not timed.
    run_dir = tmp_path / "autobahn-1"
    assert bench.verdict_problem(run_dir, 0, "no-deflate", "1.1.1,2.1,5.19") is None
    problem = bench.verdict_problem(run_dir, 0, "no-deflate", None)
    assert problem == "3 OK + 0 INFORMATIONAL, expected 298 + 3"
    failing = bench.verdict_problem(run_dir, 1, "no-deflate", "1.1.1")
    assert failing is not None and failing.startswith("strict gate: exit 1")


def test_testee_is_told_from_the_engine() -> None:
    reference = testee.command_for(testee.with_python(testee.reference_command()), 9001)
    assert bench.is_testee(reference)
    assert not bench.is_testee([str(bench.WSCONFORM), "run", "--agent", "reference"])
    assert not bench.is_testee([sys.executable, "-m", "rfc6455", "client-testee"])


def test_section_sits_above_run_py_part_and_survives_it(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\nintro\n\n{bench_run.RESULTS_MARKER}\n\nold tables\n")
    bench.write_section(results, *bench.MARKERS["no-deflate"], "first")
    bench.write_section(results, *bench.MARKERS["no-deflate"], "second")
    bench_run.write_results(results, ["new tables"])
    text = results.read_text()
    assert text.count(bench.BEGIN) == 1 and "first" not in text
    assert text.index("second") < text.index(bench_run.RESULTS_MARKER) < text.index("new tables")


def test_each_profile_has_its_own_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\n{bench_run.RESULTS_MARKER}\n\nold tables\n")
    for profile, text in [
        ("no-deflate", "no-deflate one"),
        ("full", "full one"),
        ("full", "full two"),
        ("no-deflate", "no-deflate two"),
    ]:
        bench.write_section(results, *bench.MARKERS[profile], text)
    text = results.read_text()
    assert "one" not in text
    full_begin, _ = bench.MARKERS["full"]
    assert text.count(full_begin) == 1 and text.count(bench.BEGIN) == 1
    order = [text.index(t) for t in ("no-deflate two", "full two", bench_run.RESULTS_MARKER)]
    assert order == sorted(order)
