"""CPython adapters for the browser transports: HTTP over httpx, WebSockets over ``websockets``.

They implement the small protocols of ``pyodide_transport.fetch.HTTPClient``
and ``pyodide_transport.websocket.WebSocketConnection`` so that the very same
``FetchTransport``/``WebSocketTransport`` code runs against the real demo
server in CPython as it does in Pyodide over the JS ``fetch``/``WebSocket``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

import pyodide_transport
from pyodide_transport.client import Client
from pyodide_transport.errors import ConnectionClosedError, NetworkError


class HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise NetworkError(f"reading the body failed: {exc!r}") from None

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxHTTPClient:
    """``HTTPClient`` over httpx; ``requests`` records (method, headers) of every request."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0))
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpxResponse:
        self.requests.append((method, dict(headers)))
        request = self._client.build_request(method, url, headers=dict(headers), content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise NetworkError(f"{method} {url} failed: {exc!r}") from None
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()


class WebsocketsConnection:
    """``WebSocketConnection`` over the ``websockets`` library."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.subprotocol = ws.subprotocol or ""

    def _closed(self, exc: ConnectionClosed) -> ConnectionClosedError:
        frame = exc.rcvd or exc.sent
        code = frame.code if frame is not None else 1006
        reason = frame.reason if frame is not None else ""
        return ConnectionClosedError(f"websocket closed ({code})", code=code, reason=reason)

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def send(self, data: str) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)

    async def send_raw(self, data: str | bytes) -> None:
        await self._ws.send(data)


async def websockets_connector(url: str, protocols: Sequence[str]) -> WebsocketsConnection:
    try:
        ws = await ws_connect(
            url, subprotocols=[Subprotocol(p) for p in protocols], ping_interval=None, max_size=None, open_timeout=10
        )
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise NetworkError(f"could not open a WebSocket to {url}: {exc!r}") from None
    return WebsocketsConnection(ws)


async def cpython_connect(url: str, **options: Any) -> Client:
    """``pyodide_transport.connect`` with the CPython adapters plugged in."""
    if url.startswith(("ws:", "wss:")):
        options.setdefault("connector", websockets_connector)
    else:
        options.setdefault("fetch", HttpxHTTPClient())
    return await pyodide_transport.connect(url, **options)


def shared_conftest() -> ModuleType:
    """``tests/conftest.py`` (DemoServer, free_port, wait_for_port) under a name of its own.

    ``from conftest import ...`` picks whichever ``conftest`` module pytest
    imported last (tests/e2e, tests/pyodide, ...); this does not.
    """
    name = "_pt_shared_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]
