"""The official Python SDK client (``mcp`` 2.3) against every HTTP mode, in both protocol eras."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
import pytest
from live_server import Live
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError

MODES = {"sse": "/mcp", "json": "/mcp/json", "stateless": "/mcp/stateless"}
ERAS = {"handshake": ("legacy", "2025-11-25"), "modern": ("auto", "2026-07-28")}


async def _sampling(context: Any, params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
    return mt.CreateMessageResult(role="assistant", content=mt.TextContent(text="sampled"), model="test-model")


async def _elicit(context: Any, params: Any) -> mt.ElicitResult:
    return mt.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("mode", MODES)
async def test_sdk_client(live: Live, mode: str, era: str) -> None:
    connect_mode, version = ERAS[era]
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    client = Client(
        live.base + MODES[mode],
        mode=connect_mode,  # type: ignore[arg-type]
        sampling_callback=_sampling,  # type: ignore[arg-type]
        elicitation_callback=_elicit,  # type: ignore[arg-type]
    )
    async with client:
        assert client.protocol_version == version
        assert client.server_capabilities.tools is not None

        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"calculate", "echo", "test_simple_text"} <= set(tools)
        assert tools["calculate"].output_schema is not None

        result = await client.call_tool("calculate", {"a": 4, "b": 5, "operation": "multiply"})
        assert result.structured_content == {"result": 20, "expression": "4 * 5 = 20"}

        result = await client.call_tool("long_running", {"steps": 3, "delay_ms": 5}, progress_callback=on_progress)
        assert isinstance(result.content[0], mt.TextContent)
        assert result.content[0].text == "completed 3 steps"
        assert progress == [1, 2, 3]

        resources = {r.uri for r in (await client.list_resources()).resources}
        assert "test://static-text" in {str(u) for u in resources}
        read = await client.read_resource("test://template/42/data")
        assert isinstance(read.contents[0], mt.TextResourceContents)
        assert '"id": "42"' in read.contents[0].text

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert "test_prompt_with_arguments" in prompts
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
        assert isinstance(prompt.messages[0].content, mt.TextContent)
        assert prompt.messages[0].content.text == "Prompt with arguments: arg1='x', arg2='y'"

        if mode == "stateless" and era == "handshake":
            with pytest.raises(MCPError, match="cannot carry"):  # no stream can carry a request to the client
                await client.call_tool("test_elicitation", {"message": "who?"})
        else:
            elicited = await client.call_tool("test_elicitation", {"message": "who?"})
            assert isinstance(elicited.content[0], mt.TextContent)
            assert "ada@example.com" in elicited.content[0].text
            sampled = await client.call_tool("test_sampling", {"prompt": "hi"})
            assert isinstance(sampled.content[0], mt.TextContent)
            assert sampled.content[0].text == "LLM response: sampled"
