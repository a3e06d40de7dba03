"""``PolicyTransport``: rules on what may be sent and received, and an inspection hook.

The decisions are :mod:`~pyodide_transport.middleware.policy_core`'s (method allow/deny lists,
a size limit, a token-bucket rate limit, per direction); this shell applies them and then the
optional ``inspect(direction, message)`` hook, which may return the message rewritten (redact
PII in results, strip a field) or ``None`` to refuse it (rule ``"inspection"``; a hook that
raises refuses too: fail closed).

What a refusal does, so that only the refused message is affected:

* **outgoing** (any kind): ``send`` raises :class:`~pyodide_transport.errors.PolicyError` with
  ``direction="out"``; nothing reaches the wire, so the request fails at once with it.
* **incoming request** (the server asks us): answered through the inner transport with a JSON-RPC
  error (code :data:`~pyodide_transport.middleware.policy_core.POLICY_ERROR_CODE`, -32600, the
  message naming the rule) and not delivered.
* **incoming notification**: dropped.
* **incoming response or error**: not delivered; ``receive`` raises a ``PolicyError`` whose
  ``request_ids`` name the request it answered, so the session fails exactly that request with
  the refusal instead of leaving it to time out, and reads on.

Every refusal is reported: ``on_refused(error, message)`` (the ``PolicyError``, and the message
refused) and a WARNING on the ``pyodide_transport.middleware`` logger naming rule and method,
never the payload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final, TypeAlias

from ..errors import PolicyError, TransportError
from ..messages import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, TransportMessage
from ..transport import Transport
from ._base import Direction, Middleware, describe
from .policy_core import Policy, PolicyCore, RateLimit, Refusal, refusal_response

__all__ = ["InspectHook", "PolicyTransport", "RefusedCallback"]

logger = logging.getLogger("pyodide_transport.middleware")

InspectHook: TypeAlias = Callable[[Direction, TransportMessage], TransportMessage | None]
"""``inspect(direction, message)``: the message to pass on (maybe rewritten), or ``None`` to refuse it."""

RefusedCallback: TypeAlias = Callable[[PolicyError, TransportMessage], None]
"""``on_refused(error, message)``: told about every refusal, both directions."""

_NO_POLICY: Final = Policy()


class PolicyTransport(Middleware):
    """Wraps a transport and enforces a :class:`Policy` each way (see the module docstring).

    Args:
        inner: The transport that does the work.
        allow_methods: Outgoing methods (or ``fnmatch`` patterns) allowed; ``None``: all.
        deny_methods: Outgoing methods (or patterns) refused.
        max_message_size: Largest outgoing message in bytes of compact JSON.
        rate: Outgoing requests and notifications per second (a :class:`RateLimit`).
        inbound: The rules for what the peer sends (default: none).
        inspect: Runs on every message both ways once the rules let it through.
        on_refused: Told about every refusal.
        clock: Monotonic seconds, for the rate limits.
    """

    layer = "policy"

    def __init__(
        self,
        inner: Transport,
        *,
        allow_methods: Iterable[str] | None = None,
        deny_methods: Iterable[str] = (),
        max_message_size: int | None = None,
        rate: RateLimit | None = None,
        inbound: Policy | None = None,
        inspect: InspectHook | None = None,
        on_refused: RefusedCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inner)
        self.outbound = Policy.of(
            allow_methods=allow_methods, deny_methods=deny_methods, max_message_size=max_message_size, rate=rate
        )
        self.inbound = inbound if inbound is not None else _NO_POLICY
        self.core = PolicyCore(self.outbound, self.inbound)
        self._inspect = inspect
        self._on_refused = on_refused
        self._clock = clock

    def _check(self, direction: Direction, message: TransportMessage) -> TransportMessage | Refusal:
        """The rules, then the hook: the message to pass on, or why not."""
        refusal = self.core.decide(direction, message, self._clock())
        if refusal is not None:
            return refusal
        if self._inspect is None:
            return message
        try:
            inspected = self._inspect(direction, message)
        except Exception as exc:
            logger.exception("policy inspect hook failed; refusing the message")
            return Refusal("inspection", f"inspection rule: the inspect hook failed ({type(exc).__name__})")
        if inspected is None:
            kind, method, _ = describe(message)
            what = f" {method!r}" if method else ""
            return Refusal("inspection", f"inspection rule: the inspect hook refused this {kind}{what}")
        return inspected

    def _refused(self, direction: Direction, message: TransportMessage, refusal: Refusal, action: str) -> PolicyError:
        error = PolicyError(refusal.reason, rule=refusal.rule, direction=direction)
        kind, method, request_id = describe(message)
        logger.warning(
            "policy refused %s %s%s%s (%s): %s",
            "outgoing" if direction == "out" else "incoming",
            kind,
            f" {method}" if method else "",
            f" #{request_id}" if request_id is not None else "",
            refusal.rule,
            action,
        )
        if self._on_refused is not None:
            try:
                self._on_refused(error, message)
            except Exception:
                logger.exception("PolicyTransport on_refused callback failed")
        return error

    async def send(self, message: TransportMessage) -> None:
        """Send if the outbound rules and the hook allow it.

        Raises:
            PolicyError: Refused (``direction="out"``); nothing was sent.
        """
        checked = self._check("out", message)
        if isinstance(checked, Refusal):
            raise self._refused("out", message, checked, "raised from send")
        await self.inner.send(checked)

    async def receive(self) -> TransportMessage:
        """The next message the inbound rules and the hook allow (see the module docstring).

        Raises:
            PolicyError: A response or error was refused; ``request_ids`` names its request.
        """
        while True:
            message = await self.inner.receive()
            checked = self._check("in", message)
            if not isinstance(checked, Refusal):
                return checked
            if isinstance(message, JSONRPCRequest):
                self._refused("in", message, checked, "answered with a JSON-RPC error")
                try:
                    await self.inner.send(refusal_response(message, checked))
                except TransportError as exc:
                    logger.warning("could not answer a refused request #%s: %s", message.id, type(exc).__name__)
            elif isinstance(message, JSONRPCNotification):
                self._refused("in", message, checked, "dropped")
            elif isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
                error = self._refused("in", message, checked, "its request fails with PolicyError")
                raise error.losing((message.id,))
            else:
                self._refused("in", message, checked, "dropped")
