"""``CircuitBreakerTransport``: stop sending to a peer that keeps failing, try again after a while.

A thin shell over :class:`~pyodide_transport.middleware.breaker_core.CircuitBreaker` (states and
transitions in :data:`~pyodide_transport.middleware.breaker_core.BREAKER_TRANSITIONS`, what
counts as a failure in :func:`~pyodide_transport.middleware.breaker_core.is_failure`). While the
circuit is open ``send`` raises :class:`~pyodide_transport.errors.CircuitOpenError` with
``retry_after`` at once, so the session fails that request without touching the wire.

Only ``send`` is gated: ``receive`` always passes, so answers to what was sent before the circuit
opened still arrive. A ``receive`` failure that names the requests it loses (a response stream
broke off) counts as one failure while the circuit is closed: over Streamable HTTP that is how a
server that accepts a POST and then dies mid-answer shows. A successful ``receive`` does not count
as a success (only a ``send`` outcome does), or steady traffic would hide a failing wire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeAlias

from ..errors import CircuitOpenError, TransportError
from ..messages import TransportMessage
from ..transport import Transport
from ._base import Middleware
from .breaker_core import BreakerState, CircuitBreaker, Outcome, Permit, Transition, is_failure

__all__ = ["CircuitBreakerTransport", "StateChangeCallback"]

logger = logging.getLogger("pyodide_transport.middleware")

StateChangeCallback: TypeAlias = Callable[[BreakerState, BreakerState], None]
"""``on_state_change(old, new)``: called inline on every state change (a page shows it)."""


class CircuitBreakerTransport(Middleware):
    """Wraps a transport with a circuit breaker (see the module docstring).

    Args:
        inner: The transport that does the work.
        failure_threshold: Consecutive failures that open the circuit.
        cool_down: Seconds the circuit stays open before one trial message.
        clock: Monotonic seconds.
        on_state_change: Called with ``(old, new)`` on every state change.
        is_failure: Which exceptions count against the peer (default:
            :func:`~pyodide_transport.middleware.breaker_core.is_failure`).
        breaker: A :class:`CircuitBreaker` to share with other transports to the same peer
            (a gateway's sessions to one upstream); then ``failure_threshold`` and ``cool_down`` are its own.
    """

    layer = "breaker"

    def __init__(
        self,
        inner: Transport,
        *,
        failure_threshold: int = 5,
        cool_down: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateChangeCallback | None = None,
        is_failure: Callable[[BaseException], bool] = is_failure,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker if breaker is not None else CircuitBreaker(failure_threshold, cool_down)
        self._clock = clock
        self._on_state_change = on_state_change
        self._is_failure = is_failure

    @property
    def state(self) -> BreakerState:
        """``"closed"``, ``"open"`` or ``"half-open"`` (open stays open until a send after the cool-down)."""
        return self.breaker.state

    def reset(self) -> None:
        """Close the circuit now (e.g. a "retry" button)."""
        self._changed(self.breaker.reset())

    def _changed(self, change: Transition | None) -> None:
        if change is None:
            return
        old, new = change
        logger.log(logging.WARNING if new == "open" else logging.INFO, "circuit breaker: %s -> %s", old, new)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:
                logger.exception("CircuitBreakerTransport on_state_change callback failed")

    def _outcome(self, error: BaseException | None) -> Outcome:
        if error is None:
            return "success"
        return "failure" if self._is_failure(error) else "neutral"

    async def send(self, message: TransportMessage) -> None:
        """Send unless the circuit is open.

        Raises:
            CircuitOpenError: The circuit is open (or half-open with its trial in flight).
        """
        admission, change = self.breaker.admit(self._clock())
        self._changed(change)
        if not isinstance(admission, Permit):
            raise CircuitOpenError(
                f"{admission.reason}; retry in {admission.retry_after:.3g} s", retry_after=admission.retry_after
            )
        try:
            await self.inner.send(message)
        except BaseException as exc:
            self._changed(self.breaker.record(admission, self._outcome(exc), self._clock()))
            raise
        self._changed(self.breaker.record(admission, "success", self._clock()))

    async def receive(self) -> TransportMessage:
        """Receive; a failure that loses requests counts against the peer."""
        try:
            return await self.inner.receive()
        except TransportError as exc:
            if exc.request_ids and self._is_failure(exc):
                self._changed(self.breaker.failed(self._clock()))
            raise
