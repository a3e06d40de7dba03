"""``connect(url, **options)``: one call from a URL to a connected :class:`~pyodide_transport.client.Client`.

The URL scheme picks the transport: ``http``/``https`` -> :class:`FetchTransport`,
``ws``/``wss`` -> :class:`WebSocketTransport`, ``worker:SCRIPT`` -> a
:class:`~pyodide_transport.port.MessagePortTransport` to the MCP server in a module Web Worker
running ``SCRIPT`` (relative to the page; one worker per script, shared by the page's
connections; in Pyodide only). Options go to the transport or
to the Client by name (a name both accept, e.g. ``request_timeout`` for a
WebSocket, goes to both). ``wrap=`` puts middleware around the transport (see
:mod:`pyodide_transport.middleware`). In a page or worker a relative URL (``"/mcp"``) is
resolved against the page's location.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from .client import Client
from .errors import LocalProtocolError
from .fetch import FetchTransport
from .port import MessagePortTransport
from .transport import Transport
from .websocket import WebSocketTransport

__all__ = ["connect", "split_options", "transport_for"]

_TRANSPORTS: dict[str, type[FetchTransport] | type[WebSocketTransport]] = {
    "http": FetchTransport,
    "https": FetchTransport,
    "ws": WebSocketTransport,
    "wss": WebSocketTransport,
}


def _keyword_names(func: Any) -> frozenset[str]:
    params = inspect.signature(func).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _resolve(url: str) -> str:
    if urlsplit(url).scheme or sys.platform != "emscripten":
        return url
    from ._browser import page_url

    base = page_url()
    return urljoin(base, url) if base else url


def split_options(transport_cls: type[Transport], options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into (transport options, Client options) by the names each accepts.

    Raises:
        TypeError: An option neither accepts.
    """
    transport_names = _keyword_names(transport_cls.__init__)
    client_names = _keyword_names(Client.__init__)
    unknown = sorted(set(options) - transport_names - client_names)
    if unknown:
        raise TypeError(
            f"connect() got unknown option(s) {', '.join(unknown)}; {transport_cls.__name__} accepts "
            f"{', '.join(sorted(transport_names))}; Client accepts {', '.join(sorted(client_names))}"
        )
    transport_opts = {k: v for k, v in options.items() if k in transport_names}
    client_opts = {k: v for k, v in options.items() if k in client_names}
    return transport_opts, client_opts


WORKER_SCHEME = "worker:"
"""``worker:SCRIPT``: the MCP server in a module Web Worker running ``SCRIPT``."""


def _worker_transport(url: str, **options: Any) -> Transport:
    """A connection to the worker of ``worker:SCRIPT`` (started on first use); ``options`` are the transport's."""
    if sys.platform != "emscripten":
        raise LocalProtocolError(f"cannot connect to {url!r}: a worker: URL needs a browser (Pyodide in a page)")
    from ._browser import connect_worker, module_worker, page_url

    worker = module_worker(urljoin(page_url() or "", url[len(WORKER_SCHEME) :]))
    return MessagePortTransport(connect_worker(worker), owner=worker, **options)


def _transport_class(url: str) -> type[Transport]:
    """The transport class ``url``'s scheme picks.

    Raises:
        LocalProtocolError: The URL scheme is not http, https, ws, wss or worker.
    """
    if url.startswith(WORKER_SCHEME):
        return MessagePortTransport
    cls = _TRANSPORTS.get(urlsplit(_resolve(url)).scheme.lower())
    if cls is None:
        raise LocalProtocolError(f"cannot connect to {url!r}: the scheme must be http, https, ws, wss or worker")
    return cls


def transport_for(url: str, **options: Any) -> Transport:
    """Build the transport for ``url`` (``options`` are the transport's own).

    Raises:
        LocalProtocolError: The URL scheme is not http, https, ws, wss or worker.
    """
    cls = _transport_class(url)
    if cls is MessagePortTransport:
        return _worker_transport(url, **options)
    transport: Transport = cls(_resolve(url), **options)  # type: ignore[call-arg]
    return transport


async def connect(url: str, *, wrap: Callable[[Transport], Transport] | None = None, **options: Any) -> Client:
    """Connect to the MCP server at ``url`` and return a connected Client.

    Example::

        client = await pyodide_transport.connect("http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer x"})
        tools = await client.list_tools()
        await client.close()

    Args:
        url: ``http(s)://`` (Streamable HTTP) or ``ws(s)://`` (WebSocket) endpoint, or
            ``worker:SCRIPT`` (an MCP server in a module Web Worker; in a page).
        wrap: Called with the transport; the Client runs over what it returns, e.g.
            ``lambda t: LoggingTransport(CircuitBreakerTransport(t))``.
        **options: Keyword options of the transport class and of :class:`Client`.

    Raises:
        TypeError: An unknown option.
        LocalProtocolError: An unsupported URL scheme.
        TransportError: Connecting or negotiating failed (the transport is closed again).
    """
    transport_opts, client_opts = split_options(_transport_class(url), options)
    transport = transport_for(url, **transport_opts)
    if wrap is not None:
        transport = wrap(transport)
    client = Client(transport, **client_opts)
    try:
        await client.connect()
    except BaseException:
        await client.close()
        raise
    return client
