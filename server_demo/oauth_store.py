"""The OAuth demo's records and their in-memory store (one process, nothing persisted).

The records implement the model interfaces authlib's grants call (``ClientMixin``,
``AuthorizationCodeMixin``, ``TokenMixin``) by duck typing; :class:`OAuthStore`
keeps them with bounded sizes so registration or consent floods cannot grow
memory without limit. URL rules shared by registration and Client ID Metadata
Documents live here too: :func:`redirect_uri_problem`, :func:`normalize_resource`.
"""

from __future__ import annotations

import contextvars
import ipaddress
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DEMO_USER",
    "LOOPBACK_HOSTS",
    "REQUEST_ORIGIN",
    "AuthorizationCode",
    "ConsentTransaction",
    "OAuthClient",
    "OAuthStore",
    "Token",
    "is_loopback_host",
    "normalize_resource",
    "redirect_uri_problem",
    "scope_list",
]

DEMO_USER: Final = "demo-user"
"""The resource owner: the demo has no accounts, whoever clicks Allow is this user."""

_V = TypeVar("_V")

REQUEST_ORIGIN: Final[contextvars.ContextVar[str]] = contextvars.ContextVar("oauth_request_origin", default="")
"""``scheme://host[:port]`` of the request being served (set by the provider around authlib's calls)."""

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
"""Host names (as ``urlsplit().hostname`` gives them) where plain http is acceptable."""


def is_loopback_host(hostname: str | None) -> bool:
    """Whether a URL's host name is this machine (``localhost`` or a loopback address)."""
    if not hostname:
        return False
    if hostname.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def scope_list(scope: str | None) -> list[str]:
    """A space-separated scope string as a list without duplicates (order kept)."""
    return list(dict.fromkeys((scope or "").split()))


def redirect_uri_problem(uri: object) -> str | None:
    """Why ``uri`` cannot be a redirect URI, or None: https, or http on a loopback host; absolute, no fragment."""
    if not isinstance(uri, str) or not uri:
        return "a redirect URI must be a non-empty string"
    if not uri.isascii() or any(c.isspace() or ord(c) < 0x21 or c in '"\\<>' for c in uri):
        return "a redirect URI must be printable ASCII without spaces, quotes or angle brackets"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return "a redirect URI must be a valid URL"
    if parts.fragment or "#" in uri:
        return "a redirect URI must not contain a fragment"
    if not parts.hostname:
        return "a redirect URI must be absolute (scheme and host)"
    if parts.username is not None or parts.password is not None:
        return "a redirect URI must not carry user credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback_host(parts.hostname):
            return None
        return "plain http redirect URIs are allowed on loopback hosts only"
    return "a redirect URI must use https (or http on a loopback host)"


def normalize_resource(uri: str) -> str:
    """A resource indicator compared by value: scheme and host lower-case, no trailing slash, no fragment."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        return uri
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _loopback_port_free_match(registered: str, given: str) -> bool:
    """RFC 8252 §7.3: a native app's loopback redirect URI matches on any port."""
    try:
        want, got = urlsplit(registered), urlsplit(given)
    except ValueError:
        return False
    return (
        want.scheme == got.scheme == "http"
        and is_loopback_host(want.hostname)
        and want.hostname == got.hostname
        and (want.path, want.query) == (got.path, got.query)
    )


