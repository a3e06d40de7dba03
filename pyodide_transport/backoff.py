"""Reconnect delays: exponential backoff with jitter, pure (no sleeping, no clock).

A :class:`BackoffPolicy` is the immutable configuration, shareable by many
connections; :meth:`BackoffPolicy.schedule` starts a :class:`Backoff`, the
per-stream state. Each call to :meth:`Backoff.next_delay` counts one attempt
and returns how long to wait before it, in seconds, or ``None`` when the
attempts are used up. A ``retry`` value the server sent (SSE ``retry:``, in
milliseconds) wins over the computed delay. The adapter does the waiting.

Jitter modes (see "Exponential Backoff And Jitter", AWS Architecture Blog):

* ``"full"``: uniform in ``[0, min(max_delay, initial_delay * multiplier**n)]``;
* ``"decorrelated"``: uniform in ``[initial_delay, 3 * previous]``, capped by ``max_delay``;
* ``"none"``: exactly ``min(max_delay, initial_delay * multiplier**n)``.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = ["Backoff", "BackoffPolicy", "Jitter"]

Jitter: TypeAlias = Literal["full", "decorrelated", "none"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How reconnect delays grow.

    Attributes:
        initial_delay: Base delay in seconds.
        max_delay: Upper bound of a computed delay in seconds.
        multiplier: Growth factor per attempt (``"full"`` and ``"none"`` jitter).
        max_attempts: Attempts allowed before giving up; ``None`` = unlimited.
        jitter: ``"full"``, ``"decorrelated"`` or ``"none"``.
        random: Source of floats in ``[0, 1)``; inject a fixed one in tests.
    """

    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = 5
    jitter: Jitter = "full"
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")
        if self.jitter not in ("full", "decorrelated", "none"):
            raise ValueError(f"unknown jitter mode {self.jitter!r}")
        if self.jitter == "decorrelated" and self.initial_delay == 0:
            raise ValueError("decorrelated jitter needs initial_delay > 0")

    def schedule(self) -> Backoff:
        """Start a fresh schedule (attempt 0) under this policy."""
        return Backoff(self)


class Backoff:
    """The reconnect state of one stream: how many attempts so far, and the next delay.

    Attributes:
        policy: The policy in force.
        attempts: Attempts counted by :meth:`next_delay` since the last :meth:`reset`.
    """

    def __init__(self, policy: BackoffPolicy | None = None) -> None:
        self.policy = policy or BackoffPolicy()
        self.attempts = 0
        self._ceiling = self.policy.initial_delay  # exponential bound for the current attempt
        self._previous = self.policy.initial_delay  # last delay, for decorrelated jitter

    @property
    def exhausted(self) -> bool:
        """Whether no attempt is left."""
        limit = self.policy.max_attempts
        return limit is not None and self.attempts >= limit

    def next_delay(self, retry_ms: int | None = None) -> float | None:
        """Count one attempt and return the seconds to wait before it.

        Args:
            retry_ms: The server's ``retry`` value in milliseconds; used as is when given.

        Returns:
            The delay in seconds, or ``None`` when the attempts are used up.
        """
        if self.exhausted:
            return None
        policy = self.policy
        self.attempts += 1
        if policy.jitter == "decorrelated":
            upper = min(policy.max_delay, self._previous * 3)
            delay = policy.initial_delay + policy.random() * (upper - policy.initial_delay)
        elif policy.jitter == "full":
            delay = policy.random() * self._ceiling
        else:
            delay = self._ceiling
        self._ceiling = min(policy.max_delay, self._ceiling * policy.multiplier)
        if retry_ms is not None:
            delay = retry_ms / 1000
        self._previous = max(min(delay, policy.max_delay), policy.initial_delay)
        return delay

    def reset(self) -> None:
        """Start over after a success (e.g. a resumed stream delivered an event)."""
        self.attempts = 0
        self._ceiling = self._previous = self.policy.initial_delay
