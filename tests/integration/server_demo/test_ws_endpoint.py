"""WebSocket /ws against a real uvicorn server: the same core, and bad frames handled one connection at a time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from live_server import BODY_LIMIT, INIT, Live, modern_body
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def ws_url(live: Live) -> str:
    return live.base.replace("http://", "ws://") + "/ws"


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        data: dict[str, Any] = json.loads(await ws.recv())
        return data


async def rpc(
    ws: ClientConnection, request_id: int, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}))
    while True:
        message = await recv_json(ws)
        if message.get("id") == request_id and "method" not in message:
            return message


async def test_subprotocol_and_round_trips(live: Live) -> None:
    async with connect(ws_url(live), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "mcp"
        reply = await rpc(ws, 0, "initialize", INIT["params"])
        assert reply["result"]["protocolVersion"] == "2025-11-25"
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        params = {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "t"}}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        seen = [await recv_json(ws) for _ in range(4)]
        assert [m["params"]["progress"] for m in seen[:3]] == [0, 50, 100]
        assert seen[3]["result"]["isError"] is False
        discover = await rpc(ws, 2, "server/discover", modern_body(2, "server/discover")["params"])
        assert "2026-07-28" in discover["result"]["supportedVersions"]


async def test_sampling_over_websocket(live: Live) -> None:
    async with connect(ws_url(live), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        params = {**INIT["params"], "capabilities": {"sampling": {}}}
        await rpc(ws, 0, "initialize", params)
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "test_sampling", "arguments": {"prompt": "hi"}},
                }
            )
        )
        request = await recv_json(ws)
        assert request["method"] == "sampling/createMessage"
        result = {"role": "assistant", "content": {"type": "text", "text": "yo"}, "model": "m"}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        reply = await recv_json(ws)
        assert reply["result"]["content"][0]["text"] == "LLM response: yo"


async def test_invalid_json_gets_a_parse_error_and_the_connection_lives(live: Live) -> None:
    async with connect(ws_url(live), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await ws.send("{not json")
        error = await recv_json(ws)
        assert error == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": error["error"]["message"]}}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "result": None, "method": 3}))
        invalid = await recv_json(ws)
        assert invalid["error"]["code"] == -32600
        assert invalid["id"] == 5
        assert (await rpc(ws, 6, "ping"))["result"] == {}


@pytest.mark.parametrize(
    ("frame", "code"),
    [(b"\x00\x01binary", 1003), ("x" * (BODY_LIMIT + 1), 1009)],
    ids=["binary", "oversized"],
)
async def test_bad_frames_close_only_their_connection(live: Live, frame: str | bytes, code: int) -> None:
    async with (
        connect(ws_url(live), subprotocols=["mcp"]) as bystander,  # type: ignore[list-item]
        connect(ws_url(live), subprotocols=["mcp"], max_size=None) as offender,  # type: ignore[list-item]
    ):
        await rpc(bystander, 0, "initialize", INIT["params"])
        await offender.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                await offender.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code
        assert closed.value.rcvd.reason  # says why
        reply = await rpc(bystander, 1, "tools/call", {"name": "echo", "arguments": {"message": "still here"}})
        assert reply["result"]["content"][0]["text"] == "still here"


async def test_foreign_origin_is_refused(live: Live) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(live), subprotocols=["mcp"], origin="http://evil.example.com"):  # type: ignore[list-item,arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws_url(live), subprotocols=["mcp"], origin="http://localhost:3000") as ws:  # type: ignore[list-item,arg-type]
        assert (await rpc(ws, 1, "ping"))["result"] == {}
