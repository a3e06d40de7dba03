"""CPython adapters for the browser transports: HTTP over ``httpx``, WebSockets over ``websockets``, AES-GCM.

Under Pyodide, :class:`~pyodide_transport.fetch.FetchTransport` uses the
browser's ``fetch`` and :class:`~pyodide_transport.websocket.WebSocketTransport`
the browser's ``WebSocket``. Anywhere else these adapters stand in for them, so
the very same transport code runs in CPython::

    from pyodide_transport import Client, FetchTransport, WebSocketTransport
    from pyodide_transport.cpython import HttpxHTTPClient, websockets_connect

    client = Client(FetchTransport(url, fetch=HttpxHTTPClient()))
    client = Client(WebSocketTransport(ws_url, connector=websockets_connect))

:func:`default_http_client` and :func:`default_connector` are what the
transports pick when no adapter is passed outside Pyodide. ``httpx`` and
``websockets`` come with the ``cpython`` extra
(``pip install 'pyodide-transport[cpython]'``); they are imported on first use,
so importing this module never fails, and it is never imported under Pyodide.

:class:`CryptographyAEAD` is the AES-256-GCM of
:class:`~pyodide_transport.encrypted.EncryptedTransport` outside Pyodide (``cryptography``, also in
the ``cpython`` extra).

Foreign exceptions are translated here, once: ``httpx`` and ``websockets``
errors become :class:`~pyodide_transport.errors.NetworkError` (no response, or
the body broke off), :class:`~pyodide_transport.errors.ConnectionClosedError`
(with the close ``code`` and ``reason``) or
:class:`~pyodide_transport.errors.LocalProtocolError` (a malformed URL, a
missing library).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import ConnectionClosedError, EnvelopeError, LocalProtocolError, NetworkError

if TYPE_CHECKING:
    import httpx
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed

    from .fetch import HTTPClient
    from .websocket import WebSocketConnector

__all__ = [
    "INSTALL_HINT",
    "CryptographyAEAD",
    "HttpxHTTPClient",
    "HttpxResponse",
    "WebsocketsConnection",
    "default_connector",
    "default_http_client",
    "follow_redirect",
    "websockets_connect",
]

INSTALL_HINT = "install pyodide-transport[cpython] (pip install 'pyodide-transport[cpython]')"
"""What to do when ``httpx``, ``websockets`` or ``cryptography`` is missing."""

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a TCP/TLS connection or a WebSocket opening handshake."""

_ABNORMAL_CLOSURE = 1006  # RFC 6455: closed without a close frame


def _require(module: str, what: str) -> None:
    """Import ``module`` or say which extra provides it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise LocalProtocolError(f"{what} in CPython needs the {module!r} package: {INSTALL_HINT}") from None


# --- HTTP -----------------------------------------------------------------------------------------


class HttpxResponse:
    """An ``HTTPResponse`` over a streamed ``httpx.Response``; ``raw`` keeps the httpx object reachable."""

    def __init__(self, response: httpx.Response) -> None:
        self.raw = response
        self.status = response.status_code
        self.headers = {name.lower(): value for name, value in response.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body (content-decoded, as a browser would) as it arrives.

        Raises:
            NetworkError: The connection broke before the body ended.
        """
        import httpx

        try:
            async for chunk in self.raw.aiter_bytes():
                if chunk:
                    yield chunk
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise NetworkError(f"reading the response of {self.raw.url} failed: {exc!r}") from None

    async def aclose(self) -> None:
        """Release the connection (aborting the body if it is still open)."""
        with contextlib.suppress(Exception):
            await self.raw.aclose()


class HttpxHTTPClient:
    """:class:`~pyodide_transport.fetch.HTTPClient` over ``httpx.AsyncClient``.

    Args:
        client: An ``httpx.AsyncClient`` of your own (proxies, TLS settings,
            event hooks); you keep ownership and close it. ``None``: one is
            made with no read timeout (SSE streams stay open for long) and a
            connect timeout of ``connect_timeout`` seconds, and closed by
            :meth:`aclose`.
        connect_timeout: Seconds to wait for a connection (only without ``client``).

    Raises:
        LocalProtocolError: ``httpx`` is not installed.
    """

    def __init__(self, client: httpx.AsyncClient | None = None, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        _require("httpx", "FetchTransport")
        import httpx

        self._owns_client = client is None
        self._client: httpx.AsyncClient = client or httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=connect_timeout)
        )

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpxResponse:
        """Send one request; return once the status line and headers arrived.

        Cancelling the awaiting task aborts the request.

        Raises:
            NetworkError: No response came (refused, reset, DNS, TLS, timeout).
            LocalProtocolError: The URL is malformed.
        """
        import httpx

        try:
            request = self._client.build_request(method, url, headers=dict(headers), content=body)
            response = await self._client.send(request, stream=True)
        except httpx.InvalidURL as exc:
            raise LocalProtocolError(f"invalid URL {url!r}: {exc}") from None
        except httpx.UnsupportedProtocol as exc:
            raise LocalProtocolError(f"cannot request {url!r}: {exc}") from None
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise NetworkError(f"{method} {url} failed: {exc!r}") from None
        return HttpxResponse(response)

    async def aclose(self) -> None:
        """Close the ``httpx`` client if this adapter made it."""
        if self._owns_client:
            await self._client.aclose()


