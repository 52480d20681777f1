"""native.slices: --jobs and --shard split the selection so that no two jobs compress the
same 12.x/13.x messages, and the jobs still get equal shares of the work."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

from wsconform import catalog, pipeline
from wsconform.engines.native import NativeEngine
from wsconform.native import cases, slices
from wsconform.native.casedef import EchoStream

FULL = catalog.select(["*"])


def _exchange(case_id: str) -> EchoStream | None:
    return next((s for s in cases.get(case_id).script if isinstance(s, EchoStream)), None)


def _sequences(case_ids: list[str]) -> dict[Hashable, int]:
    """The compressed message sequences a job makes (one per data, length and offers), with
    the bytes each compresses."""
    found: dict[Hashable, int] = {}
    for case_id in case_ids:
        exchange = _exchange(case_id)
        if exchange is not None:
            key = (exchange.data, exchange.length, cases.get(case_id).offers)
            found[key] = exchange.length * exchange.count
    return found


def test_slices_partition_the_selection_in_the_fuzzers_order() -> None:
    for count in (1, 2, 3, 5):
        parts = slices.split(FULL, count)
        assert len(parts) == count
        assert sorted(c for part in parts for c in part) == sorted(FULL)
        for part in parts:
            assert part == [c for c in FULL if c in set(part)]
        assert parts == slices.split(FULL, count)


def test_no_two_jobs_compress_the_same_messages() -> None:
    parts = slices.split(FULL, 2)
    made = [_sequences(part) for part in parts]
    assert not made[0].keys() & made[1].keys()
    assert made[0] | made[1] == _sequences(FULL)
    # The snake deal this replaces had the two jobs compress 1.69 times the bytes.
    once = sum(_sequences(FULL).values())
    assert sum(sum(_sequences(p).values()) for p in catalog.split(FULL, 2)) > 1.6 * once


def test_each_job_gets_its_share_of_the_exchanges_and_of_the_other_cases() -> None:
    parts = slices.split(FULL, 2)
    seconds = [sum(slices.seconds(e) for c in p if (e := _exchange(c)) is not None) for p in parts]
    assert abs(seconds[0] - seconds[1]) <= 0.02 * sum(seconds)
    for part in parts:
        others = [c for c in part if _exchange(c) is None]
        assert 140 <= len(others) <= 161  # of 301, dealt as the snake deals them


def test_fewer_cases_than_slices_leave_slices_empty() -> None:
    assert slices.split(["1.1.1"], 2) == [["1.1.1"], []]


def test_a_native_shard_is_the_native_split() -> None:
    settings = pipeline.RunSettings(
        agent="reference", outdir=Path("unused"), cases=["12.*", "13.*"]
    )
    engine = NativeEngine()
    shards = [pipeline.selection(settings, (k, 2), engine.slices) for k in (1, 2)]
    assert shards == slices.split(catalog.select(["12.*", "13.*"]), 2)
    assert shards != catalog.split(catalog.select(["12.*", "13.*"]), 2)
