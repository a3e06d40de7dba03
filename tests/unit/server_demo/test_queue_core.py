"""The queue transport's pure decisions: names, routing, envelopes, session tracking, dedupe, reclaims, batching."""

from __future__ import annotations

import json

import pytest

from pyodide_transport.errors import LocalProtocolError, RemoteProtocolError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from server_demo.queue_core import (
    CONTROL_STREAM,
    ClientCore,
    ControlEnvelope,
    EnvelopeDecodeError,
    PendingEntry,
    ReplyEnvelope,
    RequestEnvelope,
    ResponseDeduper,
    ResponseEnvelope,
    SessionInfo,
    WorkerRecord,
    WriteBatch,
    answered_key,
    cancelled_key,
    capability_of,
    check_capability,
    check_id,
    decide_serve,
    decode_control,
    decode_record,
    decode_reply,
    decode_request,
    decode_response,
    encode_control,
    encode_record,
    encode_reply,
    encode_request,
    encode_response,
    live_capabilities,
    live_workers,
    plan_reclaim,
    qualify_id,
    reply_stream,
    request_stream,
    response_stream,
    route,
    unqualify_id,
)


def call(name: str, request_id: int = 1) -> JSONRPCRequest:
    return make_request(request_id, "tools/call", {"name": name, "arguments": {}})


# -- names and routing ----------------------------------------------------------------------------------


def test_stream_names_follow_the_seed() -> None:
    assert request_stream() == "mcp.requests.global"
    assert request_stream("calc") == "mcp.requests.calc"
    assert response_stream("client-A") == "mcp.responses.client-A"
    assert reply_stream("w1") == "mcp.replies.w1"


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a/b", "x" * 129, "é"])
def test_ids_are_checked(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="invalid"):
        check_id(bad)


