"""stdio: line-delimited JSON-RPC over stdin/stdout, for desktop MCP clients.

Each line on stdin is one message; each message we send is one line on
stdout. Logs go to stderr only, so stdout stays a clean protocol channel.
Invalid lines get a JSON-RPC error and the server keeps reading.
"""

from __future__ import annotations

import asyncio
import sys
from typing import BinaryIO

from mcp_types.jsonrpc import INVALID_REQUEST

from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.messages import JSONRPCError, TransportMessage, decode_or_error, encode_message, error_response

from .config import DEFAULT_MAX_MESSAGE_BYTES
from .core import Server, serve_transport

__all__ = ["StdioServerTransport", "serve_stdio"]


class StdioServerTransport:
    """stdin/stdout as a :class:`~pyodide_transport.transport.Transport` (one message per line)."""

    transport_type = "stdio"

    def __init__(self, reader: asyncio.StreamReader, output: BinaryIO) -> None:
        self._reader = reader
        self._output = output
        self._closed = False

    async def send(self, message: TransportMessage) -> None:
        """Write one message as one line."""
        if self._closed:
            raise ConnectionClosedError("stdio is closed")
        try:
            self._output.write(encode_message(message).encode() + b"\n")
            self._output.flush()
        except (OSError, ValueError) as exc:
            self._closed = True
            raise ConnectionClosedError(f"stdout closed: {exc}") from None

    async def receive(self) -> TransportMessage:
        """Read lines until one holds a valid message; answer invalid ones with an error."""
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # a line over the reader's limit
                await self.send(error_response(None, INVALID_REQUEST, "message too large"))
                continue
            if not line:
                self._closed = True
                raise ConnectionClosedError("stdin closed")
            if not line.strip():
                continue
            decoded = decode_or_error(line, allow_batch=False, what="line")
            if isinstance(decoded, JSONRPCError):
                await self.send(decoded)
                continue
            messages, _ = decoded
            return messages[0]  # no batches here: always exactly one

    async def close(self) -> None:
        """Stop; stdout is left open for the process to flush."""
        self._closed = True

    def is_connected(self) -> bool:
        """Whether stdout can still be written."""
        return not self._closed


async def serve_stdio(server: Server) -> None:
    """Serve ``server`` on this process's stdin and stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=DEFAULT_MAX_MESSAGE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await serve_transport(server, StdioServerTransport(reader, sys.stdout.buffer))
