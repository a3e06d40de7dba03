"""The sans-I/O WebSocket core, driven by hand: no sockets, no event loop, the clock is plain floats."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import pyodide_transport.websocket_core as core_module
from pyodide_transport.backoff import BackoffPolicy
from pyodide_transport.errors import (
    ConnectionClosedError,
    LocalProtocolError,
    MessageTooLargeError,
    NetworkError,
    RemoteProtocolError,
    SessionExpiredError,
)
from pyodide_transport.messages import (
    JSONRPCRequest,
    TransportMessage,
    decode_message,
    encode_message,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from pyodide_transport.websocket_core import (
    PERMANENT_CLOSE_CODES,
    TRANSITIONS,
    CloseSocket,
    Deliver,
    Reconnect,
    Report,
    WebSocketCore,
    Write,
    describe_close,
)

NOW = 500.0
URL = "ws://test.invalid/mcp"
ABNORMAL = 1006
REFUSED = NetworkError("connection refused")


class Recording(dict[Any, Any]):
    """A transition table that remembers which rows were looked up."""

    def __init__(self, table: Mapping[Any, Any]) -> None:
        super().__init__(table)
        self.seen: list[Any] = []

    def __getitem__(self, key: Any) -> Any:
        self.seen.append(key)
        return super().__getitem__(key)


def new_core(max_attempts: int | None = 3, **options: Any) -> WebSocketCore:
    """A core whose reconnect delays are exact: 1, 2, 4, 8, 8, ... seconds."""
    backoff = BackoffPolicy(initial_delay=1.0, max_delay=8.0, max_attempts=max_attempts, jitter="none")
    return WebSocketCore(URL, backoff=backoff, **options)


def open_core(max_attempts: int | None = 3, **options: Any) -> WebSocketCore:
    core = new_core(max_attempts, **options)
    core.connect()
    core.opened(NOW)
    return core


def reconnected(core: WebSocketCore, now: float = NOW) -> None:
    """Drop the socket and open a new one."""
    assert isinstance(core.dropped(ABNORMAL, "")[-1], Reconnect)
    core.opened(now)


def frame(message: TransportMessage) -> str:
    return encode_message(message)


def only_report(events: list[Any]) -> Any:
    assert len(events) == 1 and isinstance(events[0], Report), events
    return events[0].error


def closed_error(event: object) -> ConnectionClosedError:
    assert isinstance(event, Report) and isinstance(event.error, ConnectionClosedError), event
    return event.error


def state_of(core: WebSocketCore) -> str:
    return core.state


# --- opening ------------------------------------------------------------------------------------------


def test_connect_then_open() -> None:
    core = new_core()
    assert core.state == "new"
    core.connect()
    assert state_of(core) == "connecting"
    core.opened(NOW)
    assert (core.state, core.reconnects, core.lost_error) == ("open", 0, None)


def test_first_open_failure_is_the_callers_to_report() -> None:
    core = new_core()
    core.connect()
    assert core.open_failed(REFUSED) == []
    assert core.state == "new"
    core.connect()  # the caller may try again
    assert state_of(core) == "connecting"


@pytest.mark.parametrize("state", ["new", "open"])
def test_open_failed_outside_an_attempt_is_ignored(state: str) -> None:
    core = open_core() if state == "open" else new_core()
    assert core.open_failed(REFUSED) == []
    assert core.state == state


def test_impossible_transitions_are_local_errors() -> None:
    core = new_core()
    with pytest.raises(LocalProtocolError, match="that is new cannot take 'opened'"):
        core.opened(NOW)
    core.connect()
    with pytest.raises(LocalProtocolError, match="that is connecting cannot take 'connect'"):
        core.connect()


# --- sending ------------------------------------------------------------------------------------------


def test_send_returns_the_text_frame() -> None:
    core = open_core()
    request = make_request(1, "tools/call", {"name": "echo", "arguments": {"text": "héllo"}})
    text = core.send(request)
    assert text == encode_message(request)
    assert decode_message(text) == request


@pytest.mark.parametrize("state", ["new", "connecting", "reconnecting"])
def test_send_when_not_open(state: str) -> None:
    core = new_core()
    if state != "new":
        core.connect()
    if state == "reconnecting":
        core.opened(NOW)
        core.dropped(ABNORMAL, "")
    assert core.state == state
    with pytest.raises(ConnectionClosedError, match=f"WebSocket to {URL} is not open \\({state}\\)"):
        core.send(make_request(1, "ping"))


def test_oversized_outgoing_message_is_a_local_error() -> None:
    core = open_core(max_message_size=100)
    request = make_request(1, "tools/call", {"name": "x" * 100})
    with pytest.raises(LocalProtocolError, match="exceeds max_message_size=100"):
        core.send(request)
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]  # it never went out: nothing in flight


def test_message_of_exactly_the_limit_goes_out() -> None:
    request = make_request(1, "ping")
    core = open_core(max_message_size=len(frame(request)))
    assert core.send(request) == frame(request)


def test_unsent_request_is_not_in_flight() -> None:
    core = open_core()
    request = make_request(1, "tools/list")
    core.send(request)
    core.unsent(request)
    core.unsent(make_notification("notifications/initialized"))  # not a request: nothing to forget
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]


def test_answered_requests_are_not_in_flight() -> None:
    core = open_core()
    core.send(make_request(1, "tools/list"))
    core.send(make_request(2, "tools/call", {"name": "x"}))
    assert core.receive_frame(frame(make_response(1, {})), NOW) == [Deliver(make_response(1, {}))]
    error = error_response(2, -32603, "boom")
    assert core.receive_frame(frame(error), NOW) == [Deliver(error)]
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]


# --- drops, reconnects and giving up ------------------------------------------------------------------


def test_drop_reports_in_flight_requests_with_the_close_code() -> None:
    core = open_core()
    core.send(make_request(1, "tools/list"))
    core.send(make_request("b", "tools/call", {"name": "x"}))
    core.send(make_notification("notifications/initialized"))
    core.send(make_response("s-1", {}))  # our answer to a server request: nothing awaits it
    events = core.dropped(ABNORMAL, "server went away")
    assert len(events) == 2
    assert events[1] == Reconnect(1.0)
    lost = closed_error(events[0])
    assert set(lost.request_ids) == {1, "b"}
    assert (lost.code, lost.reason) == (ABNORMAL, "server went away")
    assert "abnormal closure" in str(lost) and "server went away" in str(lost)
    assert core.state == "reconnecting"


def test_reconnect_resumes_and_counts() -> None:
    core = open_core()
    assert core.dropped(1001, "restart") == [Reconnect(1.0)]
    core.opened(NOW + 1.0)
    assert (core.state, core.reconnects) == ("open", 1)
    core.send(make_request(1, "tools/list"))  # no initialize was ever sent: no session to lose
    core.receive_frame(frame(make_response(1, {})), NOW + 1.5)
    assert core.dropped(1012, "") == [Reconnect(1.0)]  # every drop starts a fresh schedule
    core.opened(NOW + 2.0)
    assert core.reconnects == 2


def test_reconnect_attempts_back_off_then_give_up() -> None:
    core = open_core(max_attempts=3)
    assert core.dropped(ABNORMAL, "gone") == [Reconnect(1.0)]
    assert core.open_failed(REFUSED) == [Reconnect(2.0)]
    assert core.open_failed(NetworkError("still refused")) == [Reconnect(4.0)]
    assert state_of(core) == "reconnecting"
    error = only_report(core.open_failed(NetworkError("refused again")))
    assert isinstance(error, ConnectionClosedError)
    assert error.request_ids == ()
    assert (error.code, error.reason) == (ABNORMAL, "gone")
    assert str(error).endswith("; gave up after 3 reconnect attempts (last: refused again)")
    assert core.state == "lost"
    assert core.lost_error is error
    with pytest.raises(ConnectionClosedError) as raised:
        core.send(make_request(1, "ping"))
    assert (raised.value.code, str(raised.value)) == (ABNORMAL, str(error))


def test_backoff_starts_over_after_a_successful_reconnect() -> None:
    core = open_core(max_attempts=None)
    core.dropped(ABNORMAL, "")
    assert [core.open_failed(REFUSED) for _ in range(4)] == [[Reconnect(d)] for d in (2.0, 4.0, 8.0, 8.0)]
    core.opened(NOW)
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]


def test_no_reconnect_attempts_gives_up_at_once() -> None:
    core = open_core(max_attempts=0)
    error = only_report(core.dropped(1001, "bye"))
    assert isinstance(error, ConnectionClosedError) and error.code == 1001
    assert "gave up after 0 reconnect attempts" in str(error)
    assert core.state == "lost"


@pytest.mark.parametrize("code", sorted(PERMANENT_CLOSE_CODES))
def test_permanent_close_codes_give_up_at_once(code: int) -> None:
    core = open_core()
    core.send(make_request(1, "tools/list"))
    events = core.dropped(code, "no")
    assert len(events) == 2
    lost = closed_error(events[0])
    assert lost.request_ids == (1,) and lost.code == code
    error = closed_error(events[1])
    assert error.request_ids == ()
    assert (error.code, error.reason) == (code, "no")
    assert str(error) == f"WebSocket {URL} closed: {describe_close(code, 'no')}"
    assert core.state == "lost" and core.lost_error is error


@pytest.mark.parametrize("code", [1000, ABNORMAL, None])
def test_without_auto_reconnect_every_drop_is_final(code: int | None) -> None:
    core = open_core(auto_reconnect=False)
    error = only_report(core.dropped(code, ""))
    assert isinstance(error, ConnectionClosedError) and error.code == code
    assert core.state == "lost"


def test_drop_when_not_open_is_ignored() -> None:
    core = new_core()
    assert core.dropped(ABNORMAL, "") == []
    core = open_core()
    core.dropped(ABNORMAL, "")
    assert core.dropped(ABNORMAL, "") == []  # already reconnecting
    assert core.state == "reconnecting"


# --- sessions are per socket --------------------------------------------------------------------------


def test_a_new_socket_needs_a_new_initialize() -> None:
    core = open_core()
    core.send(make_request(1, "initialize", {"protocolVersion": "2025-11-25"}))
    core.send(make_notification("notifications/initialized"))
    core.receive_frame(frame(make_response(1, {})), NOW)
    core.send(make_request(2, "tools/list"))
    reconnected(core)
    for message in (make_request(3, "tools/list"), make_notification("notifications/initialized")):
        with pytest.raises(SessionExpiredError, match="initialize again"):
            core.send(message)
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]  # the refused requests are not in flight
    core.opened(NOW)
    core.send(make_request(4, "initialize", {"protocolVersion": "2025-11-25"}))
    core.send(make_notification("notifications/initialized"))
    assert core.send(make_request(5, "tools/list")) == frame(make_request(5, "tools/list"))


def test_without_an_initialize_a_new_socket_needs_none() -> None:
    core = open_core()
    core.send(make_request(1, "server/discover"))
    reconnected(core)
    core.send(make_request(2, "tools/list"))


# --- receiving ----------------------------------------------------------------------------------------


def test_frames_are_delivered() -> None:
    core = open_core()
    note = make_notification("notifications/tools/list_changed")
    request = make_request("s-1", "roots/list")
    assert core.receive_frame(frame(note), NOW) == [Deliver(note)]
    assert core.receive_frame(frame(request).encode().decode(), NOW) == [Deliver(request)]


def test_a_batch_frame_delivers_each_message() -> None:
    core = open_core()
    batch = json.dumps([json.loads(frame(make_response(1, {}))), json.loads(frame(make_response(2, {"a": 1})))])
    assert core.receive_frame(batch, NOW) == [Deliver(make_response(1, {})), Deliver(make_response(2, {"a": 1}))]


@pytest.mark.parametrize(
    ("data", "kind", "needle"),
    [
        (b'{"jsonrpc":"2.0","method":"x"}', RemoteProtocolError, "binary frame of 30 bytes"),
        ("x" * 65, MessageTooLargeError, "frame of 65 bytes exceeds max_message_size=64"),
        ("{not json", RemoteProtocolError, "invalid JSON"),
        ('{"jsonrpc":"2.0"}', RemoteProtocolError, "none of method, result, error"),
        ("[]", RemoteProtocolError, "empty JSON-RPC batch"),
    ],
    ids=["binary", "oversized", "invalid-json", "not-json-rpc", "empty-batch"],
)
def test_bad_frames_are_reported_and_the_socket_stays_open(
    data: str | bytes, kind: type[Exception], needle: str
) -> None:
    core = open_core(max_message_size=64)
    error = only_report(core.receive_frame(data, NOW))
    assert type(error) is kind
    assert needle in str(error)
    assert core.state == "open"
    note = make_notification("notifications/tools/list_changed")
    assert core.receive_frame(frame(note), NOW) == [Deliver(note)]


# --- keep-alive ---------------------------------------------------------------------------------------


def ping_of(events: list[Any]) -> JSONRPCRequest:
    assert len(events) == 1 and isinstance(events[0], Write), events
    ping = decode_message(events[0].text)
    assert isinstance(ping, JSONRPCRequest) and ping.method == "ping"
    return ping


@pytest.mark.parametrize("interval", [None, 0])
def test_no_keepalive_without_an_interval(interval: float | None) -> None:
    core = open_core(ping_interval=interval)
    assert core.next_keepalive is None
    assert core.keepalive(NOW + 1e6) == []


def test_keepalive_pings_and_swallows_the_answer() -> None:
    core = open_core(ping_interval=10.0, ping_timeout=3.0)
    assert core.next_keepalive == NOW + 10.0
    assert core.keepalive(NOW + 9.0) == []
    ping = ping_of(core.keepalive(NOW + 10.0))
    assert ping.id == "pyodide-transport-ping-1"
    assert core.next_keepalive == NOW + 13.0
    assert core.receive_frame(frame(make_response(ping.id, {})), NOW + 11.0) == []
    assert core.next_keepalive == NOW + 21.0
    second = ping_of(core.keepalive(NOW + 21.0))
    assert second.id == "pyodide-transport-ping-2"
    # An error answers a ping too: the server is alive.
    assert core.receive_frame(frame(error_response(second.id, -32601, "no ping here")), NOW + 22.0) == []
    assert core.next_keepalive == NOW + 32.0


def test_ping_answer_in_a_batch_is_swallowed_alone() -> None:
    core = open_core(ping_interval=10.0)
    ping = ping_of(core.keepalive(NOW + 10.0))
    note = make_notification("notifications/tools/list_changed")
    batch = json.dumps([json.loads(frame(make_response(ping.id, {}))), json.loads(frame(note))])
    assert core.receive_frame(batch, NOW + 11.0) == [Deliver(note)]


def test_unanswered_ping_closes_the_socket_with_4000_and_reconnects() -> None:
    core = open_core(ping_interval=10.0, ping_timeout=3.0)
    ping_of(core.keepalive(NOW + 10.0))
    assert core.keepalive(NOW + 12.9) == []
    assert core.keepalive(NOW + 13.0) == [CloseSocket(4000, "keep-alive ping timed out")]
    assert core.dropped(4000, "keep-alive ping timed out") == [Reconnect(1.0)]
    assert core.next_keepalive is None  # not open
    core.opened(NOW + 20.0)
    assert core.next_keepalive == NOW + 30.0
    assert ping_of(core.keepalive(NOW + 30.0)).id == "pyodide-transport-ping-2"


def test_a_ping_is_never_reported_as_lost() -> None:
    core = open_core(ping_interval=10.0)
    ping_of(core.keepalive(NOW + 10.0))
    assert core.dropped(ABNORMAL, "") == [Reconnect(1.0)]


def test_late_ping_answer_after_timeout_is_still_swallowed() -> None:
    core = open_core(ping_interval=10.0, ping_timeout=3.0)
    ping = ping_of(core.keepalive(NOW + 10.0))
    assert isinstance(core.keepalive(NOW + 13.0)[0], CloseSocket)
    assert core.receive_frame(frame(make_response(ping.id, {})), NOW + 13.5) == []


# --- closing ------------------------------------------------------------------------------------------


def test_close_reports_in_flight_requests() -> None:
    core = open_core()
    core.send(make_request(1, "tools/list"))
    core.send(make_request(2, "tools/list"))
    core.receive_frame(frame(make_response(2, {})), NOW)
    error = only_report(core.close())
    assert isinstance(error, ConnectionClosedError)
    assert error.request_ids == (1,)
    assert str(error) == "the transport was closed before the response"
    assert core.state == "closed"


def test_close_without_in_flight_reports_nothing() -> None:
    core = open_core()
    assert core.close() == []
    assert core.close() == []  # closing twice is harmless
    with pytest.raises(ConnectionClosedError, match=r"^the transport is closed$"):
        core.send(make_request(1, "ping"))
    assert core.next_keepalive is None


def test_closing_a_lost_connection() -> None:
    core = open_core()
    core.dropped(1008, "origin")
    assert core.not_open().code == 1008
    assert core.close() == []
    assert str(core.not_open()) == "the transport is closed"


# --- the transition table -----------------------------------------------------------------------------


def _to(state: str, **options: Any) -> WebSocketCore:
    """A core in ``state``."""
    core = new_core(**options)
    if state == "new":
        return core
    core.connect()
    if state == "connecting":
        return core
    core.opened(NOW)
    if state == "open":
        return core
    core.dropped(ABNORMAL if state == "reconnecting" else 1002, "")
    assert core.state == state
    return core


def _give_up(core: WebSocketCore) -> None:
    while core.state == "reconnecting":
        core.open_failed(REFUSED)


ACTIONS: dict[str, Callable[[WebSocketCore], object]] = {
    "connect": lambda core: core.connect(),
    "opened": lambda core: core.opened(NOW),
    "open failed": lambda core: core.open_failed(REFUSED),
    "dropped, retry": lambda core: core.dropped(ABNORMAL, ""),
    "dropped, give up": lambda core: core.dropped(1002, ""),
    "attempt failed": lambda core: core.open_failed(REFUSED),
    "gave up": _give_up,
    "close": lambda core: core.close(),
}


def test_every_transition_has_an_action() -> None:
    assert {what for _, what in TRANSITIONS} == set(ACTIONS)


@pytest.mark.parametrize("row", list(TRANSITIONS), ids=lambda row: f"{row[0]}-{row[1]}")
def test_transition_row(row: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    state, what = row
    core = _to(state)
    table = Recording(TRANSITIONS)
    monkeypatch.setattr(core_module, "TRANSITIONS", table)
    ACTIONS[what](core)
    assert row in table.seen
    assert core.state == TRANSITIONS[row]


# --- close codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        (None, "", "closed"),
        (1000, "", "code 1000, normal closure"),
        (1006, "", "code 1006, abnormal closure (lost without a close frame)"),
        (1001, "shutting down", "code 1001, going away: shutting down"),
        (4000, "", "code 4000, keep-alive ping timed out"),
        (3001, "quota", "code 3001, application-defined: quota"),
        (1234, "", "code 1234"),
        (1008, "", "code 1008, policy violation (the server refused this connection, e.g. its Origin)"),
    ],
)
def test_describe_close(code: int | None, reason: str, text: str) -> None:
    assert describe_close(code, reason) == text
