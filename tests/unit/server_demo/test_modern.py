"""The 2026-07-28 envelope and routing headers: pure checks, first failure wins."""

from __future__ import annotations

from typing import Any

import pytest
from core_client import MODERN, modern_meta

from pyodide_transport.wire import SUPPORTED_PROTOCOL_VERSIONS, encode_header_value
from server_demo.errors import RequestError
from server_demo.modern import (
    check_param_headers,
    check_routing_headers,
    is_modern_request,
    parse_envelope,
    unsupported_version_error,
)

MISMATCH = -32020


def call_params(name: str) -> dict[str, Any]:
    return {"name": name, "arguments": {}, "_meta": modern_meta()}


def headers(name: str | None, method: str = "tools/call") -> dict[str, str]:
    found = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        found["mcp-name"] = name
    return found


@pytest.mark.parametrize("header", ["echo", " echo", "echo ", "\techo  ", encode_header_value("echo")])
def test_mcp_name_with_surrounding_whitespace_is_accepted(header: str) -> None:
    check_routing_headers("tools/call", call_params("echo"), headers(header))  # SEP-2243: a server MUST accept it


@pytest.mark.parametrize("name", ["café", " padded ", "=?base64?ZWNobw==?="])
def test_a_base64_wrapped_mcp_name_is_compared_by_what_it_wraps(name: str) -> None:
    wrapped = encode_header_value(name)
    assert wrapped.startswith("=?base64?")
    check_routing_headers("tools/call", call_params(name), headers(wrapped))
    check_routing_headers("tools/call", call_params(name), headers(f"  {wrapped} "))


@pytest.mark.parametrize("header", [None, "other", "ec ho", "=?base64?not base64?="])
def test_a_missing_or_different_mcp_name_is_a_header_mismatch(header: str | None) -> None:
    with pytest.raises(RequestError) as caught:
        check_routing_headers("tools/call", call_params("echo"), headers(header))
    assert caught.value.code == MISMATCH and "Mcp-Name" in caught.value.message


def test_resources_read_mirrors_the_uri_and_other_methods_need_no_name() -> None:
    params = {"uri": "demo://a b", "_meta": modern_meta()}
    check_routing_headers("resources/read", params, headers(" demo://a b ", "resources/read"))
    check_routing_headers("tools/list", {"_meta": modern_meta()}, headers(None, "tools/list"))


def test_version_and_method_headers_must_match_the_body() -> None:
    with pytest.raises(RequestError, match="Mcp-Method"):
        check_routing_headers("tools/call", call_params("echo"), headers("echo", "tools/list"))
    with pytest.raises(RequestError, match="MCP-Protocol-Version"):
        check_routing_headers("tools/call", call_params("echo"), {**headers("echo"), "mcp-protocol-version": "x"})


def test_envelope_parsing_and_the_unsupported_version_error() -> None:
    assert is_modern_request("server/discover", None)
    assert is_modern_request("tools/list", {"_meta": modern_meta()})
    assert not is_modern_request("tools/list", {"_meta": {}})
    envelope = parse_envelope({"_meta": modern_meta(sampling={})})
    assert envelope.protocol_version == MODERN and envelope.client_capabilities.sampling is not None
    with pytest.raises(RequestError) as caught:
        parse_envelope({"_meta": {**modern_meta(), "io.modelcontextprotocol/protocolVersion": "2025-11-25"}})
    assert caught.value.code == -32022
    assert caught.value.data == {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": "2025-11-25"}
    assert unsupported_version_error("x").data["supported"] == list(SUPPORTED_PROTOCOL_VERSIONS)
    with pytest.raises(RequestError, match="lacks"):
        parse_envelope({"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}})


PARAM_SCHEMA = {
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "n": {"type": "integer", "x-mcp-header": "N"},
    }
}


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [
        ({"region": "us-west1"}, {"mcp-param-region": "us-west1"}),
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVsbG8=?="}),
        ({"region": "=?base64?SGVsbG8="}, {"mcp-param-region": "=?base64?SGVsbG8="}),  # half a wrapper: literal
        ({"region": "a", "n": 42}, {"mcp-param-region": "a", "mcp-param-n": "42"}),
        ({}, {}),  # nothing in the body, nothing to mirror
    ],
)
def test_param_headers_that_agree_are_accepted(arguments: dict[str, Any], sent: dict[str, str]) -> None:
    check_param_headers(PARAM_SCHEMA, {"name": "t", "arguments": arguments}, sent)


@pytest.mark.parametrize(
    ("arguments", "sent", "why"),
    [
        ({"region": "Hello"}, {}, "missing"),
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVsbG8?="}, "not valid Base64"),  # bad padding
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVs!!!bG8=?="}, "not valid Base64"),
        ({"region": "Hello"}, {"mcp-param-region": "Bye"}, "does not match"),
    ],
)
def test_param_headers_that_disagree_are_a_header_mismatch(
    arguments: dict[str, Any], sent: dict[str, str], why: str
) -> None:
    with pytest.raises(RequestError, match=why) as info:
        check_param_headers(PARAM_SCHEMA, {"name": "t", "arguments": arguments}, sent)
    assert info.value.code == MISMATCH
