"""``python -m server_demo --stdio``: line-delimited JSON-RPC on stdin/stdout, logs on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from live_server import INIT

ROOT = Path(__file__).resolve().parents[3]


async def test_stdio_session() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server_demo",
        "--stdio",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None

    async def send(obj: Any) -> None:
        assert proc.stdin is not None
        proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)).encode() + b"\n")
        await proc.stdin.drain()

    async def receive() -> dict[str, Any]:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()
        data: dict[str, Any] = json.loads(line)
        return data

    try:
        await send(INIT)
        assert (await receive())["result"]["serverInfo"]["name"] == "pyodide-transport-demo"
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await send("this is not json")
        assert (await receive())["error"]["code"] == -32700
        await send("")  # blank lines are ignored
        await send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "calculate", "arguments": {"a": 1, "b": 1}},
            }
        )
        assert (await receive())["result"]["structuredContent"]["result"] == 2
        await send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "log_messages", "arguments": {"count": 2}},
            }
        )
        log = await receive()
        assert log["method"] == "notifications/message"
    finally:
        proc.stdin.close()
        async with asyncio.timeout(20):
            await proc.wait()
    assert proc.returncode == 0
    assert proc.stderr is not None
    await proc.stderr.read()  # stderr is for logs; stdout held only protocol lines (checked above)
