"""A small asyncio TCP proxy on 127.0.0.1 that can cut a connection in the middle of a response.

``arm(marker)`` makes the proxy drop the next server-to-client connection whose
data contains ``marker``: it forwards the bytes up to and including the marker
(so the client holds a partial SSE event), then aborts both sides. ``block()``
refuses new connections (a server that is down, as the client sees it);
``upstream_port`` can be changed at any time (the server restarted elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = _free_port()
        self.cuts = 0
        self.connections = 0
        self.refused = 0  # connections dropped at once: blocked, or nothing listened upstream
        self.blocked = False
        self._marker: bytes | None = None
        self._cut_done: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()

    def arm(self, marker: bytes) -> asyncio.Event:
        """Cut the next connection whose server-to-client bytes contain ``marker``; the event fires on the cut."""
        self._marker = marker
        self._cut_done = asyncio.Event()
        return self._cut_done

    def block(self) -> None:
        """Refuse new connections and drop the open ones (the server looks dead)."""
        self.blocked = True
        self.drop_all()

    def unblock(self) -> None:
        self.blocked = False

    def drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            self.refused += 1
            client_writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self.refused += 1
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_writer, up_writer))
        upward = asyncio.ensure_future(self._pump(client_reader, up_writer, None))
        downward = asyncio.ensure_future(self._pump(up_reader, client_writer, up_writer))
        for task in (upward, downward):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in (client_writer, up_writer):
                self._writers.discard(writer)
                writer.transport.abort()
            for task in (upward, downward):
                task.cancel()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: asyncio.StreamWriter | None
    ) -> None:
        tail = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                marker = self._marker if upstream is not None else None
                if marker is not None:
                    window = tail + data
                    at = window.find(marker)
                    if at >= 0:
                        self._marker = None
                        end = at + len(marker) - len(tail)  # offset in data just past the marker
                        if end > 0:
                            writer.write(data[:end])
                            with contextlib.suppress(OSError):
                                await writer.drain()
                        self.cuts += 1
                        writer.transport.abort()
                        assert upstream is not None
                        upstream.transport.abort()
                        assert self._cut_done is not None
                        self._cut_done.set()
                        return
                    tail = window[-len(marker) :]
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            return
