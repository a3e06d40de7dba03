"""Servers for tests and benchmarks, always on 127.0.0.1 and always stopped.

* :class:`ServerProcess`: any server command in a subprocess on a free port.
* :class:`DemoServer`: ``python -m server_demo`` that way (optionally serving the built site).
* :class:`LiveServer`: an ASGI app under a real uvicorn in this process's event loop (an
  in-process ASGI test client would buffer whole bodies and hang on SSE).
* :class:`FakeClock`: a monotonic clock the test moves by hand (session expiry without waiting).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from . import DIST, ROOT
from .ports import free_port, wait_for_port
from .processes import rss_kib, stop_process

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

__all__ = [
    "BEARER_COMMAND",
    "BEARER_TOKEN",
    "HIDDEN_SESSION_COMMAND",
    "DemoServer",
    "FakeClock",
    "LiveServer",
    "ServerProcess",
    "free_port",
]

_HIDDEN_SESSION_APP = """
import sys, uvicorn
from server_demo.app import create_app

inner = create_app()

async def app(scope, receive, send):
    async def strip(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [
                (k, v) for k, v in message["headers"] if k.lower() != b"access-control-expose-headers"
            ]}
        await send(message)
    await inner(scope, receive, strip if scope["type"] == "http" else send)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

HIDDEN_SESSION_COMMAND = [sys.executable, "-c", _HIDDEN_SESSION_APP, "{port}"]
"""A :class:`ServerProcess` command: the demo app with one CORS bug, ``Mcp-Session-Id`` sent but not exposed."""

BEARER_TOKEN = "test-token"

_BEARER_APP = """
import sys, uvicorn
from server_demo.app import create_app

inner = create_app()
CORS = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"WWW-Authenticate")]

async def app(scope, receive, send):
    if scope["type"] == "http" and scope["method"] != "OPTIONS" and scope["path"].startswith("/mcp"):
        if dict(scope["headers"]).get(b"authorization") != b"Bearer " + sys.argv[2].encode():
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"www-authenticate", b'Bearer error="invalid_token"'), (b"content-length", b"0"), *CORS]})
            await send({"type": "http.response.body", "body": b""})
            return
    await inner(scope, receive, send)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

BEARER_COMMAND = [sys.executable, "-c", _BEARER_APP, "{port}", BEARER_TOKEN]
"""A :class:`ServerProcess` command: the demo app that answers 401 to any MCP request without ``BEARER_TOKEN``."""


class ServerProcess:
    """A server subprocess listening on a free loopback port; a context manager that always stops it.

    Args:
        command: The command line; ``{port}`` in any argument becomes the port.
        port: The port to use (default: a free one).
        log_path: Append stdout and stderr to this file. Without it the output
            is inherited (shown by pytest on failure), or dropped when ``quiet``.
        quiet: Drop the output (when there is no ``log_path``).
        stop_signal: What :meth:`stop` sends first (SIGINT lets cProfile write its profile).
        env: Extra environment variables (``PYTHONUNBUFFERED=1`` is always set).
        timeout: Seconds the server may take to listen.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int | None = None,
        log_path: Path | None = None,
        quiet: bool = False,
        stop_signal: int = signal.SIGTERM,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.stop_signal = stop_signal
        self._log: IO[bytes] | None = log_path.open("ab") if log_path is not None else None
        output: IO[bytes] | int | None = self._log if self._log is not None else subprocess.DEVNULL if quiet else None
        self.command = [arg.replace("{port}", str(self.port)) for arg in command]
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            stdout=output,
            stderr=subprocess.STDOUT if self._log is not None else output,
        )
        try:
            wait_for_port(self.port, self.proc, timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux ``/proc``)."""
        return rss_kib(self.proc.pid) * 1024

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: ``stop_signal`` (graceful) or SIGKILL (a crash); always reaped. Idempotent."""
        stop_process(self.proc, signal.SIGKILL if kill else self.stop_signal)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DemoServer(ServerProcess):
    """``python -m server_demo`` in a subprocess on a free loopback port.

    Args:
        *args: Extra command-line arguments of ``server_demo``.
        site: The built site to serve (default ``site/dist``); ``None`` serves none.
        python: The interpreter (default: this one).
        **options: Those of :class:`ServerProcess`.
    """

    def __init__(self, *args: str, site: Path | None = DIST, python: str = sys.executable, **options: Any) -> None:
        site_args = ["--site", str(site)] if site is not None else []
        super().__init__([python, "-m", "server_demo", "--port", "{port}", *site_args, *args], **options)


class FakeClock:
    """A monotonic clock the test moves by hand: pass it as a server's ``clock``, then set ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current time, as set by the test."""
        return self.now


@dataclass
class LiveServer:
    """An ASGI app under uvicorn on 127.0.0.1, in this event loop: ``await start()``, ``await stop()``."""

    app: ASGIApp
    port: int = field(default_factory=free_port)
    ws_max_size: int = 4 * 1024 * 1024
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve until :meth:`stop`; return once uvicorn listens."""
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_max_size=self.ws_max_size,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Shut uvicorn down gracefully and wait for it."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            async with asyncio.timeout(15):
                await self._task
