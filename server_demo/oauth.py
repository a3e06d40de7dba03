"""OAuth 2.1 for the demo's protected MCP endpoint: an authorization server built on authlib's core classes.

Routes (the issuer is ``<origin>/oauth``; the origin is the request's scheme and ``Host``,
which the Host guard limits to loopback names by default):

* ``GET /.well-known/oauth-authorization-server/oauth`` — RFC 8414 metadata
* ``GET /.well-known/oauth-protected-resource/mcp/protected`` — RFC 9728 metadata
* ``GET /oauth/authorize`` — validates the request, then a consent page; ``POST`` takes the
  decision and redirects with ``code`` (or ``error=access_denied``), ``state`` and ``iss``
* ``POST /oauth/token`` — ``authorization_code`` (PKCE S256, RFC 8707 ``resource``) and
  ``refresh_token`` (rotated on every use)
* ``POST /oauth/register`` — RFC 7591 Dynamic Client Registration
* ``POST /oauth/revoke`` — RFC 7009

The site's explorer is pre-registered (:data:`EXPLORER_CLIENT`: public client ``pyodide-transport-explorer``,
redirect URI ``<origin>/oauth/callback.html`` on the origin the request came to). A ``client_id`` that is
a URL names a Client ID Metadata Document (:mod:`server_demo.oauth_cimd`).
authlib is synchronous, so each handler first reads and parses its body (capped) and fetches
such a document, then hands an authlib request to :class:`_Server`. Everything lives in memory
(:mod:`server_demo.oauth_store`); the bearer check of ``/mcp/protected`` is
:mod:`server_demo.oauth_resource`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl

import httpx
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    AuthorizationServer,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import (
    ClientMetadataClaims,
    ClientRegistrationEndpoint,
    InvalidClientMetadataError,
    InvalidRedirectURIError,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import IssuerParameter
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import request_response
from starlette.types import ASGIApp, Scope

from .config import SecurityConfig
from .http_rules import cors_headers, host_allowed, origin_allowed
from .oauth_cimd import (
    DEFAULT_DOCUMENT_MAX_BYTES,
    ClientDocumentError,
    client_from_document,
    fetch_client_document,
    looks_like_document_url,
)
from .oauth_pages import consent_page, error_page
from .oauth_store import (
    DEMO_USER,
    REQUEST_ORIGIN,
    AuthorizationCode,
    OAuthClient,
    OAuthStore,
    Token,
    normalize_resource,
    redirect_uri_problem,
    scope_list,
)

__all__ = [
    "AUTH_METHODS",
    "EXPLORER_CALLBACK_PATH",
    "EXPLORER_CLIENT",
    "EXPLORER_CLIENT_ID",
    "ISSUER_PATH",
    "OAUTH_ALLOW_HEADERS",
    "PROTECTED_PATH",
    "InvalidTargetError",
    "OAuthConfig",
    "OAuthProvider",
    "PreRegisteredClient",
    "request_origin",
]

logger = logging.getLogger("server_demo.oauth")

ISSUER_PATH: Final = "/oauth"
"""The issuer is ``<origin>/oauth``; the endpoints live under it."""

PROTECTED_PATH: Final = "/mcp/protected"
"""The protected MCP endpoint; its URL is the resource tokens are issued for."""

AUTH_METHODS: Final = ("none", "client_secret_post", "client_secret_basic")
"""Token endpoint client authentication methods (a client uses the one it registered)."""

OAUTH_ALLOW_HEADERS: Final = "authorization, content-type, mcp-protocol-version"
"""Request headers a browser page may send to the OAuth endpoints (answered in preflights)."""

_GRANT_TYPES: Final = ("authorization_code", "refresh_token")
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
_HOST_RE: Final = re.compile(r"^(?:[a-z0-9.\-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$")
_FORBIDDEN_IN_ERRORS: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_ORIGIN: Final = REQUEST_ORIGIN
_EMPTY: Final[ImmutableMultiDict[str, str]] = ImmutableMultiDict()
_BAD_CHARACTERS: Final = "A parameter has characters not allowed."


# -- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreRegisteredClient:
    """A client known before any request (for tests and fixed setups).

    Attributes:
        client_id: Its identifier.
        redirect_uris: Where codes may go.
        client_secret: None for a public client.
        client_name: Shown on the consent page.
        token_endpoint_auth_method: Defaults to ``client_secret_basic`` with a secret, ``none`` without.
        grant_types: Include ``refresh_token`` to get refresh tokens.
        scope: Scopes it may get (None: any supported scope).
        application_type: ``web`` or ``native``.
        same_origin_redirect_paths: Paths valid as redirect URIs on the origin each request is served on
            (``<origin><path>``, exact match), for a page this server serves itself.
    """

    client_id: str
    redirect_uris: tuple[str, ...] = ()
    client_secret: str | None = None
    client_name: str = "Pre-registered client"
    token_endpoint_auth_method: str | None = None
    grant_types: tuple[str, ...] = _GRANT_TYPES
    scope: str | None = None
    application_type: str = "web"
    same_origin_redirect_paths: tuple[str, ...] = ()


EXPLORER_CLIENT_ID: Final = "pyodide-transport-explorer"
"""The site's explorer: a public client pre-registered with every demo server."""

