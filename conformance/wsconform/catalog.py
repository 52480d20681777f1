"""The Autobahn|Testsuite case catalog: ids, categories, descriptions, case selection, shards.

Invariants:
- ``ALL_CASES`` holds the 517 case ids of autobahntestsuite 25.10.1 in the fuzzer's own order
  (``autobahntestsuite.case.Cases``), which is also numeric order (``case_sort_key``).
- Everything here is read from the packaged ``cases.json``, generated once from the testsuite's
  case classes by ``conformance/tools/generate_catalog.py``; nothing is decided here.
- Case selection follows ``wstest`` exactly: a pattern containing ``*`` becomes a regular
  expression (``.`` literal, ``*`` = ``.*``; every other character keeps its regex meaning)
  matched at the *start* of the id only, so ``12.*.1`` also selects ``12.1.10`` .. ``12.1.18``;
  a pattern without ``*`` is a literal id; the selection is ``cases`` minus ``exclude``, sorted
  numerically. Where ``wstest`` would crash later (an unknown literal id) or silently run
  nothing (a ``cases`` pattern that matches no case), we stop early with
  ``CaseSelectionError`` naming the closest ids.
- Sharding is a pure function of a selection and the slice count (`shard_cases`): shard K/N
  of a CI matrix and job K of ``--jobs N`` hold exactly the same cases, so slices made on
  different machines merge like the ones made here. Slices are dealt in "snake" order
  (1..N, N..1, 1..N, ...) over the selection in the fuzzer's order: every slice gets its
  share of every category, and within a category of growing message sizes neither slice
  always draws the larger one.

No I/O except reading the packaged data file once, at import.
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

__all__ = [
    "ALL_CASES",
    "CATEGORIES",
    "PROFILES",
    "SUBCATEGORIES",
    "TESTSUITE_SOURCE",
    "CaseInfo",
    "CaseSelectionError",
    "case_sort_key",
    "category_label",
    "category_of",
    "describe",
    "excluded_by",
    "matches",
    "parse_shard",
    "plain_text",
    "profile_selection",
    "resolve",
    "select",
    "selection",
    "shard_cases",
    "split",
    "split_patterns",
]

T = TypeVar("T")


def _load_data() -> dict[str, Any]:
    """Read the packaged catalog generated from the testsuite."""
    text = resources.files(__package__).joinpath("cases.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_DATA = _load_data()

TESTSUITE_SOURCE: str = _DATA["source"]
ALL_CASES: tuple[str, ...] = tuple(c["id"] for c in _DATA["cases"])
CATEGORIES: dict[str, str] = dict(_DATA["categories"])
SUBCATEGORIES: dict[str, str] = dict(_DATA["subcategories"])
_RAW_TEXT: dict[str, tuple[str, str]] = {
    c["id"]: (c["description"], c["expectation"]) for c in _DATA["cases"]
}
_KNOWN = frozenset(ALL_CASES)

# Profiles as (cases patterns, exclude patterns), in wstest's pattern language.
# "1.*" selects 1.x only: the match is anchored at the start and "." is literal.
PROFILES: dict[str, tuple[list[str], list[str]]] = {
    "quick": (["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"], []),
    "no-deflate": (["*"], ["12.*", "13.*"]),
    "full": (["*"], []),
}


class CaseSelectionError(ValueError):
    """A case id or pattern that selects nothing: a usage error (exit 2)."""


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """What the testsuite says a case does and expects, as plain text."""

    id: str
    category: str
    category_name: str
    subcategory_name: str
    description: str
    expectation: str


def category_of(case_id: str) -> str:
    """The top-level category of a case id: ``"6.4.1"`` -> ``"6"``."""
    return case_id.split(".", 1)[0]


def category_label(category: str) -> str:
    """A category as people read it in reports: ``"6"`` -> ``"6 UTF-8 Handling"``."""
    name = CATEGORIES.get(category)
    return f"{category} {name}" if name else category


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """Numeric order, the fuzzer's: ``1.1.2`` < ``1.1.10`` < ``10.1.1``.

    ``index.json`` sorts keys as strings; every report here uses this order instead.
    Raises ``ValueError`` for an id that is not dot-separated integers.
    """
    try:
        return tuple(int(part) for part in case_id.split("."))
    except ValueError:
        raise ValueError(f"not an Autobahn case id: {case_id!r}") from None


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """wstest's translation: only ``.`` is escaped and ``*`` widened; the rest stays regex."""
    try:
        return re.compile(pattern.replace(".", r"\.").replace("*", ".*"))
    except re.error as exc:
        raise CaseSelectionError(f"invalid case pattern {pattern!r}: {exc}") from None


def matches(pattern: str, case_id: str) -> bool:
    """Does ``pattern`` select ``case_id`` under wstest's rules (see the module docstring)?"""
    if "*" in pattern:
        return _compile(pattern).match(case_id) is not None
    return pattern == case_id


