"""The official Python SDK server (``mcp`` 2.3, ``MCPServer``) with the same ``echo`` tool as server_demo.

Run as ``python -m benchmarks.sdk_server --port N --mode stateless|stateful``:
``stateless`` is stateless HTTP with JSON responses, ``stateful`` keeps sessions and answers with SSE.
Both under uvicorn on 127.0.0.1, like server_demo.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer


def build_app(mode: str) -> object:
    """The Starlette app for one mode."""
    server = MCPServer("sdk-bench", log_level="WARNING")

    @server.tool(description="Echo a message back.", structured_output=False)
    def echo(message: str) -> str:
        return message

    stateless = mode == "stateless"
    return server.streamable_http_app(json_response=stateless, stateless_http=stateless, max_sessions=10_000)


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("stateless", "stateful"), required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.mode), host="127.0.0.1", port=args.port, log_level="warning")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
