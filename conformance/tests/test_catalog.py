"""catalog: the 517 case ids, their texts, and selection with wstest's own pattern semantics."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from wsconform import catalog

ROOT = Path(__file__).resolve().parents[2]
TESTSUITE_PYTHON = Path.home() / ".cache" / "wsconform" / "autobahn-25.10.1" / "bin" / "python"


def test_all_cases_are_the_517_in_the_fuzzers_order() -> None:
    assert len(catalog.ALL_CASES) == 517
    assert len(set(catalog.ALL_CASES)) == 517
    assert catalog.ALL_CASES[:3] == ("1.1.1", "1.1.2", "1.1.3")
    assert catalog.ALL_CASES[-1] == "13.7.18"
    assert list(catalog.ALL_CASES) == sorted(catalog.ALL_CASES, key=catalog.case_sort_key)


def test_categories_have_the_documented_sizes() -> None:
    sizes = Counter(catalog.category_of(c) for c in catalog.ALL_CASES)
    assert sizes == {
        "1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145,
        "7": 37, "9": 54, "10": 1, "12": 90, "13": 126,
    }  # fmt: skip
    assert set(catalog.CATEGORIES) == set(sizes)  # no 0.x, 8.x or 11.x
    assert catalog.category_label("6") == "6 UTF-8 Handling"
    assert catalog.category_label("99") == "99"


def test_case_sort_key_is_numeric() -> None:
    assert catalog.case_sort_key("1.1.2") < catalog.case_sort_key("1.1.10")
    assert catalog.case_sort_key("9.1.1") < catalog.case_sort_key("10.1.1")
    with pytest.raises(ValueError, match="not an Autobahn case id"):
        catalog.case_sort_key("1.x")


def test_a_pattern_with_a_star_is_anchored_at_the_start_only() -> None:
    # "12.*.1" is the regex 12\..*\.1 matched at the start: 12.1.10 .. 12.1.18 match too.
    assert catalog.matches("12.*.1", "12.1.1")
    assert catalog.matches("12.*.1", "12.1.18")
    assert catalog.matches("12.*.1", "12.3.1")
    assert not catalog.matches("12.*.1", "12.1.2")
    # The "." is literal: "1.*" is not "anything starting with 1".
    assert catalog.matches("1.*", "1.2.8")
    assert not catalog.matches("1.*", "10.1.1")
    assert not catalog.matches("1.*", "12.1.1")
    assert catalog.matches("7.1*", "7.13.2")


def test_a_pattern_without_a_star_is_a_literal_id() -> None:
    assert catalog.matches("7.1.5", "7.1.5")
    assert not catalog.matches("7.1", "7.1.5")
    assert not catalog.matches("7.1.", "7.1.5")


def test_select_12_star_1_takes_12_1_10_to_12_1_18() -> None:
    selected = catalog.select(["12.*.1"])
    assert selected[:10] == ["12.1.1", *(f"12.1.{n}" for n in range(10, 19))]
    assert len(selected) == 50  # five data sets x (x.1 and x.10 .. x.18)


def test_select_subtracts_excludes_and_keeps_the_fuzzers_order() -> None:
    assert catalog.select(["7.1.*", "1.1.1"], ["7.1.5", "13.*"]) == [
        "1.1.1", "7.1.1", "7.1.2", "7.1.3", "7.1.4", "7.1.6",
    ]  # fmt: skip
    assert catalog.select(["2.1", "2.1", "2.1*"]) == ["2.1", "2.10", "2.11"]


def test_profiles_select_what_they_promise() -> None:
    quick = catalog.select(*catalog.PROFILES["quick"])
    assert {catalog.category_of(c) for c in quick} == {"1", "2", "3", "4", "5", "6", "7", "10"}
    assert len(quick) == 16 + 11 + 7 + 10 + 20 + 145 + 37 + 1
    no_deflate = catalog.select(*catalog.PROFILES["no-deflate"])
    assert len(no_deflate) == 517 - 90 - 126
    assert catalog.select(*catalog.PROFILES["full"]) == list(catalog.ALL_CASES)


def test_an_unknown_literal_id_is_an_error_naming_the_closest() -> None:
    with pytest.raises(catalog.CaseSelectionError, match=r"unknown case id '7\.1\.55'.*7\.1\.5"):
        catalog.select(["7.1.55"])
    with pytest.raises(catalog.CaseSelectionError, match=r"unknown case id '9\.9\.1'"):
        catalog.select(["*"], ["9.9.1"])  # a typo in an exclude never goes unnoticed


def test_profile_selection_replaces_cases_adds_excludes_and_splits_commas() -> None:
    assert catalog.profile_selection("no-deflate") == (["*"], ["12.*", "13.*"])
    assert catalog.profile_selection("no-deflate", "1.*, 2.1.1", ["9.*,10.*"]) == (
        ["1.*", "2.1.1"],
        ["12.*", "13.*", "9.*", "10.*"],
    )
    assert catalog.profile_selection("quick", (), "6.4.*")[1] == ["6.4.*"]
    with pytest.raises(catalog.CaseSelectionError, match=r"'quik' \(closest: quick\)"):
        catalog.profile_selection("quik")


def test_a_cases_pattern_that_selects_nothing_is_an_error_but_an_exclude_may() -> None:
    with pytest.raises(catalog.CaseSelectionError, match=r"'8\.\*' selects no case"):
        catalog.select(["8.*"])
    assert catalog.select(["1.1.1"], ["12.*", "8.*"]) == ["1.1.1"]


def test_patterns_keep_wstests_other_regex_characters() -> None:
    # wstest only escapes "." and widens "*": "[12]" stays a character class.
    assert catalog.select(["[12].1*"]) == [
        *(f"1.1.{n}" for n in range(1, 9)), "2.1", "2.10", "2.11",
    ]  # fmt: skip
    with pytest.raises(catalog.CaseSelectionError, match="invalid case pattern"):
        catalog.select(["(*"])


def test_select_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        catalog.select("1.1.1")


def test_describe_gives_the_testsuites_text_as_plain_text() -> None:
    info = catalog.describe("3.2")
    assert info.category == "3" and info.category_name == "Reserved Bits"
    assert info.description == (
        "Send small text message, then send again with RSV = 2, then send Ping."
    )
    assert "RSV must be 0" in info.expectation
    info = catalog.describe("6.2.1")
    assert info.subcategory_name.startswith("Valid UTF-8 unfragmented")
    assert "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!" in info.description.split(
        "\n"
    )
    assert "<" not in info.description
    with pytest.raises(catalog.CaseSelectionError, match="closest"):
        catalog.describe("6.4.9")


def test_plain_text_turns_breaks_into_lines_and_drops_tags() -> None:
    assert catalog.plain_text("a <b>b</b><br>\nc &amp; d<br><br>e") == "a b\nc & d\n\ne"


# --- agreement with the installed fuzzer ----------------------------------------------------

needs_testsuite = pytest.mark.skipif(
    not TESTSUITE_PYTHON.exists(), reason=f"no Autobahn testsuite at {TESTSUITE_PYTHON}"
)

PATTERNS = [["12.*.1"], ["1.*"], ["7.1*"], ["*"], ["[12].1*"], ["9.*.1", "2.1"], ["6.4.*"]]


@needs_testsuite
def test_selection_agrees_with_the_fuzzers_own_resolution() -> None:
    # Ask the testsuite's CaseSet (the code wstest runs) what each pattern list selects.
    snippet = (
        "import json, sys\n"
        "from autobahntestsuite import case, caseset\n"
        "s = caseset.CaseSet(case.CaseSetname, case.CaseBasename, case.Cases,"
        " case.CaseCategories, case.CaseSubCategories)\n"
        "out = [s.parseSpecCases({'cases': p}) for p in json.loads(sys.argv[1])]\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(TESTSUITE_PYTHON), "-c", snippet, json.dumps(PATTERNS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = json.loads(proc.stdout)
    ours = [catalog.select(p) for p in PATTERNS]
    assert ours == theirs


@needs_testsuite
def test_the_packaged_data_is_what_the_generator_writes(tmp_path: Path) -> None:
    target = tmp_path / "cases.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "conformance" / "tools" / "generate_catalog.py"),
            "--python",
            str(TESTSUITE_PYTHON),
            "--output",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    packaged = ROOT / "conformance" / "wsconform" / "cases.json"
    assert json.loads(target.read_text("utf-8")) == json.loads(packaged.read_text("utf-8"))


# --- shards (--jobs N, --shard K/N) ---------------------------------------------------------


def test_shards_partition_the_selection_in_order() -> None:
    for count in (1, 2, 3, 7):
        slices = [catalog.shard_cases(catalog.ALL_CASES, k, count) for k in range(1, count + 1)]
        dealt = [case for s in slices for case in s]
        assert sorted(dealt, key=catalog.case_sort_key) == list(catalog.ALL_CASES)
        assert len(set(dealt)) == len(catalog.ALL_CASES)
        for s in slices:
            assert s == sorted(s, key=catalog.case_sort_key)
            assert abs(len(s) - len(catalog.ALL_CASES) / count) <= 1


def test_shards_are_dealt_in_snake_order() -> None:
    cases = [str(n) for n in range(8)]
    assert catalog.shard_cases(cases, 1, 2) == ["0", "3", "4", "7"]
    assert catalog.shard_cases(cases, 2, 2) == ["1", "2", "5", "6"]


def test_each_shard_of_the_full_suite_gets_its_share_of_the_deflate_cases() -> None:
    for k in (1, 2):
        deflate = [c for c in catalog.shard_cases(catalog.ALL_CASES, k, 2) if c[:3] == "12."]
        assert abs(len(deflate) - 45) <= 1  # 90 cases of 12.x, halved


def test_split_leaves_out_empty_slices() -> None:
    assert catalog.split(["1.1.1", "1.1.2"], 4) == [["1.1.1"], ["1.1.2"]]


@pytest.mark.parametrize("text", ["", "2", "0/2", "3/2", "a/b", "1/0", "-1/2"])
def test_malformed_shard_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        catalog.parse_shard(text)


def test_shard_is_parsed() -> None:
    assert catalog.parse_shard("2/4") == (2, 4)
