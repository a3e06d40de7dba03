from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyodide_transport.backoff import Backoff, BackoffPolicy, Jitter


def test_no_jitter_grows_exponentially_and_caps() -> None:
    schedule = BackoffPolicy(initial_delay=1, max_delay=5, max_attempts=6, jitter="none").schedule()
    assert [schedule.next_delay() for _ in range(7)] == [1, 2, 4, 5, 5, 5, None]
    assert schedule.attempts == 6
    assert schedule.exhausted


def test_full_jitter_scales_the_exponential_bound() -> None:
    policy = BackoffPolicy(initial_delay=1, max_delay=8, max_attempts=None, random=lambda: 0.5)
    schedule = policy.schedule()
    assert [schedule.next_delay() for _ in range(5)] == [0.5, 1, 2, 4, 4]


def test_full_jitter_bounds() -> None:
    low = BackoffPolicy(initial_delay=1, random=lambda: 0.0).schedule()
    high = BackoffPolicy(initial_delay=1, random=lambda: 0.999).schedule()
    assert low.next_delay() == 0
    delay = high.next_delay()
    assert delay is not None and 0.99 < delay < 1


def test_decorrelated_jitter() -> None:
    policy = BackoffPolicy(initial_delay=1, max_delay=10, jitter="decorrelated", random=lambda: 1.0)
    schedule = policy.schedule()
    # random()=1 picks the top of [initial, 3 * previous], capped at max_delay.
    assert [schedule.next_delay() for _ in range(4)] == [3, 9, 10, 10]
    bottom = BackoffPolicy(initial_delay=1, jitter="decorrelated", random=lambda: 0.0).schedule()
    assert [bottom.next_delay() for _ in range(3)] == [1, 1, 1]


def test_server_retry_wins_and_counts_as_attempt() -> None:
    schedule = BackoffPolicy(initial_delay=1, max_attempts=2, jitter="none").schedule()
    assert schedule.next_delay(retry_ms=250) == 0.25
    assert schedule.next_delay(retry_ms=60_000) == 60  # not capped: the server knows best
    assert schedule.next_delay(retry_ms=250) is None


def test_server_retry_zero() -> None:
    assert Backoff().next_delay(retry_ms=0) == 0


def test_reset_starts_over() -> None:
    schedule = BackoffPolicy(initial_delay=1, max_attempts=2, jitter="none").schedule()
    assert [schedule.next_delay(), schedule.next_delay(), schedule.next_delay()] == [1, 2, None]
    schedule.reset()
    assert schedule.attempts == 0
    assert schedule.next_delay() == 1


def test_zero_attempts_never_retries() -> None:
    assert BackoffPolicy(max_attempts=0).schedule().next_delay() is None


def test_unlimited_attempts_do_not_overflow() -> None:
    schedule = BackoffPolicy(max_attempts=None, jitter="none", max_delay=30).schedule()
    for _ in range(5000):
        delay = schedule.next_delay()
    assert delay == 30


def test_schedules_are_independent() -> None:
    policy = BackoffPolicy(jitter="none")
    a, b = policy.schedule(), policy.schedule()
    a.next_delay()
    a.next_delay()
    assert b.next_delay() == 1
    assert a.attempts == 2


def test_default_random_source_varies() -> None:
    random.seed(1)
    schedule = BackoffPolicy(max_attempts=None, initial_delay=1, max_delay=1).schedule()
    delays = {schedule.next_delay() for _ in range(20)}
    assert len(delays) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": -1},
        {"initial_delay": 5, "max_delay": 1},
        {"multiplier": 0.5},
        {"max_attempts": -1},
        {"jitter": "bogus"},
        {"jitter": "decorrelated", "initial_delay": 0},
    ],
    ids=str,
)
def test_invalid_policy(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


@given(
    jitter=st.sampled_from(["full", "decorrelated", "none"]),
    initial=st.floats(0.001, 10),
    extra=st.floats(0, 100),
    randoms=st.lists(st.floats(0, 1, exclude_max=True), min_size=1),
    attempts=st.integers(0, 50),
)
def test_delays_stay_within_bounds(
    jitter: Jitter, initial: float, extra: float, randoms: list[float], attempts: int
) -> None:
    policy = BackoffPolicy(
        initial_delay=initial,
        max_delay=initial + extra,
        max_attempts=attempts,
        jitter=jitter,
        random=itertools.cycle(randoms).__next__,
    )
    schedule = policy.schedule()
    delays = [schedule.next_delay() for _ in range(attempts + 1)]
    assert delays[-1] is None
    for delay in delays[:-1]:
        assert delay is not None
        assert 0 <= delay <= policy.max_delay + 1e-9
        if jitter == "decorrelated":
            assert delay >= initial - 1e-9