def _closest(word: str, choices: Sequence[str]) -> str:
    """A "did you mean" hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f" (closest: {', '.join(close)})" if close else ""


def resolve(patterns: Sequence[str], *, require_match: bool = True) -> list[str]:
    """The ids a list of patterns stands for, deduplicated, in the fuzzer's order.

    With ``require_match`` (the default) a pattern that selects no case is an error; an unknown
    literal id is always one (wstest would crash on it mid-run).
    """
    chosen: set[str] = set()
    for pattern in patterns:
        if "*" not in pattern:
            if pattern not in _KNOWN:
                raise CaseSelectionError(
                    f"unknown case id {pattern!r}{_closest(pattern, ALL_CASES)}"
                )
            chosen.add(pattern)
            continue
        hits = [case_id for case_id in ALL_CASES if matches(pattern, case_id)]
        if not hits and require_match:
            raise CaseSelectionError(
                f"case pattern {pattern!r} selects no case "
                f"(categories: {', '.join(CATEGORIES)}; there are no 0.x, 8.x or 11.x cases)"
            )
        chosen.update(hits)
    return sorted(chosen, key=case_sort_key)


def select(cases: Sequence[str] = ("*",), exclude: Sequence[str] = ()) -> list[str]:
    """``cases`` minus ``exclude``, in the fuzzer's order: what wstest will run.

    An exclude pattern may match nothing (excluding 12.* from a 1.* run is fine), but an
    unknown literal id in it is still an error, so a typo never goes unnoticed.
    """
    if isinstance(cases, str) or isinstance(exclude, str):
        raise TypeError("cases and exclude are sequences of patterns, not single strings")
    wanted = resolve(cases)
    dropped = set(resolve(exclude, require_match=False))
    return [case_id for case_id in wanted if case_id not in dropped]


def selection(
    cases: Sequence[str], exclude: Sequence[str] = (), shard: tuple[int, int] | None = None
) -> list[str]:
    """What one run runs: ``cases`` minus ``exclude`` (its `shard`'s slice), in the fuzzer's
    order; CaseSelectionError when the patterns select nothing."""
    selected = select(cases, exclude)
    if not selected:
        raise CaseSelectionError(
            f"no case matches --cases {' '.join(cases)}"
            + (f" --exclude {' '.join(exclude)}" if exclude else "")
        )
    return shard_cases(selected, *shard) if shard is not None else selected


def excluded_by(cases: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The cases the ``exclude`` patterns remove from ``cases`` (a shard's other slices are
    not excluded)."""
    chosen = set(select(cases, exclude))
    return [case for case in select(cases) if case not in chosen]


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; ValueError unless 1 <= K <= N."""
    head, sep, tail = text.partition("/")
    if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
        raise ValueError(f"expected K/N (e.g. 1/4), not {text!r}")
    index, count = int(head), int(tail)
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"K/N needs 1 <= K <= N, not {text!r}")
    return index, count


def shard_cases(cases: Sequence[T], index: int, count: int) -> list[T]:
    """Slice `index` (1-based) of `count` of `cases`, in the cases' own order (snake deal)."""
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"slice {index}/{count} does not exist")
    chosen = []
    for position, case in enumerate(cases):
        round_, offset = divmod(position, count)
        owner = offset if round_ % 2 == 0 else count - 1 - offset
        if owner == index - 1:
            chosen.append(case)
    return chosen


def split(cases: Sequence[str], count: int) -> list[list[str]]:
    """All `count` slices of `cases`; empty slices are left out (fewer cases than jobs)."""
    slices = [shard_cases(cases, k, count) for k in range(1, count + 1)]
    return [s for s in slices if s]


def split_patterns(values: str | Sequence[str]) -> list[str]:
    """Patterns from repeated options or a list, each also split on commas (ids hold none)."""
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def profile_selection(
    profile: str, cases: str | Sequence[str] = (), exclude: str | Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """The (cases, exclude) patterns a profile and the user's own patterns stand for.

    The one resolver of every front end (the CLI's --profile/--cases/--exclude, the pytest
    plugin's options and fixture): ``cases`` replaces the profile's cases, ``exclude`` adds to
    the profile's exclusions, and both accept comma lists. CaseSelectionError names the
    closest profile for an unknown one.
    """
    try:
        profile_cases, profile_exclude = PROFILES[profile]
    except KeyError:
        raise CaseSelectionError(
            f"unknown profile {profile!r}{_closest(profile, list(PROFILES))} "
            f"(profiles: {', '.join(PROFILES)})"
        ) from None
    chosen = split_patterns(cases) or list(profile_cases)
    return chosen, list(profile_exclude) + split_patterns(exclude)


_BREAK = re.compile(r"<\s*br\s*/?\s*>\n?", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def plain_text(fragment: str) -> str:
    """The testsuite's texts are HTML fragments; reports want text: ``<br>`` ends a line."""
    text = html.unescape(_TAG.sub("", _BREAK.sub("\n", fragment)))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def describe(case_id: str) -> CaseInfo:
    """The testsuite's own description and expectation of a case, as plain text."""
    try:
        description, expectation = _RAW_TEXT[case_id]
    except KeyError:
        raise CaseSelectionError(
            f"unknown case id {case_id!r}{_closest(case_id, ALL_CASES)}"
        ) from None
    category = category_of(case_id)
    return CaseInfo(
        id=case_id,
        category=category,
        category_name=CATEGORIES.get(category, ""),
        subcategory_name=SUBCATEGORIES.get(".".join(case_id.split(".")[:2]), ""),
        description=plain_text(description),
        expectation=plain_text(expectation),
    )
