"""The sans-I/O session core, driven by hand: no I/O, no event loop, the clock is plain floats."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    CallToolResult,
    ClientCapabilities,
    DiscoverResult,
    Implementation,
    InitializeResult,
    InputRequiredResult,
    RootsCapability,
)
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

import pyodide_transport.session as session_module
from pyodide_transport.errors import (
    ConnectionClosedError,
    HTTPStatusError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    NetworkError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from pyodide_transport.messages import (
    JSONRPCNotification,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from pyodide_transport.session import (
    MAX_INPUT_ROUNDS,
    NEGOTIATION,
    REQUEST_STATES,
    ClientSession,
    Completed,
    ConnectionLost,
    Discover,
    Event,
    Failed,
    Handshake,
    Initialize,
    ListChanged,
    LogReceived,
    Modern,
    Negotiation,
    Progressed,
    ResourceUpdated,
    Send,
    ServerRequest,
    ServerRequestCancelled,
    Violation,
    dump,
    error_from,
    input_round,
    listen_filter,
    parse_result,
)
from pyodide_transport.wire import MODERN_ERROR_CODES

NOW = 1000.0
MODERN = LATEST_MODERN_VERSION
HANDSHAKE = LATEST_HANDSHAKE_VERSION
INFO = Implementation(name="test-client", version="1.2.3")
CAPS = ClientCapabilities(roots=RootsCapability(list_changed=True))
SERVER_INFO = {"name": "test-server", "version": "9.9"}
DISCOVER_OK: dict[str, Any] = {
    "supportedVersions": [HANDSHAKE, MODERN],
    "capabilities": {"tools": {}},
    "_meta": {SERVER_INFO_META_KEY: SERVER_INFO},
}
INIT_OK: dict[str, Any] = {"protocolVersion": HANDSHAKE, "capabilities": {}, "serverInfo": SERVER_INFO}


class Recording(dict[Any, Any]):
    """A transition table that remembers which rows were looked up."""

    def __init__(self, table: Mapping[Any, Any]) -> None:
        super().__init__(table)
        self.seen: list[Any] = []

    def __getitem__(self, key: Any) -> Any:
        self.seen.append(key)
        return super().__getitem__(key)


def new_session(era: str | None = None, version: str | None = None) -> ClientSession:
    session = ClientSession(INFO, CAPS)
    if era == "modern":
        session.adopt("modern", version or MODERN)
    elif era == "handshake":
        session.adopt("handshake", version or HANDSHAKE)
    return session


def sent_request(session: ClientSession, method: str = "tools/list", **options: Any) -> int:
    """Begin a request and hand it to the (imaginary) transport at NOW; its id."""
    request = session.begin(method, None, **options)
    session.sent(request.id, NOW)
    assert isinstance(request.id, int)
    return request.id


def meta_of(message: Any) -> dict[str, Any]:
    assert message.params is not None
    meta: dict[str, Any] = message.params["_meta"]
    return meta


def cancelled(request_id: int, reason: str) -> JSONRPCNotification:
    return make_notification("notifications/cancelled", {"requestId": request_id, "reason": reason})


def unsupported(supported: list[str] | None) -> UnsupportedProtocolVersionError:
    """The -32022 a server answers a probe with, as the session builds it from the wire."""
    data = None if supported is None else {"supported": supported, "requested": MODERN}
    error = error_from(error_response(1, UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version", data))
    assert isinstance(error, UnsupportedProtocolVersionError)
    return error


# --- ids and the _meta envelope ---------------------------------------------------------------------


def test_ids_count_up_from_one() -> None:
    session = new_session()
    assert [session.begin("ping", None).id for _ in range(3)] == [1, 2, 3]
    assert session.pending() == (1, 2, 3)


def test_handshake_request_carries_no_meta() -> None:
    session = new_session("handshake")
    assert session.begin("tools/list", None).params is None
    assert session.begin("tools/call", {"name": "echo"}).params == {"name": "echo"}


def test_modern_request_carries_the_envelope() -> None:
    session = new_session("modern")
    request = session.begin("tools/call", {"name": "echo", "_meta": {"custom": 1}})
    assert request.method == "tools/call"
    assert request.params is not None and request.params["name"] == "echo"
    assert meta_of(request) == {
        "custom": 1,
        PROTOCOL_VERSION_META_KEY: MODERN,
        CLIENT_INFO_META_KEY: {"name": "test-client", "version": "1.2.3"},
        CLIENT_CAPABILITIES_META_KEY: {"roots": {"listChanged": True}},
    }


def test_modern_request_without_params_gets_the_envelope() -> None:
    request = new_session("modern").begin("tools/list", None)
    assert set(meta_of(request)) == {PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY}


def test_probe_version_sends_the_envelope_before_negotiation() -> None:
    session = new_session()
    probe = session.begin("server/discover", {}, version=MODERN)
    assert meta_of(probe)[PROTOCOL_VERSION_META_KEY] == MODERN
    assert session.begin("initialize", {"protocolVersion": HANDSHAKE}).params == {"protocolVersion": HANDSHAKE}


def test_begin_leaves_the_callers_params_alone() -> None:
    params = {"name": "echo", "_meta": {"custom": 1}}
    new_session("modern").begin("tools/call", params, progress=True)
    assert params == {"name": "echo", "_meta": {"custom": 1}}


def test_envelope_is_built_once_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    dumped: list[object] = []

    def counting_dump(model: Any) -> dict[str, Any]:
        dumped.append(model)
        return dump(model)

    monkeypatch.setattr(session_module, "dump", counting_dump)
    session = new_session("modern")
    first, second = session.begin("tools/list", None), session.begin("prompts/list", None)
    assert meta_of(first) == meta_of(second)
    assert len(dumped) == 2  # client info and capabilities, once for both requests


def test_envelope_refreshes_when_capabilities_change() -> None:
    session = new_session("modern")
    session.begin("tools/list", None)
    session.capabilities = ClientCapabilities()
    assert session.capabilities == ClientCapabilities()
    assert meta_of(session.begin("tools/list", None))[CLIENT_CAPABILITIES_META_KEY] == {}


def test_envelope_refreshes_when_the_log_level_changes() -> None:
    session = new_session("modern")
    assert LOG_LEVEL_META_KEY not in meta_of(session.begin("tools/list", None))
    session.set_log_level("debug")
    assert session.log_level == "debug"
    assert meta_of(session.begin("tools/list", None))[LOG_LEVEL_META_KEY] == "debug"
    session.set_log_level("error")
    assert meta_of(session.begin("tools/list", None))[LOG_LEVEL_META_KEY] == "error"
    session.set_log_level(None)
    assert LOG_LEVEL_META_KEY not in meta_of(session.begin("tools/list", None))


def test_envelope_follows_the_version() -> None:
    session = new_session("modern")
    session.begin("tools/list", None)
    assert meta_of(session.begin("server/discover", None, version="2099-01-01"))[PROTOCOL_VERSION_META_KEY] == (
        "2099-01-01"
    )
    assert meta_of(session.begin("tools/list", None))[PROTOCOL_VERSION_META_KEY] == MODERN
    session.adopt("modern", "2099-01-01")
    assert (session.era, session.protocol_version) == ("modern", "2099-01-01")
    assert meta_of(session.begin("tools/list", None))[PROTOCOL_VERSION_META_KEY] == "2099-01-01"


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_progress_token_is_the_request_id(era: str) -> None:
    session = new_session(era)
    session.begin("ping", None)
    request = session.begin("tools/call", {"name": "slow", "_meta": {"custom": 1}}, progress=True)
    assert request.id == 2
    assert meta_of(request)["progressToken"] == 2
    assert meta_of(request)["custom"] == 1
    assert ("_meta" in (session.begin("ping", None).params or {})) == (era == "modern")


# --- the request lifecycle table ----------------------------------------------------------------------


def _begun(session: ClientSession) -> int:
    request = session.begin("tools/list", None, timeout=5.0)
    assert isinstance(request.id, int)
    return request.id


def _sent(session: ClientSession) -> int:
    request_id = _begun(session)
    session.sent(request_id, NOW)
    return request_id


def _sent_then_cancel(session: ClientSession) -> None:
    assert session.cancel(_sent(session), "bye") == cancelled(1, "bye")


def _begun_then_cancel(session: ClientSession) -> None:
    assert session.cancel(_begun(session), "bye") is None


def _begun_then_fail(session: ClientSession) -> None:
    request_id = _begun(session)
    error = NetworkError("reset").losing((request_id,))
    assert session.fail(error) == [Failed(request_id, error)]


def _sent_then_fail(session: ClientSession) -> None:
    request_id = _sent(session)
    error = NetworkError("reset").losing((request_id,))
    assert session.fail(error) == [Failed(request_id, error)]


def _sent_then_respond(session: ClientSession) -> None:
    request_id = _sent(session)
    assert session.receive(make_response(request_id, {"tools": []}), NOW) == [Completed(request_id, {"tools": []})]


def _sent_then_time_out(session: ClientSession) -> None:
    request_id = _sent(session)
    assert [type(e) for e in session.expire(NOW + 5.0)] == [Failed, Send]
    assert request_id not in session.pending()


REQUEST_ROWS: dict[tuple[str | None, str], Callable[[ClientSession], object]] = {
    (None, "begin"): _begun,
    ("begun", "sent"): _sent,
    ("begun", "forget"): lambda s: s.forget(_begun(s)),
    ("sent", "forget"): lambda s: s.forget(_sent(s)),
    ("begun", "cancel"): _begun_then_cancel,
    ("begun", "fail"): _begun_then_fail,
    ("sent", "respond"): _sent_then_respond,
    ("sent", "fail"): _sent_then_fail,
    ("sent", "cancel"): _sent_then_cancel,
    ("sent", "time out"): _sent_then_time_out,
}


def test_every_request_state_row_has_a_scenario() -> None:
    assert set(REQUEST_ROWS) == set(REQUEST_STATES)


@pytest.mark.parametrize("row", list(REQUEST_STATES), ids=lambda row: f"{row[0]}-{row[1]}")
def test_request_state_row(row: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table = Recording(REQUEST_STATES)
    monkeypatch.setattr(session_module, "REQUEST_STATES", table)
    session = new_session()
    REQUEST_ROWS[row](session)
    if row != (None, "begin"):  # a new request starts in "begun" without a lookup (see _Request)
        assert table.seen[-1] == row
    # What the next state looks like from outside: gone, begun (no clock yet) or sent (clock running).
    expected = REQUEST_STATES[row]
    assert session.pending() == (() if expected is None else (1,))
    assert session.next_deadline == (NOW + 5.0 if expected == "sent" else None)


def test_sending_twice_is_a_local_error() -> None:
    session = new_session()
    request_id = _sent(session)
    with pytest.raises(LocalProtocolError, match="sent cannot sent"):
        session.sent(request_id, NOW)


def test_sent_and_forget_ignore_unknown_ids() -> None:
    session = new_session()
    session.sent(42, NOW)
    session.forget(42)
    assert session.pending() == ()


# --- timeouts -----------------------------------------------------------------------------------------


def test_clock_starts_when_sent() -> None:
    session = new_session()
    request_id = _begun(session)
    assert session.next_deadline is None
    assert session.expire(NOW + 1e6) == []  # a request not yet sent never times out
    session.sent(request_id, NOW)
    assert session.next_deadline == NOW + 5.0


def test_no_timeout_never_expires() -> None:
    session = new_session()
    sent_request(session)
    assert session.next_deadline is None
    assert session.expire(NOW + 1e9) == []
    assert session.pending() == (1,)


def test_next_deadline_is_the_earliest() -> None:
    session = new_session()
    sent_request(session, timeout=30.0)
    sent_request(session, timeout=10.0)
    sent_request(session)
    assert session.next_deadline == NOW + 10.0


def test_expire_before_due_does_nothing() -> None:
    session = new_session()
    sent_request(session, timeout=5.0)
    assert session.expire(NOW + 4.999) == []
    assert session.pending() == (1,)


def test_expire_fails_the_request_and_tells_the_server() -> None:
    session = new_session()
    request_id = sent_request(session, "tools/call", timeout=5.0)
    other = sent_request(session, timeout=50.0)
    events = session.expire(NOW + 5.0)
    assert len(events) == 2
    failed, send = events
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert isinstance(failed.error, RequestTimeoutError)
    assert str(failed.error) == "tools/call (id 1): no response or progress within 5.0 s"
    assert send == Send(cancelled(request_id, "timed out"))
    assert session.pending() == (other,)
    assert session.next_deadline == NOW + 50.0


def test_expire_never_cancels_initialize() -> None:
    session = new_session()
    request_id = sent_request(session, "initialize", timeout=5.0)
    events = session.expire(NOW + 6.0)
    assert len(events) == 1
    assert isinstance(events[0], Failed) and events[0].request_id == request_id
    assert isinstance(events[0].error, RequestTimeoutError)


def test_progress_resets_the_inactivity_timeout() -> None:
    session = new_session()
    request_id = sent_request(session, progress=True, timeout=10.0)
    progress = make_notification("notifications/progress", {"progressToken": request_id, "progress": 1})
    assert session.receive(progress, NOW + 8.0) == [Progressed(request_id, 1.0, None, None)]
    assert session.next_deadline == NOW + 18.0
    assert session.expire(NOW + 10.0) == []
    assert len(session.expire(NOW + 18.0)) == 2


def test_total_timeout_is_not_reset_by_progress() -> None:
    session = new_session()
    request_id = sent_request(session, progress=True, timeout=10.0, total_timeout=25.0)
    for t in (8.0, 16.0, 24.0):
        note = make_notification("notifications/progress", {"progressToken": request_id, "progress": t})
        session.receive(note, NOW + t)
    assert session.next_deadline == NOW + 25.0
    events = session.expire(NOW + 25.0)
    assert isinstance(events[0], Failed)
    assert str(events[0].error) == "tools/list (id 1): no response within its total limit of 25.0 s"


def test_total_timeout_alone() -> None:
    session = new_session()
    sent_request(session, total_timeout=7.0)
    assert session.next_deadline == NOW + 7.0
    assert session.expire(NOW + 6.0) == []
    assert [type(e) for e in session.expire(NOW + 7.0)] == [Failed, Send]


def test_late_response_after_timeout_is_dropped_quietly() -> None:
    session = new_session()
    request_id = sent_request(session, timeout=1.0)
    session.expire(NOW + 1.0)
    assert session.receive(make_response(request_id, {}), NOW + 2.0) == []
    assert session.receive(error_response(request_id, INTERNAL_ERROR, "too late"), NOW + 2.0) == []


# --- cancellation -------------------------------------------------------------------------------------


def test_cancel_of_a_sent_request_returns_the_notification() -> None:
    session = new_session()
    request_id = sent_request(session)
    assert session.cancel(request_id, "user gave up") == cancelled(request_id, "user gave up")
    assert session.pending() == ()


def test_cancel_of_an_unsent_request_needs_no_notification() -> None:
    session = new_session()
    request_id = session.begin("tools/list", None).id
    assert session.cancel(request_id, "never mind") is None
    assert session.pending() == ()


def test_initialize_is_never_cancelled() -> None:
    session = new_session()
    request_id = sent_request(session, "initialize")
    assert session.cancel(request_id, "bye") is None
    assert session.pending() == ()


def test_cancel_of_an_unknown_request_is_none() -> None:
    assert new_session().cancel(7, "bye") is None


def test_late_response_after_cancel_is_dropped_quietly() -> None:
    session = new_session()
    request_id = sent_request(session)
    session.cancel(request_id, "bye")
    assert session.receive(make_response(request_id, {}), NOW) == []
    assert session.receive(error_response(request_id, INTERNAL_ERROR, "cancelled"), NOW) == []


def test_late_memory_is_bounded() -> None:
    session = new_session()
    first = sent_request(session)
    session.cancel(first, "bye")
    for _ in range(session_module._LATE_MEMORY):
        session.cancel(sent_request(session), "bye")
    events = session.receive(make_response(first, {}), NOW)
    assert len(events) == 1 and isinstance(events[0], Violation)
    assert session.receive(make_response(first + 1, {}), NOW) == []


# --- receiving ----------------------------------------------------------------------------------------


def test_response_completes_its_request() -> None:
    session = new_session()
    request_id = sent_request(session)
    assert session.receive(make_response(request_id, {"tools": []}), NOW) == [Completed(request_id, {"tools": []})]
    assert session.pending() == ()


def test_response_before_sent_still_completes() -> None:
    session = new_session()
    request_id = session.begin("tools/list", None).id
    assert session.receive(make_response(request_id, {}), NOW) == [Completed(request_id, {})]
    session.sent(request_id, NOW)  # the transport returned after the answer: nothing left to do
    assert session.pending() == ()


def test_error_response_fails_with_mcp_error() -> None:
    session = new_session()
    request_id = sent_request(session)
    events = session.receive(error_response(request_id, METHOD_NOT_FOUND, "no such method", {"x": 1}), NOW)
    assert len(events) == 1
    failed = events[0]
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert type(failed.error) is MCPError
    assert (failed.error.code, failed.error.error_message, failed.error.data) == (
        METHOD_NOT_FOUND,
        "no such method",
        {"x": 1},
    )


@pytest.mark.parametrize(
    "message",
    [make_response(99, {}), error_response(99, INTERNAL_ERROR, "boom")],
    ids=["result", "error"],
)
def test_response_for_unknown_id_is_a_violation(message: Any) -> None:
    session = new_session()
    sent_request(session)
    events = session.receive(message, NOW)
    assert len(events) == 1
    assert isinstance(events[0], Violation) and isinstance(events[0].error, RemoteProtocolError)
    assert "unknown request id 99" in str(events[0].error)
    assert session.pending() == (1,)


def test_error_without_id_is_a_violation() -> None:
    session = new_session()
    sent_request(session)
    events = session.receive(error_response(None, INVALID_REQUEST, "bad"), NOW)
    assert len(events) == 1 and isinstance(events[0], Violation)
    assert str(events[0].error) == f"server error without a request id: [{INVALID_REQUEST}] bad"
    assert session.pending() == (1,)


def test_incoming_request_is_a_server_request() -> None:
    request = make_request("s-1", "roots/list")
    assert new_session("handshake").receive(request, NOW) == [ServerRequest(request)]


def test_something_that_is_no_message_is_a_violation() -> None:
    events = new_session().receive("not a message", NOW)  # type: ignore[arg-type]
    assert len(events) == 1 and isinstance(events[0], Violation)
    assert "str, not a message" in str(events[0].error)


LOG_PARAMS = {"level": "warning", "logger": "db", "data": {"msg": "slow"}}


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("notifications/tools/list_changed", None, [ListChanged("tools")]),
        ("notifications/resources/list_changed", None, [ListChanged("resources")]),
        ("notifications/prompts/list_changed", {}, [ListChanged("prompts")]),
        ("notifications/resources/updated", {"uri": "file:///a"}, [ResourceUpdated("file:///a")]),
        ("notifications/cancelled", {"requestId": 5, "reason": "x"}, [ServerRequestCancelled(5)]),
        ("notifications/cancelled", {"requestId": "s-1"}, [ServerRequestCancelled("s-1")]),
        ("notifications/cancelled", {"reason": "a task"}, []),  # requestId is optional (2025-11-25)
        ("notifications/progress", {"progressToken": 42, "progress": 1}, []),  # nobody waits for it
        ("notifications/whatever", {"a": 1}, []),
    ],
)
def test_notification_routing(method: str, params: dict[str, Any] | None, expected: list[Event]) -> None:
    assert new_session().receive(make_notification(method, params), NOW) == expected


def test_log_notification() -> None:
    events = new_session().receive(make_notification("notifications/message", LOG_PARAMS), NOW)
    assert len(events) == 1 and isinstance(events[0], LogReceived)
    params = events[0].params
    assert (params.level, params.logger, params.data) == ("warning", "db", {"msg": "slow"})


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("notifications/message", {"data": "no level"}, "invalid notifications/message params"),
        ("notifications/message", {"level": "loud", "data": 1}, "invalid notifications/message params"),
        ("notifications/resources/updated", {}, "without a uri"),
        ("notifications/resources/updated", {"uri": 3}, "without a uri"),
        ("notifications/progress", {"progressToken": 1, "progress": "half"}, "without a numeric progress"),
        ("notifications/progress", {"progressToken": 1}, "without a numeric progress"),
    ],
)
def test_malformed_notification_is_a_violation(method: str, params: dict[str, Any], needle: str) -> None:
    session = new_session()
    sent_request(session, progress=True, timeout=5.0)
    events = session.receive(make_notification(method, params), NOW + 3.0)
    assert len(events) == 1
    assert isinstance(events[0], Violation) and isinstance(events[0].error, RemoteProtocolError)
    assert needle in str(events[0].error)
    assert session.next_deadline == NOW + 5.0  # a malformed progress restarts no clock


def test_progress_event_carries_total_and_message() -> None:
    session = new_session()
    request_id = sent_request(session, progress=True)
    params = {"progressToken": request_id, "progress": 1, "total": 4, "message": "a quarter"}
    assert session.receive(make_notification("notifications/progress", params), NOW) == [
        Progressed(request_id, 1.0, 4.0, "a quarter")
    ]
    odd = {"progressToken": request_id, "progress": 2.5, "total": "many", "message": 7}
    assert session.receive(make_notification("notifications/progress", odd), NOW) == [
        Progressed(request_id, 2.5, None, None)
    ]


def test_progress_for_a_request_that_asked_for_none_is_ignored() -> None:
    session = new_session()
    request_id = sent_request(session, timeout=5.0)
    note = make_notification("notifications/progress", {"progressToken": request_id, "progress": 1})
    assert session.receive(note, NOW + 4.0) == []
    assert session.next_deadline == NOW + 5.0


def test_boolean_progress_token_is_no_request_id() -> None:
    session = new_session()
    request_id = sent_request(session, progress=True, timeout=5.0)
    assert request_id == 1
    note = make_notification("notifications/progress", {"progressToken": True, "progress": 1})
    assert session.receive(note, NOW + 4.0) == []
    assert session.next_deadline == NOW + 5.0


# --- transport failures -------------------------------------------------------------------------------


def test_fail_with_request_ids_fails_exactly_those_with_the_same_error() -> None:
    session = new_session()
    first, second, third = (sent_request(session) for _ in range(3))
    error = ConnectionClosedError("stream broke", code=1006, reason="gone").losing((first, third, 99))
    events = session.fail(error)
    assert events == [Failed(first, error), Failed(third, error)]
    assert all(isinstance(e, Failed) and e.error is error for e in events)
    assert session.pending() == (second,)


def test_connection_closed_without_ids_loses_everything() -> None:
    session = new_session()
    begun = session.begin("tools/list", None).id
    sent = sent_request(session)
    error = ConnectionClosedError("gone for good")
    events = session.fail(error)
    assert events == [Failed(begun, error), Failed(sent, error), ConnectionLost(error)]
    assert session.pending() == ()


def test_session_expiry_fails_only_sent_requests() -> None:
    session = new_session("handshake")
    begun = session.begin("tools/list", None).id
    sent = sent_request(session)
    error = SessionExpiredError("404 with a session id")
    events = session.fail(error)
    assert events == [Violation(error), Failed(sent, error)]
    assert session.pending() == (begun,)


@pytest.mark.parametrize(
    "error",
    [RemoteProtocolError("bad event"), NetworkError("hiccup"), HTTPStatusError(500)],
    ids=lambda e: type(e).__name__,
)
def test_other_failures_without_ids_are_violations(error: TransportError) -> None:
    session = new_session()
    sent_request(session)
    assert session.fail(error) == [Violation(error)]
    assert session.pending() == (1,)


def test_close_fails_everything_pending() -> None:
    session = new_session()
    begun = session.begin("tools/list", None).id
    sent = sent_request(session, timeout=1.0)
    error = ConnectionClosedError("closed by the user")
    assert session.close(error) == [Failed(begun, error), Failed(sent, error)]
    assert session.pending() == ()
    assert session.next_deadline is None
    assert session.close(error) == []


# --- pure helpers -------------------------------------------------------------------------------------


def test_error_from_unsupported_version_carries_supported() -> None:
    data = {"supported": [HANDSHAKE], "requested": MODERN}
    error = error_from(error_response(1, UNSUPPORTED_PROTOCOL_VERSION, "nope", data))
    assert isinstance(error, UnsupportedProtocolVersionError)
    assert (error.code, error.supported, error.data) == (UNSUPPORTED_PROTOCOL_VERSION, (HANDSHAKE,), data)


def test_error_from_unsupported_version_without_data() -> None:
    error = error_from(error_response(1, UNSUPPORTED_PROTOCOL_VERSION, "nope", {"supported": "x"}))
    assert isinstance(error, UnsupportedProtocolVersionError)
    assert error.supported == ()


def test_error_from_other_codes_is_a_plain_mcp_error() -> None:
    error = error_from(error_response(1, INTERNAL_ERROR, "boom"))
    assert type(error) is MCPError
    assert str(error) == f"[{INTERNAL_ERROR}] boom"


def test_parse_result() -> None:
    result = parse_result(InitializeResult, INIT_OK, "initialize")
    assert isinstance(result, InitializeResult) and result.protocol_version == HANDSHAKE
    with pytest.raises(RemoteProtocolError, match=r"^invalid initialize result: "):
        parse_result(InitializeResult, {"protocolVersion": HANDSHAKE}, "initialize")


@pytest.mark.parametrize(
    "raw",
    [
        {"content": [{"type": "text", "text": "hi"}], "isError": False},
        {"content": [{"text": "a block without its type tag"}]},  # the tagged variant refuses: official decides
        {
            "content": [
                {"type": "image", "data": "aGk=", "mimeType": "image/png"},
                {"type": "resource_link", "uri": "file:///x", "name": "x"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "t"}},
            ],
            "structuredContent": {"a": 1},
            "_meta": {"k": 1},
        },
    ],
)
def test_call_tool_results_equal_the_official_validation(raw: dict[str, Any]) -> None:
    fast = parse_result(CallToolResult, raw, "tools/call")
    official = CallToolResult.model_validate(raw)
    assert type(fast) is CallToolResult and fast == official
    assert fast.model_fields_set == official.model_fields_set
    assert fast.model_dump(exclude_unset=True, by_alias=True) == official.model_dump(exclude_unset=True, by_alias=True)


def test_call_tool_result_errors_come_from_the_official_model() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^invalid tools/call result: content\.0\.TextContent"):
        parse_result(CallToolResult, {"content": [{"type": "bogus"}]}, "tools/call")


def test_dump_uses_aliases_and_drops_nulls() -> None:
    assert dump(CAPS) == {"roots": {"listChanged": True}}


def test_input_round_complete_result_is_none() -> None:
    assert input_round("tools/call", {"content": []}, 0) is None
    assert input_round("tools/call", {"resultType": "complete"}, MAX_INPUT_ROUNDS + 5) is None


def test_input_round_returns_the_input_request() -> None:
    raw = {"resultType": "input_required", "requestState": "s1"}
    result = input_round("tools/call", raw, MAX_INPUT_ROUNDS - 1)
    assert isinstance(result, InputRequiredResult) and result.request_state == "s1"


def test_input_round_caps_the_rounds() -> None:
    raw = {"resultType": "input_required", "requestState": "s1"}
    with pytest.raises(RemoteProtocolError, match=f"more than {MAX_INPUT_ROUNDS} times"):
        input_round("tools/call", raw, MAX_INPUT_ROUNDS)


def test_input_round_malformed() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^invalid tools/call result"):
        input_round("tools/call", {"resultType": "input_required"}, 0)


@pytest.mark.parametrize(
    ("flags", "subscriptions", "expected"),
    [
        ((False, False, False), set(), None),
        ((True, False, False), set(), {"toolsListChanged": True}),
        ((False, True, True), set(), {"promptsListChanged": True, "resourcesListChanged": True}),
        ((False, False, False), {"b://", "a://"}, {"resourceSubscriptions": ["a://", "b://"]}),
        (
            (True, True, True),
            frozenset({"x://"}),
            {
                "toolsListChanged": True,
                "promptsListChanged": True,
                "resourcesListChanged": True,
                "resourceSubscriptions": ["x://"],
            },
        ),
    ],
)
def test_listen_filter(
    flags: tuple[bool, bool, bool], subscriptions: set[str] | frozenset[str], expected: dict[str, Any] | None
) -> None:
    assert listen_filter(*flags, subscriptions) == expected


# --- negotiation ----------------------------------------------------------------------------------------


def test_unknown_pinned_version_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="unknown protocol version '1999-01-01'"):
        Negotiation("1999-01-01")


@pytest.mark.parametrize(
    ("pinned", "first"),
    [(None, Discover(MODERN)), (MODERN, Discover(MODERN)), (HANDSHAKE, Initialize(HANDSHAKE))],
)
def test_first_probe(pinned: str | None, first: object) -> None:
    assert Negotiation(pinned).start() == first


def test_modern_success() -> None:
    negotiation = Negotiation()
    step = negotiation.discovered(DISCOVER_OK)
    assert step == Modern(MODERN, DiscoverResult.model_validate(DISCOVER_OK), Implementation(**SERVER_INFO))
    assert negotiation.phase == "done"


def test_modern_without_server_info() -> None:
    step = Negotiation().discovered({"supportedVersions": [MODERN], "capabilities": {}})
    assert isinstance(step, Modern) and step.server_info is None and step.problem is None


def test_modern_with_invalid_server_info_is_reported_but_goes_on() -> None:
    raw = {**DISCOVER_OK, "_meta": {SERVER_INFO_META_KEY: {"name": 5}}}
    step = Negotiation().discovered(raw)
    assert isinstance(step, Modern) and step.version == MODERN and step.server_info is None
    assert isinstance(step.problem, RemoteProtocolError)


@pytest.mark.parametrize(
    "error",
    [
        MCPError(METHOD_NOT_FOUND, "Method not found"),
        MCPError(INVALID_REQUEST, "Bad Request: no session id"),
        MCPError(INTERNAL_ERROR, "boom"),
        LegacyServerError(405, body="Method Not Allowed"),
        unsupported([HANDSHAKE]),  # no mutual modern version, but a handshake one
        unsupported(None),  # -32022 without the data to tell
    ],
    ids=["method-not-found", "invalid-request", "internal-error", "legacy-server", "32022-handshake", "32022-no-data"],
)
def test_discover_failure_falls_back_to_the_handshake(error: TransportError) -> None:
    negotiation = Negotiation()
    negotiation.start()
    assert negotiation.discover_failed(error) == Initialize(HANDSHAKE)
    assert negotiation.phase == "initialize"
    step = negotiation.initialized(INIT_OK)
    assert step == Handshake(InitializeResult.model_validate(INIT_OK))
    assert negotiation.phase == "done"


@pytest.mark.parametrize("code", sorted(MODERN_ERROR_CODES))
def test_modern_error_codes_do_not_fall_back(code: int) -> None:
    error = MCPError(code, "a modern server refused")
    with pytest.raises(MCPError) as raised:
        Negotiation().discover_failed(error)
    assert raised.value is error


@pytest.mark.parametrize(
    "error",
    [
        NetworkError("refused"),
        ConnectionClosedError("gone"),
        RequestTimeoutError("slow"),
        HTTPStatusError(500),
        RemoteProtocolError("garbage"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_transport_errors_do_not_fall_back(error: TransportError) -> None:
    negotiation = Negotiation()
    with pytest.raises(TransportError) as raised:
        negotiation.discover_failed(error)
    assert raised.value is error
    assert negotiation.phase == "fail"


NEXT_MODERN = "2099-01-01"


@pytest.fixture
def two_modern_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A future client speaking a newer modern version as well as today's."""
    monkeypatch.setattr(session_module, "MODERN_PROTOCOL_VERSIONS", (MODERN, NEXT_MODERN))
    monkeypatch.setattr(session_module, "LATEST_MODERN_VERSION", NEXT_MODERN)