EXPLORER_CALLBACK_PATH: Final = "/oauth/callback.html"
"""The explorer's redirect URI is this path on the origin the server is reached at (the site it serves)."""

EXPLORER_CLIENT: Final = PreRegisteredClient(
    client_id=EXPLORER_CLIENT_ID,
    client_name="pyodide-transport explorer",
    token_endpoint_auth_method="none",
    same_origin_redirect_paths=(EXPLORER_CALLBACK_PATH,),
)


@dataclass
class OAuthConfig:
    """The authorization server and the protected endpoint's rules.

    Attributes:
        token_lifetime: Seconds an access token lives.
        refresh_token_lifetime: Seconds a refresh token lives (renewed on every rotation).
        code_lifetime: Seconds an authorization code lives.
        consent_lifetime: Seconds a consent page stays answerable.
        scopes_supported: Scopes the server grants (advertised in its metadata).
        resource_scopes: Scopes the protected resource advertises (RFC 9728).
        required_scope: Every request to the protected endpoint needs it; also granted when a request names no scope.
        tool_scopes: Tool name → scope(s) a ``tools/call`` of it also needs (step-up: 403 ``insufficient_scope``).
        pre_registered: Clients known from the start (the explorer's by default).
        client_metadata_documents: Accept ``client_id`` URLs (Client ID Metadata Documents).
        metadata_fetch_timeout: Seconds for fetching one such document.
        metadata_max_bytes: Larger documents are refused.
        metadata_cache_seconds: How long a fetched document is trusted.
        metadata_transport: The httpx transport for fetching (tests pass an ``httpx.ASGITransport``).
        max_clients: Registered clients kept (the oldest registration is forgotten first).
        max_items: Codes, tokens and consent transactions kept (each).
        max_body_bytes: Larger form or JSON bodies sent to the authorization server get 400.
        clock: Wall-clock seconds; injectable so tests can expire tokens without sleeping.
    """

    token_lifetime: int = 3600
    refresh_token_lifetime: int = 30 * 24 * 3600
    code_lifetime: int = 600
    consent_lifetime: int = 600
    scopes_supported: tuple[str, ...] = ("mcp:tools", "mcp:admin", "offline_access")
    resource_scopes: tuple[str, ...] = ("mcp:tools", "mcp:admin")
    required_scope: str = "mcp:tools"
    tool_scopes: Mapping[str, str] = field(default_factory=lambda: {"long_running": "mcp:admin"})
    pre_registered: tuple[PreRegisteredClient, ...] = (EXPLORER_CLIENT,)
    client_metadata_documents: bool = True
    metadata_fetch_timeout: float = 3.0
    metadata_max_bytes: int = DEFAULT_DOCUMENT_MAX_BYTES
    metadata_cache_seconds: float = 300.0
    metadata_transport: httpx.AsyncBaseTransport | None = None
    max_clients: int = 1000
    max_items: int = 10_000
    max_body_bytes: int = 64 * 1024
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        """Refuse settings that cannot work."""
        for name in ("token_lifetime", "refresh_token_lifetime", "code_lifetime", "consent_lifetime"):
            if getattr(self, name) <= 0:
                raise ValueError(f"OAuthConfig.{name} must be positive")
        unknown = {self.required_scope, *(s for v in self.tool_scopes.values() for s in v.split())} - set(
            self.scopes_supported
        )
        if unknown:
            raise ValueError(f"OAuthConfig: scopes {sorted(unknown)} are not in scopes_supported")


# -- request helpers ------------------------------------------------------------------------------------------


def request_origin(scope: Scope) -> str:
    """``scheme://host[:port]`` of a request, from its ``Host`` header (the server address if that is unusable)."""
    headers = Headers(scope=scope)
    host = headers.get("host", "").strip().lower()
    if not _HOST_RE.match(host):
        server = scope.get("server") or ("127.0.0.1", None)
        name = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        host = f"{name}:{server[1]}" if server[1] else name
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{host}"


def _safe(text: str) -> str:
    """Text usable as an OAuth ``error_description`` (RFC 6749: printable ASCII without double quote and backslash)."""
    return _FORBIDDEN_IN_ERRORS.sub("?", text)[:300]


