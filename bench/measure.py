"""Timing and tables shared by every benchmark topic.

Invariants:
- Candidates of one comparison run interleaved, repeat after repeat, in one process: a
  ratio compares numbers taken under the same machine load, never against a stored figure.
- Ratios are paired: each repeat yields one ratio per candidate against the baseline of that
  same repeat; tables show the median of those ratios and their spread (min-max).
- Nothing here asserts on time; benchmarks print, tests never time.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RESULTS_MARKER",
    "Comparison",
    "Table",
    "compare",
    "format_rate",
    "format_seconds",
    "write_section",
]


@dataclass
class Comparison:
    """Per-repeat measurements of several candidates (higher ``values`` = better)."""

    title: str
    unit: str  # what a value counts, e.g. "frames/s"
    baseline: str  # the candidate ratios are taken against
    values: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    #: Seconds of CPU per operation, per repeat (servers: their process's, from ``/proc``).
    cpu_per_op: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def spread(self, name: str) -> float:
        """Relative spread of a candidate's repeats: (max - min) / median."""
        values = self.values[name]
        middle = statistics.median(values)
        return (max(values) - min(values)) / middle if middle else 0.0

    def ratios(self, name: str, against: str | None = None) -> list[float]:
        """``name``'s value over ``against``'s (the baseline), repeat by repeat."""
        base = self.values[against or self.baseline]
        mine = self.values[name]
        return [m / b for m, b in zip(mine, base, strict=True) if b > 0]

    def ratio(self, name: str, against: str | None = None) -> tuple[float, float, float]:
        """(median, min, max) of the paired ratios."""
        ratios = self.ratios(name, against)
        return statistics.median(ratios), min(ratios), max(ratios)

    def cpu_cell(self, name: str) -> str:
        """The median CPU µs per operation and its range, as a table shows it."""
        micros = [seconds * 1e6 for seconds in self.cpu_per_op.get(name, [])]
        if not micros:
            return "-"
        return f"{statistics.median(micros):.1f} ({min(micros):.1f}-{max(micros):.1f})"

    def table(self, extra: Sequence[str] = ()) -> Table:
        """One row per candidate: median value, spread, ratio to the baseline and to each
        candidate named in ``extra``."""
        against = [self.baseline, *[name for name in extra if name != self.baseline]]
        columns = ["implementation", f"median {self.unit}", "spread"]
        columns += [f"vs {name}" for name in against]
        if self.cpu_per_op:
            columns.append("server CPU µs/op (min-max)")
        table = Table(self.title, columns)
        for name in self.values:
            row = [
                name + (f" ({self.notes[name]})" if name in self.notes else ""),
                format_rate(self.median(name)),
                f"±{self.spread(name) / 2:.0%}",
            ]
            for other in against:
                middle, low, high = self.ratio(name, other)
                row.append(f"{middle:.2f} ({low:.2f}-{high:.2f})")
            if self.cpu_per_op:
                row.append(self.cpu_cell(name))
            table.rows.append(row)
        return table


@dataclass
class Table:
    """A Markdown table (it reads as plain text in a terminal too)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def render(self) -> str:
        widths = [len(column) for column in self.columns]
        for row in self.rows:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
        lines = [f"### {self.title}", ""]
        lines.append(_row(self.columns, widths))
        lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
        lines += [_row(row, widths) for row in self.rows]
        return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return (
        "| "
        + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        + " |"
    )


def _calibrate(function: Callable[[], object], budget: float) -> int:
    """How many calls of ``function`` take about ``budget`` seconds (at least one)."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= budget / 4 or number >= 1 << 24:
            return max(1, round(number * budget / max(elapsed, 1e-9)))
        number *= 4


def compare(
    title: str,
    candidates: dict[str, Callable[[], object]],
    *,
    baseline: str,
    unit: str,
    work: float = 1.0,
    repeats: int = 7,
    budget: float = 0.05,
) -> Comparison:
    """Time each candidate ``repeats`` times, interleaved, and report ``work`` units done
    per second per call (e.g. ``work=2000`` frames parsed per call gives frames/s).

    Each candidate is calibrated once to run about ``budget`` seconds per repeat; the order
    of candidates rotates between repeats so none always runs first after a collection.
    """
    numbers = {name: _calibrate(function, budget) for name, function in candidates.items()}
    comparison = Comparison(title, unit, baseline, {name: [] for name in candidates})
    names = list(candidates)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            function, number = candidates[name], numbers[name]
            gc.collect()
            start = time.perf_counter()
            for _ in range(number):
                function()
            elapsed = time.perf_counter() - start
            comparison.values[name].append(work * number / elapsed)
    return comparison


def format_rate(value: float) -> str:
    """A rate with an SI suffix: 1234567 -> '1.23M'."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def format_seconds(value: float) -> str:
    for factor, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= factor:
            return f"{value / factor:.3g} {suffix}"
    return f"{value / 1e-9:.3g} ns"


#: In ``RESULTS.md``, everything after this line is replaced by ``bench/run.py --write``;
#: the text above it (how to reproduce, the other benches' sections) is kept.
RESULTS_MARKER = "<!-- results: everything below is written by bench/run.py --write -->"


def write_section(path: Path, begin: str, end: str, text: str) -> None:
    """Put ``text`` between the markers ``begin`` and ``end`` in ``path``: in place of what
    they held, or as a new section just above the part ``bench/run.py`` owns."""
    block = f"{begin}\n\n{text}\n\n{end}"
    current = path.read_text()
    if begin in current and end in current:
        before, rest = current.split(begin, 1)
        current = before + block + rest.split(end, 1)[1]
    elif RESULTS_MARKER in current:
        before, after = current.split(RESULTS_MARKER, 1)
        current = before + block + "\n\n" + RESULTS_MARKER + after
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)
