"""The circuit breaker: its pure state machine, the shell around a wire, and a Client behind it."""

from __future__ import annotations

import asyncio

import pytest

from pyodide_transport import Client, InMemoryTransport
from pyodide_transport.errors import (
    AuthorizationRequiredError,
    CircuitOpenError,
    ConnectionClosedError,
    HTTPStatusError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    NetworkError,
    PolicyError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
)
from pyodide_transport.messages import TransportMessage, make_request, make_response
from pyodide_transport.middleware import (
    BREAKER_TRANSITIONS,
    CircuitBreaker,
    CircuitBreakerTransport,
    Middleware,
    Permit,
    Rejected,
)
from pyodide_transport.middleware.breaker_core import is_failure

try:
    from middleware_helpers import FakeClock, ScriptedWire, TinyServer
except ImportError:  # pragma: no cover - another import mode
    from .middleware_helpers import FakeClock, ScriptedWire, TinyServer  # type: ignore[no-redef,import-not-found,unused-ignore]


def _permit(breaker: CircuitBreaker, now: float) -> Permit:
    admission, _ = breaker.admit(now)
    assert isinstance(admission, Permit), admission
    return admission


# --- the pure core ------------------------------------------------------------------------------------


def test_opens_after_n_consecutive_failures_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cool_down=10.0)
    assert breaker.record(_permit(breaker, 0), "failure", 0) is None
    assert breaker.record(_permit(breaker, 0), "failure", 0) is None
    assert breaker.record(_permit(breaker, 0), "success", 0) is None and breaker.failures == 0
    assert breaker.record(_permit(breaker, 1), "failure", 1) is None
    assert breaker.record(_permit(breaker, 1), "neutral", 1) is None and breaker.failures == 1  # says nothing
    assert breaker.record(_permit(breaker, 1), "failure", 1) is None
    assert breaker.record(_permit(breaker, 2), "failure", 2) == ("closed", "open")
    assert breaker.state == "open" and breaker.opened_at == 2


def test_open_fails_fast_then_half_open_lets_one_trial_through() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=10.0)
    breaker.record(_permit(breaker, 0), "failure", 0)
    admission, change = breaker.admit(4.0)
    assert isinstance(admission, Rejected) and admission.retry_after == 6.0 and change is None
    assert breaker.retry_after(9.5) == 0.5
    trial, change = breaker.admit(10.0)
    assert isinstance(trial, Permit) and trial.trial and change == ("open", "half-open")
    second, change = breaker.admit(10.0)
    assert isinstance(second, Rejected) and second.retry_after == 0.0 and "trial" in second.reason
    assert change is None
    assert breaker.record(trial, "success", 11.0) == ("half-open", "closed")
    assert breaker.failures == 0 and isinstance(breaker.admit(11.0)[0], Permit)


def test_a_failed_trial_opens_again_for_a_whole_cool_down() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cool_down=5.0)
    breaker.record(_permit(breaker, 0), "failure", 0)
    breaker.record(_permit(breaker, 0), "failure", 0)
    trial = _permit(breaker, 5.0)
    assert breaker.record(trial, "failure", 6.0) == ("half-open", "open")
    admission, _ = breaker.admit(10.0)
    assert isinstance(admission, Rejected) and admission.retry_after == 1.0  # counted from the failed trial


def test_an_abandoned_trial_frees_the_slot() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=1.0)
    breaker.record(_permit(breaker, 0), "failure", 0)
    trial = _permit(breaker, 1.0)
    assert breaker.record(trial, "neutral", 1.0) is None and breaker.state == "half-open"
    assert _permit(breaker, 1.0).trial


def test_stale_outcomes_are_ignored() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=1.0)
    early, late = _permit(breaker, 0), _permit(breaker, 0)
    assert breaker.record(early, "failure", 0) == ("closed", "open")
    assert breaker.record(late, "success", 0.1) is None and breaker.state == "open"  # sent before it opened
    trial = _permit(breaker, 1.0)
    assert breaker.record(late, "failure", 1.0) is None and breaker.state == "half-open"
    assert breaker.record(trial, "success", 1.0) == ("half-open", "closed")


