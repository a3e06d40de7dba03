"""The harness that runs inside the runtime, here in CPython: snippets, sessions, typed errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyodide_transport.browser_testing import harness
from pyodide_transport.browser_testing.session import BrowserCodeError, _answer


async def ask(**request: Any) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(await harness.dispatch(json.dumps(request)))
    return reply


async def test_the_last_expression_is_the_value_and_await_works_at_top_level() -> None:
    namespace: dict[str, Any] = {}
    assert await harness.evaluate("x = 2\nx * 21", namespace) == 42
    assert await harness.evaluate("import asyncio\nawait asyncio.sleep(0, 'slept')", namespace) == "slept"
    assert await harness.evaluate("y = await asyncio.sleep(0, 5)", namespace) is None
    assert namespace["y"] == 5
    assert await harness.evaluate("", namespace) is None


def test_values_travel_as_json_data() -> None:
    from mcp_types import TextContent

    assert harness.jsonable(TextContent(type="text", text="hi")) == {"type": "text", "text": "hi"}
    assert harness.jsonable({"a": (1, {2})}) == {"a": [1, [2]]}
    assert harness.jsonable(object()).startswith("<object object")


@pytest.mark.parametrize(
    ("request_", "type_name"),
    [
        ({"op": "dance"}, "ValueError"),
        ({"op": "run", "session": "nope", "code": "1"}, "LookupError"),
        ({}, "KeyError"),
    ],
)
async def test_bad_requests_are_answered_with_a_typed_error(request_: dict[str, Any], type_name: str) -> None:
    reply = await ask(**request_)
    assert reply["ok"] is False and reply["error"]["type"] == type_name


async def test_not_json_is_an_error_too() -> None:
    reply = json.loads(await harness.dispatch("{"))
    assert reply["error"]["type"] == "JSONDecodeError"


async def test_a_session_against_the_demo_server(demo_server: Any) -> None:
    url = demo_server.url + "/mcp"
    opened = await ask(op="open", session="t1", url=url, options={"protocol_version": "2025-11-25"})
    assert opened["ok"] and opened["value"]["protocol_version"] == "2025-11-25"
    assert (await ask(op="open", session="t1", url=url))["error"]["type"] == "ValueError"
    try:
        reply = await ask(op="run", session="t1", code="r = await client.call_tool('echo', {'message': 'hi'})\nr")
        assert reply["value"]["content"] == [{"type": "text", "text": "hi"}]
        assert (await ask(op="run", session="t1", code="r.content[0].text"))["value"] == "hi"
        failed = await ask(op="run", session="t1", code="await client.call_tool('nope', {})")
        assert failed["error"]["type"] == "MCPError" and failed["error"]["code"] == -32602
        assert "Traceback" in failed["error"]["traceback"]
        with pytest.raises(BrowserCodeError) as caught:
            _answer("node", json.dumps(failed))
        assert (caught.value.type_name, caught.value.code, caught.value.runtime) == ("MCPError", -32602, "node")
        assert "unknown tool" in caught.value.error_message
    finally:
        assert (await ask(op="close", session="t1"))["ok"]
    assert "t1" not in harness.SESSIONS


async def test_the_check_op_runs_the_transport_half(demo_server: Any) -> None:
    reply = await ask(op="checks", url=demo_server.url + "/mcp")
    assert {c["name"]: c["status"] for c in reply["value"]}["connect with FetchTransport"] == "pass"


async def test_what_a_snippet_prints_comes_back_and_is_printed_on_the_host(
    demo_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await ask(op="open", session="p1", url=demo_server.url + "/mcp")
    try:
        reply = await ask(op="run", session="p1", code="print('seen in the page')\n7")
        assert (reply["value"], reply["output"]) == (7, "seen in the page\n")
        failed = await ask(op="run", session="p1", code="print('before')\n1 / 0")
        assert failed["output"] == "before\n" and failed["error"]["type"] == "ZeroDivisionError"
        assert _answer("chromium", json.dumps(reply)) == 7
        assert capsys.readouterr().out == "seen in the page\n"
    finally:
        await ask(op="close", session="p1")


SETUP = """
from mcp_types import CreateMessageResult, ElicitResult, TextContent

async def sampling_handler(params):
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text="four"), model="page")

async def elicitation_handler(params):
    return ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.org"})

asked = []

def wrap(transport):
    asked.append(transport.transport_type)
    return transport
"""


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_setup_code_gives_the_client_its_handlers(demo_server: Any, version: str) -> None:
    opened = await ask(
        op="open", session="h1", url=demo_server.url + "/mcp", options={"protocol_version": version}, setup=SETUP
    )
    assert opened["ok"], opened
    try:
        sampled = await ask(op="run", session="h1", code="await client.call_tool('test_sampling', {'prompt': '2+2'})")
        assert sampled["value"]["content"][0]["text"] == "LLM response: four"
        elicited = await ask(
            op="run", session="h1", code="await client.call_tool('test_elicitation', {'message': 'who'})"
        )
        assert "ada@example.org" in elicited["value"]["content"][0]["text"]
        assert (await ask(op="run", session="h1", code="asked"))["value"] == ["streamable-http"]
    finally:
        await ask(op="close", session="h1")


async def test_setup_code_that_raises_opens_nothing(demo_server: Any) -> None:
    reply = await ask(op="open", session="h2", url=demo_server.url + "/mcp", setup="raise RuntimeError('no')")
    assert reply["error"]["type"] == "RuntimeError" and "h2" not in harness.SESSIONS
