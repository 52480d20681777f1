"""What runs the cases against a testee: the engine interface, and following a started engine.

An engine takes a selection, the testee's URL, an agent name and a run directory, and leaves
a run in the fuzzer's own format in ``<rundir>/raw`` (``index.json`` plus one JSON report per
case), whichever engine it is: ``autobahn`` (the real fuzzer from a local Python 2.7 or
Docker, a subprocess that writes its results at the end) or ``native`` (ours, in-process,
one event per case); ``choice.choose`` picks one.

Invariants:
- A started engine reports through one queue of events (`Output`, `CaseStarted`,
  `CaseFinished`, `Unreachable`) that ends with None; `follow` drains it on the caller's
  thread, so Ctrl-C reaches the caller at once.
- Ctrl-C cancels the engine, which still writes every case that finished (a partial run); a
  second Ctrl-C stops waiting for it.
- Nothing here knows testees, gates or reports; this module imports none of its engines.
- Every engine refuses what `Access` asks of it that it cannot honour before checking
  anything else (`Refusing.check`).
"""

from __future__ import annotations

import contextlib
import queue
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from wsconform import catalog
from wsconform.access import PLAIN, Access

__all__ = [
    "CaseFinished",
    "CaseStarted",
    "Ended",
    "Engine",
    "EngineError",
    "Event",
    "Output",
    "Refusing",
    "Running",
    "Unreachable",
    "UnsupportedCases",
    "follow",
]

#: Seconds between two looks at the event queue while waiting: Ctrl-C is handled between them.
POLL_INTERVAL = 0.2


class EngineError(Exception):
    """The engine cannot run here; `hint` says what the user can do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\nhint: {self.hint}" if self.hint else message


class UnsupportedCases(EngineError):
    """The selection holds cases this engine does not run, or asks for something it cannot
    do (`Access` it cannot honour): a usage error."""


@dataclass(frozen=True, slots=True)
class Output:
    """One line of the engine's log (``fuzzer.log``)."""

    line: str


@dataclass(frozen=True, slots=True)
class CaseStarted:
    """The engine opened the connection of one case (the one before it is finished)."""

    case_id: str


@dataclass(frozen=True, slots=True)
class CaseFinished:
    """The engine judged one case (only engines that know it as it happens say so)."""

    case_id: str
    behavior: str
    behavior_close: str
    #: Its JSON report, written in full, in the run's raw directory: named by an engine that
    #: writes no case page of its own, so that ours can be rendered while the run goes on.
    report_file: str | None = None


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The engine could not connect to the testee; it stops after this."""

    url: str
    reason: str


Event = Output | CaseStarted | CaseFinished | Unreachable


class Running(Protocol):
    """A started engine."""

    @property
    def events(self) -> queue.Queue[Event | None]:
        """What the engine reports, in order; None once it is done."""
        ...

    def cancel(self) -> None:
        """Stop early, writing the cases that finished."""
        ...

    def wait(self, timeout: float) -> int:
        """The engine's exit status once done (0: ran to its end), stopping it after
        `timeout` seconds."""
        ...


class Engine(Protocol):
    """What runs the cases: ``autobahn`` or ``native``."""

    @property
    def name(self) -> str: ...

    def check(self, cases: Sequence[str], url: str = "", reach: Access = PLAIN) -> str:
        """Make sure the engine can run `cases` here (provisioning it if needed) against
        `url` reached as `reach` says; describe what will run. EngineError
        (UnsupportedCases) when it cannot."""
        ...

    def start(
        self, cases: Sequence[str], url: str, agent: str, rundir: Path, reach: Access = PLAIN
    ) -> Running:
        """Run `cases` in order against the server at `url`; results into ``rundir/raw``."""
        ...

    def slices(self, cases: Sequence[str], count: int) -> list[list[str]]:
        """`cases` in `count` slices (``--jobs``, ``--shard``), some maybe empty: a pure
        function of its arguments, each slice in the fuzzer's order."""
        ...

    def warm_up(self) -> None:
        """Load what `start` will need; called on a thread while the testee starts."""
        ...


class Refusing(ABC):
    """The part of an `Engine` both engines share: its name, and the order of `check`."""

    #: The engine's name, as ``--engine`` gives it.
    name: ClassVar[str]

    def check(self, cases: Sequence[str] = (), url: str = "", reach: Access = PLAIN) -> str:
        """UnsupportedCases when `reach` asks for what the engine does not do, before
        anything is provisioned; then the engine's own `ready`."""
        if (refusal := self.refusal(url, reach)) is not None:
            raise UnsupportedCases(refusal)
        return self.ready(cases)

    def slices(self, cases: Sequence[str], count: int) -> list[list[str]]:
        """`catalog.shard_cases`'s snake deal, unless the engine knows better."""
        return [catalog.shard_cases(cases, k, count) for k in range(1, count + 1)]

    def warm_up(self) -> None:  # noqa: B027 (optional: most engines load nothing ahead)
        """Nothing to load ahead, unless the engine says otherwise."""

    @abstractmethod
    def refusal(self, url: str, reach: Access) -> str | None:
        """Why the engine cannot reach `url` as `reach` says (None: it can)."""

    @abstractmethod
    def ready(self, cases: Sequence[str]) -> str:
        """Make sure the engine can run `cases` here and describe what will run;
        EngineError (UnsupportedCases) when it cannot."""


@dataclass(frozen=True, slots=True)
class Ended:
    """How a followed engine ended."""

    status: int
    interrupted: bool


def follow(running: Running, relay: Callable[[Event], None], grace: float) -> Ended:
    """Relay the engine's events until it is done; on Ctrl-C cancel it and give it `grace`
    seconds to write the cases that finished."""
    interrupted = False
    try:
        _drain(running.events, relay)
    except KeyboardInterrupt:
        interrupted = True
        running.cancel()
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C stops waiting
            _drain(running.events, relay, grace)
    return Ended(running.wait(grace), interrupted)


def _drain(
    events: queue.Queue[Event | None], relay: Callable[[Event], None], timeout: float | None = None
) -> None:
    """Relay events until the last (or until `timeout` passes without one)."""
    while True:
        try:
            event = events.get(timeout=POLL_INTERVAL if timeout is None else timeout)
        except queue.Empty:
            if timeout is None:
                continue
            return
        if event is None:
            return
        relay(event)