def test_failures_outside_permits_count_only_while_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cool_down=1.0)
    assert breaker.failed(0) is None
    assert breaker.failed(0) == ("closed", "open")
    assert breaker.failed(0.5) is None and breaker.opened_at == 0  # open: already refusing
    trial = _permit(breaker, 1.0)
    assert breaker.failed(1.0) is None and breaker.state == "half-open"  # the trial decides
    assert breaker.record(trial, "success", 1.0) == ("half-open", "closed")


def test_reset_and_the_table() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=60.0)
    breaker.record(_permit(breaker, 0), "failure", 0)
    assert breaker.reset() == ("open", "closed") and breaker.failures == 0
    states = {state for state, _ in BREAKER_TRANSITIONS} | set(BREAKER_TRANSITIONS.values())
    assert states == {"closed", "open", "half-open"}
    with pytest.raises(LocalProtocolError):
        breaker._go("cool-down over")  # closed cannot cool down


@pytest.mark.parametrize("args", [(0, 1.0), (1, -1.0)])
def test_configuration_must_be_sensible(args: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(*args)


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (NetworkError("refused"), True),
        (ConnectionClosedError("gone", code=1006), True),
        (RequestTimeoutError("slow"), True),
        (RemoteProtocolError("garbage"), True),
        (HTTPStatusError(502), True),
        (HTTPStatusError(429), True),
        (HTTPStatusError(400), False),
        (LegacyServerError(404), False),
        (SessionExpiredError("404"), False),
        (AuthorizationRequiredError(401), False),
        (PolicyError("no", rule="method", direction="out"), False),
        (CircuitOpenError("open", retry_after=1.0), False),
        (LocalProtocolError("ours"), False),
        (MCPError(-32601, "nope"), False),
        (ValueError("a bug"), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_what_counts_as_a_failure(error: BaseException, counts: bool) -> None:
    assert is_failure(error) is counts


# --- the shell ----------------------------------------------------------------------------------------


async def test_shell_transitions_with_a_fake_clock_and_callback_order() -> None:
    clock = FakeClock()
    changes: list[tuple[str, str]] = []
    wire = ScriptedWire()
    breaker = CircuitBreakerTransport(
        wire, failure_threshold=3, cool_down=30.0, clock=clock, on_state_change=lambda o, n: changes.append((o, n))
    )
    wire.failing = NetworkError("refused")
    for i in range(3):
        with pytest.raises(NetworkError):
            await breaker.send(make_request(i, "ping"))
    assert breaker.state == "open" and wire.attempts == 3 and changes == [("closed", "open")]

    clock.advance(10.0)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.send(make_request(9, "ping"))
    assert info.value.retry_after == 20.0 and wire.attempts == 3  # failed fast: the wire never saw it

    clock.advance(20.0)
    with pytest.raises(NetworkError):  # the trial reaches the wire and fails
        await breaker.send(make_request(10, "ping"))
    assert wire.attempts == 4 and breaker.state == "open"
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]

    clock.advance(30.0)
    wire.failing = None
    await breaker.send(make_request(11, "ping"))
    assert breaker.state == "closed" and len(wire.sent) == 1
    assert changes[3:] == [("open", "half-open"), ("half-open", "closed")]


async def test_half_open_lets_a_single_trial_through_while_others_fail_fast() -> None:
    clock = FakeClock()
    wire = ScriptedWire()
    breaker = CircuitBreakerTransport(wire, failure_threshold=1, cool_down=1.0, clock=clock)
    wire.failing = NetworkError("down")
    with pytest.raises(NetworkError):
        await breaker.send(make_request(1, "ping"))
    clock.advance(1.0)
    wire.failing, wire.gate = None, asyncio.Event()
    trial = asyncio.ensure_future(breaker.send(make_request(2, "ping")))
    await asyncio.sleep(0)
    assert breaker.state == "half-open" and wire.in_flight == 1
    for i in range(3):
        with pytest.raises(CircuitOpenError) as info:
            await breaker.send(make_request(3 + i, "ping"))
        assert info.value.retry_after == 0.0
    assert wire.attempts == 2
    wire.gate.set()
    await trial
    assert breaker.state == "closed" and wire.max_in_flight == 1


async def test_a_cancelled_trial_frees_the_slot() -> None:
    clock = FakeClock()
    wire = ScriptedWire()
    breaker = CircuitBreakerTransport(wire, failure_threshold=1, cool_down=1.0, clock=clock)
    wire.failing = NetworkError("down")
    with pytest.raises(NetworkError):
        await breaker.send(make_request(1, "ping"))
    clock.advance(1.0)
    wire.failing, wire.gate = None, asyncio.Event()
    trial = asyncio.ensure_future(breaker.send(make_request(2, "ping")))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    wire.gate.set()
    await breaker.send(make_request(3, "ping"))  # the new trial
    assert breaker.state == "closed"


async def test_local_refusals_do_not_trip_the_breaker() -> None:
    wire = ScriptedWire()
    breaker = CircuitBreakerTransport(wire, failure_threshold=1)
    wire.failing = PolicyError("no", rule="size", direction="out")
    for i in range(3):
        with pytest.raises(PolicyError):
            await breaker.send(make_request(i, "ping"))
    assert breaker.state == "closed"


async def test_receive_failures_that_lose_requests_count() -> None:
    clock = FakeClock()
    wire = ScriptedWire()
    breaker = CircuitBreakerTransport(wire, failure_threshold=2, clock=clock)
    wire.inbox.put_nowait(RemoteProtocolError("bad frame"))  # no request lost: not counted
    wire.inbox.put_nowait(NetworkError("stream broke").losing((1,)))
    wire.inbox.put_nowait(make_response(2, {}))
    wire.inbox.put_nowait(NetworkError("stream broke").losing((3,)))
    with pytest.raises(RemoteProtocolError):
        await breaker.receive()
    with pytest.raises(NetworkError):
        await breaker.receive()
    assert breaker.state == "closed" and breaker.breaker.failures == 1
    await breaker.receive()  # a received message is not a success
    with pytest.raises(NetworkError):
        await breaker.receive()
    assert breaker.state == "open"


class Unplugged(Middleware):
    """A wire that can be unplugged: ``send`` then fails as a dead network does."""

    layer = "unplugged"
    unplugged = False

    async def send(self, message: TransportMessage) -> None:
        if self.unplugged:
            raise NetworkError("unplugged")
        await self.inner.send(message)


async def test_a_client_request_fails_fast_with_circuit_open_error() -> None:
    clock = FakeClock()
    client_end, server_end = InMemoryTransport.create_pair()
    wire = Unplugged(client_end)
    breaker = CircuitBreakerTransport(wire, failure_threshold=2, cool_down=5.0, clock=clock)
    async with TinyServer(server_end) as server, Client(breaker, protocol_version="2025-11-25") as client:
        assert (await client.list_tools()).tools
        wire.unplugged = True
        for _ in range(2):
            with pytest.raises(NetworkError):
                await client.list_tools()
        with pytest.raises(CircuitOpenError) as info:
            await asyncio.wait_for(client.list_tools(), 1.0)
        assert info.value.retry_after == 5.0
        wire.unplugged = False
        clock.advance(5.0)
        assert (await client.list_tools()).tools  # the trial
        assert breaker.state == "closed" and len(server.requests("tools/list")) == 2
        wire.unplugged = True
        for _ in range(2):
            with pytest.raises(NetworkError):
                await client.list_tools()
        breaker.reset()
        wire.unplugged = False
        assert breaker.state == "closed" and (await client.list_tools()).tools
