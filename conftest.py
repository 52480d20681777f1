"""Suite-wide test support for every tree (``impl/tests``, ``conformance/tests``, ``fuzz``).

A ``ResourceWarning`` (an unclosed socket, file, transport or subprocess) fails the test that
leaked it: ``pyproject.toml`` makes the warning an error, and a garbage collection at each
test's teardown finalizes what the test dropped while pytest still charges that test, instead
of whichever later test the collector happens to run in. Python reports a warning raised in a
finalizer as an unraisable exception, which pytest turns into an error of that test's teardown.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_leaks_at_teardown() -> Iterator[None]:
    """Finalize what the test left unreferenced, so its leaks are reported as its own."""
    yield
    gc.collect()