def default_http_client() -> HTTPClient:
    """The HTTP client ``FetchTransport`` uses outside Pyodide when none is passed.

    Raises:
        LocalProtocolError: ``httpx`` is not installed (``pyodide-transport[cpython]``).
    """
    return HttpxHTTPClient()


async def follow_redirect(url: str) -> str:
    """GET ``url`` without following redirects; return the resolved ``Location`` ("" when there is none).

    The headless sign-in (:func:`pyodide_transport.oauth.headless_redirect_handler`).

    Raises:
        NetworkError: No response came.
    """
    _require("httpx", "headless sign-in")
    import httpx

    try:
        async with httpx.AsyncClient(timeout=CONNECT_TIMEOUT, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise NetworkError(f"GET {url} failed: {exc!r}") from None
    location = response.headers.get("location", "")
    return str(response.url.join(location)) if location and response.is_redirect else ""


# --- WebSocket ------------------------------------------------------------------------------------


def _closed_error(exc: ConnectionClosed) -> ConnectionClosedError:
    """The close code and reason of a ``websockets`` ``ConnectionClosed``: the peer's, else ours, else 1006."""
    frame = exc.rcvd or exc.sent
    code = frame.code if frame is not None else _ABNORMAL_CLOSURE
    reason = frame.reason if frame is not None else ""
    text = f"websocket closed (code {code}{': ' + reason if reason else ''})"
    return ConnectionClosedError(text, code=code, reason=reason)


class WebsocketsConnection:
    """A :class:`~pyodide_transport.websocket.WebSocketConnection` over a ``websockets`` client connection.

    ``raw`` keeps the ``websockets`` object reachable (for diagnostics).
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.raw = ws
        self.subprotocol: str = ws.subprotocol or ""

    async def recv(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one.

        Raises:
            ConnectionClosedError: The socket closed; carries ``code`` and ``reason``.
        """
        from websockets.exceptions import ConnectionClosed

        try:
            return await self.raw.recv()
        except ConnectionClosed as exc:
            raise _closed_error(exc) from None

    async def send(self, data: str) -> None:
        """Send one text frame.

        Raises:
            ConnectionClosedError: The socket is not open.
        """
        from websockets.exceptions import ConnectionClosed

        try:
            await self.raw.send(data)
        except ConnectionClosed as exc:
            raise _closed_error(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (closing handshake bounded by the connection's close timeout)."""
        with contextlib.suppress(Exception):
            await self.raw.close(code, reason)


async def websockets_connect(
    url: str, protocols: Sequence[str] = (), *, open_timeout: float = CONNECT_TIMEOUT
) -> WebsocketsConnection:
    """Open a WebSocket as a browser would: no size limit and no protocol-level pings of its own.

    The transport enforces message sizes and runs its own keep-alive, like it
    does over the browser ``WebSocket``. Cancelling the awaiting task aborts
    the opening handshake.

    Raises:
        NetworkError: The socket could not be opened (refused, handshake refused, timeout).
        LocalProtocolError: ``websockets`` is not installed, or the URL is malformed.
    """
    _require("websockets", "WebSocketTransport")
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.typing import Subprotocol

    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(p) for p in protocols] or None,
            ping_interval=None,
            max_size=None,
            open_timeout=open_timeout,
            close_timeout=5.0,
        )
    except InvalidURI as exc:
        raise LocalProtocolError(f"invalid WebSocket URL {url!r}: {exc}") from None
    except InvalidStatus as exc:
        raise NetworkError(
            f"could not open a WebSocket to {url}: the server answered HTTP {exc.response.status_code}"
            " (it may have refused this Origin or the requested subprotocol)"
        ) from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise NetworkError(f"could not open a WebSocket to {url}: {exc!r}") from None
    return WebsocketsConnection(ws)


def default_connector() -> WebSocketConnector:
    """The connector ``WebSocketTransport`` uses outside Pyodide when none is passed.

    Raises:
        LocalProtocolError: ``websockets`` is not installed (``pyodide-transport[cpython]``).
    """
    _require("websockets", "WebSocketTransport")
    return websockets_connect


# --- AES-256-GCM ----------------------------------------------------------------------------------


class CryptographyAEAD:
    """The :class:`~pyodide_transport.envelope.AEAD` of ``cryptography``'s ``AESGCM`` (one key).

    Raises:
        LocalProtocolError: ``cryptography`` is not installed.
        ValueError: The key is not 16, 24 or 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        _require("cryptography", "EncryptedTransport")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aesgcm = AESGCM(key)

    async def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """``ciphertext || tag``."""
        return self._aesgcm.encrypt(nonce, plaintext, aad)

    async def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext of ``ciphertext || tag``.

        Raises:
            EnvelopeError: It does not authenticate (tampered with, another key, the other direction).
        """
        from cryptography.exceptions import InvalidTag

        from .envelope import AUTHENTICATION_FAILED

        try:
            return self._aesgcm.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise EnvelopeError(AUTHENTICATION_FAILED) from None