@dataclass
class OAuthClient:
    """A client: dynamically registered, pre-registered, or described by a Client ID Metadata Document.

    Attributes:
        client_id: Its identifier (a URL for a metadata-document client).
        redirect_uris: Exactly these may receive codes (loopback ports are free for native apps).
        client_secret: None for a public client.
        client_name: Shown on the consent page.
        grant_types: ``authorization_code`` and, for refresh tokens, ``refresh_token``.
        response_types: Only ``code`` is supported.
        token_endpoint_auth_method: ``none``, ``client_secret_post`` or ``client_secret_basic``.
        scope: The scopes it registered (None: any supported scope).
        application_type: ``web`` or ``native``.
        kind: ``registered``, ``pre-registered`` or ``metadata-document``.
        same_origin_redirect_paths: Paths that are also valid redirect URIs on the origin of the request being
            served (``<origin><path>``, matched exactly): a page served by this server can be the client.
        default_scope: Granted when an authorization request names no scope.
        supported_scopes: What the server grants at all.
        issued_at: Seconds (the store's clock) at registration.
    """

    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None
    client_name: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code",)
    response_types: tuple[str, ...] = ("code",)
    token_endpoint_auth_method: str = "none"
    scope: str | None = None
    application_type: str = "web"
    kind: str = "registered"
    same_origin_redirect_paths: tuple[str, ...] = ()
    default_scope: str = ""
    supported_scopes: tuple[str, ...] = ()
    issued_at: float = 0.0

    # -- authlib's ClientMixin ------------------------------------------------------------------------
    def get_client_id(self) -> str:
        """The client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """The redirect URI to use when a request names none: only when exactly one is registered."""
        if len(self.redirect_uris) == 1 and not self.same_origin_redirect_paths:
            return self.redirect_uris[0]
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope to grant: the requested scopes this client may have (or the default); None if none remain."""
        allowed = scope_list(self.scope) or list(self.supported_scopes)
        requested = scope_list(scope) or scope_list(self.default_scope)
        granted = [s for s in requested if s in allowed]
        return " ".join(granted) if granted else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match (a same-origin path on the current request's origin too), or loopback port-free for native."""
        if redirect_uri in self.redirect_uris:
            return True
        origin = REQUEST_ORIGIN.get()
        if origin and any(redirect_uri == f"{origin}{path}" for path in self.same_origin_redirect_paths):
            return True
        return self.application_type == "native" and any(
            _loopback_port_free_match(uri, redirect_uri) for uri in self.redirect_uris
        )

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison with the registered secret (a public client has none)."""
        if self.client_secret is None:
            return False
        return secrets.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """The client authenticates at the token and revocation endpoints with its registered method only."""
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        """Whether it registered this response type."""
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        """Whether it registered this grant type."""
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode:
    """An issued authorization code, bound to client, redirect URI, PKCE challenge and resource."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    resource: str
    code_challenge: str
    code_challenge_method: str
    user: str
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        """The redirect URI the authorization request named (the token request must repeat it)."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope


@dataclass
class Token:
    """An access token and, when the client may refresh, its refresh token."""

    access_token: str
    client_id: str
    scope: str
    resource: str
    user: str
    issued_at: float
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    access_revoked: bool = False
    refresh_revoked: bool = False
    clock: Callable[[], float] = field(default=lambda: 0.0, repr=False, compare=False)

    # -- authlib's TokenMixin -------------------------------------------------------------------------
    def check_client(self, client: OAuthClient) -> bool:
        """Whether the token was issued to ``client``."""
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope

    def get_expires_in(self) -> int:
        """Seconds the access token lives."""
        return self.expires_in

    def is_expired(self) -> bool:
        """Whether the access token's lifetime is over."""
        return self.clock() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        """Whether the access token was revoked."""
        return self.access_revoked

    def get_user(self) -> str:
        """The resource owner."""
        return self.user

    def refresh_active(self) -> bool:
        """Whether the refresh token can still be used (not rotated, revoked or expired)."""
        if self.refresh_token is None or self.refresh_revoked:
            return False
        return self.refresh_expires_at is None or self.clock() < self.refresh_expires_at


@dataclass
class ConsentTransaction:
    """A validated authorization request waiting for the user's decision (the consent form carries only its id)."""

    id: str
    uri: str
    params: list[tuple[str, str]]
    client_id: str
    expires_at: float


class OAuthStore:
    """Clients, codes, tokens and consent transactions in memory, each bounded (oldest dropped first)."""

    def __init__(self, clock: Callable[[], float], *, max_clients: int = 1000, max_items: int = 10_000) -> None:
        self.clock = clock
        self.max_clients = max_clients
        self.max_items = max_items
        self.clients: dict[str, OAuthClient] = {}
        self.fixed_clients: dict[str, OAuthClient] = {}
        self.documents: dict[str, tuple[OAuthClient, float]] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.transactions: dict[str, ConsentTransaction] = {}

    # -- clients ----------------------------------------------------------------------------------------
    def client(self, client_id: str | None) -> OAuthClient | None:
        """A known client: pre-registered, registered, or a metadata document still in the cache."""
        if not client_id:
            return None
        found = self.fixed_clients.get(client_id) or self.clients.get(client_id)
        if found is not None:
            return found
        cached = self.documents.get(client_id)
        if cached is not None and self.clock() < cached[1]:
            return cached[0]
        return None

    def add_fixed_client(self, client: OAuthClient) -> None:
        """A pre-registered client (never evicted)."""
        self.fixed_clients[client.client_id] = client

    def add_client(self, client: OAuthClient) -> None:
        """A dynamically registered client; past the limit the oldest registration is forgotten."""
        self.clients[client.client_id] = client
        _trim(self.clients, self.max_clients)

    def cache_document_client(self, client: OAuthClient, lifetime: float) -> None:
        """Remember a metadata-document client for ``lifetime`` seconds."""
        now = self.clock()
        self.documents = {k: v for k, v in self.documents.items() if v[1] > now}
        self.documents[client.client_id] = (client, now + lifetime)
        _trim(self.documents, self.max_clients)

    # -- codes --------------------------------------------------------------------------------------------
    def save_code(self, code: AuthorizationCode) -> None:
        """Keep a new authorization code (expired ones are dropped)."""
        now = self.clock()
        self.codes = {k: v for k, v in self.codes.items() if v.expires_at > now}
        self.codes[code.code] = code
        _trim(self.codes, self.max_items)

    def code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The live code issued to ``client_id``, or None."""
        found = self.codes.get(code)
        if found is None or found.client_id != client_id or self.clock() >= found.expires_at:
            return None
        return found

    def delete_code(self, code: AuthorizationCode) -> None:
        """A code is used once."""
        self.codes.pop(code.code, None)

    # -- tokens ---------------------------------------------------------------------------------------------
    def save_token(self, token: Token) -> None:
        """Keep a new token (dead ones are dropped)."""
        self._prune_tokens()
        self.access_tokens[token.access_token] = token
        if token.refresh_token is not None:
            self.refresh_tokens[token.refresh_token] = token
        _trim(self.access_tokens, self.max_items)
        _trim(self.refresh_tokens, self.max_items)

    def access_token(self, value: str) -> Token | None:
        """The token record of an access token string (whatever its state)."""
        return self.access_tokens.get(value)

    def refresh_token(self, value: str) -> Token | None:
        """The token record of a usable refresh token, or None."""
        found = self.refresh_tokens.get(value)
        return found if found is not None and found.refresh_active() else None

    def find_token(self, value: str, hint: str | None) -> Token | None:
        """For revocation: the record of an access or refresh token string (the hint is tried first)."""
        lookups: Iterable[dict[str, Token]] = (
            (self.refresh_tokens, self.access_tokens)
            if hint == "refresh_token"
            else (self.access_tokens, self.refresh_tokens)
        )
        for table in lookups:
            if value in table:
                return table[value]
        return None

    def _prune_tokens(self) -> None:
        dead = [
            k for k, t in self.access_tokens.items() if (t.is_expired() or t.is_revoked()) and not t.refresh_active()
        ]
        for key in dead:
            token = self.access_tokens.pop(key)
            if token.refresh_token is not None:
                self.refresh_tokens.pop(token.refresh_token, None)

    # -- consent transactions -------------------------------------------------------------------------------
    def new_transaction(self, uri: str, params: list[tuple[str, str]], client_id: str, lifetime: float) -> str:
        """Remember a validated authorization request; the returned id (256 random bits) is all the form carries."""
        now = self.clock()
        self.transactions = {k: v for k, v in self.transactions.items() if v.expires_at > now}
        transaction_id = secrets.token_urlsafe(32)
        self.transactions[transaction_id] = ConsentTransaction(transaction_id, uri, params, client_id, now + lifetime)
        _trim(self.transactions, self.max_items)
        return transaction_id

    def take_transaction(self, transaction_id: str | None) -> ConsentTransaction | None:
        """The transaction, removed (single use), or None when unknown or expired."""
        if not transaction_id:
            return None
        found = self.transactions.pop(transaction_id, None)
        if found is None or self.clock() >= found.expires_at:
            return None
        return found


def _trim(table: dict[str, _V], limit: int) -> None:
    """Drop the oldest entries beyond ``limit`` (dicts keep insertion order)."""
    while len(table) > limit:
        del table[next(iter(table))]
