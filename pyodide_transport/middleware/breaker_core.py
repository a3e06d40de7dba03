"""A circuit breaker, sans-I/O: when to stop sending to a failing peer, and when to try again.

No asyncio, no clock of its own (``now`` is an argument). The shell,
:class:`~pyodide_transport.middleware.CircuitBreakerTransport`, asks :meth:`CircuitBreaker.admit`
before each ``send`` and reports the outcome; every state change is a row of
:data:`BREAKER_TRANSITIONS` and nothing else assigns the state.

* **closed**: messages pass. ``failure_threshold`` consecutive failures open the circuit; a
  success resets the count.
* **open**: messages fail fast (:class:`Rejected`, the shell raises ``CircuitOpenError`` with
  ``retry_after``) until ``cool_down`` seconds passed since it opened.
* **half-open**: the first message after the cool-down is the one trial; others fail fast while
  it is in flight (``retry_after`` 0: ask again soon). Its success closes the circuit, its
  failure opens it again for another cool-down. A trial that ends neither way (cancelled, or an
  error that says nothing about the peer) frees the slot: the next message is the trial.

What counts as a failure (:func:`is_failure`): errors that say the wire or the peer is unwell
(``NetworkError``, ``ConnectionClosedError``, ``RequestTimeoutError``, ``RemoteProtocolError``,
HTTP 5xx, 408 and 429). Not failures, because the peer answered or nothing was sent: local
refusals (``PolicyError``, an inner ``CircuitOpenError``, ``LocalProtocolError``), a
``SessionExpiredError`` (the session layer re-initializes), authorization errors, other HTTP 4xx,
JSON-RPC errors, and exceptions that are not ``TransportError`` (bugs propagate untouched).

Outcomes of messages admitted before the circuit last changed state are stale and ignored: a
late success of a message sent before the circuit opened does not close it (each permit carries
the epoch it was issued in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ..errors import (
    AuthorizationError,
    CircuitOpenError,
    HTTPStatusError,
    LocalProtocolError,
    MCPError,
    PolicyError,
    SessionExpiredError,
    TransportError,
)

__all__ = [
    "BREAKER_TRANSITIONS",
    "BreakerState",
    "CircuitBreaker",
    "Outcome",
    "Permit",
    "Rejected",
    "Transition",
    "is_failure",
]

BreakerState: TypeAlias = Literal["closed", "open", "half-open"]
Outcome: TypeAlias = Literal["success", "failure", "neutral"]
"""How a send ended: it worked, it failed in a way that counts, or it says nothing about the peer."""

BREAKER_TRANSITIONS: Final[dict[tuple[BreakerState, str], BreakerState]] = {
    ("closed", "success"): "closed",  # consecutive failures back to 0
    ("closed", "failure"): "closed",  # one more consecutive failure, under the threshold
    ("closed", "threshold reached"): "open",
    ("open", "cool-down over"): "half-open",  # the message asking now is the trial
    ("half-open", "trial succeeded"): "closed",
    ("half-open", "trial failed"): "open",
    ("half-open", "trial abandoned"): "half-open",  # the next message is the trial
    ("closed", "reset"): "closed",
    ("open", "reset"): "closed",
    ("half-open", "reset"): "closed",
}
"""Every state change of the breaker: ``(state, what happened) -> next state``."""

Transition: TypeAlias = tuple[BreakerState, BreakerState]
"""``(old, new)``, reported only when the state actually changed."""

_RETRYABLE_STATUS: Final = frozenset({408, 429})


def is_failure(error: BaseException) -> bool:
    """Whether ``error`` from ``send`` (or a lost response stream) counts against the peer."""
    if not isinstance(error, TransportError):
        return False
    if isinstance(
        error, PolicyError | CircuitOpenError | LocalProtocolError | SessionExpiredError | AuthorizationError | MCPError
    ):
        return False
    if isinstance(error, HTTPStatusError):
        return error.status >= 500 or error.status in _RETRYABLE_STATUS
    return True


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one message; hand it back with the outcome."""

    epoch: int
    trial: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """The circuit is open: fail fast; a trial is allowed in ``retry_after`` seconds."""

    retry_after: float
    reason: str


class CircuitBreaker:
    """The breaker's state (see the module docstring).

    Args:
        failure_threshold: Consecutive failures that open the circuit (at least 1).
        cool_down: Seconds the circuit stays open before a trial.

    Attributes:
        state: ``"closed"``, ``"open"`` or ``"half-open"``.
        failures: Consecutive failures counted while closed.
        opened_at: When the circuit last opened (``None`` while it never did).

    Raises:
        ValueError: ``failure_threshold`` below 1 or a negative ``cool_down``.
    """

    def __init__(self, failure_threshold: int = 5, cool_down: float = 30.0) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold!r}")
        if cool_down < 0:
            raise ValueError(f"cool_down must not be negative, got {cool_down!r}")
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opened_at: float | None = None
        self._epoch = 0
        self._trial_in_flight = False

    def _go(self, what: str) -> Transition | None:
        try:
            new = BREAKER_TRANSITIONS[(self.state, what)]
        except KeyError:
            raise LocalProtocolError(f"a circuit breaker that is {self.state} cannot take {what!r}") from None
        old, self.state = self.state, new
        if new != old:
            self._epoch += 1
            return old, new
        return None

    def retry_after(self, now: float) -> float:
        """Seconds until the open circuit lets a trial through (0.0 when it would now)."""
        if self.state != "open" or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cool_down - now)

    # -- verbs ------------------------------------------------------------------------------------------

    def admit(self, now: float) -> tuple[Permit | Rejected, Transition | None]:
        """May a message go out at ``now``? A permit (maybe the trial), or a rejection; and any change."""
        change: Transition | None = None
        if self.state == "open":
            wait = self.retry_after(now)
            if wait > 0.0:
                return Rejected(wait, f"circuit open after {self.failures} consecutive failures"), None
            change = self._go("cool-down over")
        if self.state == "half-open":
            if self._trial_in_flight:
                return Rejected(0.0, "circuit half-open: a trial message is in flight"), change
            self._trial_in_flight = True
            return Permit(self._epoch, trial=True), change
        return Permit(self._epoch, trial=False), change

    def record(self, permit: Permit, outcome: Outcome, now: float) -> Transition | None:
        """The message sent under ``permit`` ended with ``outcome``; returns any state change."""
        if permit.epoch != self._epoch:
            return None  # admitted before the last state change: stale news
        if permit.trial:
            self._trial_in_flight = False
            if outcome == "success":
                self.failures = 0
                return self._go("trial succeeded")
            if outcome == "failure":
                return self._open(now, "trial failed")
            return self._go("trial abandoned")
        if outcome == "success":
            self.failures = 0
            return self._go("success")
        if outcome == "failure":
            return self.failed(now)
        return None

    def failed(self, now: float) -> Transition | None:
        """A failure outside any permit (a lost response stream): counted only while closed."""
        if self.state != "closed":
            return None
        self.failures += 1
        if self.failures >= self.failure_threshold:
            return self._open(now, "threshold reached")
        return self._go("failure")

    def reset(self) -> Transition | None:
        """Close the circuit by hand (an operator's "try again now")."""
        self.failures = 0
        self._trial_in_flight = False
        return self._go("reset")

    def _open(self, now: float, what: str) -> Transition | None:
        self.opened_at = now
        return self._go(what)
