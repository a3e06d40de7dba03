"""What a :class:`~pyodide_transport.middleware.PolicyTransport` lets through, sans-I/O.

No asyncio, no clock of its own: :func:`decide` takes the time as an argument, so every rule is
tested with plain numbers. The shell (:mod:`pyodide_transport.middleware.policy`) asks before each
message passes and acts on the answer.

Rules, checked in this order for each direction (a :class:`Policy` per direction):

* **method**: requests and notifications whose method is in ``deny_methods`` are refused; with an
  ``allow_methods`` set, so is any method not in it, except the protocol's own plumbing in
  :data:`LIFECYCLE_METHODS` (a client with ``allow_methods={"tools/call"}`` must still be able to
  connect). Names may be shell-style patterns (``"tools/*"``). Responses have no method: the rule
  does not apply to them.
* **size**: any message whose compact JSON is over ``max_message_size`` bytes.
* **rate**: a token bucket (:class:`RateLimit`) per direction for requests and notifications.
  Responses are not rate-limited: they answer something already admitted, and refusing one would
  leave the other side waiting. A message refused by an earlier rule spends no token.

A refusal is a :class:`Refusal` (the rule and a reason naming it), never an exception: the shell
decides what a refusal means in its direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final, Literal, TypeAlias

from mcp_types.jsonrpc import INVALID_REQUEST

from ..messages import JSONRPCError, JSONRPCRequest, TransportMessage, error_response
from ._base import Direction, describe, message_size

__all__ = [
    "LIFECYCLE_METHODS",
    "POLICY_ERROR_CODE",
    "Policy",
    "PolicyCore",
    "RateLimit",
    "Refusal",
    "Rule",
    "TokenBucket",
    "decide",
    "refusal_response",
]

Rule: TypeAlias = Literal["method", "size", "rate", "inspection"]
"""Which rule refused a message (also :attr:`PolicyError.rule <pyodide_transport.errors.PolicyError.rule>`)."""

LIFECYCLE_METHODS: Final = frozenset(
    {"initialize", "notifications/initialized", "server/discover", "ping", "notifications/cancelled"}
)
"""Methods an ``allow_methods`` set lets through anyway: without them no session starts or ends well.

``deny_methods`` still refuses them when named explicitly.
"""

POLICY_ERROR_CODE: Final = INVALID_REQUEST
"""The JSON-RPC error code a refused incoming request is answered with (-32600, Invalid Request).

The error's message names the rule, and its ``data`` is ``{"rule": ..., "reason": ...}``.
"""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` messages at once, refilled at ``per_second``.

    Raises:
        ValueError: ``per_second`` is not positive or ``burst`` is below 1.
    """

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"RateLimit.per_second must be positive, got {self.per_second!r}")
        if self.burst < 1:
            raise ValueError(f"RateLimit.burst must be at least 1, got {self.burst!r}")


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules for one direction (see the module docstring for their order and scope).

    Attributes:
        allow_methods: Methods (or ``fnmatch`` patterns) allowed; ``None`` allows every method.
        deny_methods: Methods (or patterns) refused, even lifecycle ones.
        max_message_size: Largest message in bytes of compact JSON; ``None``: no limit.
        rate: Requests and notifications per second, with a burst; ``None``: no limit.
    """

    allow_methods: frozenset[str] | None = None
    deny_methods: frozenset[str] = field(default_factory=frozenset)
    max_message_size: int | None = None
    rate: RateLimit | None = None

    @classmethod
    def of(
        cls,
        *,
        allow_methods: Iterable[str] | None = None,
        deny_methods: Iterable[str] = (),
        max_message_size: int | None = None,
        rate: RateLimit | None = None,
    ) -> Policy:
        """A policy from any iterables of method names (a list, a tuple, a set)."""
        return cls(
            None if allow_methods is None else frozenset(allow_methods),
            frozenset(deny_methods),
            max_message_size,
            rate,
        )

    @property
    def unlimited(self) -> bool:
        """Whether this policy refuses nothing."""
        return (
            self.allow_methods is None and not self.deny_methods and self.max_message_size is None and self.rate is None
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message was refused: by ``rule``, for ``reason`` (which names the rule)."""

    rule: Rule
    reason: str


class TokenBucket:
    """The state of one :class:`RateLimit`: ``burst`` tokens, refilled continuously; pure.

    Args:
        limit: The rate and burst.
    """

    __slots__ = ("_last", "limit", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self._last) * self.limit.per_second)
        if self._last is None or now > self._last:
            self._last = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available at ``now`` (0.0: one is); spends nothing."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.limit.per_second

    def take(self, now: float) -> float:
        """Spend a token at ``now`` and return 0.0, or return the seconds until one is available."""
        wait = self.wait(now)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait


def _matches(method: str, names: frozenset[str]) -> bool:
    return method in names or any(fnmatchcase(method, pattern) for pattern in names)


def decide(
    policy: Policy,
    direction: Direction,
    message: TransportMessage,
    now: float,
    bucket: TokenBucket | None = None,
) -> Refusal | None:
    """Whether ``policy`` lets ``message`` through in ``direction`` at ``now``; ``None`` means yes.

    ``bucket`` holds the direction's rate state (it is spent only when the message is let
    through); without one, the rate rule is not checked.
    """
    if policy.unlimited:
        return None
    kind, method, _ = describe(message)
    side = "outgoing" if direction == "out" else "incoming"
    if method is not None:
        if _matches(method, policy.deny_methods):
            return Refusal("method", f"method rule: {side} {kind} {method!r} is denied")
        allowed = policy.allow_methods
        if allowed is not None and method not in LIFECYCLE_METHODS and not _matches(method, allowed):
            return Refusal("method", f"method rule: {side} {kind} {method!r} is not allowed")
    limit = policy.max_message_size
    if limit is not None:
        size = message_size(message)
        if size > limit:
            return Refusal("size", f"size rule: {side} {kind} of {size} bytes is over the limit of {limit} bytes")
    if bucket is not None and method is not None:
        wait = bucket.take(now)
        if wait > 0.0:
            rate = bucket.limit
            return Refusal(
                "rate",
                f"rate rule: {side} messages are limited to {rate.per_second:g}/s (burst {rate.burst}); "
                f"next one allowed in {wait:.3g} s",
            )
    return None


class PolicyCore:
    """Both directions' policies and their token buckets: the whole decision state of one transport.

    Args:
        outbound: The rules for what we send.
        inbound: The rules for what the peer sends.
    """

    def __init__(self, outbound: Policy, inbound: Policy) -> None:
        self.policies: dict[Direction, Policy] = {"out": outbound, "in": inbound}
        self.buckets: dict[Direction, TokenBucket | None] = {
            direction: TokenBucket(policy.rate) if policy.rate is not None else None
            for direction, policy in self.policies.items()
        }

    def decide(self, direction: Direction, message: TransportMessage, now: float) -> Refusal | None:
        """:func:`decide` with this direction's policy and bucket."""
        return decide(self.policies[direction], direction, message, now, self.buckets[direction])


def refusal_response(request: JSONRPCRequest, refusal: Refusal) -> JSONRPCError:
    """The JSON-RPC error a refused incoming request is answered with (:data:`POLICY_ERROR_CODE`)."""
    data: dict[str, Any] = {"rule": refusal.rule, "reason": refusal.reason}
    return error_response(request.id, POLICY_ERROR_CODE, f"Request refused by policy ({refusal.reason})", data)
