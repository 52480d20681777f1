"""Progress of a run, read from what the engine prints (wstest's wording) while it runs.

wstest prints ``Ok, will run N test cases against M servers`` once, then ``Running test case
ID <id> for agent <agent> from peer <peer>`` as each case *starts*, and ``Connection to <url>
failed (<reason>)`` when it cannot reach the testee (after which it writes its reports and
stops). Parsing is pure (`parse_line`); `Progress` keeps the count and the clock; a view shows
it: a live rich bar on a terminal, one line per finished category in CI logs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress

from wsconform import catalog

_TOTAL = re.compile(r"Ok, will run (\d+) test cases against (\d+) servers")
_CASE = re.compile(r"Running test case ID (\S+) for agent (.+) from peer (\S+)")
_CONNECTION_FAILED = re.compile(r"Connection to (\S+) failed \((.*)\)\s*$")

# Seconds per case measured on a 2-core machine (see AUTOBAHN.md): the permessage-deflate
# categories cost a hundred times what framing does, so the ETA weights cases by category.
CASE_COST = {"9": 0.26, "12": 6.0, "13": 3.7}
DEFAULT_CASE_COST = 0.1


@dataclass(frozen=True, slots=True)
class TotalAnnounced:
    """The fuzzer resolved the selection: `total` cases will run."""

    total: int


@dataclass(frozen=True, slots=True)
class CaseStarted:
    """The fuzzer opened the connection for one case."""

    case_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The fuzzer could not connect to the testee; it stops after this."""

    url: str
    reason: str


FuzzerEvent = TotalAnnounced | CaseStarted | ConnectionFailed


def parse_line(line: str) -> FuzzerEvent | None:
    """The event one line of wstest output announces, or None for any other line."""
    if match := _CASE.search(line):
        return CaseStarted(match.group(1), match.group(2))
    if match := _TOTAL.search(line):
        return TotalAnnounced(int(match.group(1)))
    if match := _CONNECTION_FAILED.search(line):
        return ConnectionFailed(match.group(1), match.group(2))
    return None


def started_line(case_id: str, agent: str, peer: str) -> str:
    """The line that announces a started case, worded as wstest's (one parser for both
    engines' logs)."""
    return f"Running test case ID {case_id} for agent {agent} from peer {peer}"


def connection_failed_line(url: str, reason: str) -> str:
    """The line that announces an unreachable testee, worded as wstest's."""
    return f"Connection to {url} failed ({reason})"


def case_cost(case_id: str) -> float:
    """The expected seconds one case takes, by its category."""
    return CASE_COST.get(catalog.category_of(case_id), DEFAULT_CASE_COST)


def format_seconds(seconds: float | None) -> str:
    """``H:MM:SS``, or ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class View(Protocol):
    """Where progress is shown."""

    def update(self, progress: Progress) -> None:
        """A case started."""
        ...

    def category_done(self, progress: Progress, category: str, count: int) -> None:
        """Every selected case of `category` finished."""
        ...

    def close(self, progress: Progress) -> None:
        """The fuzzer exited."""
        ...


@dataclass
class Progress:
    """Cases done of total, the current case, elapsed and estimated remaining time."""

    view: View
    cases: list[str] = field(default_factory=list)  # the selection, in the fuzzer's order
    clock: Callable[[], float] = time.monotonic
    total: int = 0
    done: int = 0
    current: str | None = None
    started: float = 0.0
    _category_count: int = 0
    _done_cost: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.total = len(self.cases)

    def feed(self, line: str) -> FuzzerEvent | None:
        """Account for one line of fuzzer output; returns the event it carried."""
        event = parse_line(line)
        if isinstance(event, TotalAnnounced):
            self.total = event.total
            self.view.update(self)
        elif isinstance(event, CaseStarted):
            self.start(event.case_id)
        return event

    def start(self, case_id: str) -> None:
        """Case `case_id` started; the one before it, if any, finished."""
        if self.current is not None:
            previous = catalog.category_of(self.current)
            self._finish_current()
            if catalog.category_of(case_id) != previous:
                self._close_category(previous)
        self.current = case_id
        self.view.update(self)

    def _finish_current(self) -> None:
        assert self.current is not None
        self.done += 1
        self._done_cost += case_cost(self.current)
        self._category_count += 1

    def _close_category(self, category: str) -> None:
        if self._category_count:
            self.view.category_done(self, category, self._category_count)
        self._category_count = 0

    def finish(self, completed: bool) -> None:
        """The fuzzer exited; `completed` when the case in progress finished too."""
        if self.current is not None:
            category = catalog.category_of(self.current)
            if completed:
                self._finish_current()
            self._close_category(category)
        self.current = None
        self.view.close(self)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def eta(self) -> float | None:
        """Remaining seconds: remaining cost at the pace measured so far (None before any)."""
        if not self.done or self._done_cost <= 0:
            return None
        remaining = self._remaining_cost()
        return remaining * self.elapsed / self._done_cost

    def _remaining_cost(self) -> float:
        if self.cases and len(self.cases) == self.total:
            return sum(case_cost(case) for case in self.cases[self.done :])
        return (self.total - self.done) * (self._done_cost / self.done)


class LineView:
    """One line per finished category: readable in CI logs, no control characters."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def update(self, progress: Progress) -> None:
        pass

    def category_done(self, progress: Progress, category: str, count: int) -> None:
        name = catalog.CATEGORIES.get(category, "")
        width = len(str(progress.total))
        print(
            f"[{progress.done:>{width}}/{progress.total}] {category} {name}: {count} cases done"
            f" (elapsed {format_seconds(progress.elapsed)},"
            f" eta {format_seconds(progress.eta())})",
            file=self._out,
            flush=True,
        )

    def close(self, progress: Progress) -> None:
        pass


class LiveView:
    """A rich progress bar redrawn in place on a terminal."""

    def __init__(self, console: Console) -> None:
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("case {task.fields[case]:<9}"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._task = self._bar.add_task("fuzzing", total=None, case="-", eta=format_seconds(None))
        self._bar.start()

    def update(self, progress: Progress) -> None:
        self._bar.update(
            self._task,
            total=progress.total or None,
            completed=progress.done,
            case=progress.current or "-",
            eta=format_seconds(progress.eta()),
        )

    def category_done(self, progress: Progress, category: str, count: int) -> None:
        self.update(progress)

    def close(self, progress: Progress) -> None:
        self.update(progress)
        self._bar.stop()


def make_view(console: Console, quiet: bool) -> View:
    """The live bar on an interactive terminal; lines otherwise (and with --quiet or $CI)."""
    if quiet or os.environ.get("CI") or not console.is_terminal:
        return LineView(console.file)
    return LiveView(console)
