"""The comparison matrix: built from real runs of two agents, rendered as Markdown and HTML.

The reference server and the picows peer are fuzzed over a handful of cases where they are
known to differ (picows accepts the invalid close code 0 of 7.9.1 and has no
permessage-deflate, so 12.1.1 is UNIMPLEMENTED for it) and where they agree (1.1.1), plus one
9.x case for the speed table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wsconform import agents, backends, compare, results
from wsconform.cli import main

SELECTION = "1.1.1,7.9.1,9.1.1,12.1.1"


@pytest.fixture(scope="module")
def compared(
    local_backend: backends.LocalBackend, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`wsconform compare` run for real over SELECTION: its output directory."""
    outdir = tmp_path_factory.mktemp("compare")
    done = subprocess.run(
        [
            sys.executable, "-m", "wsconform", "compare", "-q",
            "--agent", "reference", "--agent", "picows",
            "--cases", SELECTION, "--outdir", str(outdir),
            "--markdown", str(outdir / "copy" / "peers.md"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cases differ between agents" in done.stdout
    return outdir


def matrix_of(outdir: Path) -> compare.Matrix:
    return compare.build([results.load(outdir / "reference"), results.load(outdir / "picows")])


def test_matrix_lists_the_cases_where_the_agents_differ(compared: Path) -> None:
    matrix = matrix_of(compared)
    differing = {d.case_id: d for d in matrix.differences()}
    assert "1.1.1" not in differing  # both echo an empty text message
    assert differing["7.9.1"].by_agent["reference"] is not None
    picows = differing["12.1.1"].by_agent["picows"]
    assert picows is not None and picows.behavior == "UNIMPLEMENTED"
    assert matrix.counts("picows")["UNIMPLEMENTED"] == 1
    assert matrix.counts("reference", "1") == {"OK": 1}


def test_markdown_shows_counts_differences_with_result_texts_and_durations(
    compared: Path,
) -> None:
    text = (compared / compare.MARKDOWN_FILE).read_text()
    assert text == (compared / "copy" / "peers.md").read_text()
    assert "| category | reference | picows |" in text
    assert "## Where the agents differ (" in text
    row = next(line for line in text.splitlines() if line.startswith("| 7.9.1 |"))
    reason = results.load(compared / "picows").cases["7.9.1"].result
    assert " ".join(reason.split())[:30].replace("_", "\\_") in row
    speed = next(line for line in text.splitlines() if line.startswith("| 9.1.1 |"))
    assert speed.count("|") == 4 and "-" not in speed.replace("| 9.1.1 |", "")


def test_html_links_each_differing_verdict_to_its_case_report(compared: Path) -> None:
    page = (compared / compare.HTML_FILE).read_text()
    assert "picows_case_7_9_1.html" in page
    assert (compared / "picows" / "raw" / "picows_case_7_9_1.html").is_file()
    assert "<th>reference</th><th>picows</th>" in page


def test_existing_runs_can_be_compared_without_running_again(
    compared: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "--run", str(compared / "reference"), "--run", str(compared / "picows"),
         "--outdir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / compare.MARKDOWN_FILE).read_text().count("| 12.1.1 |") == 1


def test_the_same_agent_twice_is_refused(compared: Path) -> None:
    run = results.load(compared / "picows")
    with pytest.raises(ValueError, match="given twice"):
        compare.build([run, run])


def test_unknown_agent_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["compare", "--agent", "reference", "--agent", "nosuch", "--outdir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "websockets" in result.output


def test_compare_needs_two_agents() -> None:
    result = CliRunner().invoke(main, ["compare", "--agent", "reference"])
    assert result.exit_code == 2


def test_registry_commands_fill_in_the_interpreter_and_testees() -> None:
    command = agents.lookup("aiohttp").command("/usr/bin/python3")
    assert command.startswith("/usr/bin/python3 ")
    assert str(agents.TESTEES / "aiohttp_echo.py") in command
    assert "{port}" in command
    for agent in agents.AGENTS.values():
        if agent.requires is not None:
            assert (agents.TESTEES / f"{agent.name}_echo.py").is_file()


def test_agent_given_as_name_and_command() -> None:
    assert agents.resolve("mine=./srv {port}") == ("mine", "./srv {port}")
    with pytest.raises(ValueError, match="port"):
        agents.resolve("mine=./srv 9000")
    with pytest.raises(agents.UnknownAgent, match="known: reference"):
        agents.lookup("nosuch")
