"""``Deadlines``: one timer for every connection of a loop that waits the same delay.

The server's keepalive arms a deadline per open WebSocket: the next Ping, and while one is
out, the Pong's. A ``loop.call_later`` each costs a ``TimerHandle``, a copy of the context
and a bound method per idle connection (575 bytes on uvloop, which adds a libuv timer per
call); here it costs an entry in an ordered dict.

Invariants:
- A ``Deadlines`` serves one event loop, one delay and one callback. A key added at loop
  time ``t`` is due at ``t + delay``; re-adding a key moves it to the back. As the delay is
  the same for all, keys fall due in the order they were (last) added, so the dict's order
  is the order of their deadlines and its first key is the next one due. A key added
  within a millisecond of the latest one takes its due time, the same float: a burst of
  connections shares one, and they fall due together (as the timer's resolution has it).
- While it holds a key, exactly one ``TimerHandle`` is armed, for a time no later than the
  first key's deadline; none once it is empty, unless made with ``lapse=True``: then the
  last key's going leaves the timer armed (for keys that come and go many times a second,
  which would otherwise arm and cancel one each), and it lapses when it fires with
  nothing due.
- Each due key is removed, then the callback is called with it, once; it may re-add the
  key (which then falls due ``delay`` later). A callback that raises is reported to the
  loop's exception handler, as a timer callback would be, and the others still run.
- ``shared`` hands out one ``Deadlines`` per (loop, delay, callback); one that is empty
  leaves that registry, so nothing there outlives the connections it served.
- Every method is for its loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar, cast

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)

#: A key due within this many seconds of the timer firing is handled then: timers of a loop
#: may fire that early (uvloop counts in milliseconds), and re-arming for so little spins.
_EARLY = 0.001

_Shared = tuple[asyncio.AbstractEventLoop, float, Callable[..., None]]
_shared: dict[_Shared, Deadlines[Any]] = {}


class Deadlines(Generic[K]):
    """Keys that fall due ``delay`` seconds after they are added; see the module docstring."""

    __slots__ = (
        "_callback",
        "_delay",
        "_due",
        "_lapse",
        "_last",
        "_loop",
        "_registered",
        "_timer",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        delay: float,
        callback: Callable[[K], None],
        *,
        lapse: bool = False,
    ) -> None:
        self._loop = loop
        self._delay = delay
        self._callback = callback
        self._lapse = lapse  # the timer outlives the last key, until it fires
        self._due: OrderedDict[K, float] = OrderedDict()  # key -> loop time it falls due
        self._timer: asyncio.TimerHandle | None = None
        self._last: float | None = None  # the latest due time given
        self._registered = False  # whether ``shared`` hands this one out

    @classmethod
    def shared(
        cls, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[K], None]
    ) -> Deadlines[K]:
        """The one ``Deadlines`` of ``loop`` for ``delay`` and ``callback``."""
        found: Any = _shared.get((loop, delay, callback))
        if found is None:
            found = _shared[(loop, delay, callback)] = cls(loop, delay, callback)
            found._registered = True
        return cast("Deadlines[K]", found)  # (a string: no subscription at run time)

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def add(self, key: K) -> None:
        """(Re)schedule ``key``: it falls due ``delay`` seconds from now."""
        when = self._loop.time() + self._delay
        last = self._last
        if last is not None and when - last <= _EARLY:
            when = last  # one float for a burst of keys: they fall due together anyway
        self._last = when
        due = self._due
        due[key] = when
        due.move_to_end(key)
        if self._timer is None:
            self._arm()

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing if it is not scheduled)."""
        self._due.pop(key, None)
        if not self._due and not self._lapse:
            self._idle()

    def _arm(self) -> None:
        first_due = next(iter(self._due.values()))
        self._timer = self._loop.call_at(first_due, self._fire)

    def _idle(self) -> None:
        """Empty: no timer, and out of the registry."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._registered:
            self._registered = False
            key = (self._loop, self._delay, self._callback)
            if _shared.get(key) is self:
                del _shared[key]

    def _fire(self) -> None:
        self._timer = None
        due = self._due
        now = self._loop.time() + _EARLY
        expired = []
        while due and next(iter(due.values())) <= now:
            expired.append(due.popitem(last=False)[0])
        for key in expired:
            try:
                self._callback(key)
            except Exception as exc:
                self._loop.call_exception_handler(
                    {"message": f"deadline callback for {key!r} failed", "exception": exc}
                )
        if due:
            if self._timer is None:
                self._arm()
        else:
            self._idle()
