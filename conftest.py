"""Suite-wide test support for every tree (``impl/tests``, ``conformance/tests``, ``fuzz``).

A ``ResourceWarning`` (an unclosed socket, file, transport or subprocess) fails the test that
leaked it: ``pyproject.toml`` makes the warning an error, and a garbage collection at each
test's teardown finalizes what the test dropped while pytest still charges that test, instead
of whichever later test the collector happens to run in. Python reports a warning raised in a
finalizer as an unraisable exception, which pytest turns into an error of that test's teardown.

The tests that press Ctrl-C on a run (SIGINT to ``wsconform``, the fuzzer, a client testee)
need SIGINT deliverable in the processes they start. A shell without job control starts a
background command (``make test &`` in a script) with SIGINT ignored, and an ignored signal
stays ignored across exec: Python then never raises KeyboardInterrupt and Twisted installs no
handler, so those runs could not be interrupted. The suite therefore catches SIGINT itself
when it finds it ignored; a caught signal is reset to its default at exec.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator

import pytest

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _collect_leaks_at_teardown() -> Iterator[None]:
    """Finalize what the test left unreferenced, so its leaks are reported as its own."""
    yield
    gc.collect()
