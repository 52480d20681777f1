"""gate: presets, expectations files and baseline diffs, over runs the real fuzzer made."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fuzzer_runs import real_run

from wsconform import gate, results
from wsconform.backends import LocalBackend
from wsconform.results import CaseResult, RunResults


@pytest.fixture(scope="module")
def websockets_run(
    tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend
) -> RunResults:
    return results.load(real_run(tmp_path_factory, "websockets", local_backend))


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend) -> RunResults:
    return results.load(real_run(tmp_path_factory, "plain", local_backend), "plain-a")


def outcomes(report: gate.GateReport) -> dict[str, str]:
    return {v.case_id: v.outcome for v in report.verdicts}


def expect(text: str) -> list[gate.Expectation]:
    return gate.parse_expectations(text, "expect.toml")


def expect_entries(*entries: tuple[str, str, str]) -> list[gate.Expectation]:
    """An expectations file of ``(case, behavior, reason)`` entries, written as users do."""
    return expect(
        "\n".join(
            f'[[expect]]\ncase = "{case}"\nbehavior = "{behavior}"\nreason = "{reason}"\n'
            for case, behavior, reason in entries
        )
    )


def test_exit_codes_are_the_documented_ones() -> None:
    assert (
        gate.EXIT_OK,
        gate.EXIT_FAILURES,
        gate.EXIT_USAGE,
        gate.EXIT_RUN_ERROR,
        gate.EXIT_REGRESSION,
    ) == (0, 1, 2, 3, 4)


# --- presets on a real run ------------------------------------------------------------------


def test_strict_fails_non_strict_and_failed_cases(websockets_run: RunResults) -> None:
    report = gate.evaluate(websockets_run, "strict")
    got = outcomes(report)
    assert got["1.1.1"] == "passed"
    assert got["7.1.6"] == "informational"  # INFORMATIONAL/INFORMATIONAL passes strict
    assert got["3.2"] == "failed"  # NON-STRICT is not strict
    assert got["7.1.5"] == "failed"
    assert not report.passed and report.exit_code == gate.EXIT_FAILURES
    assert sum(report.counts.values()) == len(websockets_run.cases)
    assert "NON-STRICT/OK is not OK/OK" in next(
        v.reason for v in report.verdicts if v.case_id == "3.2"
    )


def test_standard_accepts_non_strict_but_not_failed(websockets_run: RunResults) -> None:
    report = gate.evaluate(websockets_run, "standard")
    got = outcomes(report)
    assert got["3.2"] == "non-strict"
    assert got["7.1.5"] == "failed"
    assert report.counts["failed"] == 1
    assert report.exit_code == gate.EXIT_FAILURES


def test_the_whole_run_passes_once_its_failure_is_expected(websockets_run: RunResults) -> None:
    known = expect(
        """
        [[expect]]
        case = "7.1.5"
        behavior = ["FAILED"]
        behavior_close = ["WRONG CODE"]
        result = "The close code should have been 1000 or empty"
        reason = "websockets answers 1002 to a close frame inside a fragmented message"
        """
    )
    report = gate.evaluate(websockets_run, "standard", known)
    assert outcomes(report)["7.1.5"] == "expected-failure"
    assert report.passed and report.exit_code == gate.EXIT_OK
    verdict = next(v for v in report.verdicts if v.case_id == "7.1.5")
    assert verdict.reason.startswith("websockets answers 1002")


def test_a_listed_case_failing_another_way_is_a_changed_failure(
    websockets_run: RunResults,
) -> None:
    known = expect(
        """
        [[expect]]
        case = "7.1.5"
        behavior = "FAILED"
        result = "some other text"
        reason = "listed with a different result text"
        """
    )
    report = gate.evaluate(websockets_run, "standard", known)
    verdict = next(v for v in report.verdicts if v.case_id == "7.1.5")
    assert verdict.outcome == "changed-failure"
    assert "result 'The close code should have been 1000 or empty'" in verdict.reason
    assert report.exit_code == gate.EXIT_FAILURES


def test_a_listed_case_that_passes_is_reported_but_does_not_fail(
    websockets_run: RunResults,
) -> None:
    known = expect_entries(("7.1.5", "FAILED", "known"), ("1.1.1", "FAILED", "was broken once"))
    report = gate.evaluate(websockets_run, "standard", known)
    assert outcomes(report)["1.1.1"] == "unexpected-pass"
    assert report.counts["unexpected-pass"] == 1
    assert report.exit_code == gate.EXIT_OK
    assert any("now pass" in note for note in report.notes)


def test_an_exact_id_entry_wins_over_a_pattern(websockets_run: RunResults) -> None:
    known = expect_entries(("7.*", "NON-STRICT", "pattern"), ("7.1.5", "FAILED", "exact"))
    report = gate.evaluate(websockets_run, "strict", known)
    verdict = next(v for v in report.verdicts if v.case_id == "7.1.5")
    assert (verdict.outcome, verdict.reason) == ("expected-failure", "exact")


def test_unimplemented_fails_unless_allowed(plain_run: RunResults) -> None:
    refused = gate.evaluate(plain_run, "standard")
    assert outcomes(refused) == {"1.1.1": "passed", "12.1.1": "failed", "13.1.1": "failed"}
    assert "--allow-unimplemented" in refused.verdicts[1].reason
    assert refused.exit_code == gate.EXIT_FAILURES

    allowed = gate.evaluate(plain_run, "strict", allow_unimplemented=True)
    assert outcomes(allowed)["12.1.1"] == "unimplemented"
    assert allowed.counts["unimplemented"] == 2 and allowed.counts["failed"] == 0
    assert allowed.passed and allowed.exit_code == gate.EXIT_OK


def test_an_unknown_preset_names_the_closest(websockets_run: RunResults) -> None:
    with pytest.raises(gate.GateConfigError, match="did you mean 'strict'"):
        gate.evaluate(websockets_run, "strcit")


# --- what the run itself says ---------------------------------------------------------------


def test_selected_cases_without_a_result_fail(websockets_run: RunResults) -> None:
    run = dataclasses.replace(websockets_run, selected=[*websockets_run.cases, "1.1.2"])
    report = gate.evaluate(run, "standard")
    verdict = next(v for v in report.verdicts if v.case_id == "1.1.2")
    assert verdict.outcome == "failed" and verdict.result is None
    assert "no result" in verdict.reason
    assert [v.case_id for v in report.verdicts][:2] == ["1.1.1", "1.1.2"]  # in case order


def test_a_partial_run_skips_what_did_not_run_and_cannot_pass(websockets_run: RunResults) -> None:
    known = expect_entries(("7.1.5", "FAILED", "known"))
    run = dataclasses.replace(
        websockets_run, selected=[*websockets_run.cases, "9.1.1"], partial=True
    )
    report = gate.evaluate(run, "standard", known)
    assert outcomes(report)["9.1.1"] == "skipped"
    assert report.partial and not report.passed
    assert report.exit_code == gate.EXIT_FAILURES
    assert any("partial run cannot pass" in n for n in report.notes)


def test_excluded_cases_are_skipped(websockets_run: RunResults) -> None:
    run = dataclasses.replace(websockets_run, excluded=["2.10"])
    report = gate.evaluate(run, "lenient")
    verdict = next(v for v in report.verdicts if v.case_id == "2.10")
    assert (verdict.outcome, verdict.reason) == ("skipped", "excluded")


def test_cases_that_never_ran_count_as_failed(websockets_run: RunResults) -> None:
    run = results.mark_missing(websockets_run, ["9.1.1", "9.1.2"], "the testee exited with 1")
    report = gate.evaluate(run, "lenient")
    assert outcomes(report)["9.1.2"] == "failed"
    assert report.exit_code == gate.EXIT_FAILURES


def test_a_run_without_any_result_is_a_run_error(tmp_path: Path) -> None:
    # Hand-built: what the runner holds when the fuzzer reached nothing (see test_results'
    # "dead" run: its index.json has no results to load).
    run = RunResults(agent="nobody", outdir=tmp_path, cases={}, selected=["1.1.1"])
    report = gate.evaluate(run, "lenient")
    assert report.exit_code == gate.EXIT_RUN_ERROR and not report.passed


def test_lenient_ignores_the_close_verdict_standard_does_not(tmp_path: Path) -> None:
    # Hand-built: the real echo servers here never produce OK with an UNCLEAN close, and this
    # is exactly the difference between the two presets.
    case = CaseResult("7.1.1", "OK", "UNCLEAN", 1, None, None)
    run = RunResults(agent="a", outdir=tmp_path, cases={"7.1.1": case})
    assert outcomes(gate.evaluate(run, "lenient")) == {"7.1.1": "passed"}
    assert outcomes(gate.evaluate(run, "standard")) == {"7.1.1": "failed"}
    assert outcomes(gate.evaluate(run, "strict")) == {"7.1.1": "failed"}


# --- expectations files ---------------------------------------------------------------------


def test_load_expectations_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "known.toml"
    path.write_text(
        '[[expect]]\ncase = "9.3.*"\nbehavior = ["FAILED"]\nbehavior_close = ["OK"]\n'
        'reason = "quadratic reassembly in the testee"\n'
    )
    (entry,) = gate.load_expectations(path)
    assert entry == gate.Expectation(
        "9.3.*",
        frozenset({"FAILED"}),
        frozenset({"OK"}),
        None,
        "quadratic reassembly in the testee",
    )
    assert entry.selects("9.3.9") and not entry.selects("9.4.1")
    with pytest.raises(gate.GateConfigError, match="cannot read expectations file"):
        gate.load_expectations(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\nreason = "x"\n\n[[expect]]\n'
            'case = "7.1.6"\nbehavour = "FAILED"\nreason = "x"\n',
            r"entry 2, line 6: unknown key 'behavour'; did you mean 'behavior'\?",
        ),
        (
            '[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\n',
            r"entry 1, line 1: missing required key 'reason'",
        ),
        ('[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\nreason = " "\n', "'reason' should"),
        (
            '[[expect]]\ncase = "7.1.5"\nbehavior = "FAIL"\nreason = "x"\n',
            r"unknown verdict 'FAIL'; did you mean 'FAILED'\?",
        ),
        (
            '[[expect]]\ncase = "7.1.5"\nbehavior = "FAILED"\nbehavior_close = ["WRONG_CODE"]\n'
            'reason = "x"\n',
            r"did you mean 'WRONG CODE'\?",
        ),
        (
            '[[expect]]\ncase = "7.1.55"\nbehavior = "FAILED"\nreason = "x"\n',
            r"unknown case id '7\.1\.55'",
        ),
        ('[[expect]]\ncase = "8.*"\nbehavior = "FAILED"\nreason = "x"\n', "selects no case"),
        (
            '[[expects]]\ncase = "7.1.5"\n',
            r"unknown top-level key 'expects'; did you mean 'expect'",
        ),
        ('[[expect]]\ncase = "7.1.5\n', "not valid TOML"),
        ('[[expect]]\ncase = "7.1.5"\nbehavior = []\nreason = "x"\n', "non-empty list"),
    ],
)
def test_bad_expectations_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(gate.GateConfigError, match=message) as raised:
        gate.parse_expectations(text, "expect.toml")
    assert str(raised.value).startswith("expect.toml: ")


# --- baseline diffs -------------------------------------------------------------------------


def test_diff_finds_regressions_and_fixes(
    websockets_run: RunResults, plain_run: RunResults
) -> None:
    # websockets with deflate, then without it: 12.1.1 regresses OK -> UNIMPLEMENTED.
    changes = gate.diff(websockets_run, plain_run)
    assert [c.describe() for c in changes.regressions] == ["12.1.1: OK/OK -> UNIMPLEMENTED/OK"]
    assert changes.fixes == [] and changes.unchanged == 1  # 1.1.1
    assert changes.added == ["13.1.1"]
    assert "7.1.5" in changes.removed
    assert changes.exit_code() == gate.EXIT_REGRESSION
    assert changes.exit_code(fail_on_regression=False) == gate.EXIT_OK

    back = gate.diff(plain_run, websockets_run)
    assert [c.case_id for c in back.fixes] == ["12.1.1"] and back.regressions == []
    assert back.exit_code() == gate.EXIT_OK


def test_diff_ignores_durations(websockets_run: RunResults) -> None:
    slower = dataclasses.replace(
        websockets_run,
        cases={
            k: dataclasses.replace(v, duration_ms=(v.duration_ms or 0) + 5000)
            for k, v in websockets_run.cases.items()
        },
    )
    changes = gate.diff(websockets_run, slower)
    assert (changes.regressions, changes.fixes, changes.changed) == ([], [], [])
    assert changes.unchanged == len(websockets_run.cases)