@pytest.mark.parametrize("bad", ["Calc", "calc_tools", "global", "", "a.b"])
def test_capabilities_are_checked(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        check_capability(bad)
    assert check_capability("data-proc") == "data-proc"


def test_markers_tell_int_and_string_ids_apart() -> None:
    assert answered_key("c", 1) != answered_key("c", "1")
    assert cancelled_key("c", 1) == "mcp.cancelled.c.1"
    assert answered_key("c", "1") == 'mcp.answered.c."1"'


def test_routing_by_tool_prefix_only_to_live_capabilities() -> None:
    assert capability_of(call("calc_add")) == "calc"
    assert capability_of(call("echo")) is None
    assert capability_of(call("Calc_add")) is None  # not a capability name
    assert capability_of(call("global_x")) is None
    assert capability_of(make_request(1, "tools/list", {})) is None
    assert capability_of(make_notification("notifications/initialized")) is None
    assert route(call("calc_add"), {"calc"}) == "mcp.requests.calc"
    assert route(call("calc_add"), set()) == "mcp.requests.global"  # nobody declared calc
    assert route(call("data_x"), {"calc"}) == "mcp.requests.global"
    assert route(call("echo"), {"calc"}) == "mcp.requests.global"


def test_qualified_ids_round_trip_and_belong_to_one_worker() -> None:
    for inner in ("srv-1", 7):
        qualified = qualify_id("w1", inner)
        assert unqualify_id("w1", qualified) == inner
        assert unqualify_id("w2", qualified) is None
    assert unqualify_id("w1", 5) is None
    assert unqualify_id("w1", "w1~{bad") is None
    assert unqualify_id("w1", "w1~true") is None


# -- envelopes --------------------------------------------------------------------------------------------


def test_request_envelope_round_trip() -> None:
    info = SessionInfo("2025-11-25", {"sampling": {}}, {"name": "c", "version": "1"}, "info", back_channel=False)
    envelope = RequestEnvelope("c1", "inbox1", call("calc_add", 3), info)
    fields = encode_request(envelope)
    assert set(fields) == {"v", "client", "inbox", "session", "msg"}
    decoded = decode_request(fields)
    assert decoded.client == "c1" and decoded.inbox == "inbox1"
    assert decoded.session == info
    assert isinstance(decoded.message, JSONRPCRequest) and decoded.message.id == 3


def good_request_fields() -> dict[str, str]:
    return encode_request(RequestEnvelope("c1", "in1", call("echo", 9)))


@pytest.mark.parametrize(
    ("change", "reason", "addressable", "request_id"),
    [
        ({"v": "2"}, "envelope version '2'", True, None),
        ({"client": "a b"}, "invalid client id", False, None),
        ({"inbox": ""}, "invalid inbox", False, None),
        ({"msg": "{nope"}, "not one JSON-RPC message", True, None),
        ({"msg": '{"jsonrpc":"2.0","id":"x","method":3}'}, "not one JSON-RPC message", True, "x"),
        ({"msg": '{"jsonrpc":"2.0","id":1,"result":{}}'}, "a response on a request stream", True, None),
        ({"session": "[]"}, "bad session field", True, 9),
        ({"session": '{"capabilities": 1}'}, "capabilities is not an object", True, 9),
    ],
)
def test_malformed_requests_say_why_and_whom_to_tell(
    change: dict[str, str], reason: str, addressable: bool, request_id: object
) -> None:
    fields = {**good_request_fields(), **change}
    with pytest.raises(EnvelopeDecodeError, match=reason) as caught:
        decode_request(fields)
    assert isinstance(caught.value, RemoteProtocolError)
    assert caught.value.addressable is addressable
    assert caught.value.request_id == request_id


def test_missing_msg_and_empty_entry() -> None:
    fields = good_request_fields()
    del fields["msg"]
    with pytest.raises(EnvelopeDecodeError, match="without a 'msg' field"):
        decode_request(fields)
    with pytest.raises(EnvelopeDecodeError) as caught:
        decode_request({})
    assert not caught.value.addressable


def test_response_envelope_round_trip_and_errors() -> None:
    plain = ResponseEnvelope("c1", make_response(1, {"ok": True}), "w1")
    assert decode_response(encode_response(plain)) == plain
    asking = ResponseEnvelope("c1", make_request("w1~1", "sampling/createMessage", {}), "w1", reply_stream("w1"))
    assert decode_response(encode_response(asking)).reply_to == "mcp.replies.w1"
    no_reply = encode_response(asking)
    del no_reply["replyTo"]
    with pytest.raises(EnvelopeDecodeError, match="without a replyTo"):
        decode_response(no_reply)
    with pytest.raises(EnvelopeDecodeError, match="worker"):
        decode_response({**encode_response(plain), "worker": ""})
    with pytest.raises(EnvelopeDecodeError) as caught:
        decode_response({**encode_response(plain), "msg": "[]"})
    assert caught.value.client == "c1"


def test_reply_and_control_envelopes() -> None:
    reply = ReplyEnvelope("c1", make_response("w1~1", {}))
    assert decode_reply(encode_reply(reply)) == reply
    with pytest.raises(EnvelopeDecodeError, match="not a response"):
        decode_reply({**encode_reply(reply), "msg": json.dumps({"jsonrpc": "2.0", "method": "x"})})
    cancel = ControlEnvelope("cancel", "c1", make_notification("notifications/cancelled", {"requestId": 4}))
    assert decode_control(encode_control(cancel)) == cancel
    assert decode_control(encode_control(ControlEnvelope("close", "c1"))).kind == "close"
    with pytest.raises(EnvelopeDecodeError, match="unknown kind"):
        decode_control({**encode_control(cancel), "kind": "reboot"})
    with pytest.raises(EnvelopeDecodeError, match="not notifications/cancelled"):
        decode_control(encode_control(ControlEnvelope("cancel", "c1", make_notification("x"))))


# -- the client side -----------------------------------------------------------------------------------------


def test_client_core_routes_and_tracks_the_handshake() -> None:
    core = ClientCore("c1", "c1")
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {"sampling": {}},
        "clientInfo": {"name": "t", "version": "1"},
    }
    init = make_request(0, "initialize", params)
    out = core.outgoing(init, set())
    assert out.stream == "mcp.requests.global"
    assert decode_request(out.fields).session.protocol_version is None
    answer = ResponseEnvelope("c1", make_response(0, {"protocolVersion": "2025-06-18"}), "w1")
    assert core.incoming(answer) is not None
    assert core.session.protocol_version == "2025-06-18"  # the negotiated one, not the one asked for
    assert core.session.capabilities == {"sampling": {}}
    core.outgoing(make_request(1, "logging/setLevel", {"level": "warning"}), set())
    out = core.outgoing(call("calc_add", 2), {"calc"})
    assert out.stream == "mcp.requests.calc"
    session = decode_request(out.fields).session
    assert session.log_level == "warning" and session.client_info == {"name": "t", "version": "1"}


def test_client_core_preset_version_and_back_channel() -> None:
    core = ClientCore("c2", "frontdoor-1", protocol_version="2025-03-26", back_channel=False)
    fields = core.outgoing(call("echo"), set()).fields
    assert fields["inbox"] == "frontdoor-1"
    session = decode_request(fields).session
    assert session.protocol_version == "2025-03-26" and session.back_channel is False


def test_client_core_adopts_a_restored_session() -> None:
    core = ClientCore("c3", "fd", protocol_version="2025-11-25")
    core.adopt(capabilities={"elicitation": {}}, client_info={"name": "b", "version": "2"})
    core.adopt(log_level="error")
    session = decode_request(core.outgoing(call("echo"), set()).fields).session
    assert session == SessionInfo("2025-11-25", {"elicitation": {}}, {"name": "b", "version": "2"}, "error")


def test_client_core_cancellation_goes_to_the_control_stream() -> None:
    core = ClientCore("c1", "c1")
    out = core.outgoing(make_notification("notifications/cancelled", {"requestId": 5}), set())
    assert out.stream == CONTROL_STREAM and out.cancelled == 5
    assert decode_control(out.fields).kind == "cancel"