def _is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == _FORM_TYPE


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` or the client went away."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks)


def _parse_form(body: bytes) -> ImmutableMultiDict[str, str] | str:
    """A urlencoded body as a multi-dict, or why it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the form body is not UTF-8"
    try:
        return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))
    except ValueError:
        return "the form body has too many fields"


# -- authlib adapters -------------------------------------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    """authlib's view of a request's parameters (query for the authorization endpoint, form otherwise)."""

    def __init__(self, values: ImmutableMultiDict[str, str]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        """One value per name (authlib refuses repeated ones where it matters, via ``datalist``)."""
        return {key: self._values.getlist(key)[0] for key in self._values}

    @property
    def datalist(self) -> dict[str, list[str]]:
        """Every value per name."""
        return {key: self._values.getlist(key) for key in self._values}


class _Request(OAuth2Request):  # type: ignore[misc]
    """An authlib request built from an already-read Starlette request."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        query: ImmutableMultiDict[str, str],
        form: ImmutableMultiDict[str, str],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._query = query
        self._form = form
        self.payload = _Payload(form if method == "POST" else query)

    @property
    def args(self) -> ImmutableMultiDict[str, str]:
        """The query parameters."""
        return self._query

    @property
    def form(self) -> ImmutableMultiDict[str, str]:
        """The form parameters."""
        return self._form


class _JsonBody(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, Any]:
        """The parsed JSON object."""
        return self._data


class _JsonRequest(JsonRequest):  # type: ignore[misc]
    """An authlib JSON request (client registration) with an already-parsed body."""

    def __init__(self, uri: str, headers: Headers, data: dict[str, Any]) -> None:
        super().__init__("POST", uri, headers)
        self.payload = _JsonBody(data)


@dataclass
class _Answer:
    """What authlib answers (status, body, headers); ``location`` is what RFC 9207's extension rewrites."""

    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        """The ``Location`` header, if any."""
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"] + [("Location", value)]

    def response(self, extra: Mapping[str, str]) -> Response:
        """As a Starlette response, with ``extra`` headers (CORS)."""
        headers = {**dict(self.headers), **extra}
        if isinstance(self.body, dict):
            content = json.dumps(self.body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            content = str(self.body or "").encode()
        return Response(content, status_code=self.status, headers=headers)


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the ``resource`` is missing, repeated, or not the resource this server issues tokens for."""

    error = "invalid_target"


class _Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: ``iss`` in every authorization response; the issuer follows the request's origin."""

    def get_issuer(self) -> str | None:
        """``<origin>/oauth`` of the request being answered."""
        origin = _ORIGIN.get()
        return f"{origin}{ISSUER_PATH}" if origin else None


class _S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE, required for every client, S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: Any) -> None:
        """Refuse an authorization request without an S256 ``code_challenge``."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


def _one_resource(request: Any) -> str | None:
    """The request's single ``resource`` (None if absent).

    Raises:
        InvalidTargetError: More than one.
    """
    values = request.payload.datalist.get("resource", [])
    if len(values) > 1:
        raise InvalidTargetError("Only one 'resource' is supported")
    return values[0] if values else None


class _ResourceIndicator:
    """RFC 8707 on the code grant: the authorization request names this server's resource, the token request too."""

    def __call__(self, grant: Any) -> None:
        """Hook into the grant's validation."""
        grant.register_hook("after_validate_authorization_request_payload", self.check_authorization)
        grant.register_hook("after_validate_token_request", self.check_token)

    @staticmethod
    def check_authorization(grant: Any, result: Any) -> None:
        """The authorization request's ``resource`` must be the protected endpoint's URL."""
        expected = grant.server.provider.resource_url(_ORIGIN.get())
        resource = _one_resource(grant.request)
        if resource is None:
            raise InvalidTargetError(_safe(f"Missing 'resource' (RFC 8707): send the MCP server URL {expected}"))
        if normalize_resource(resource) != normalize_resource(expected):
            raise InvalidTargetError(_safe(f"Unknown 'resource': this server issues tokens for {expected} only"))

    @staticmethod
    def check_token(grant: Any, result: Any) -> None:
        """The token request's ``resource`` must be the one the code was issued for."""
        resource = _one_resource(grant.request)
        code: AuthorizationCode = grant.request.authorization_code
        if resource is None:
            raise InvalidTargetError("Missing 'resource' (RFC 8707): repeat the authorization request's resource")
        if normalize_resource(resource) != code.resource:
            raise InvalidTargetError("The 'resource' differs from the authorization request's")


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant, stored in :class:`OAuthStore`."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Keep the code with everything the token request is checked against."""
        provider: OAuthProvider = self.server.provider
        data = request.payload.data
        provider.store.save_code(
            AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=data.get("redirect_uri"),
                scope=request.scope,
                resource=normalize_resource(data["resource"]),
                code_challenge=data["code_challenge"],
                code_challenge_method=data.get("code_challenge_method", "S256"),
                user=request.user,
                expires_at=provider.config.clock() + provider.config.code_lifetime,
            )
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        """The live code issued to ``client``."""
        found: AuthorizationCode | None = self.server.provider.store.code(code, client.client_id)
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Codes are single use."""
        self.server.provider.store.delete_code(authorization_code)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> str:
        """The user who consented."""
        return authorization_code.user


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """The refresh token grant: every use returns a new refresh token and retires the old one."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        """The checks of authlib, plus: a ``resource``, when sent, must be the token's."""
        super().validate_token_request()
        resource = _one_resource(self.request)
        if resource is not None and normalize_resource(resource) != self.request.refresh_token.resource:
            raise InvalidTargetError("The 'resource' differs from the one this refresh token was issued for")

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        """The record of a usable refresh token."""
        found: Token | None = self.server.provider.store.refresh_token(refresh_token)
        return found

    def authenticate_user(self, refresh_token: Token) -> str:
        """The user the token was issued to."""
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Rotation: the used refresh token stops working."""
        refresh_token.refresh_revoked = True


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: revoking a refresh token ends its access token too; revoking an access token ends only it."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        """The record of an access or refresh token."""
        found: Token | None = self.server.provider.store.find_token(token_string, token_type_hint)
        return found

    def revoke_token(self, token: Token, request: Any) -> None:
        """Mark it revoked (records stay, so a revoked value never becomes valid again)."""
        if request.form.get("token") == token.access_token:
            token.access_revoked = True
        else:
            token.refresh_revoked = token.access_revoked = True


_STRING_CLAIMS: Final = (
    "client_name",
    "scope",
    "token_endpoint_auth_method",
    "application_type",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "software_id",
    "software_version",
)
_LIST_CLAIMS: Final = ("redirect_uris", "grant_types", "response_types", "contacts")


class _RegistrationClaims(ClientMetadataClaims):  # type: ignore[misc]
    """RFC 7591 client metadata with the demo's rules: typed fields, https (or loopback http) redirect URIs."""

    REGISTERED_CLAIMS: ClassVar[list[str]] = [*ClientMetadataClaims.REGISTERED_CLAIMS, "application_type"]

    def validate(self, now: Any = None, leeway: int = 0) -> None:
        """Types first (so authlib's checks see sane values), then authlib's, then ours."""
        for key in _STRING_CLAIMS:
            if key in self and not isinstance(self[key], str):
                raise InvalidClientMetadataError(f"'{key}' must be a string")
        for key in _LIST_CLAIMS:
            if key in self and not (isinstance(self[key], list) and all(isinstance(v, str) for v in self[key])):
                raise InvalidClientMetadataError(f"'{key}' must be an array of strings")
        super().validate(now, leeway)
        if self.get("application_type", "web") not in ("web", "native"):
            raise InvalidClientMetadataError("'application_type' must be web or native")
        if "authorization_code" not in self.get("grant_types", ["authorization_code"]):
            raise InvalidClientMetadataError("'grant_types' must include authorization_code")

    def validate_redirect_uris(self) -> None:
        """At least one; each https, or http on a loopback host; no fragments."""
        uris = self.get("redirect_uris")
        if not uris:
            raise InvalidRedirectURIError("'redirect_uris' must list at least one redirect URI")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem is not None:
                raise InvalidRedirectURIError(_safe(problem))


class _Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    """RFC 7591 open registration: public clients (``none``) get no secret, confidential ones do."""

    def authenticate_token(self, request: Any) -> bool:
        """Anyone may register (an initial access token is not required)."""
        return True

    def get_server_metadata(self) -> dict[str, Any]:
        """What registration is validated against (scopes, grant and response types, auth methods)."""
        return dict(self.server.provider.authorization_server_metadata(_ORIGIN.get()))

    def extract_client_metadata(self, request: Any) -> dict[str, Any]:
        """Validated metadata, with the defaults the client gets filled in (so the response shows them)."""
        data = request.payload.data
        if not isinstance(data, dict) or not data:
            raise InvalidClientMetadataError("The body must be a JSON object of client metadata")
        metadata: dict[str, Any] = super().extract_client_metadata(request)
        metadata.setdefault("grant_types", ["authorization_code"])
        metadata.setdefault("response_types", ["code"])
        metadata.setdefault("application_type", "web")
        return metadata

    def generate_client_info(self, request: Any) -> dict[str, Any]:
        """A client id, and a secret only for a confidential client."""
        info: dict[str, Any] = super().generate_client_info(request)
        if request.payload.data.get("token_endpoint_auth_method") == "none":
            info.pop("client_secret", None)
            info.pop("client_secret_expires_at", None)
        return info

    def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any) -> OAuthClient:
        """Keep the new client in the store."""
        provider: OAuthProvider = self.server.provider
        client = provider.new_client(
            client_id=client_info["client_id"],
            client_secret=client_info.get("client_secret"),
            redirect_uris=tuple(client_metadata["redirect_uris"]),
            client_name=client_metadata.get("client_name"),
            grant_types=tuple(dict.fromkeys(client_metadata["grant_types"])),
            response_types=tuple(client_metadata["response_types"]),
            token_endpoint_auth_method=client_metadata["token_endpoint_auth_method"],
            scope=client_metadata.get("scope"),
            application_type=client_metadata["application_type"],
            kind="registered",
        )
        provider.store.add_client(client)
        return client


class _AccessTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    """RFC 6750 checks of an access token presented to the protected endpoint, each failure described."""

    def __init__(self, store: OAuthStore) -> None:
        super().__init__()
        self.store = store

    def authenticate_token(self, token_string: str) -> Token | None:
        """The token's record."""
        return self.store.access_token(token_string)

    def validate_token(self, token: Token | None, scopes: list[str], request: Any) -> None:
        """Known, not revoked, not expired, for this resource (``request`` is its URL), with the scopes."""
        if token is None:
            raise InvalidTokenError("The access token is not known to this server")
        if token.is_revoked():
            raise InvalidTokenError("The access token was revoked")
        if token.is_expired():
            raise InvalidTokenError("The access token expired")
        if token.resource != normalize_resource(str(request)):
            raise InvalidTokenError("The access token was issued for another resource")
        if self.scope_insufficient(token.get_scope(), scopes):
            raise InsufficientScopeError()


class _Server(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server adapted to already-read Starlette requests and the in-memory store."""

    def __init__(self, provider: OAuthProvider) -> None:
        super().__init__(scopes_supported=list(provider.config.scopes_supported))
        self.provider = provider

    def query_client(self, client_id: str) -> OAuthClient | None:
        """A known client (a metadata-document client must have been fetched already)."""
        return self.provider.store.client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Keep an issued token, bound to the resource of its code or refresh token."""
        self.provider.save_token(token, request)

    def create_oauth2_request(self, request: Any) -> Any:
        """Handlers pass :class:`_Request` objects already."""
        return request

    def create_json_request(self, request: Any) -> Any:
        """Handlers pass :class:`_JsonRequest` objects already."""
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> _Answer:
        """Keep authlib's answer as data; the handler turns it into a response."""
        return _Answer(int(status), body, [(str(k), str(v)) for k, v in headers])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Signals of authlib (client authenticated, token revoked) are only logged."""
        logger.debug("oauth signal %s", name)


# -- the provider -------------------------------------------------------------------------------------------------


class OAuthProvider:
    """The authorization server: its authlib core, its store, and its Starlette routes.

    Args:
        config: The OAuth rules.
        security: Which Host values and browser origins may talk to it (the app's).
        resource_path: The protected endpoint's path (its URL is the token audience).
    """

    def __init__(self, config: OAuthConfig, security: SecurityConfig, resource_path: str = PROTECTED_PATH) -> None:
        self.config = config
        self.security = security
        self.resource_path = resource_path
        self.store = OAuthStore(config.clock, max_clients=config.max_clients, max_items=config.max_items)
        for fixed in config.pre_registered:
            method = fixed.token_endpoint_auth_method or ("client_secret_basic" if fixed.client_secret else "none")
            if method not in AUTH_METHODS or (method == "none") != (fixed.client_secret is None):
                raise ValueError(f"pre-registered client {fixed.client_id!r}: {method} does not fit its secret")
            self.store.add_fixed_client(
                self.new_client(
                    client_id=fixed.client_id,
                    client_secret=fixed.client_secret,
                    redirect_uris=fixed.redirect_uris,
                    client_name=fixed.client_name,
                    grant_types=fixed.grant_types,
                    token_endpoint_auth_method=method,
                    scope=fixed.scope,
                    application_type=fixed.application_type,
                    same_origin_redirect_paths=fixed.same_origin_redirect_paths,
                    kind="pre-registered",
                )
            )
        self.validator = _AccessTokenValidator(self.store)
        self.issuer_parameter = _Issuer()
        server = _Server(self)
        generator = BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(32),
            refresh_token_generator=lambda **_: secrets.token_urlsafe(48),
            expires_generator=lambda client, grant_type: config.token_lifetime,
        )
        server.register_token_generator("default", generator)
        server.register_grant(_CodeGrant, [_S256CodeChallenge(required=True), _ResourceIndicator()])
        server.register_grant(_RefreshGrant)
        server.register_endpoint(_Revocation)
        server.register_endpoint(_Registration(claims_classes=[_RegistrationClaims]))
        server.register_extension(self.issuer_parameter)
        self.server = server

    # -- model helpers ------------------------------------------------------------------------------------------
    def new_client(self, **fields: Any) -> OAuthClient:
        """A client record that knows the server's scopes."""
        return OAuthClient(
            **fields,
            default_scope=self.config.required_scope,
            supported_scopes=self.config.scopes_supported,
            issued_at=self.config.clock(),
        )

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store a token authlib issued (called back from the grants)."""
        source = request.authorization_code or request.refresh_token
        now = self.config.clock()
        refresh = token.get("refresh_token")
        self.store.save_token(
            Token(
                access_token=token["access_token"],
                client_id=request.client.client_id,
                scope=str(token.get("scope") or ""),
                resource=source.resource,
                user=request.user,
                issued_at=now,
                expires_in=int(token.get("expires_in") or self.config.token_lifetime),
                refresh_token=refresh,
                refresh_expires_at=now + self.config.refresh_token_lifetime if refresh else None,
                clock=self.config.clock,
            )
        )

    def check_access_token(self, token_string: str, resource: str, scopes: list[str]) -> Token:
        """The token's record if it may call ``resource`` with ``scopes`` (all of them).

        Raises:
            InvalidTokenError: Unknown, revoked, expired, or for another resource.
            InsufficientScopeError: Valid but without every scope in ``scopes``.
        """
        token = self.validator.authenticate_token(token_string)
        self.validator.validate_token(token, [" ".join(scopes)] if scopes else [], resource)
        assert token is not None
        return token

    # -- URLs and metadata -----------------------------------------------------------------------------------------
    @staticmethod
    def issuer(origin: str) -> str:
        """The issuer identifier for requests to ``origin``."""
        return f"{origin}{ISSUER_PATH}"

    def resource_url(self, origin: str) -> str:
        """The protected endpoint's URL (the resource indicator tokens are bound to)."""
        return f"{origin}{self.resource_path}"

    def resource_metadata_url(self, origin: str) -> str:
        """Where its RFC 9728 metadata is (the ``resource_metadata`` of a challenge)."""
        return f"{origin}/.well-known/oauth-protected-resource{self.resource_path}"

    def authorization_server_metadata(self, origin: str) -> AuthorizationServerMetadata:
        """RFC 8414 metadata (with RFC 9207's ``iss`` flag and the Client ID Metadata Document flag)."""
        issuer = self.issuer(origin)
        return AuthorizationServerMetadata(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "registration_endpoint": f"{issuer}/register",
                "revocation_endpoint": f"{issuer}/revoke",
                "scopes_supported": list(self.config.scopes_supported),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": list(_GRANT_TYPES),
                "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
                "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
                "code_challenge_methods_supported": ["S256"],
                "client_id_metadata_document_supported": self.config.client_metadata_documents,
                "authorization_response_iss_parameter_supported": True,
            }
        )

    def protected_resource_metadata(self, origin: str) -> dict[str, Any]:
        """RFC 9728 metadata of the protected endpoint."""
        return {
            "resource": self.resource_url(origin),
            "authorization_servers": [self.issuer(origin)],
            "scopes_supported": list(self.config.resource_scopes),
            "bearer_methods_supported": ["header"],
            "resource_name": "pyodide-transport demo server (OAuth-protected MCP endpoint)",
        }

    # -- routes ---------------------------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, ASGIApp]]:
        """``(path, ASGI app)`` for every OAuth route (the caller adds the CSP wrapper and the routing)."""
        return [
            (f"/.well-known/oauth-authorization-server{ISSUER_PATH}", request_response(self._as_metadata)),
            (f"/.well-known/oauth-protected-resource{self.resource_path}", request_response(self._pr_metadata)),
            (f"{ISSUER_PATH}/authorize", request_response(self._authorize)),
            (f"{ISSUER_PATH}/token", request_response(self._token)),
            (f"{ISSUER_PATH}/register", request_response(self._register)),
            (f"{ISSUER_PATH}/revoke", request_response(self._revoke)),
        ]

    @contextlib.contextmanager
    def _serving(self, origin: str) -> Iterator[None]:
        """Tell authlib's callbacks which origin (issuer, resource) the current request belongs to."""
        reset = _ORIGIN.set(origin)
        try:
            yield
        finally:
            _ORIGIN.reset(reset)

    def _guard(self, request: Request, methods: tuple[str, ...]) -> Response | None:
        """Host and Origin rules, preflight, method; None when the request may go on."""
        host, origin = request.headers.get("host"), request.headers.get("origin")
        own = request_origin(request.scope)
        if not host_allowed(host, self.security.allowed_hosts):
            return PlainTextResponse(f"Host {host!r} is not allowed", status_code=403)
        if origin is not None and origin != own and not origin_allowed(origin, self.security.allowed_origins):
            return PlainTextResponse(f"Origin {origin!r} is not allowed", status_code=403)
        allow = ", ".join((*methods, "OPTIONS"))
        if request.method == "OPTIONS":
            extra = {"Allow": allow}
            if origin is not None:
                extra.update(
                    {
                        **cors_headers(origin, self.security),
                        "Access-Control-Allow-Methods": allow,
                        "Access-Control-Allow-Headers": OAUTH_ALLOW_HEADERS,
                        "Access-Control-Max-Age": "600",
                    }
                )
            return Response(status_code=204, headers=extra)
        if request.method not in methods:
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": allow, **self._cors(request)}
            )
        return None

    def _cors(self, request: Request) -> dict[str, str]:
        return cors_headers(request.headers.get("origin"), self.security)

    @staticmethod
    def _error(status: int, error: str, description: str, extra: Mapping[str, str]) -> Response:
        """An OAuth error response (RFC 6749 §5.2, RFC 7591 §3.2.2)."""
        body = json.dumps({"error": error, "error_description": _safe(description)}).encode()
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **extra}
        return Response(body, status_code=status, headers=headers)

    @staticmethod
    def _html_error(status: int, title: str, detail: str) -> HTMLResponse:
        return HTMLResponse(error_page(title, detail), status_code=status, headers={"Cache-Control": "no-store"})

    async def _load_client(self, client_id: str | None) -> str | None:
        """Fetch a Client ID Metadata Document into the cache when ``client_id`` is a URL; the problem, or None."""
        if not client_id or not looks_like_document_url(client_id) or self.store.client(client_id) is not None:
            return None
        if not self.config.client_metadata_documents:
            return "this server does not accept client metadata documents"
        try:
            document = await fetch_client_document(
                client_id,
                time_limit=self.config.metadata_fetch_timeout,
                max_bytes=self.config.metadata_max_bytes,
                transport=self.config.metadata_transport,
            )
            found = client_from_document(client_id, document)
        except ClientDocumentError as exc:
            logger.info("client metadata document %s refused: %s", client_id, exc)
            return str(exc)
        client = self.new_client(
            **{k: getattr(found, k) for k in ("client_id", "redirect_uris", "client_name", "grant_types", "scope")},
            token_endpoint_auth_method="none",
            application_type=found.application_type,
            kind="metadata-document",
        )
        self.store.cache_document_client(client, self.config.metadata_cache_seconds)
        return None

    # -- metadata ---------------------------------------------------------------------------------------------------
    async def _as_metadata(self, request: Request) -> Response:
        early = self._guard(request, ("GET",))
        if early is not None:
            return early
        body = dict(self.authorization_server_metadata(request_origin(request.scope)))
        return Response(json.dumps(body).encode(), headers={"Content-Type": "application/json", **self._cors(request)})

    async def _pr_metadata(self, request: Request) -> Response:
        early = self._guard(request, ("GET",))
        if early is not None:
            return early
        body = self.protected_resource_metadata(request_origin(request.scope))
        return Response(json.dumps(body).encode(), headers={"Content-Type": "application/json", **self._cors(request)})

    # -- authorization endpoint ---------------------------------------------------------------------------------
    async def _authorize(self, request: Request) -> Response:
        host = request.headers.get("host")
        if not host_allowed(host, self.security.allowed_hosts):
            return PlainTextResponse(f"Host {host!r} is not allowed", status_code=403)
        origin = request_origin(request.scope)
        if request.method == "GET":
            return await self._authorize_get(request, origin)
        if request.method == "POST":
            return await self._authorize_post(request, origin)
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, POST"})

    async def _authorize_get(self, request: Request, origin: str) -> Response:
        query = request.query_params
        problem = await self._load_client(query.get("client_id"))
        if problem is not None:
            return self._html_error(400, "Unusable client", f"The client metadata document was refused: {problem}.")
        with self._serving(origin):
            oauth_request: _Request | None = None
            try:
                oauth_request = _Request("GET", str(request.url), request.headers, query, _EMPTY)
                grant = self.server.get_consent_grant(request=oauth_request, end_user=None)
            except OAuth2Error as error:
                return self._authorize_error(oauth_request, error)
            except ValueError:
                return self._html_error(400, "Malformed authorization request", _BAD_CHARACTERS)
        client: OAuthClient = grant.request.client
        transaction = self.store.new_transaction(
            str(request.url), list(query.multi_items()), client.client_id, self.config.consent_lifetime
        )
        page = consent_page(
            client_name=client.client_name,
            client_id=client.client_id,
            client_kind=client.kind,
            scopes=scope_list(grant.request.scope),
            resource=self.resource_url(origin),
            redirect_uri=grant.redirect_uri,
            transaction_id=transaction,
            action=f"{ISSUER_PATH}/authorize",
        )
        # same-origin, not no-referrer: under no-referrer a browser sends the consent POST with "Origin: null"
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin"})

    def _authorize_error(self, oauth_request: _Request | None, error: OAuth2Error) -> Response:
        """Back to the client when its redirect URI is verified (with ``iss``); else an error page, never a redirect."""
        if error.redirect_uri and oauth_request is not None:
            answer: _Answer = self.server.handle_error_response(oauth_request, error)
            self.issuer_parameter.add_issuer_parameter(self.server, answer)
            return _redirect(answer, 302)
        titles = {
            "invalid_client": "Unknown client",
            "insecure_transport": "OAuth needs https or a loopback host",
        }
        detail = error.description or error.error or "The authorization request is invalid."
        return self._html_error(400, titles.get(error.error, "Invalid authorization request"), str(detail))

    async def _authorize_post(self, request: Request, origin: str) -> Response:
        sent_origin = request.headers.get("origin")
        if sent_origin is not None and sent_origin != origin:
            return self._html_error(403, "Cross-site consent refused", "The consent form must be sent from this page.")
        if not _is_form(request.headers.get("content-type")):
            return self._html_error(400, "Invalid consent form", "The consent form must be sent as a form.")
        body = await _read_body(request, self.config.max_body_bytes)
        form = _parse_form(body) if body is not None else "the form is too large"
        if isinstance(form, str):
            return self._html_error(400, "Invalid consent form", f"The consent form could not be read: {form}.")
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return self._html_error(400, "Invalid consent form", "Choose Allow or Deny.")
        transaction = self.store.take_transaction(form.get("transaction"))
        if transaction is None:
            return self._html_error(
                400, "Consent request expired", "This consent request is unknown, expired or already answered."
            )
        problem = await self._load_client(transaction.client_id)
        if problem is not None:
            return self._html_error(400, "Unusable client", f"The client metadata document was refused: {problem}.")
        with self._serving(origin):
            oauth_request = None
            try:
                oauth_request = _Request(
                    "GET", transaction.uri, request.headers, ImmutableMultiDict(transaction.params), _EMPTY
                )
                grant = self.server.get_consent_grant(request=oauth_request, end_user=None)
                user = DEMO_USER if decision == "allow" else None
                answer: _Answer = self.server.create_authorization_response(
                    request=oauth_request, grant_user=user, grant=grant
                )
            except OAuth2Error as error:
                return self._authorize_error(oauth_request, error)
            except ValueError:
                return self._html_error(400, "Malformed authorization request", _BAD_CHARACTERS)
        return _redirect(answer, 303)

    # -- token, revocation, registration ------------------------------------------------------------------------
    async def _form_request(self, request: Request) -> _Request | Response:
        """A form POST read into an authlib request (the client's metadata document fetched), or an error response."""
        cors = self._cors(request)
        if not _is_form(request.headers.get("content-type")):
            return self._error(400, "invalid_request", f"Content-Type must be {_FORM_TYPE}", cors)
        body = await _read_body(request, self.config.max_body_bytes)
        if body is None:
            too_large = f"The body is larger than {self.config.max_body_bytes} bytes"
            return self._error(400, "invalid_request", too_large, cors)
        form = _parse_form(body)
        if isinstance(form, str):
            return self._error(400, "invalid_request", f"The form body could not be read: {form}", cors)
        client_id = form.get("client_id") or _basic_user(request.headers)
        problem = await self._load_client(client_id)
        if problem is not None:
            return self._error(400, "invalid_client", f"The client metadata document was refused: {problem}", cors)
        try:
            return _Request("POST", str(request.url), request.headers, request.query_params, form)
        except OAuth2Error as error:
            return _Answer(*error()).response(cors)

    async def _token(self, request: Request) -> Response:
        return await self._form_endpoint(request, "token")

    async def _revoke(self, request: Request) -> Response:
        return await self._form_endpoint(request, "revocation")

    async def _form_endpoint(self, request: Request, endpoint: str) -> Response:
        """A POSTed form to the token or the revocation endpoint, answered by authlib."""
        early = self._guard(request, ("POST",))
        if early is not None:
            return early
        cors = self._cors(request)
        oauth_request = await self._form_request(request)
        if isinstance(oauth_request, Response):
            return oauth_request
        if endpoint == "token" and not oauth_request.form.get("grant_type"):
            return self._error(400, "invalid_request", "Missing 'grant_type'", cors)
        with self._serving(request_origin(request.scope)):
            try:
                answer: _Answer = (
                    self.server.create_token_response(oauth_request)
                    if endpoint == "token"
                    else self.server.create_endpoint_response(endpoint, oauth_request)
                )
            except ValueError:
                return self._error(400, "invalid_request", "A parameter has characters not allowed", cors)
        return answer.response(cors)

    async def _register(self, request: Request) -> Response:
        early = self._guard(request, ("POST",))
        if early is not None:
            return early
        cors = self._cors(request)
        if not _is_json(request.headers.get("content-type")):
            return self._error(400, "invalid_client_metadata", "Content-Type must be application/json", cors)
        body = await _read_body(request, self.config.max_body_bytes)
        if body is None:
            return self._error(
                400, "invalid_client_metadata", f"The body is larger than {self.config.max_body_bytes} bytes", cors
            )
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "invalid_client_metadata", "The body is not valid JSON", cors)
        if not isinstance(data, dict):
            return self._error(400, "invalid_client_metadata", "The body must be a JSON object", cors)
        with self._serving(request_origin(request.scope)):
            try:
                json_request = _JsonRequest(str(request.url), request.headers, data)
                answer: _Answer = self.server.create_endpoint_response("client_registration", json_request)
            except OAuth2Error as error:
                answer = _Answer(*error())
            except ValueError:
                return self._error(400, "invalid_client_metadata", "A field has characters not allowed", cors)
        return answer.response(cors)


def _basic_user(headers: Headers) -> str | None:
    """The client id of an HTTP Basic ``Authorization`` header (to fetch its metadata document first)."""
    from authlib.oauth2.rfc6749.util import extract_basic_authorization

    user, _ = extract_basic_authorization(headers)
    return str(user) if user else None


def _redirect(answer: _Answer, status: int) -> Response:
    """The redirect of authlib as ``status`` (303 after the consent POST); any other answer as an error page."""
    location = answer.location
    if location is None:
        body = answer.body if isinstance(answer.body, dict) else {}
        return HTMLResponse(
            error_page("Authorization failed", str(body.get("error_description") or body.get("error") or "error")),
            status_code=400,
        )
    return Response(status_code=status, headers={"Location": location, "Cache-Control": "no-store"})
