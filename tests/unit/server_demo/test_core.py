"""The server core over an in-memory transport: both protocol eras, every feature."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from core_client import MODERN, MemoryClient, modern_meta
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from pyodide_transport.messages import JSONRPCError, JSONRPCResponse, make_notification, make_request
from server_demo.demo import COUNTER_URI, XSS_TEXT


def error_code(reply: object) -> int:
    assert isinstance(reply, JSONRPCError), reply
    return reply.error.code


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
async def test_initialize_echoes_supported_versions(client: MemoryClient, version: str) -> None:
    result = await client.initialize(version)
    assert result["protocolVersion"] == version
    assert result["serverInfo"]["name"] == "pyodide-transport-demo"
    assert {"tools", "resources", "prompts", "completions", "logging"} <= set(result["capabilities"])


@pytest.mark.parametrize("version", ["1999-01-01", MODERN])
async def test_initialize_counter_offers_latest_handshake_version(client: MemoryClient, version: str) -> None:
    result = await client.initialize(version)
    assert result["protocolVersion"] == LATEST_HANDSHAKE_VERSION


async def test_requests_before_initialize_are_rejected_but_ping_works(client: MemoryClient) -> None:
    assert error_code(await client.request("tools/list")) == -32600
    assert (await client.result("ping")) == {}


async def test_second_initialize_is_rejected(client: MemoryClient) -> None:
    await client.initialize()
    reply = await client.request(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    assert error_code(reply) == -32600


async def test_unknown_method_and_bad_params(client: MemoryClient) -> None:
    await client.initialize()
    assert error_code(await client.request("no/such/method")) == -32601
    assert error_code(await client.request("tools/call", {"arguments": {}})) == -32602
    assert error_code(await client.request("tools/call", {"name": "nope"})) == -32602


async def test_duplicate_in_flight_request_id_is_rejected(client: MemoryClient) -> None:
    await client.initialize()
    params = {"name": "long_running", "arguments": {"steps": 50, "delay_ms": 20}}
    await client.send(make_request("dup", "tools/call", params))
    await client.send(make_request("dup", "tools/call", params))
    assert error_code(await client.wait_response("dup")) == -32600
    await client.send(make_notification("notifications/cancelled", {"requestId": "dup"}))


async def test_tools_list_preserves_schemas(client: MemoryClient) -> None:
    await client.initialize()
    tools = {t["name"]: t for t in (await client.result("tools/list"))["tools"]}
    assert tools["calculate"]["outputSchema"]["properties"]["result"] == {"type": "number"}
    schema = tools["json_schema_2020_12_tool"]["inputSchema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "address" in schema["$defs"]
    assert schema["additionalProperties"] is False
    assert all(t["description"] and t["inputSchema"]["type"] == "object" for t in tools.values())


async def test_calculator_returns_structured_output(client: MemoryClient) -> None:
    await client.initialize()
    result = await client.result(
        "tools/call", {"name": "calculate", "arguments": {"a": 6, "b": 7, "operation": "multiply"}}
    )
    assert result["structuredContent"] == {"result": 42, "expression": "6 * 7 = 42"}
    assert result["isError"] is False


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"a": 1}, "missing required argument 'b'"),
        ({"a": "x", "b": 1}, "argument 'a' must be of type number"),
        ({"a": 1, "b": 2, "operation": "pow"}, "must be one of"),
        ({"a": 1, "b": 0, "operation": "divide"}, "division by zero"),
    ],
)
async def test_tool_failures_are_results_not_protocol_errors(
    client: MemoryClient, arguments: dict[str, Any], problem: str
) -> None:
    await client.initialize()
    result = await client.result("tools/call", {"name": "calculate", "arguments": arguments})
    assert result["isError"] is True
    assert problem in result["content"][0]["text"]


async def test_content_types(client: MemoryClient) -> None:
    await client.initialize()

    async def content(name: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = (await client.result("tools/call", {"name": name, "arguments": {}}))["content"]
        return blocks

    image = (await content("show_image"))[1]
    assert image["mimeType"] == "image/png"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG\r\n\x1a\n")
    audio = (await content("play_audio"))[0]
    assert audio["mimeType"] == "audio/wav"
    assert base64.b64decode(audio["data"])[:4] == b"RIFF"
    assert (await content("link_resource"))[1]["type"] == "resource_link"
    assert (await content("embed_resource"))[0]["resource"]["uri"] == "demo://readme"
    assert (await content("html_injection"))[0]["text"] == XSS_TEXT
    assert [b["type"] for b in await content("test_multiple_content_types")] == ["text", "image", "resource"]


async def test_progress_only_with_a_token(client: MemoryClient) -> None:
    await client.initialize()
    await client.result("tools/call", {"name": "test_tool_with_progress", "arguments": {}})
    assert not [n for n in client.notifications if n.method == "notifications/progress"]
    params = {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "tok"}}
    await client.result("tools/call", params)
    progress = [n.params for n in client.notifications if n.method == "notifications/progress"]
    assert [(p or {})["progress"] for p in progress] == [0, 50, 100]
    assert all((p or {})["progressToken"] == "tok" for p in progress)


async def test_logging_level_filters(client: MemoryClient) -> None:
    await client.initialize()
    await client.result("logging/setLevel", {"level": "warning"})
    await client.result("tools/call", {"name": "log_messages", "arguments": {"count": 4}})
    levels = [(n.params or {})["level"] for n in client.notifications if n.method == "notifications/message"]
    assert levels == ["warning", "error"]


async def test_cancellation_stops_the_tool_and_sends_no_response(client: MemoryClient) -> None:
    await client.initialize()
    params = {"name": "long_running", "arguments": {"steps": 1000, "delay_ms": 10}, "_meta": {"progressToken": 1}}
    await client.send(make_request("slow", "tools/call", params))
    await client.next_notification("notifications/progress")
    await client.send(make_notification("notifications/cancelled", {"requestId": "slow", "reason": "test"}))
    # The next response we get is the ping's: the cancelled call never answers.
    reply = await client.request("ping")
    assert isinstance(reply, JSONRPCResponse)
    client.notifications.clear()
    await client.result("ping")
    progress_after = [n for n in client.notifications if n.method == "notifications/progress"]
    assert len(progress_after) <= 1  # at most one already in flight when the cancel landed


async def test_sampling_and_elicitation_in_the_handshake_era(client: MemoryClient) -> None:
    await client.initialize(sampling={}, elicitation={})

    def answer(req: Any) -> dict[str, Any]:
        if req.method == "sampling/createMessage":
            assert req.params["messages"][0]["content"]["text"] == "hi"
            return {"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"}
        assert req.params["requestedSchema"]["required"] == ["username", "email"]
        return {"action": "accept", "content": {"username": "ada", "email": "a@b.c"}}

    client.answer = answer
    result = await client.result("tools/call", {"name": "test_sampling", "arguments": {"prompt": "hi"}})
    assert result["content"][0]["text"] == "LLM response: hello"
    result = await client.result("tools/call", {"name": "test_elicitation", "arguments": {"message": "who?"}})
    assert "action=accept" in result["content"][0]["text"]
    assert [r.method for r in client.server_requests] == ["sampling/createMessage", "elicitation/create"]


async def test_sampling_needs_the_client_capability(client: MemoryClient) -> None:
    await client.initialize()
    reply = await client.request("tools/call", {"name": "test_sampling", "arguments": {"prompt": "hi"}})
    assert error_code(reply) == -32600
    assert "sampling" in reply.error.message  # type: ignore[union-attr]


async def test_resources(client: MemoryClient) -> None:
    await client.initialize()
    uris = {r["uri"] for r in (await client.result("resources/list"))["resources"]}
    assert {"test://static-text", "test://static-binary", "demo://readme", COUNTER_URI} <= uris
    templates = (await client.result("resources/templates/list"))["resourceTemplates"]
    assert {t["uriTemplate"] for t in templates} >= {"test://template/{id}/data", "demo://greeting/{name}"}
    text = (await client.result("resources/read", {"uri": "test://static-text"}))["contents"][0]
    assert text["text"] == "This is the content of the static text resource."
    blob = (await client.result("resources/read", {"uri": "test://static-binary"}))["contents"][0]
    assert base64.b64decode(blob["blob"]).startswith(b"\x89PNG")
    greeting = (await client.result("resources/read", {"uri": "demo://greeting/Ada"}))["contents"][0]
    assert greeting["text"] == "Hello, Ada!"
    assert error_code(await client.request("resources/read", {"uri": "demo://nothing"})) == -32002


async def test_subscription_sends_updates_until_unsubscribed(client: MemoryClient) -> None:
    await client.initialize()
    await client.result("resources/subscribe", {"uri": COUNTER_URI})
    note = await client.next_notification("notifications/resources/updated")
    assert note.params == {"uri": COUNTER_URI}
    await client.result("resources/unsubscribe", {"uri": COUNTER_URI})
    await asyncio.sleep(0.1)
    client.notifications.clear()
    await asyncio.sleep(0.1)  # several tick intervals
    await client.result("ping")
    assert not [n for n in client.notifications if n.method == "notifications/resources/updated"]


async def test_prompts_and_completions(client: MemoryClient) -> None:
    await client.initialize()
    names = {p["name"] for p in (await client.result("prompts/list"))["prompts"]}
    assert {"code_review", "test_simple_prompt", "test_prompt_with_arguments"} <= names
    got = await client.result("prompts/get", {"name": "code_review", "arguments": {"code": "x=1", "language": "py"}})
    assert "x=1" in got["messages"][0]["content"]["text"]
    assert error_code(await client.request("prompts/get", {"name": "code_review", "arguments": {}})) == -32602
    assert error_code(await client.request("prompts/get", {"name": "nope"})) == -32602
    complete = await client.result(
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "code_review"}, "argument": {"name": "language", "value": "py"}},
    )
    assert complete["completion"]["values"] == ["python"]
    complete = await client.result(
        "completion/complete",
        {"ref": {"type": "ref/resource", "uri": "demo://greeting/{name}"}, "argument": {"name": "name", "value": "g"}},
    )
    assert complete["completion"]["values"] == ["Grace", "Guido"]


# -- the 2026-07-28 era -----------------------------------------------------------------------------


async def test_modern_discover_needs_no_handshake(client: MemoryClient) -> None:
    result = await client.result("server/discover", {"_meta": modern_meta()})
    assert MODERN in result["supportedVersions"]
    assert set(HANDSHAKE_PROTOCOL_VERSIONS) <= set(result["supportedVersions"])
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "pyodide-transport-demo"


async def test_modern_tool_call_and_removed_methods(client: MemoryClient) -> None:
    result = await client.result("tools/call", {"name": "echo", "arguments": {"message": "hi"}, "_meta": modern_meta()})
    assert result["content"][0]["text"] == "hi"
    assert result["resultType"] == "complete"
    assert error_code(await client.request("ping", {"_meta": modern_meta()})) == -32601
    assert error_code(await client.request("resources/subscribe", {"uri": "x", "_meta": modern_meta()})) == -32601


async def test_modern_envelope_errors(client: MemoryClient) -> None:
    assert error_code(await client.request("server/discover", {})) == -32602
    meta = modern_meta()
    del meta["io.modelcontextprotocol/clientCapabilities"]
    assert error_code(await client.request("tools/list", {"_meta": meta})) == -32602
    meta = modern_meta()
    meta["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
    reply = await client.request("tools/list", {"_meta": meta})
    assert error_code(reply) == -32022
    assert isinstance(reply, JSONRPCError)
    assert reply.error.data["requested"] == "2099-01-01"
    assert MODERN in reply.error.data["supported"]


async def test_modern_elicitation_is_an_input_required_round_trip(client: MemoryClient) -> None:
    params: dict[str, Any] = {
        "name": "test_elicitation",
        "arguments": {"message": "who?"},
        "_meta": modern_meta(elicitation={}),
    }
    first = await client.result("tools/call", params)
    assert first["resultType"] == "input_required"
    ((key, request),) = first["inputRequests"].items()
    assert request["method"] == "elicitation/create"
    assert request["params"]["message"] == "who?"
    params["inputResponses"] = {key: {"action": "accept", "content": {"username": "ada", "email": "a@b.c"}}}
    second = await client.result("tools/call", params)
    assert second["resultType"] == "complete"
    assert "ada" in second["content"][0]["text"]
    assert client.server_requests == []  # nothing was sent as a separate request


async def test_modern_sampling_without_capability_is_32021(client: MemoryClient) -> None:
    reply = await client.request(
        "tools/call", {"name": "test_sampling", "arguments": {"prompt": "x"}, "_meta": modern_meta()}
    )
    assert error_code(reply) == -32021


async def test_modern_listen_acknowledges_and_streams_updates(client: MemoryClient) -> None:
    params = {"notifications": {"resourceSubscriptions": [COUNTER_URI]}, "_meta": modern_meta()}
    await client.send(make_request("listen", "subscriptions/listen", params))
    ack = await client.next_notification("notifications/subscriptions/acknowledged")
    assert ack.params is not None
    assert ack.params["notifications"]["resourceSubscriptions"] == [COUNTER_URI]
    update = await client.next_notification("notifications/resources/updated")
    # every notification of the stream names it (SEP-2575): the listen request's id
    assert update.params == {"uri": COUNTER_URI, "_meta": {"io.modelcontextprotocol/subscriptionId": "listen"}}
    await client.send(make_notification("notifications/cancelled", {"requestId": "listen"}))
