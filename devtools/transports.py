"""The shipped CPython adapters (:mod:`pyodide_transport.cpython`) with what tests look at.

* :class:`HttpxHTTPClient`: the shipped one plus ``requests``, a log of (method, headers) per request.
* :func:`websockets_connector`: the shipped connector, whose connections can also send raw frames
  (binary ones, which our transport never sends) to provoke the server.
* :func:`cpython_connect`: ``pyodide_transport.connect`` with those adapters plugged in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyodide_transport
from pyodide_transport import cpython
from pyodide_transport.client import Client

__all__ = ["HttpxHTTPClient", "RawWebsocketsConnection", "cpython_connect", "websockets_connector"]


class HttpxHTTPClient(cpython.HttpxHTTPClient):
    """:class:`pyodide_transport.cpython.HttpxHTTPClient` that logs ``(method, headers)`` of every request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> cpython.HttpxResponse:
        """Log the request, then send it."""
        self.requests.append((method, dict(headers)))
        return await super().request(method, url, headers, body)


class RawWebsocketsConnection(cpython.WebsocketsConnection):
    """The shipped connection plus :meth:`send_raw`."""

    async def send_raw(self, data: str | bytes) -> None:
        """Send one frame as is: ``bytes`` go out as a binary frame."""
        await self.raw.send(data)


async def websockets_connector(url: str, protocols: Sequence[str]) -> RawWebsocketsConnection:
    """:func:`pyodide_transport.cpython.websockets_connect`, returning a :class:`RawWebsocketsConnection`."""
    conn = await cpython.websockets_connect(url, protocols)
    return RawWebsocketsConnection(conn.raw)


async def cpython_connect(url: str, **options: Any) -> Client:
    """``pyodide_transport.connect`` with the adapters of this module (a fresh HTTP client per call)."""
    if url.startswith(("ws:", "wss:")):
        options.setdefault("connector", websockets_connector)
    else:
        options.setdefault("fetch", HttpxHTTPClient())
    return await pyodide_transport.connect(url, **options)
