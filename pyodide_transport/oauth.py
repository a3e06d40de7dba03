"""``OAuth``: sign in to protected MCP servers, a thin shell over :mod:`pyodide_transport.oauth_core`.

Pass one to a transport and 401/403 answers are handled for you::

    auth = OAuth()                                   # in a page: popup, redirect fallback, sessionStorage
    client = await connect("https://example.test/mcp", auth=auth)

    auth = OAuth(redirect_uri="http://127.0.0.1:9/callback", redirect_handler=my_handler)  # CPython, Node

Every decision (discovery order, registration, scope, PKCE, ``iss``, refresh) is the core's; this
shell performs the HTTP requests it asks for with the transport's own HTTP client, asks the
``redirect_handler`` to take the user through the sign-in, keeps tokens and client registrations in
a :class:`TokenStore` and tells ``on_request`` about every request (the explorer's trace).

* **Where things are kept**: tokens by MCP server URL, client registrations by issuer, a pending
  sign-in (PKCE verifier, ``state``) by its ``state``. In a page the default store is
  ``sessionStorage`` (this tab only, gone with it), never ``localStorage``; elsewhere memory.
* **The redirect handler** gets an :class:`~pyodide_transport.oauth_core.OpenAuthorization` (its
  ``url``, the ``scope`` asked for and the ``reason``: sign-in, expired, step-up) and returns the
  URL the authorization server redirected back to. In a page the default opens a popup (browsers
  allow that shortly after a click) and falls back to a full-page redirect when the popup is
  blocked; the site's ``oauth/callback.html`` hands the result back. :func:`headless_redirect_handler`
  follows the authorization URL itself, for servers that redirect straight back (CI, the
  conformance suite).
* **Limits**: one flow at a time per server (concurrent 401s wait and reuse its tokens); at most
  ``max_authorizations`` sign-ins per refused request (the step-up retry limit); a step-up for a
  scope the token already holds fails at once with
  :class:`~pyodide_transport.errors.InsufficientScopeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .errors import (
    AuthorizationCancelledError,
    AuthorizationError,
    InsufficientScopeError,
    LocalProtocolError,
    NetworkError,
    TransportError,
)
from .oauth_core import (
    Action,
    AuthorizationFlow,
    Authorized,
    ClientRegistration,
    ClientSettings,
    HTTPAction,
    OpenAuthorization,
    PendingAuthorization,
    Tokens,
    bearer_challenge,
    canonical_resource,
    refresh_action,
    registration_of,
    revocation_action,
    token_response,
)
from .transport import HTTPClient

__all__ = [
    "MemoryTokenStore",
    "OAuth",
    "OAuthRequest",
    "RedirectHandler",
    "TokenStore",
    "headless_redirect_handler",
]

logger = logging.getLogger("pyodide_transport.oauth")

RedirectHandler = Callable[[OpenAuthorization], Awaitable[str]]
"""Take the user to ``prompt.url``; return the URL the authorization server redirected back to."""

_MAX_DOCUMENT = 256 * 1024  # bytes of one metadata document or token answer
_TIMEOUT = 30.0  # seconds one discovery, registration or token request may take
_PREFIX = "pyodide-transport.oauth."


class TokenStore(Protocol):
    """Where tokens, registrations and pending sign-ins live (strings by key; ``sessionStorage`` has this shape)."""

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        ...

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""
        ...


class MemoryTokenStore:
    """A :class:`TokenStore` in a dict: gone with the process."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        self._data[key] = value

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._data.pop(key, None)


@dataclass(frozen=True)
class OAuthRequest:
    """One request the authorization made, for traces: what, where, and how it went."""

    purpose: str
    method: str
    url: str
    status: int | None
    outcome: str


def _default_redirect_uri() -> str | None:
    if sys.platform != "emscripten":
        return None
    from ._browser import page_origin

    origin = page_origin()
    return f"{origin}/oauth/callback.html" if origin else None


