"""Hypothesis profiles for the property tests.

``ci`` (the default) keeps the whole ``fuzz/`` run within about a minute on two cores: a
bounded number of examples, no per-example deadline (a loaded CI machine must not turn a slow
example into a flaky failure). ``thorough`` is for hunting: ``HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
