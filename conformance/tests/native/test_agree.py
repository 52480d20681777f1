"""The agreement module over two small runs written in the fuzzer's format: differences,
and the per-member verdict kinds table."""

from __future__ import annotations

from pathlib import Path

from wsconform.native import agree, report


def write_run(where: Path, verdicts: dict[str, tuple[str, str]]) -> Path:
    where.mkdir()
    entries = {}
    for case_id, (behavior, close) in verdicts.items():
        name = report.report_filename("t", case_id)
        report.write_case(where, {"agent": "t", "id": case_id, "received": []})
        entries[case_id] = report.IndexEntry(behavior, close, 1, 1000, name)
    report.write_index(where, "t", entries)
    return where


def test_kinds_show_one_count_where_both_engines_agree_and_both_where_not(
    tmp_path: Path,
) -> None:
    fuzzer = write_run(tmp_path / "a", {"4.2.5": ("OK", "OK"), "1.1.1": ("OK", "UNCLEAN")})
    ours = write_run(tmp_path / "n", {"4.2.5": ("NON-STRICT", "OK"), "1.1.1": ("OK", "UNCLEAN")})
    found = agree.compare(fuzzer, ours, label="m", agent="t")
    assert [d.case_id for d in found.differences] == ["4.2.5"]
    row = agree.kinds_markdown([found]).splitlines()[2]
    # behavior OK, NON-STRICT, INFORMATIONAL, FAILED; close OK, INFO, WRONG CODE, UNCLEAN, ...
    assert row == "| m | 2 / 1 | 0 / 1 | · | · | 1 | · | · | 1 | · | · |"
