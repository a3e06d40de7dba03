"""Hypothesis settings for the fuzz tests: ``PT_FUZZ_PROFILE=quick`` (default) or ``stress``.

* quick: 200 examples per target, derandomized (the normal test run: same examples every time);
* stress: 10,000 examples per target (``PT_FUZZ_EXAMPLES`` to change), random (``python build.py stress``).

No example database is written. ``EXAMPLES`` counts the examples each target really ran,
for the run's figures.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("PT_FUZZ_PROFILE", "quick")
MAX_EXAMPLES = {"quick": 200, "stress": int(os.environ.get("PT_FUZZ_EXAMPLES", "10000"))}[PROFILE]

FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=PROFILE == "quick",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

EXAMPLES: Counter[str] = Counter()