def test_client_core_answers_go_to_the_asking_worker() -> None:
    core = ClientCore("c1", "c1")
    ask = make_request("w7~1", "sampling/createMessage", {})
    assert core.incoming(ResponseEnvelope("c1", ask, "w7", reply_stream("w7"))) == ask
    out = core.outgoing(make_response("w7~1", {"role": "assistant"}), set())
    assert out.stream == "mcp.replies.w7"
    assert decode_reply(out.fields).message.id == "w7~1"
    with pytest.raises(LocalProtocolError, match="no worker asked"):
        core.outgoing(make_response("w7~1", {}), set())  # answered already
    with pytest.raises(LocalProtocolError):
        core.outgoing(error_response("nobody", -1, "x"), set())


def test_duplicate_responses_are_dropped() -> None:
    deduper = ResponseDeduper(limit=2)
    assert deduper.accept(make_response(1, {}))
    assert not deduper.accept(error_response(1, -1, "late copy"))
    assert deduper.accept(make_response("1", {}))  # another id
    assert deduper.accept(make_notification("notifications/progress"))
    assert deduper.accept(error_response(None, -32600, "x")) and deduper.accept(error_response(None, -32600, "x"))
    assert deduper.dropped == 1
    deduper.accept(make_response(2, {}))
    assert deduper.accept(make_response(1, {}))  # forgotten: only the newest ``limit`` are kept


def test_client_core_drops_a_second_response() -> None:
    core = ClientCore("c1", "c1")
    first = ResponseEnvelope("c1", make_response(3, {}), "w1")
    assert isinstance(core.incoming(first), JSONRPCResponse)
    assert core.incoming(ResponseEnvelope("c1", error_response(3, -1, "x"), "w2")) is None
    assert isinstance(core.incoming(ResponseEnvelope("c1", error_response(4, -1, "x"), "w2")), JSONRPCError)


# -- the worker side -------------------------------------------------------------------------------------------


def test_serve_decisions() -> None:
    assert decide_serve(answered=False, cancelled=False) == "serve"
    assert decide_serve(answered=True, cancelled=False) == "skip-answered"
    assert decide_serve(answered=True, cancelled=True) == "skip-answered"
    assert decide_serve(answered=False, cancelled=True) == "skip-cancelled"


def test_reclaim_plan() -> None:
    pending = [
        PendingEntry("1-0", "dead", 1500, 1),
        PendingEntry("2-0", "live", 200, 1),  # not idle long enough
        PendingEntry("3-0", "me", 5000, 1),  # ours, in flight
        PendingEntry("4-0", "me", 5000, 1),  # ours but not in flight any more (a restart)
        PendingEntry("5-0", "dead", 9000, 5),  # poison
    ]
    plan = plan_reclaim(pending, me="me", min_idle_ms=1000, max_deliveries=5, own=["3-0"])
    assert plan.claim == ("1-0", "4-0")
    assert plan.give_up == ("5-0",)
    assert plan_reclaim([], me="me", min_idle_ms=1, max_deliveries=1).claim == ()


def test_discovery_records_and_liveness() -> None:
    alive = WorkerRecord("wa", ("calc",), "online", 100.0, 3.0, {"mcp.requests.calc": 2}, 1)
    draining = WorkerRecord("wb", ("data",), "draining", 100.0, 3.0)
    dead = WorkerRecord("wc", ("ml",), "online", 90.0, 3.0)
    assert decode_record(encode_record(alive)) == alive
    records = {"wa": encode_record(alive), "wb": encode_record(draining), "wc": encode_record(dead), "bad": "{"}
    assert {r.worker_id for r in live_workers(records, 102.0)} == {"wa", "wb"}
    assert live_capabilities(records, 102.0) == {"calc"}  # draining and dead workers get no new routes
    assert live_capabilities(records, 104.0) == frozenset()
    for bad in ("[]", '{"capabilities": 1}', '{"capabilities": [], "status": "x"}'):
        with pytest.raises(ValueError):
            decode_record(bad)


def test_session_info_json() -> None:
    info = SessionInfo()
    assert SessionInfo.from_json(info.to_json()) == info
    for bad in ('{"capabilities": {}, "protocolVersion": 1}', '{"capabilities": {}, "backChannel": "yes"}', "1"):
        with pytest.raises(ValueError):
            SessionInfo.from_json(bad)


def test_write_batch_flushes_on_size() -> None:
    batch: WriteBatch[str] = WriteBatch(max_ops=4)
    assert not batch.add("a", 1)
    assert not batch.add("b", 2)
    assert batch.ops == 3 and len(batch) == 2
    assert batch.add("c", 1)  # full: flush now
    assert batch.take() == ["a", "b", "c"]
    assert batch.ops == 0 and batch.take() == []
    with pytest.raises(ValueError):
        WriteBatch(0)
