"""The coverage-guided targets of the compiled accelerator (``native_targets``) run on their
seeds against the package's own build: each target holds its function to the pure-Python
twin, so a seed that fails here is a difference ``make fuzz`` would report first."""

from __future__ import annotations

import pytest
from native_targets import seeds, targets

from rfc6455 import speedups

pytestmark = pytest.mark.skipif(
    speedups.compiled is None, reason="the compiled accelerator is not in use"
)


@pytest.mark.parametrize("name", sorted(targets(speedups.compiled) if speedups.compiled else []))
def test_a_native_target_agrees_with_its_twin_on_every_seed(name: str) -> None:
    assert speedups.compiled is not None
    run = targets(speedups.compiled)[name]
    for seed in seeds():
        run(seed)