@pytest.mark.usefixtures("two_modern_versions")
def test_unsupported_version_retries_with_a_mutual_modern_version() -> None:
    negotiation = Negotiation()
    assert negotiation.start() == Discover(NEXT_MODERN)
    assert negotiation.discover_failed(unsupported([MODERN])) == Discover(MODERN)
    step = negotiation.discovered({"supportedVersions": [MODERN], "capabilities": {}})
    assert isinstance(step, Modern) and step.version == MODERN


def test_a_refusal_naming_the_version_just_sent_is_retried_once() -> None:
    """SEP-2575: a client retries with a version the server says it supports, even the one it sent."""
    negotiation = Negotiation()
    assert negotiation.discover_failed(unsupported([MODERN])) == Discover(MODERN)
    with pytest.raises(UnsupportedProtocolVersionError):
        negotiation.discover_failed(unsupported([MODERN]))


@pytest.mark.usefixtures("two_modern_versions")
def test_unsupported_version_retries_only_once() -> None:
    negotiation = Negotiation()
    negotiation.discover_failed(unsupported([MODERN]))
    with pytest.raises(UnsupportedProtocolVersionError):
        negotiation.discover_failed(unsupported([NEXT_MODERN]))
    assert negotiation.phase == "fail"


@pytest.mark.usefixtures("two_modern_versions")
def test_discover_picks_the_probed_version_when_mutual() -> None:
    step = Negotiation().discovered({"supportedVersions": [MODERN, NEXT_MODERN], "capabilities": {}})
    assert isinstance(step, Modern) and step.version == NEXT_MODERN
    older = Negotiation().discovered({"supportedVersions": [MODERN], "capabilities": {}})
    assert isinstance(older, Modern) and older.version == MODERN


