"""Client tests: every scenario of client_scenarios.py under pytest, plus pytest-only checks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import pytest
from mcp.client._memory import InMemoryTransport as SDKMemoryTransport
from mcp.server.mcpserver import Context, Elicit, ListRoots, MCPServer, Resolve
from mcp.shared.message import SessionMessage
from mcp_types import ElicitResult, ListRootsResult, Root
from pydantic import BaseModel

from pyodide_transport.client import Client
from pyodide_transport.errors import ConnectionClosedError, RemoteProtocolError
from pyodide_transport.messages import TransportMessage

try:  # pytest's default (rootdir-less) import mode
    from client_scenarios import SCENARIOS
except ImportError:  # package layout
    from .client_scenarios import SCENARIOS  # type: ignore[no-redef,import-not-found,unused-ignore]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__.removeprefix("scenario_") for s in SCENARIOS])
async def test_scenario(scenario: Callable[[], Awaitable[None]]) -> None:
    await scenario()


def test_scenarios_are_collected() -> None:
    assert len(SCENARIOS) >= 40


def test_import_does_not_load_method_maps() -> None:
    """``import pyodide_transport.client`` must not pull in ``mcp_types.methods`` (slow in Pyodide)."""
    code = "import sys, pyodide_transport.client; print('mcp_types.methods' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names() -> None:
    import pyodide_transport
    from pyodide_transport import client

    assert pyodide_transport.Client is client.Client
    for name in client.__all__:
        assert hasattr(client, name), name


# ------------------------------------------------- interop with the official Python SDK server


class _SDKStreams:
    """Our Transport over the anyio memory streams the ``mcp`` SDK runs its server on."""

    transport_type = "sdk-memory"

    def __init__(self, read: Any, write: Any) -> None:
        self._read, self._write, self._closed = read, write, False

    async def send(self, message: TransportMessage) -> None:
        await self._write.send(SessionMessage(message))

    async def receive(self) -> TransportMessage:
        try:
            item = await self._read.receive()
        except Exception as exc:  # anyio EndOfStream / ClosedResourceError
            raise ConnectionClosedError(f"SDK stream closed: {exc!r}") from None
        if isinstance(item, Exception):
            raise RemoteProtocolError(str(item))
        message: TransportMessage = item.message
        return message

    async def close(self) -> None:
        self._closed = True
        await self._write.aclose()

    def is_connected(self) -> bool:
        return not self._closed


class _Name(BaseModel):
    name: str


def _ask_name() -> Elicit[_Name]:
    return Elicit("your name?", _Name)


def _ask_roots() -> ListRoots:
    return ListRoots()


def _sdk_server() -> MCPServer:
    server = MCPServer("sdk-peer", instructions="be nice")

    @server.tool()  # type: ignore[untyped-decorator,unused-ignore]
    async def add(a: int, b: int, ctx: Context) -> int:
        await ctx.report_progress(1, 2, "half way")
        return a + b

    @server.tool()  # type: ignore[untyped-decorator,unused-ignore]
    async def hello(
        name: Annotated[_Name, Resolve(_ask_name)],
        where: Annotated[ListRootsResult, Resolve(_ask_roots)],
    ) -> str:
        return f"hello {name.name} at {where.roots[0].uri}"

    @server.resource("file:///x")  # type: ignore[untyped-decorator,unused-ignore]
    def x() -> str:
        return "X"

    @server.prompt()  # type: ignore[untyped-decorator,unused-ignore]
    def greet(who: str) -> str:
        return f"hi {who}"

    return server


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("pinned", "era"),
    [(None, "modern"), ("2025-11-25", "handshake"), ("2025-03-26", "handshake"), ("2024-11-05", "handshake")],
)
async def test_interop_with_python_sdk_server(pinned: str | None, era: str) -> None:
    server = _sdk_server()

    async def on_roots() -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///home")])

    async def on_elicit(params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    progress: list[tuple[float, float | None, str | None]] = []
    async with (
        SDKMemoryTransport(server)._connect() as (read, write),
        Client(
            _SDKStreams(read, write), protocol_version=pinned, roots_handler=on_roots, elicitation_handler=on_elicit
        ) as client,
    ):
        assert client.era == era
        assert client.protocol_version == (pinned or "2026-07-28")
        assert client.instructions == "be nice"
        assert client.server_info is not None and client.server_info.name == "sdk-peer"
        assert {t.name for t in (await client.list_tools()).tools} == {"add", "hello"}
        added = await client.call_tool("add", {"a": 2, "b": 3}, progress=lambda *a: progress.append(a))
        assert added.structured_content == {"result": 5}
        # sampling/elicitation/roots: input-required results (modern) or server requests (handshake)
        hello = await client.call_tool("hello", {})
        assert not hello.is_error
        assert hello.content[0].text == "hello Ada at file:///home"  # type: ignore[union-attr]
        contents = (await client.read_resource("file:///x")).contents[0]
        assert contents.text == "X"  # type: ignore[union-attr]
        prompt = await client.get_prompt("greet", {"who": "Ada"})
        assert prompt.messages[0].content.text == "hi Ada"  # type: ignore[union-attr]
        await client.ping()
    assert progress == [(1.0, 2.0, "half way")]
