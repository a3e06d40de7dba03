"""``bridge(a, b)``: forward messages both ways between two transports until one side ends.

The gateway pattern: a client-facing transport on one side, a backend on the other, policy or
logging wrappers on either. Each direction is one pump that awaits ``send`` before it receives
the next message, so the bridge holds at most one message per direction: a slow side slows its
sender down (backpressure) instead of filling a queue.

When it ends: a side closes (``receive`` or ``send`` raises ``ConnectionClosedError`` without
``request_ids``), or a ``send`` fails with another error, or ``receive`` fails too many times in a
row. Then both sides are closed and the other pump stops; the bridge returns once both stopped.
Cancelling the bridge closes both sides too.

A local refusal is not a failing side: when ``send`` raises ``PolicyError`` or ``CircuitOpenError``
(a wrapper refused that one message; nothing reached the wire) the message is dropped, and if it
was a request its sender is answered with a JSON-RPC error, since across a gateway that is the
only way the far peer can learn of it: -32600 (Invalid Request, as ``PolicyTransport`` answers)
with ``data`` ``{"rule", "reason"}`` for a policy refusal, -32603 (Internal error) with ``data``
``{"retry_after"}`` for an open circuit. Forwarding goes on.

Reporting, each error once: the one that ended the bridge (unless it was a side closing, which is
logged at INFO only), and each ``receive`` error the bridge read past (a lost response stream, a
bad frame: the connection itself goes on), to the logger at WARNING and to ``on_error(side,
error)``. What happens to the other side as a consequence (its ``receive`` failing once it was
closed) is not reported again. An exception that is not a ``TransportError`` is a bug: both sides
are closed and it propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from mcp_types.jsonrpc import INTERNAL_ERROR

from ..errors import CircuitOpenError, ConnectionClosedError, PolicyError, TransportError
from ..messages import JSONRPCError, JSONRPCRequest, error_response
from ..transport import Transport
from .policy_core import POLICY_ERROR_CODE

__all__ = ["ErrorCallback", "bridge"]

ErrorCallback: TypeAlias = Callable[[str, TransportError], None]
"""``on_error(side, error)``: ``side`` is the name of the transport the error came from."""

MAX_RECEIVE_ERRORS: Final = 64
"""Consecutive ``receive`` errors (other than closing) after which a side counts as gone."""


@dataclass(frozen=True, slots=True)
class _End:
    """Why a pump stopped: ``error`` on ``side``; ``closed`` when that side simply closed."""

    side: str
    error: TransportError
    closed: bool


async def bridge(
    a: Transport,
    b: Transport,
    *,
    on_error: ErrorCallback | None = None,
    logger: logging.Logger | None = None,
    names: tuple[str, str] = ("a", "b"),
) -> None:
    """Forward ``a``'s messages to ``b`` and ``b``'s to ``a`` until one side ends; then close both.

    Args:
        a: One side (e.g. the client-facing transport).
        b: The other side (e.g. the backend).
        on_error: Told about each error once (see the module docstring).
        logger: Where the bridge logs (default: ``pyodide_transport.middleware``).
        names: What the two sides are called in reports.
    """
    log = logger if logger is not None else logging.getLogger("pyodide_transport.middleware")

    stopping = False  # once both sides are being closed, what follows is a consequence, not news

    def report(side: str, error: TransportError) -> None:
        if stopping:
            return
        log.warning("bridge: %s: %s: %s", side, type(error).__name__, error)
        if on_error is not None:
            try:
                on_error(side, error)
            except Exception:
                log.exception("bridge on_error callback failed")

    name_a, name_b = names
    pumps = (
        asyncio.ensure_future(_pump(a, b, name_a, name_b, report)),
        asyncio.ensure_future(_pump(b, a, name_b, name_a, report)),
    )
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        first = next(pump for pump in pumps if pump.done())
        if not first.cancelled() and first.exception() is None:
            end = first.result()
            if end.closed:
                other = name_b if end.side == name_a else name_a
                log.info("bridge: %s closed (%s); closing %s", end.side, end.error, other)
            else:
                report(end.side, end.error)
    finally:
        stopping = True
        await _close(a, name_a, log)
        await _close(b, name_b, log)
        for pump in pumps:
            pump.cancel()
        await asyncio.wait(pumps)
    for pump in pumps:  # a bug in a transport propagates
        if not pump.cancelled() and (exc := pump.exception()) is not None:
            raise exc


async def _pump(
    src: Transport, dst: Transport, src_name: str, dst_name: str, report: Callable[[str, TransportError], None]
) -> _End:
    """Move messages from ``src`` to ``dst``, one at a time, until one of them ends."""
    errors = 0
    while True:
        try:
            message = await src.receive()
        except TransportError as exc:
            if isinstance(exc, ConnectionClosedError) and not exc.request_ids:
                return _End(src_name, exc, closed=True)
            report(src_name, exc)  # the connection goes on (lost requests, a bad frame)
            errors += 1
            if errors >= MAX_RECEIVE_ERRORS:
                return _End(src_name, ConnectionClosedError(f"{errors} receive errors in a row"), closed=False)
            await asyncio.sleep(0)
            continue
        errors = 0
        try:
            await dst.send(message)
        except (PolicyError, CircuitOpenError) as exc:
            report(dst_name, exc)  # that message was refused; the side is fine
            if not isinstance(message, JSONRPCRequest):
                continue
            try:
                await src.send(_refusal_answer(message, exc))
            except ConnectionClosedError as answer_exc:
                return _End(src_name, answer_exc, closed=True)
            except TransportError as answer_exc:
                return _End(src_name, answer_exc, closed=False)
        except ConnectionClosedError as exc:
            return _End(dst_name, exc, closed=True)
        except TransportError as exc:
            return _End(dst_name, exc, closed=False)


def _refusal_answer(request: JSONRPCRequest, error: PolicyError | CircuitOpenError) -> JSONRPCError:
    """The JSON-RPC error that tells a request's sender a wrapper on the other side refused it."""
    if isinstance(error, PolicyError):
        data = {"rule": error.rule, "reason": str(error)}
        return error_response(request.id, POLICY_ERROR_CODE, f"Request refused by policy ({error})", data)
    return error_response(
        request.id, INTERNAL_ERROR, f"Backend unavailable ({error})", {"retry_after": error.retry_after}
    )


async def _close(transport: Transport, name: str, log: logging.Logger) -> None:
    try:
        await transport.close()
    except TransportError as exc:
        log.info("bridge: closing %s failed: %s", name, exc)