def test_server_speaking_only_versions_we_do_not() -> None:
    original = unsupported(["1999-01-01", "2000-01-01"])
    with pytest.raises(UnsupportedProtocolVersionError) as raised:
        Negotiation().discover_failed(original)
    error = raised.value
    assert error.supported == ("1999-01-01", "2000-01-01")
    assert error.code == UNSUPPORTED_PROTOCOL_VERSION
    assert error.__cause__ is original
    assert "server speaks only 1999-01-01, 2000-01-01; we speak" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"supportedVersions": MODERN, "capabilities": {}},
        {"supportedVersions": [MODERN]},
        {"supportedVersions": [HANDSHAKE], "capabilities": {}},  # valid, but no modern version in common
        {"supportedVersions": ["1999-01-01"], "capabilities": {}},
    ],
)
def test_unusable_discover_result_falls_back(raw: dict[str, Any]) -> None:
    negotiation = Negotiation()
    assert negotiation.discovered(raw) == Initialize(HANDSHAKE)
    assert negotiation.phase == "initialize"


@pytest.mark.parametrize(
    "error",
    [
        LegacyServerError(404),
        MCPError(METHOD_NOT_FOUND, "Method not found"),
        unsupported([HANDSHAKE]),
        NetworkError("refused"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pinned_modern_never_falls_back(error: TransportError) -> None:
    negotiation = Negotiation(MODERN)
    assert negotiation.start() == Discover(MODERN)
    with pytest.raises(TransportError) as raised:
        negotiation.discover_failed(error)
    assert raised.value is error


def test_pinned_modern_is_retried_once_when_the_refusal_lists_it() -> None:
    negotiation = Negotiation(MODERN)
    assert negotiation.discover_failed(unsupported([MODERN])) == Discover(MODERN)
    with pytest.raises(UnsupportedProtocolVersionError):
        negotiation.discover_failed(unsupported([MODERN]))


def test_pinned_modern_invalid_discover_result() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^invalid server/discover result: "):
        Negotiation(MODERN).discovered({"supportedVersions": [MODERN]})


def test_pinned_modern_must_be_listed() -> None:
    with pytest.raises(UnsupportedProtocolVersionError) as raised:
        Negotiation(MODERN).discovered({"supportedVersions": [HANDSHAKE], "capabilities": {}})
    assert raised.value.supported == (HANDSHAKE,)
    assert f"server does not support {MODERN}" in str(raised.value)


def test_pinned_modern_listed() -> None:
    step = Negotiation(MODERN).discovered({"supportedVersions": [MODERN], "capabilities": {}})
    assert isinstance(step, Modern) and step.version == MODERN


def test_pinned_handshake_skips_discover() -> None:
    pinned = "2025-03-26"
    negotiation = Negotiation(pinned)
    assert negotiation.start() == Initialize(pinned)
    raw = {**INIT_OK, "protocolVersion": pinned}
    assert negotiation.initialized(raw) == Handshake(InitializeResult.model_validate(raw))


def test_server_may_choose_an_older_handshake_version() -> None:
    negotiation = Negotiation()
    negotiation.discover_failed(LegacyServerError(404))
    step = negotiation.initialized({**INIT_OK, "protocolVersion": "2024-11-05"})
    assert step.result.protocol_version == "2024-11-05"


@pytest.mark.parametrize(
    ("pinned", "chosen"),
    [(None, MODERN), (None, "1999-01-01"), ("2025-06-18", HANDSHAKE)],
)
def test_initialize_with_an_unacceptable_version(pinned: str | None, chosen: str) -> None:
    negotiation = Negotiation(pinned)
    if pinned is None:
        negotiation.discover_failed(LegacyServerError(404))
    with pytest.raises(UnsupportedProtocolVersionError, match=f"server chose protocol version '{chosen}'") as raised:
        negotiation.initialized({**INIT_OK, "protocolVersion": chosen})
    assert raised.value.supported == (chosen,)
    assert negotiation.phase == "fail"


def test_invalid_initialize_result() -> None:
    negotiation = Negotiation(HANDSHAKE)
    with pytest.raises(RemoteProtocolError, match=r"^invalid initialize result: "):
        negotiation.initialized({"protocolVersion": HANDSHAKE, "capabilities": {}})


@pytest.mark.parametrize(("pinned", "offer"), [(None, HANDSHAKE), ("2025-06-18", "2025-06-18")])
def test_reinitialize_offers_the_same_version(pinned: str | None, offer: str) -> None:
    negotiation = Negotiation(pinned)
    if pinned is None:
        negotiation.discover_failed(LegacyServerError(404))
    negotiation.initialized({**INIT_OK, "protocolVersion": offer})
    assert negotiation.reinitialize() == Initialize(offer)
    assert negotiation.phase == "initialize"
    assert isinstance(negotiation.initialized({**INIT_OK, "protocolVersion": offer}), Handshake)


# One scenario per row of NEGOTIATION: drive a fresh Negotiation into that transition.


def _modern(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation()
    negotiation.discovered(DISCOVER_OK)
    return negotiation


def _retry(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    monkeypatch.setattr(session_module, "MODERN_PROTOCOL_VERSIONS", (MODERN, NEXT_MODERN))
    monkeypatch.setattr(session_module, "LATEST_MODERN_VERSION", NEXT_MODERN)
    negotiation = Negotiation()
    assert negotiation.discover_failed(unsupported([MODERN])) == Discover(MODERN)
    return negotiation


def _not_modern(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation()
    negotiation.discover_failed(LegacyServerError(404))
    return negotiation


def _speaks_nothing(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation()
    with pytest.raises(UnsupportedProtocolVersionError):
        negotiation.discover_failed(unsupported(["1999-01-01"]))
    return negotiation


def _discover_refused(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation()
    with pytest.raises(NetworkError):
        negotiation.discover_failed(NetworkError("refused"))
    return negotiation


def _handshake(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation(HANDSHAKE)
    negotiation.initialized(INIT_OK)
    return negotiation


def _bad_handshake(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation(HANDSHAKE)
    with pytest.raises(UnsupportedProtocolVersionError):
        negotiation.initialized({**INIT_OK, "protocolVersion": "2024-11-05"})
    return negotiation


def _initialize_refused(monkeypatch: pytest.MonkeyPatch) -> Negotiation:
    negotiation = Negotiation(HANDSHAKE)  # a pinned version refuses whatever the probe failed with
    with pytest.raises(LegacyServerError):
        negotiation.discover_failed(LegacyServerError(404))
    return negotiation


NEGOTIATION_ROWS: dict[tuple[str, str], Callable[[pytest.MonkeyPatch], Negotiation]] = {
    ("discover", "modern"): _modern,
    ("discover", "retry other version"): _retry,
    ("discover", "not modern"): _not_modern,
    ("discover", "speaks nothing we do"): _speaks_nothing,
    ("discover", "refused"): _discover_refused,
    ("initialize", "handshake"): _handshake,
    ("initialize", "bad handshake"): _bad_handshake,
    ("initialize", "refused"): _initialize_refused,
}


def test_every_negotiation_row_has_a_scenario() -> None:
    assert set(NEGOTIATION_ROWS) == set(NEGOTIATION)


@pytest.mark.parametrize("row", list(NEGOTIATION), ids=lambda row: f"{row[0]}-{row[1]}")
def test_negotiation_row(row: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table = Recording(NEGOTIATION)
    monkeypatch.setattr(session_module, "NEGOTIATION", table)
    negotiation = NEGOTIATION_ROWS[row](monkeypatch)
    assert table.seen[-1] == row
    assert negotiation.phase == NEGOTIATION[row]


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"properties": {"a": {"type": "string", "x-mcp-header": "Region"}}}, None),
        ({"properties": {"a": {"type": "string"}}}, None),
        ({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}, "not a valid header name"),
        ({"properties": {"a": {"type": "string", "x-mcp-header": "Re gion"}}}, "not a valid header name"),
        ({"properties": {"a": {"type": "string", "x-mcp-header": "Ré"}}}, "not a valid header name"),
        ({"properties": {"a": {"type": "object", "x-mcp-header": "A"}}}, "string, integer or boolean"),
        ({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}, "string, integer or boolean"),
        (
            {
                "properties": {
                    "a": {"type": "string", "x-mcp-header": "My"},
                    "b": {"type": "string", "x-mcp-header": "my"},
                }
            },
            "declared twice",
        ),
    ],
)
def test_tool_header_problems(schema: dict[str, Any], problem: str | None) -> None:
    from pyodide_transport.wire import tool_header_problem

    found = tool_header_problem(schema)
    assert (found is None) if problem is None else (problem in (found or ""))
