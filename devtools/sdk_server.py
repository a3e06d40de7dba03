"""A small MCP server built on the official Python SDK (``mcp``), for interop tests through the gateway.

``python -m devtools.sdk_server --transport stdio`` or ``--transport http --port N`` (127.0.0.1,
Streamable HTTP at ``/mcp``). Tools: ``add``, ``count`` (progress and a log), ``wait`` (to cancel),
``sample`` (sampling), ``ask_name`` (elicitation); resource ``sdk://info`` (counts cancelled waits).

As a stdio upstream of the gateway the child gets a minimal environment and the configured cwd,
so set ``"cwd"`` to the repository root for ``-m devtools.sdk_server`` to resolve.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
import mcp_types as mt
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
    Sample,
)
from pydantic import BaseModel

from .servers import ServerProcess

__all__ = ["build_server", "main", "sdk_http_server", "sdk_stdio_command"]

NAME = "sdk-test"

Ctx = Context[Any, Any]


class Name(BaseModel):
    """What ``ask_name`` elicits."""

    name: str


def _ask_model(prompt: str) -> Sample:
    """The sampling request of ``sample``.

    The SDK sends it mid-call (2025-11-25) or asks for it in an input-required result (2026-07-28).
    """
    return Sample([mt.SamplingMessage(role="user", content=mt.TextContent(text=prompt))], max_tokens=50)


def _ask_name() -> Elicit[Name]:
    """The elicitation of ``ask_name`` (either era, as for :func:`_ask_model`)."""
    return Elicit("What is your name?", Name)


def build_server() -> MCPServer[Any]:
    """The ``sdk-test`` server with its tools and resource."""
    server: MCPServer[Any] = MCPServer(NAME, version="1")
    cancelled = 0

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def count(ctx: Ctx, steps: int = 3, delay_ms: int = 50) -> str:
        """Report progress 1..steps (with total), then say how many."""
        await ctx.info(f"counting {steps} steps")
        for step in range(1, steps + 1):
            await anyio.sleep(delay_ms / 1000)
            await ctx.report_progress(step, steps, f"step {step}")
        return f"counted {steps} steps"

    @server.tool()
    async def wait(seconds: float = 30) -> str:
        """Sleep (a call to cancel); a cancellation is counted in ``sdk://info``."""
        nonlocal cancelled
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        return "waited"

    @server.tool()
    def sample(reply: Annotated[mt.CreateMessageResult, Resolve(_ask_model)], prompt: str) -> str:
        """Ask the client's model, return its reply (mid-call, or through an input-required result)."""
        text = reply.content.text if isinstance(reply.content, mt.TextContent) else ""
        return f"sampled: {text}"

    @server.tool()
    def ask_name(answer: Annotated[ElicitationResult[Name], Resolve(_ask_name)]) -> str:
        """Elicit a name; greet, or say the user declined or cancelled."""
        if isinstance(answer, AcceptedElicitation):
            return f"hello {answer.data.name}"
        return "declined" if isinstance(answer, DeclinedElicitation) else "cancelled"

    @server.resource("sdk://info", mime_type="text/plain")
    def info() -> str:
        """The server's name and how many waits were cancelled."""
        return f"{NAME}: {cancelled} cancelled"

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server on stdio or Streamable HTTP."""
    parser = argparse.ArgumentParser(prog="python -m devtools.sdk_server", description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = build_server()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port, streamable_http_path="/mcp")


def sdk_stdio_command() -> list[str]:
    """The command line of the stdio server (run it with the repository root as cwd)."""
    return [sys.executable, "-m", "devtools.sdk_server", "--transport", "stdio"]


@contextmanager
def sdk_http_server(**options: Any) -> Iterator[str]:
    """Run the HTTP server in a subprocess on a free port; yield ``http://127.0.0.1:PORT/mcp``.

    ``options`` go to :class:`devtools.servers.ServerProcess` (e.g. ``quiet=True``).
    """
    command = [sys.executable, "-m", "devtools.sdk_server", "--transport", "http", "--port", "{port}"]
    with ServerProcess(command, **options) as process:
        yield f"{process.url}/mcp"


if __name__ == "__main__":
    main()
