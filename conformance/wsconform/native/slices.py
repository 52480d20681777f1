"""A selection split for ``--jobs`` so that no two jobs compress the same messages.

Why: a 12.x/13.x case sends 1,000 compressed slices of one data set, and up to 40 cases send
the same slices (one data set, one message length); each job process keeps the compressed
bodies it made (``deflate_echo``), so the fuzzer-neutral snake deal of ``catalog.split``,
which gives neighbouring cases to different jobs, made two jobs compress the 12.x/13.x
messages 1.69 times over (in bytes). Here the cases that send the same slices form one
group, and the groups go to the jobs heaviest first, each to the job with the least work
so far; the other cases are dealt as ``catalog.shard_cases`` deals them.

Invariants:
- A pure function of the selection and the job count: the same split every time.
- Every case is in exactly one of the `count` slices (fewer cases than slices leave some
  empty), each slice in the fuzzer's order.
- A group's work is what its cases took in a measured run (``_SECONDS``): a balance, not a
  promise; a wrong figure makes one job longer, never a verdict different.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from wsconform import catalog
from wsconform.native import cases
from wsconform.native.casedef import EchoStream

__all__ = ["seconds", "split"]

# Seconds a case of 1,000 messages took per data set at 131,072-byte messages (full native
# run of the reference with --jobs 2, quiet 2-core machine, 2026-11-28, the engine on uvloop
# with compiled masking): the testee's level-6 compression makes text like Faust and the
# bitmap 4-5 times the cost of JSON (the bitmap and the PDF sent at level 1,
# ``deflate_echo``). A case of any message length then takes about
# _BASE + (length / 131,072) * _SECONDS[data].
_SECONDS = {
    "json_data1": 1.5,
    "html_data1": 2.1,
    "gutenberg_faust": 7.2,
    "lena512": 8.0,
    "ooms": 6.2,
}
_UNKNOWN_DATA = max(_SECONDS.values())
_BASE = 0.25
_SIZE = 131072


def seconds(exchange: EchoStream) -> float:
    """About how long a case with this exchange takes (see ``_SECONDS``)."""
    per_size = _SECONDS.get(exchange.data, _UNKNOWN_DATA)
    return (_BASE + exchange.length / _SIZE * per_size) * exchange.count / 1000


def _exchange(case_id: str) -> EchoStream | None:
    return next((s for s in cases.get(case_id).script if isinstance(s, EchoStream)), None)


def split(case_ids: Sequence[str], count: int) -> list[list[str]]:
    """`case_ids` in `count` slices (some maybe empty), cases that send the same compressed
    slices together."""
    if count < 1:
        raise ValueError(f"cannot split into {count} slices")
    groups: dict[Hashable, list[str]] = {}
    work: dict[Hashable, float] = {}
    others: list[str] = []
    for case_id in case_ids:
        exchange = _exchange(case_id)
        if exchange is None:
            others.append(case_id)
            continue
        key: Hashable = (exchange.data, exchange.length)
        groups.setdefault(key, []).append(case_id)
        work[key] = work.get(key, 0.0) + seconds(exchange)
    slices = [catalog.shard_cases(others, k, count) for k in range(1, count + 1)]
    first = {key: position for position, key in enumerate(groups)}
    loads = [0.0] * count
    for key in sorted(groups, key=lambda k: (-work[k], first[k])):
        job = min(range(count), key=lambda j: (loads[j], j))
        slices[job].extend(groups[key])
        loads[job] += work[key]
    order = {case_id: position for position, case_id in enumerate(case_ids)}
    return [sorted(s, key=order.__getitem__) for s in slices]
