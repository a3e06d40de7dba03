"""Transport middleware: wrappers that are themselves transports, stackable in any order.

* :class:`LoggingTransport`: one structured, redacted :class:`LogRecord` per message and direction.
* :class:`PolicyTransport`: method allow/deny lists, size and rate limits per direction
  (:class:`Policy`, :class:`RateLimit`), and an inspection hook that may rewrite or refuse.
* :class:`CircuitBreakerTransport`: fail fast with ``CircuitOpenError`` after repeated failures;
  one trial after a cool-down.
* :func:`bridge`: forward two transports into each other (a gateway), with backpressure.

Each wrapper keeps the inner transport's ``transport_type`` (the wire is unchanged;
:func:`layers` names the whole stack) and passes ``is_connected()``, ``close()`` and any other
attribute (``session_id``, ``url``) through. The decisions live in pure modules
(:mod:`.policy_core`, :mod:`.breaker_core`, :mod:`.redaction`); the wrappers are thin shells.
Pure Python and asyncio only: the same code runs in CPython, a page, a Web Worker and Node.

::

    transport = LoggingTransport(PolicyTransport(CircuitBreakerTransport(FetchTransport(url)),
                                                 deny_methods={"tools/call"}))
    async with Client(transport) as client:
        ...
"""

from __future__ import annotations

from ._base import Direction, Middleware, describe, layers, message_size
from .breaker import CircuitBreakerTransport
from .breaker_core import BREAKER_TRANSITIONS, BreakerState, CircuitBreaker, Permit, Rejected, is_failure
from .bridge import bridge
from .logging_transport import LoggingTransport, LogRecord
from .policy import InspectHook, PolicyTransport
from .policy_core import (
    LIFECYCLE_METHODS,
    POLICY_ERROR_CODE,
    Policy,
    PolicyCore,
    RateLimit,
    Refusal,
    TokenBucket,
    decide,
    refusal_response,
)
from .redaction import redact, short_id

__all__ = [
    "BREAKER_TRANSITIONS",
    "LIFECYCLE_METHODS",
    "POLICY_ERROR_CODE",
    "BreakerState",
    "CircuitBreaker",
    "CircuitBreakerTransport",
    "Direction",
    "InspectHook",
    "LogRecord",
    "LoggingTransport",
    "Middleware",
    "Permit",
    "Policy",
    "PolicyCore",
    "PolicyTransport",
    "RateLimit",
    "Refusal",
    "Rejected",
    "TokenBucket",
    "bridge",
    "decide",
    "describe",
    "is_failure",
    "layers",
    "message_size",
    "redact",
    "refusal_response",
    "short_id",
]
