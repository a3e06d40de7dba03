"""The dispatcher's decisions as plain function calls: no session, no event loop."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
import pytest
from core_client import MODERN, modern_meta
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from pyodide_transport.messages import make_request
from server_demo.dispatch import (
    Call,
    Initialize,
    Reply,
    SessionState,
    check_tool_arguments,
    duplicate_request_error,
    error_for,
    finish_result,
    missing_capability_error,
    resource_not_found_error,
    route_request,
)
from server_demo.errors import RequestError

FRESH = SessionState(None, mt.ClientCapabilities(), "debug")
READY = SessionState("2025-06-18", mt.ClientCapabilities(sampling=mt.SamplingCapability()), "warning")
SERVER = mt.Implementation(name="s", version="1")
ANSWERS = {"elicitation-0": {"action": "cancel"}}


def init_params(version: Any) -> dict[str, Any]:
    return {"protocolVersion": version, "capabilities": {"roots": {}}, "clientInfo": {"name": "c", "version": "2"}}


def refusal(method: str, params: dict[str, Any] | None, state: SessionState) -> RequestError:
    with pytest.raises(RequestError) as caught:
        route_request(make_request(1, method, params), state)
    return caught.value


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
def test_initialize_accepts_each_handshake_version(version: str) -> None:
    route = route_request(make_request(1, "initialize", init_params(version)), FRESH)
    assert isinstance(route, Initialize)
    assert route.protocol_version == version
    assert route.client_capabilities.roots is not None and route.client_info.name == "c"


@pytest.mark.parametrize("version", ["1999-01-01", MODERN])
def test_initialize_counters_an_unknown_version_with_our_latest(version: str) -> None:
    route = route_request(make_request(1, "initialize", init_params(version)), FRESH)
    assert isinstance(route, Initialize) and route.protocol_version == LATEST_HANDSHAKE_VERSION


def test_the_handshake_comes_first_and_only_once() -> None:
    assert refusal("tools/list", None, FRESH).code == -32600
    assert route_request(make_request(1, "ping"), FRESH) == Reply({})
    assert refusal("initialize", init_params("2025-06-18"), READY).message == "the session is already initialized"
    assert refusal("initialize", {"protocolVersion": "2025-06-18"}, FRESH).code == -32602


def test_a_handshake_request_is_served_at_the_session_version() -> None:
    route = route_request(make_request(3, "tools/call", {"name": "echo", "_meta": {"progressToken": "p"}}), READY)
    assert isinstance(route, Call)
    assert isinstance(route.request, mt.CallToolRequest) and route.request.params.name == "echo"
    assert (route.era, route.protocol_version, route.progress_token, route.log_level) == (
        "handshake",
        "2025-06-18",
        "p",
        "warning",
    )
    assert route.client_capabilities is READY.client_capabilities


def test_unknown_methods_and_invalid_params() -> None:
    assert refusal("no/such/method", None, READY).code == -32601
    bad = refusal("tools/call", {"name": 5}, READY)
    assert bad.code == -32602 and bad.message.startswith("invalid params for tools/call: params.name: ")


def test_a_modern_request_needs_no_session_and_brings_its_own_envelope() -> None:
    params = {"name": "echo", "_meta": {**modern_meta(elicitation={}), "progressToken": 9}, "inputResponses": ANSWERS}
    route = route_request(make_request(1, "tools/call", params), FRESH)
    assert isinstance(route, Call)
    assert (route.era, route.protocol_version, route.progress_token) == ("modern", MODERN, 9)
    assert route.client_capabilities.elicitation is not None and route.input_responses == ANSWERS
    assert refusal("ping", {"_meta": modern_meta()}, READY).code == -32601  # removed in 2026-07-28
    assert refusal("server/discover", {}, FRESH).code == -32602


def test_results_are_serialized_per_era() -> None:
    handshake = route_request(make_request(1, "tools/list"), READY)
    modern = route_request(make_request(1, "tools/list", {"_meta": modern_meta()}), FRESH)
    assert isinstance(handshake, Call) and isinstance(modern, Call)
    result = mt.ListToolsResult(tools=[])
    assert finish_result(handshake, result, SERVER) == {"tools": []}
    served = finish_result(modern, result, SERVER)
    assert served["_meta"]["io.modelcontextprotocol/serverInfo"] == {"name": "s", "version": "1"}


def test_error_mapping() -> None:
    assert error_for(1, RequestError(-32602, "bad", {"x": 1})).error.model_dump(exclude_none=True) == {
        "code": -32602,
        "message": "bad",
        "data": {"x": 1},
    }
    internal = error_for("a", ValueError("secret detail"))
    assert (internal.id, internal.error.code, internal.error.message) == ("a", -32603, "internal server error")
    assert duplicate_request_error(7).error.message == "request id 7 is already in use"
    assert missing_capability_error("modern", "sampling").code == -32021
    assert missing_capability_error("handshake", "sampling").code == -32600
    assert (resource_not_found_error("modern", "x://").code, resource_not_found_error("handshake", "x://").code) == (
        -32602,
        -32002,
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"a": 1, "b": 2.5}, None),
        ({"a": 1}, "missing required argument 'b'"),
        ({"a": True, "b": 1}, "argument 'a' must be of type integer"),
        ({"a": 1, "b": 1, "op": "pow"}, "argument 'op' must be one of ['add', 'sub']"),
        ({"a": 1, "b": 1, "zzz": 0}, "unexpected argument 'zzz'"),
    ],
)
def test_tool_arguments_check(args: dict[str, Any], problem: str | None) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "number"}, "op": {"enum": ["add", "sub"]}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    assert check_tool_arguments(schema, args) == problem
