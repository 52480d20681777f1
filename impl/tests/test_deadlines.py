"""``rfc6455.deadlines``: one timer for many keys, on asyncio's loop and on uvloop.

Nothing here measures time: each test waits for the callbacks it expects (pytest-timeout
bounds the wait) and checks their order and what is left scheduled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from rfc6455.deadlines import Deadlines

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "uvloop": uvloop.new_event_loop,
}
DELAY = 0.01


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main())


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("loop", LOOPS)
def test_keys_fall_due_in_the_order_they_were_last_added(loop: str) -> None:
    called: list[str] = []

    async def main() -> None:
        deadlines = Deadlines.shared(asyncio.get_running_loop(), DELAY, called.append)
        for key in ("a", "b", "c", "d"):
            deadlines.add(key)
        deadlines.add("a")  # moved behind "d"
        deadlines.discard("c")  # never called
        assert len(deadlines) == 3 and "c" not in deadlines
        await until(lambda: len(called) == 3)
        assert not deadlines

    run_on(loop, main)
    assert called == ["b", "d", "a"]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_key_that_re_adds_itself_comes_round_again_and_an_empty_one_leaves(loop: str) -> None:
    called: list[str] = []

    def again(key: str) -> None:
        called.append(key)
        if called.count(key) < 3:
            Deadlines.shared(asyncio.get_running_loop(), DELAY, again).add(key)

    async def main() -> None:
        deadlines = Deadlines.shared(asyncio.get_running_loop(), DELAY, again)
        assert Deadlines.shared(asyncio.get_running_loop(), DELAY, again) is deadlines
        deadlines.add("x")
        deadlines.add("y")
        await until(lambda: len(called) == 6)
        # Emptied, it left the registry: the next lookup makes a new one.
        assert Deadlines.shared(asyncio.get_running_loop(), DELAY, again) is not deadlines

    run_on(loop, main)
    assert called == ["x", "y", "x", "y", "x", "y"]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_callback_that_raises_is_reported_and_the_others_still_run(loop: str) -> None:
    called: list[str] = []
    reported: list[dict[str, Any]] = []

    def fragile(key: str) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        called.append(key)

    async def main() -> None:
        running = asyncio.get_running_loop()
        running.set_exception_handler(lambda _loop, context: reported.append(context))
        deadlines = Deadlines.shared(running, DELAY, fragile)
        for key in ("bad", "good"):
            deadlines.add(key)
        await until(lambda: called == ["good"])

    run_on(loop, main)
    assert [str(context["exception"]) for context in reported] == ["boom"]
    assert "'bad'" in reported[0]["message"]


@pytest.mark.parametrize("loop", LOOPS)
def test_one_timer_serves_every_key_and_none_is_left_once_empty(loop: str) -> None:
    made: list[asyncio.TimerHandle] = []

    async def main() -> None:
        running = asyncio.get_running_loop()
        call_at = running.call_at

        def counting_call_at(when: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
            handle = call_at(when, callback, *args)
            made.append(handle)
            return handle

        deadlines = Deadlines(running, 3600.0, lambda key: None)
        running.call_at = counting_call_at  # type: ignore[method-assign]
        try:
            for key in range(100):
                deadlines.add(key)
            assert len(made) == 1 and not made[0].cancelled()
            for key in range(100):
                deadlines.discard(key)
            assert made[0].cancelled()  # nothing due, nothing armed
        finally:
            del running.call_at  # type: ignore[method-assign]

    run_on(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_lapsing_timer_outlives_the_last_key_and_fires_once_for_nothing(loop: str) -> None:
    made: list[asyncio.TimerHandle] = []
    called: list[int] = []

    async def main() -> None:
        running = asyncio.get_running_loop()
        call_at = running.call_at

        def counting_call_at(
            when: float, callback: Any, *args: Any, **options: Any
        ) -> asyncio.TimerHandle:
            handle = call_at(when, callback, *args, **options)
            if getattr(callback, "__self__", None) is deadlines:  # (not asyncio.sleep's)
                made.append(handle)
            return handle

        deadlines = Deadlines(running, DELAY, called.append, lapse=True)
        running.call_at = counting_call_at  # type: ignore[method-assign]
        try:
            for key in range(100):
                deadlines.add(key)
                deadlines.discard(key)
            assert len(made) == 1 and not made[0].cancelled()  # armed once, for all
            await until(lambda: deadlines._timer is None)  # it fired for nothing, and lapsed
            assert len(made) == 1 and called == []
            deadlines.add(100)
            await until(lambda: called == [100])
            assert len(made) == 2
            await asyncio.sleep(3 * DELAY)
            assert len(deadlines) == 0 and len(made) == 2  # nothing armed again
        finally:
            del running.call_at  # type: ignore[method-assign]

    run_on(loop, main)


class FakeLoop:
    """A loop whose clock the test sets: what ``Deadlines`` asks of a loop, and no more."""

    def __init__(self) -> None:
        self.now = 0.0
        self.armed: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        self.armed.append((when, callback))
        return FakeTimer()


class FakeTimer:
    def cancel(self) -> None:
        """Nothing runs by itself on a ``FakeLoop``."""


def test_keys_added_within_a_millisecond_share_one_due_time() -> None:
    loop = FakeLoop()
    called: list[str] = []
    deadlines = Deadlines(loop, 10.0, called.append)  # type: ignore[arg-type]
    deadlines.add("a")
    loop.now = 0.0005
    deadlines.add("b")  # within the timers' resolution of "a": one due time for both
    loop.now = 0.002
    deadlines.add("c")
    due = deadlines._due
    assert due["a"] is due["b"] and due["c"] == 10.002
    [(when, fire)] = loop.armed
    assert when == 10.0
    loop.now = when
    fire()
    assert called == ["a", "b"]
    assert loop.armed[-1][0] == 10.002  # re-armed for "c"