class OAuth:
    """MCP authorization for a transport (see the module docstring).

    Args:
        redirect_uri: Where the authorization server sends the user back. In a page: the site's
            ``/oauth/callback.html`` by default.
        redirect_handler: Takes the user through the sign-in (in a page: a popup, else a redirect).
        store: Where tokens live (in a page: ``sessionStorage``; else memory).
        client_name: Shown on the consent page.
        client_id: A pre-registered client id.
        client_secret: Its secret (confidential clients only; never ship one in a page).
        token_endpoint_auth_method: How the pre-registered client authenticates (default: the best offered).
        client_metadata_url: This client's metadata document URL (CIMD), used as its ``client_id``
            where the server supports that.
        application_type: ``"web"`` or ``"native"`` for dynamic registration (default: ``"web"`` in a
            page, ``"native"`` elsewhere).
        scope: Ask for exactly this scope instead of choosing one.
        offline_access: Ask for refresh tokens where the server offers them.
        max_authorizations: Sign-ins per refused request before giving up (the step-up limit).
        on_request: Called with an :class:`OAuthRequest` for every request the authorization makes.
        clock: Seconds since the epoch (tests pass their own).
        random: ``random(n)`` gives ``n`` random bytes (``secrets.token_bytes``: the browser's
            ``crypto.getRandomValues`` under Pyodide).
    """

    def __init__(
        self,
        *,
        redirect_uri: str | None = None,
        redirect_handler: RedirectHandler | None = None,
        store: TokenStore | None = None,
        client_name: str = "pyodide-transport",
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str | None = None,
        client_metadata_url: str | None = None,
        application_type: Literal["web", "native"] | None = None,
        scope: str | None = None,
        offline_access: bool = True,
        max_authorizations: int = 3,
        on_request: Callable[[OAuthRequest], None] | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        browser = sys.platform == "emscripten"
        self.settings = ClientSettings(
            redirect_uri=redirect_uri or _default_redirect_uri() or "",
            client_name=client_name,
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=token_endpoint_auth_method,
            client_metadata_url=client_metadata_url,
            application_type=application_type or ("web" if browser else "native"),
            scope=scope,
            offline_access=offline_access,
        )
        if redirect_handler is None and browser:
            from ._browser import popup_redirect_handler

            redirect_handler = popup_redirect_handler
        if store is None and browser:
            from ._browser import session_storage

            store = session_storage()
        self.redirect_handler = redirect_handler
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.max_authorizations = max_authorizations
        self.on_request = on_request
        self._clock = clock
        self._random = random
        self._locks: dict[str, asyncio.Lock] = {}
        self._keys: dict[str, str] = {}  # server URL -> its canonical form
        self._cache: dict[str, Tokens | None] = {}  # the store's tokens by server: no store read per request
        self._lapsed: dict[str, Tokens] = {}  # tokens dropped after a refused refresh, by server

    # -- what the transport asks ------------------------------------------------------------------

    def tokens(self, server_url: str) -> Tokens | None:
        """The tokens held for the MCP server at ``server_url``, if any (read from the store once, then cached)."""
        key = self._key(server_url)
        if key in self._cache:
            return self._cache[key]
        data = _loads(self.store.get(_PREFIX + "tokens:" + key))
        tokens = self._cache[key] = Tokens.from_json(data) if isinstance(data, dict) else None
        return tokens

    def authorization(self, server_url: str) -> str | None:
        """The ``Authorization`` header for ``server_url`` (``None``: no tokens yet). Synchronous: no hop."""
        tokens = self.tokens(server_url)
        return tokens.authorization if tokens is not None else None

    def needs_refresh(self, server_url: str) -> bool:
        """Whether the token for ``server_url`` expired and can be refreshed (then await :meth:`refresh`)."""
        tokens = self.tokens(server_url)
        return tokens is not None and tokens.refresh_token is not None and tokens.expired(self._clock())

    async def refresh(self, server_url: str, http: HTTPClient) -> bool:
        """Refresh the token for ``server_url`` now; ``False`` (tokens dropped) when the server refuses."""
        async with self._lock(server_url):
            tokens = self.tokens(server_url)
            if tokens is None or not tokens.refresh_token or not tokens.expired(self._clock()):
                return tokens is not None
            registration = self._registration_for(tokens)
            if registration is None:
                self._forget_tokens(server_url)
                return False
            action = refresh_action(tokens, registration)
            try:
                status, _, body = await self._perform(http, action)
                fresh = token_response(status, body, now=self._clock(), base=tokens, requested_scope=tokens.scope)
            except TransportError as exc:
                logger.info("refreshing the token for %s failed: %s", server_url, exc)
                self._forget_tokens(server_url)
                self._lapsed[self._key(server_url)] = tokens  # the next sign-in says "expired", keeps the scope
                return False
            self._save_tokens(server_url, fresh)
            return True

    async def handle(
        self, server_url: str, status: int, www_authenticate: str, sent: str | None, http: HTTPClient, attempt: int
    ) -> None:
        """The server refused a request (401, or 403 ``insufficient_scope``): get tokens it accepts.

        Args:
            server_url: The MCP endpoint.
            status: 401 or 403.
            www_authenticate: The response's ``WWW-Authenticate`` ("" if none was readable).
            sent: The ``Authorization`` header the refused request carried.
            http: The HTTP client to discover and exchange with.
            attempt: How many times this request was refused so far (1 for the first).

        Raises:
            InsufficientScopeError: A step-up past ``max_authorizations``, or for a scope already held.
            AuthorizationError: The flow failed (the subclass says why).
        """
        challenge = bearer_challenge(www_authenticate)
        async with self._lock(server_url):
            current = self.tokens(server_url)
            if current is not None and current.authorization != sent:
                return  # another request signed in (or stepped up) meanwhile: retry with its token
            if attempt > self.max_authorizations:
                raise InsufficientScopeError(
                    f"{server_url} still refuses after {self.max_authorizations} sign-ins "
                    f"({challenge.error if challenge and challenge.error else f'HTTP {status}'}); giving up"
                )
            if status == 403 and current is not None and challenge is not None:
                wanted = set((challenge.scope or "").split())
                held = set((current.scope or "").split())
                if wanted and wanted <= held:
                    raise InsufficientScopeError(
                        f"{server_url} refuses with insufficient_scope for {challenge.scope!r}, which the token "
                        "already holds; signing in again would not help"
                    )
            flow = AuthorizationFlow(
                self.settings,
                server_url,
                challenge=challenge,
                status=status,
                previous=current if current is not None else self._lapsed.pop(self._key(server_url), None),
                registrations=self._stored_registration,
                now=self._clock(),
                random=self._random,
            )
            await self._run(flow, flow.start(), http)

    async def complete(self, callback_url: str, http: HTTPClient | None = None) -> Tokens:
        """Finish a sign-in that left the page (the redirect fallback): exchange the code in ``callback_url``.

        ``http`` defaults to the browser's ``fetch`` (httpx in CPython).

        Raises:
            AuthorizationResponseError: No pending sign-in has this ``state`` (stale or forged).
            AuthorizationError: The exchange failed.
        """
        from urllib.parse import parse_qs, urlsplit

        from .errors import AuthorizationResponseError

        state = (parse_qs(urlsplit(callback_url).query).get("state") or [""])[0]
        pending = PendingAuthorization.from_json(_loads(self.store.get(_PREFIX + "pending:" + state)) or {})
        if not state or pending is None:
            raise AuthorizationResponseError("no sign-in is waiting for this redirect (stale or forged); sign in again")
        self.store.delete(_PREFIX + "pending:" + state)
        flow = AuthorizationFlow.resume(self.settings, pending, now=self._clock(), random=self._random)
        async with self._lock(pending.server_url), _http_client(http) as client:
            await self._run(flow, flow.receive_redirect(callback_url), client)
        tokens = self.tokens(pending.server_url)
        assert tokens is not None
        return tokens

    def pending_server(self, callback_url: str) -> str | None:
        """The MCP server a pending sign-in with ``callback_url``'s ``state`` was for, if any."""
        from urllib.parse import parse_qs, urlsplit

        state = (parse_qs(urlsplit(callback_url).query).get("state") or [""])[0]
        pending = PendingAuthorization.from_json(_loads(self.store.get(_PREFIX + "pending:" + state)) or {})
        return pending.server_url if pending is not None else None

    async def sign_out(self, server_url: str, http: HTTPClient | None = None) -> None:
        """Forget the tokens for ``server_url`` and revoke them where the server offers revocation (RFC 7009).

        ``http`` defaults to the browser's ``fetch`` (httpx in CPython). A failed revocation is
        logged, not raised: the tokens are forgotten here either way.
        """
        tokens = self.tokens(server_url)
        self._forget_tokens(server_url)
        if tokens is None:
            return
        registration = self._registration_for(tokens)
        action = revocation_action(tokens, registration) if registration is not None else None
        if action is None:
            return
        async with _http_client(http) as client:
            try:
                await self._perform(client, action)
            except TransportError as exc:
                logger.info("revoking the token for %s failed: %s", server_url, exc)

    async def resume_redirect(self, http: HTTPClient | None = None) -> str | None:
        """In a page: finish a sign-in the redirect fallback left for (call once when the page loads).

        The site's ``oauth/callback.html`` brings the user back with the authorization server's answer;
        this exchanges it and returns the MCP server URL the sign-in was for (``None``: nothing waited).

        Raises:
            AuthorizationError: The answer was refused (the subclass says why: denied, wrong ``state``...).
        """
        if sys.platform != "emscripten":
            return None
        from ._browser import take_callback

        callback = take_callback()
        if callback is None:
            return None
        server = self.pending_server(callback)
        await self.complete(callback, http)
        return server

    # -- the flow ---------------------------------------------------------------------------------

    async def _run(self, flow: AuthorizationFlow, action: Action, http: HTTPClient) -> None:
        while True:
            if isinstance(action, Authorized):
                self._save_registration(action.registration)
                self._save_tokens(flow.server_url, action.tokens)
                return
            if isinstance(action, OpenAuthorization):
                redirect = await self._ask_user(action)
                action = flow.receive_redirect(redirect)
                continue
            try:
                status, headers, body = await self._perform(http, action)
            except NetworkError as exc:
                action = flow.receive_network_error(exc)
                continue
            action = flow.receive_response(status, headers, body)

    async def _ask_user(self, prompt: OpenAuthorization) -> str:
        if self.redirect_handler is None:
            raise AuthorizationCancelledError(
                f"signing in to {prompt.pending.server_url} needs the user, and this OAuth has no redirect_handler: "
                "pass one that opens the URL and returns the redirect (or headless_redirect_handler for servers "
                "that redirect straight back)"
            )
        if not prompt.pending.redirect_uri:
            raise LocalProtocolError("OAuth(redirect_uri=...) is required outside a page")
        self.store.set(_PREFIX + "pending:" + prompt.pending.state, json.dumps(prompt.pending.to_json()))
        try:
            return await self.redirect_handler(prompt)
        finally:
            self.store.delete(_PREFIX + "pending:" + prompt.pending.state)

    async def _perform(self, http: HTTPClient, action: HTTPAction) -> tuple[int, dict[str, str], bytes]:
        """One request of the flow, bounded in time and size; reported to ``on_request``."""
        response = None
        try:
            async with asyncio.timeout(_TIMEOUT):
                response = await http.request(action.method, action.url, action.headers, action.body)
                body = bytearray()
                async for chunk in response.chunks():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT:
                        raise AuthorizationError(
                            f"the {action.purpose} answer from {action.url} is over {_MAX_DOCUMENT} bytes"
                        )
        except TimeoutError:
            self._report(action, None, "timed out")
            raise NetworkError(f"the {action.purpose} request to {action.url} timed out") from None
        except TransportError as exc:
            self._report(action, None, type(exc).__name__)
            raise
        finally:
            if response is not None:
                await response.aclose()
        self._report(action, response.status, "ok" if 200 <= response.status < 300 else f"HTTP {response.status}")
        return response.status, dict(response.headers), bytes(body)

    def _report(self, action: HTTPAction, status: int | None, outcome: str) -> None:
        if self.on_request is not None:
            self.on_request(OAuthRequest(action.purpose, action.method, action.url, status, outcome))

    # -- the store ----------------------------------------------------------------------------------

    def _key(self, server_url: str) -> str:
        key = self._keys.get(server_url)
        if key is None:
            key = self._keys[server_url] = canonical_resource(server_url)
        return key

    def _lock(self, server_url: str) -> asyncio.Lock:
        key = self._key(server_url)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _save_tokens(self, server_url: str, tokens: Tokens) -> None:
        key = self._key(server_url)
        self._cache[key] = tokens
        self.store.set(_PREFIX + "tokens:" + key, json.dumps(tokens.to_json()))

    def _forget_tokens(self, server_url: str) -> None:
        key = self._key(server_url)
        self._cache[key] = None
        self.store.delete(_PREFIX + "tokens:" + key)

    def _save_registration(self, registration: ClientRegistration) -> None:
        if registration.how in ("dynamic", "stored"):  # pre-registered and CIMD ids need no keeping
            self.store.set(_PREFIX + "client:" + registration.issuer, json.dumps(registration.to_json()))

    def _stored_registration(self, issuer: str) -> ClientRegistration | None:
        data = _loads(self.store.get(_PREFIX + "client:" + issuer))
        return ClientRegistration.from_json(data) if isinstance(data, dict) else None

    def _registration_for(self, tokens: Tokens) -> ClientRegistration | None:
        return registration_of(tokens, self.settings, self._stored_registration(tokens.issuer))


@contextlib.asynccontextmanager
async def _http_client(http: HTTPClient | None) -> AsyncIterator[HTTPClient]:
    """``http``, or a default client for one operation (closed afterwards)."""
    if http is not None:
        yield http
        return
    from .fetch import _default_http_client

    client = _default_http_client(None)
    try:
        yield client
    finally:
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            await aclose()


def _loads(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def headless_redirect_handler(prompt: OpenAuthorization) -> str:
    """Follow the authorization URL without a user and return where it redirects (servers that approve at once).

    For CI and the conformance suite's mock server, which redirects straight back. In a browser page a
    cross-origin redirect is opaque, so this works in CPython and in Pyodide under Node only.

    Raises:
        AuthorizationCancelledError: The server showed a page (a login or consent) instead of redirecting.
    """
    if sys.platform == "emscripten":
        from ._browser import follow_redirect
    else:
        from .cpython import follow_redirect
    location = await follow_redirect(prompt.url)
    if not location:
        raise AuthorizationCancelledError(
            f"{prompt.url} did not redirect back (it shows a page for a user): headless sign-in is not possible here"
        )
    return location
