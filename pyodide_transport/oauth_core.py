r"""MCP authorization (OAuth 2.1), sans-I/O: what to fetch, what to send, what the answers mean.

This module performs no I/O, keeps no clock and draws no randomness of its own: the shell
(:mod:`pyodide_transport.oauth`) performs the HTTP requests and the user's sign-in this core asks
for and feeds back what happened. The same decisions then run in CPython, Node-Pyodide and the
browser.

One :class:`AuthorizationFlow` runs from a 401 (or 403 ``insufficient_scope``) to tokens. Every verb
returns the next :data:`Action`: an :class:`HTTPAction` to perform, an :class:`OpenAuthorization`
(show the user ``url``, come back with the redirect), or :class:`Authorized` (done). The shell
feeds ``receive_response(status, headers, body)``, ``receive_network_error(error)`` or
``receive_redirect(url)``. Its states and their changes are :data:`FLOW_TRANSITIONS`::

    resource_metadata --> server_metadata --> refresh ----------------------------> done
                                         \--> register --> authorize --> token --> done
                                          \-------------/  (refresh refused: register/authorize)

What the core decides, in the spec's order (2025-11-25 and 2026-07-28 ``basic/authorization``):

* **Challenge**: ``WWW-Authenticate: Bearer`` gives ``resource_metadata``, ``scope`` and ``error``
  (:func:`parse_www_authenticate`, RFC 9110 §11.6.1 grammar).
* **Protected-resource metadata** (RFC 9728): the challenge's URL, else the path-inserted
  ``/.well-known/oauth-protected-resource/<path>``, else the root one. Its ``resource`` must be the
  server's URL or a parent of it, on the same origin (else :class:`ResourceMismatchError`); that
  ``resource`` goes into every authorization and token request (RFC 8707).
* **Authorization-server metadata**: RFC 8414 and OpenID Connect discovery, path-inserted first
  for an issuer with a path (``oauth-authorization-server/<path>``, ``openid-configuration/<path>``,
  ``<path>/.well-known/openid-configuration``), else the two root ones. The document's ``issuer``
  must equal the issuer URL exactly (:class:`IssuerMismatchError`); PKCE ``S256`` must be offered
  (:class:`MetadataError`); endpoints must be https (plain http only on loopback hosts).
* **Registration**, keyed by the issuer (credentials never cross authorization servers):
  stored → pre-registered (``client_id``) → Client ID Metadata Document (when the server supports
  it and a ``client_metadata_url`` is set) → Dynamic Client Registration (with
  ``application_type`` and the ``refresh_token`` grant) → :class:`RegistrationError`.
* **Scope**: the challenge's ``scope``, else the resource's ``scopes_supported``, else none; on a
  re-authorization the union with what was granted before (SEP-2350); ``offline_access`` added when
  the authorization server lists it and refresh tokens are wanted (SEP-2207).
* **Authorization**: PKCE S256, ``state``, ``resource``; the redirect must come back to our
  ``redirect_uri`` with our ``state``; ``iss`` (RFC 9207) must equal the issuer when present, and
  must be present when the server advertises it.
* **Token endpoint authentication**: the method registration returned, else the best the server
  offers for the credentials held (``client_secret_basic`` > ``client_secret_post`` > ``none``).
* **Refresh**: with a refresh token from the same issuer, a 401 first tries ``refresh_token``; a
  refused refresh falls back to a new authorization.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .errors import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationResponseError,
    ChallengeNotExposedError,
    CORSError,
    DiscoveryCORSError,
    DiscoveryError,
    IssuerMismatchError,
    LocalProtocolError,
    MetadataError,
    RegistrationError,
    ResourceMismatchError,
    TokenError,
    TransportError,
)

__all__ = [
    "FLOW_TRANSITIONS",
    "Action",
    "AuthorizationFlow",
    "Authorized",
    "Challenge",
    "ClientRegistration",
    "ClientSettings",
    "FlowState",
    "HTTPAction",
    "OpenAuthorization",
    "PendingAuthorization",
    "ResourceMetadata",
    "ServerMetadata",
    "Tokens",
    "authorization_server_urls",
    "bearer_challenge",
    "canonical_resource",
    "parse_www_authenticate",
    "pkce_challenge",
    "protected_resource_urls",
    "refresh_action",
    "registration_of",
    "revocation_action",
    "token_response",
]

JSON_ACCEPT: Final = {"Accept": "application/json"}
_BASIC_ONLY: Final = ("client_secret_basic",)
_ACTIVE: Final = ("resource_metadata", "server_metadata", "refresh", "register", "authorize", "token")
FORM: Final = "application/x-www-form-urlencoded"


# --- WWW-Authenticate -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: its scheme and auth-params (names lower-cased)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def resource_metadata(self) -> str | None:
        """RFC 9728 §5.1: where the protected-resource metadata is."""
        return self.params.get("resource_metadata") or None

    @property
    def scope(self) -> str | None:
        """The scope the server asks for (RFC 6750 §3)."""
        return self.params.get("scope") or None

    @property
    def error(self) -> str | None:
        """``invalid_token``, ``insufficient_scope``, ..."""
        return self.params.get("error") or None


_PARAM = re.compile(r"""([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"?|[^ \t]*)$""", re.DOTALL)
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _split_commas(value: str) -> list[str]:
    """Split at commas outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _param(item: str) -> tuple[str, str] | None:
    match = _PARAM.match(item)
    if match is None:
        return None
    name, raw = match.groups()
    if raw.startswith("="):  # a token68 such as "abc==", not a parameter
        return None
    if raw.startswith('"'):
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:])
    return name.lower(), raw


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 9110 §11.6.1); junk is skipped, never raised."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for item in _split_commas(value):
        param = _param(item)
        if param is not None:
            if challenges:
                challenges[-1][1].setdefault(*param)
            continue
        scheme = _SCHEME.match(item)
        if scheme is None:
            continue
        params: dict[str, str] = {}
        rest = item[scheme.end() :].strip()
        if rest and (first := _param(rest)) is not None:
            params[first[0]] = first[1]
        challenges.append((scheme.group(), params))  # a token68 after the scheme is ignored
    return [Challenge(scheme, params) for scheme, params in challenges]


def bearer_challenge(value: str | None) -> Challenge | None:
    """The ``Bearer`` challenge of a ``WWW-Authenticate`` value, if it has one."""
    for challenge in parse_www_authenticate(value or ""):
        if challenge.scheme.lower() == "bearer":
            return challenge
    return None


# --- URLs -----------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_endpoint(url: object, what: str, *, required: bool = True) -> str | None:
    """An absolute https URL (http only on loopback hosts), or ``MetadataError`` naming ``what``."""
    if url is None and not required:
        return None
    if not isinstance(url, str) or not url:
        raise MetadataError(f"the {what} is missing or not a string")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MetadataError(f"the {what} {url!r} is not an absolute http(s) URL")
    if parts.fragment:
        raise MetadataError(f"the {what} {url!r} must not have a fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise MetadataError(f"the {what} {url!r} uses plain http; OAuth endpoints must use https")
    return url


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server (RFC 8707 §2): lower-case scheme and host, no fragment or query."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def protected_resource_urls(server_url: str, challenge: Challenge | None) -> list[str]:
    """Where to look for protected-resource metadata, in the spec's order (RFC 9728 §3.1 and §5.1)."""
    parts = urlsplit(server_url)
    root = urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-protected-resource", "", ""))
    urls: list[str] = []
    if challenge is not None and challenge.resource_metadata:
        urls.append(challenge.resource_metadata)
    path = parts.path.rstrip("/")
    if path:
        urls.append(root + path)
    urls.append(root)
    return list(dict.fromkeys(urls))


def authorization_server_urls(issuer: str) -> list[str]:
    """Where to look for authorization-server metadata: RFC 8414 §3.1 and OpenID discovery, the spec's order."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")

    def at(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, p, "", ""))

    if path:
        return [
            at(f"/.well-known/oauth-authorization-server{path}"),
            at(f"/.well-known/openid-configuration{path}"),
            at(f"{path}/.well-known/openid-configuration"),
        ]
    return [at("/.well-known/oauth-authorization-server"), at("/.well-known/openid-configuration")]


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), ""))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` (RFC 7636 §4.2, S256)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


# --- documents --------------------------------------------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _strings(value: object) -> tuple[str, ...]:
    """A JSON array of strings (anything else: empty)."""
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _scopes(value: str | None) -> list[str]:
    return [s for s in (value or "").split(" ") if s]


def _union(*scopes: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(s for group in scopes for s in group))


def _shaped(data: object, required: Sequence[str], optional: Sequence[str] = (), text: Sequence[str] = ()) -> bool:
    """Whether ``data`` is a mapping of the expected shape (a damaged store entry is refused, never used).

    ``required`` members must be non-empty strings, ``optional`` ones strings or absent, ``text`` ones strings.
    """
    if not isinstance(data, Mapping):
        return False
    return (
        all(isinstance(data.get(k), str) and data[k] for k in required)
        and all(data.get(k) is None or isinstance(data[k], str) for k in optional)
        and all(isinstance(data.get(k), str) for k in text)
    )


_HOW: Final = ("stored", "pre-registered", "metadata document", "dynamic")


@dataclass(frozen=True)
class ResourceMetadata:
    """RFC 9728 protected-resource metadata, as much of it as the client uses."""

    url: str
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None

    @classmethod
    def parse(cls, url: str, doc: Mapping[str, Any], server_url: str) -> ResourceMetadata:
        """Validate a document found at ``url`` for the MCP server at ``server_url``.

        Raises:
            MetadataError: A required member is missing or malformed.
            ResourceMismatchError: ``resource`` is not the server or a parent of it on its origin.
        """
        resource = doc.get("resource")
        if not isinstance(resource, str) or not resource:
            raise MetadataError(f"the protected-resource metadata at {url} has no 'resource'")
        servers = _strings(doc.get("authorization_servers"))
        if not servers:
            raise MetadataError(f"the protected-resource metadata at {url} lists no 'authorization_servers'")
        _check_endpoint(servers[0], "authorization server")  # RFC 8414 §2: an https issuer
        wanted = canonical_resource(server_url)
        named = canonical_resource(resource)
        same_origin = _origin(named) == _origin(wanted)
        base = urlsplit(named).path.rstrip("/")
        path = urlsplit(wanted).path
        if not same_origin or not (path == base or path.startswith(base + "/") or not base):
            raise ResourceMismatchError(
                f"the protected-resource metadata at {url} is for {resource!r}, not for {server_url!r}: "
                "the server must publish metadata whose 'resource' is its own URL (RFC 9728 §3.3)"
            )
        supported = doc.get("scopes_supported")
        scopes = _strings(supported) if isinstance(supported, list) else None
        return cls(url, resource, servers, scopes)


@dataclass(frozen=True)
class ServerMetadata:
    """RFC 8414 authorization-server metadata, as much of it as the client uses (``raw``: all of it)."""

    url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    revocation_endpoint: str | None
    scopes_supported: tuple[str, ...]
    token_endpoint_auth_methods: tuple[str, ...]
    client_id_metadata_document_supported: bool
    iss_parameter_supported: bool
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, url: str, doc: Mapping[str, Any], issuer: str) -> ServerMetadata:
        """Validate a document found at ``url`` for the issuer ``issuer``.

        Raises:
            IssuerMismatchError: The document's ``issuer`` is not ``issuer`` (RFC 8414 §3.3).
            MetadataError: An endpoint is missing or not https, or PKCE S256 is not offered.
        """
        named = doc.get("issuer")
        if named != issuer:
            raise IssuerMismatchError(
                f"the authorization-server metadata at {url} names issuer {named!r}, but it was found for "
                f"{issuer!r}: the server must publish its own issuer identifier (RFC 8414 §3.3)"
            )
        methods = _strings(doc.get("code_challenge_methods_supported"))
        if "S256" not in methods:
            raise MetadataError(
                f"the authorization server {issuer} does not list S256 in code_challenge_methods_supported "
                f"({list(methods) or 'absent'}); MCP requires PKCE with S256"
            )
        auth_methods = doc.get("token_endpoint_auth_methods_supported")
        return cls(
            url=url,
            issuer=issuer,
            authorization_endpoint=str(_check_endpoint(doc.get("authorization_endpoint"), "authorization_endpoint")),
            token_endpoint=str(_check_endpoint(doc.get("token_endpoint"), "token_endpoint")),
            registration_endpoint=_check_endpoint(
                doc.get("registration_endpoint"), "registration_endpoint", required=False
            ),
            revocation_endpoint=_check_endpoint(doc.get("revocation_endpoint"), "revocation_endpoint", required=False),
            scopes_supported=_strings(doc.get("scopes_supported")),
            # RFC 8414 §2: absent means client_secret_basic
            token_endpoint_auth_methods=_strings(auth_methods)
            if auth_methods is not None
            else ("client_secret_basic",),
            client_id_metadata_document_supported=doc.get("client_id_metadata_document_supported") is True,
            iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
            raw=dict(doc),
        )


# --- what the client holds --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """Who the client is, and what it wants (the shell's configuration; see :class:`~pyodide_transport.oauth.OAuth`).

    Args:
        redirect_uri: Where the authorization server sends the user back (the site's callback page).
        client_name: Shown on the consent page (registration and metadata document).
        client_id: A pre-registered client id (used with every authorization server).
        client_secret: Its secret, for a confidential pre-registered client.
        token_endpoint_auth_method: How the pre-registered client authenticates (default: the best offered).
        client_metadata_url: The URL of this client's metadata document (CIMD), used as ``client_id``
            by servers that support it.
        application_type: ``"web"`` (a hosted page) or ``"native"``, sent with dynamic registration.
        scope: Ask for exactly this scope instead of choosing one.
        offline_access: Ask for refresh tokens where the server offers ``offline_access``.
    """

    redirect_uri: str
    client_name: str = "pyodide-transport"
    client_id: str | None = None
    client_secret: str | None = None
    token_endpoint_auth_method: str | None = None
    client_metadata_url: str | None = None
    application_type: Literal["web", "native"] = "web"
    scope: str | None = None
    offline_access: bool = True


@dataclass(frozen=True)
class ClientRegistration:
    """Client credentials at one authorization server (never used with another: SEP-2352)."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    auth_method: str = "none"
    redirect_uri: str = ""
    how: Literal["stored", "pre-registered", "metadata document", "dynamic"] = "dynamic"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for a store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientRegistration | None:
        """Read :meth:`to_json`'s output back; ``None`` when it is not one."""
        if not _shaped(data, ("issuer", "client_id", "auth_method"), ("client_secret",), ("redirect_uri",)):
            return None
        how = data.get("how", "dynamic")
        if how not in _HOW:
            return None
        keys = ("issuer", "client_id", "client_secret", "auth_method", "redirect_uri")
        return cls(**{k: data[k] for k in keys if k in data}, how=how)


@dataclass(frozen=True)
class Tokens:
    """An access token and what the client needs to use, refresh and revoke it.

    Attributes:
        expires_at: When it expires (the shell's clock, seconds), or ``None`` if the server did not say.
        scope: The scope granted (the server's ``scope``, else the one requested).
        lifetime: The ``expires_in`` it came with (seconds), so a short-lived token is not
            refreshed before every request.
    """

    access_token: str
    token_type: str
    resource: str
    issuer: str
    token_endpoint: str
    client_id: str
    expires_at: float | None = None
    refresh_token: str | None = None
    scope: str | None = None
    revocation_endpoint: str | None = None
    lifetime: float | None = None

    def expired(self, now: float, leeway: float = 30.0) -> bool:
        """Whether it expires within ``leeway`` seconds of ``now`` (at most a quarter of its lifetime)."""
        if self.expires_at is None:
            return False
        if self.lifetime is not None and self.lifetime > 0:
            leeway = min(leeway, self.lifetime / 4)
        return now >= self.expires_at - leeway

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return f"Bearer {self.access_token}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for a store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tokens | None:
        """Read :meth:`to_json`'s output back; ``None`` when it is not one."""
        required = ("access_token", "token_type", "resource", "issuer", "token_endpoint", "client_id")
        if not _shaped(data, required, ("refresh_token", "scope", "revocation_endpoint")):
            return None
        for number in (data.get("expires_at"), data.get("lifetime")):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
                return None
        try:
            return cls(**dict(data))
        except TypeError:
            return None


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization the user has yet to finish: all the flow needs to resume it after a page load.

    It holds the PKCE verifier: keep it in ``sessionStorage`` (per tab), never ``localStorage``.
    """

    server_url: str
    resource: str
    state: str
    code_verifier: str
    scope: str | None
    redirect_uri: str
    registration: dict[str, Any]
    server_metadata: dict[str, Any]
    metadata_url: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for a store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingAuthorization | None:
        """Read :meth:`to_json`'s output back; ``None`` when it is not one."""
        required = ("server_url", "resource", "state", "code_verifier", "redirect_uri")
        if not _shaped(data, required, ("scope",), ("metadata_url",)):
            return None
        if not isinstance(data.get("registration"), dict) or not isinstance(data.get("server_metadata"), dict):
            return None
        try:
            return cls(**dict(data))
        except TypeError:
            return None


# --- actions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HTTPAction:
    """Perform this request and feed the answer back (``purpose`` names it in traces and errors)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    purpose: str


@dataclass(frozen=True)
class OpenAuthorization:
    """Send the user to ``url`` (a popup or a redirect); feed back the URL they come back to.

    Attributes:
        pending: What resuming needs after a full-page redirect (store it until the callback).
        scope: The scope asked for.
        reason: ``"sign-in"``, ``"expired"`` (a refresh failed) or ``"step-up"`` (more scope needed).
    """

    url: str
    pending: PendingAuthorization
    scope: str | None
    reason: Literal["sign-in", "expired", "step-up"]


@dataclass(frozen=True)
class Authorized:
    """Done: use ``tokens``; store ``registration`` for its issuer."""

    tokens: Tokens
    registration: ClientRegistration


Action: TypeAlias = HTTPAction | OpenAuthorization | Authorized


FlowState: TypeAlias = Literal[
    "resource_metadata", "server_metadata", "refresh", "register", "authorize", "token", "done", "failed"
]

FLOW_TRANSITIONS: Final[frozenset[tuple[FlowState, FlowState]]] = frozenset(
    {
        ("resource_metadata", "server_metadata"),
        ("server_metadata", "refresh"),  # a refresh token from this issuer
        ("server_metadata", "register"),  # dynamic registration
        ("server_metadata", "authorize"),  # credentials held, pre-registered or a metadata document
        ("refresh", "done"),
        ("refresh", "register"),  # refused, and the client must register again
        ("refresh", "authorize"),  # refused: a new authorization
        ("register", "authorize"),
        ("authorize", "token"),
        ("token", "done"),
        *(
            (state, "failed")
            for state in ("resource_metadata", "server_metadata", "refresh", "register", "authorize", "token")
        ),
    }
)
"""Every state change a flow may make; anything else is a bug (LocalProtocolError)."""


def _basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-encode both, then Base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def _client_auth(registration: ClientRegistration, form: dict[str, str]) -> dict[str, str]:
    """Authenticate at the token endpoint the registered way: returns headers, fills ``form``."""
    headers = {"Content-Type": FORM, **JSON_ACCEPT}
    secret = registration.client_secret
    if registration.auth_method == "client_secret_basic" and secret:
        headers["Authorization"] = _basic(registration.client_id, secret)
    else:
        form["client_id"] = registration.client_id
        if registration.auth_method == "client_secret_post" and secret:
            form["client_secret"] = secret
    return headers


def _auth_method(offered: Sequence[str], has_secret: bool) -> str:
    """The token-endpoint authentication to use for the credentials held, from what the server offers."""
    if has_secret:
        for method in ("client_secret_basic", "client_secret_post"):
            if method in offered:
                return method
        return "client_secret_basic" if not offered else offered[0] if offered[0] != "none" else "client_secret_post"
    return "none"


def token_response(status: int, body: bytes, *, now: float, base: Tokens, requested_scope: str | None) -> Tokens:
    """Read a token endpoint answer into :class:`Tokens` (``base`` gives what the answer does not).

    Raises:
        TokenError: The server refused (RFC 6749 §5.2), or the answer is not a Bearer token.
    """
    doc = _json_object(body)
    if status != 200 or doc is None:
        error = doc.get("error") if doc else None
        description = doc.get("error_description") if doc else None
        return _raise_token_error(status, error, description, body)
    token = doc.get("access_token")
    kind = doc.get("token_type")
    if not isinstance(token, str) or not token:
        raise TokenError(status, "", "the answer has no access_token")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise TokenError(status, "", f"token_type {kind!r} is not Bearer (the only type this client sends)")
    lifetime = doc.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) else None
    expires = now + seconds if seconds is not None else None
    refresh = doc.get("refresh_token")
    scope = doc.get("scope")
    return replace(
        base,
        access_token=token,
        token_type="Bearer",
        expires_at=expires,
        lifetime=seconds,
        refresh_token=refresh if isinstance(refresh, str) and refresh else base.refresh_token,
        scope=scope if isinstance(scope, str) else requested_scope,
    )


def _raise_token_error(status: int, error: object, description: object, body: bytes) -> Tokens:
    text = description if isinstance(description, str) else body.decode("utf-8", "replace")[:200]
    raise TokenError(status, error if isinstance(error, str) else "", text)


def registration_of(
    tokens: Tokens, settings: ClientSettings, stored: ClientRegistration | None
) -> ClientRegistration | None:
    """The credentials ``tokens`` were issued to: the stored registration, the pre-registered or the CIMD id."""
    if stored is not None and stored.client_id == tokens.client_id and stored.issuer == tokens.issuer:
        return stored
    if settings.client_id and settings.client_id == tokens.client_id:
        method = settings.token_endpoint_auth_method or ("client_secret_basic" if settings.client_secret else "none")
        return ClientRegistration(
            tokens.issuer, settings.client_id, settings.client_secret, method, settings.redirect_uri, "pre-registered"
        )
    if settings.client_metadata_url and settings.client_metadata_url == tokens.client_id:
        return ClientRegistration(
            tokens.issuer, tokens.client_id, None, "none", settings.redirect_uri, "metadata document"
        )
    return None


def refresh_action(tokens: Tokens, registration: ClientRegistration) -> HTTPAction:
    """The token request that refreshes ``tokens`` (needs a refresh token)."""
    if not tokens.refresh_token:
        raise LocalProtocolError("these tokens have no refresh token")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "resource": tokens.resource}
    headers = _client_auth(registration, form)
    return HTTPAction("POST", tokens.token_endpoint, headers, urlencode(form).encode(), "token refresh")


def revocation_action(tokens: Tokens, registration: ClientRegistration) -> HTTPAction | None:
    """The RFC 7009 request revoking ``tokens`` (the refresh token if any), or ``None`` without an endpoint."""
    if not tokens.revocation_endpoint:
        return None
    token, hint = (
        (tokens.refresh_token, "refresh_token") if tokens.refresh_token else (tokens.access_token, "access_token")
    )
    form = {"token": token, "token_type_hint": hint}
    headers = _client_auth(registration, form)
    return HTTPAction("POST", tokens.revocation_endpoint, headers, urlencode(form).encode(), "token revocation")


# --- the flow ---------------------------------------------------------------------------------------


class AuthorizationFlow:
    """One authorization, from a challenge to tokens (see the module docstring).

    Args:
        settings: Who the client is.
        server_url: The MCP endpoint that answered 401/403.
        challenge: Its ``Bearer`` challenge (``None``: the response had no readable one).
        status: 401 or 403.
        previous: The tokens the refused request carried, if any (refresh, scope union).
        registrations: Looks up the credentials stored for an issuer.
        now: The shell's clock (seconds).
        random: ``random(n)`` returns ``n`` cryptographically random bytes.

    Attributes:
        state: Where the flow is (:data:`FLOW_TRANSITIONS`).
        attempts: Each discovery URL tried and what it answered, for errors and traces.
        resource_metadata: The protected-resource metadata, once found.
        server_metadata: The authorization-server metadata, once found.
    """

    def __init__(
        self,
        settings: ClientSettings,
        server_url: str,
        *,
        challenge: Challenge | None,
        status: int = 401,
        previous: Tokens | None = None,
        registrations: Callable[[str], ClientRegistration | None] | None = None,
        now: float,
        random: Callable[[int], bytes],
    ) -> None:
        self.settings = settings
        self.server_url = server_url
        self.challenge = challenge
        self.status = status
        self.previous = previous
        self._stored = registrations or (lambda issuer: None)
        self.now = now
        self._random = random
        self.state: FlowState = "resource_metadata"
        self.attempts: list[tuple[str, str]] = []
        self.resource_metadata: ResourceMetadata | None = None
        self.server_metadata: ServerMetadata | None = None
        self.registration: ClientRegistration | None = None
        self.scope: str | None = None
        self._candidates = protected_resource_urls(server_url, challenge)
        self._cors_blocked = False
        self._pending: PendingAuthorization | None = None
        self._action: HTTPAction | None = None

    @classmethod
    def resume(
        cls, settings: ClientSettings, pending: PendingAuthorization, *, now: float, random: Callable[[int], bytes]
    ) -> AuthorizationFlow:
        """A flow waiting for the redirect of ``pending`` (after a full-page redirect)."""
        flow = cls(settings, pending.server_url, challenge=None, now=now, random=random)
        registration = ClientRegistration.from_json(pending.registration)
        if registration is None:
            raise AuthorizationResponseError("the stored sign-in is damaged; sign in again")
        flow.registration = registration
        flow.server_metadata = ServerMetadata.parse(pending.metadata_url, pending.server_metadata, registration.issuer)
        flow.scope = pending.scope
        flow._pending = pending
        flow.state = "authorize"
        return flow

    # -- verbs ----------------------------------------------------------------------------------

    def start(self) -> Action:
        """The first action: fetch the first protected-resource metadata candidate."""
        return self._next_resource_candidate()

    def receive_response(self, status: int, headers: Mapping[str, str], body: bytes) -> Action:
        """The answer to the last :class:`HTTPAction`."""
        action = self._expect_http()
        if self.state == "resource_metadata":
            return self._on_resource_metadata(action.url, status, body)
        if self.state == "server_metadata":
            return self._on_server_metadata(action.url, status, body)
        if self.state == "register":
            return self._on_registration(status, body)
        if self.state == "refresh":
            return self._on_refresh(status, body)
        return self._on_token(status, body)

    def receive_network_error(self, error: TransportError) -> Action:
        """The last :class:`HTTPAction` got no response (``CORSError`` in a browser: its CORS is wrong)."""
        action = self._expect_http()
        blocked = isinstance(error, CORSError)
        if self.state in ("resource_metadata", "server_metadata"):
            self._cors_blocked |= blocked
            self.attempts.append((action.url, "blocked (CORS)" if blocked else f"no response ({error})"))
            if self.state == "resource_metadata":
                return self._next_resource_candidate()
            return self._next_server_candidate()
        cors = " (blocked by CORS: the server must allow this page's origin there)" if blocked else ""
        self._go("failed")
        raise AuthorizationError(f"the {action.purpose} request to {action.url} failed{cors}: {error}")

    def receive_redirect(self, url: str) -> Action:
        """The URL the user came back to from the authorization server.

        Raises:
            AuthorizationResponseError: Not our redirect URI, wrong ``state``, or no ``code``.
            IssuerMismatchError: ``iss`` missing (when advertised) or not the issuer.
            AuthorizationDeniedError: The server sent an error (``access_denied``: the user refused).
        """
        if self.state != "authorize" or self._pending is None or self.server_metadata is None:
            raise LocalProtocolError(f"no authorization is waiting for a redirect (state {self.state})")
        pending = self._pending
        try:
            params = self._redirect_params(url, pending)
        except AuthorizationError:
            self._go("failed")
            raise
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
            "resource": pending.resource,
        }
        assert self.registration is not None
        headers = _client_auth(self.registration, form)
        self._go("token")
        return self._http("POST", self.server_metadata.token_endpoint, headers, urlencode(form).encode(), "token")

    # -- discovery ------------------------------------------------------------------------------

    def _next_resource_candidate(self) -> Action:
        if self._candidates:
            return self._http("GET", self._candidates.pop(0), JSON_ACCEPT, None, "resource metadata")
        self._go("failed")
        if self._cors_blocked:
            raise DiscoveryCORSError(
                f"no protected-resource metadata for {self.server_url}: the browser blocked the request; the "
                "server must send Access-Control-Allow-Origin on its .well-known metadata",
                tuple(self.attempts),
            )
        if self.challenge is None:
            raise ChallengeNotExposedError(
                f"{self.server_url} answered {self.status} without a readable WWW-Authenticate header and serves "
                "no protected-resource metadata at the well-known URLs; the server must send "
                "'WWW-Authenticate: Bearer resource_metadata=...' and list WWW-Authenticate in "
                "Access-Control-Expose-Headers (a browser hides it otherwise)",
                tuple(self.attempts),
            )
        raise DiscoveryError(
            f"no protected-resource metadata (RFC 9728) for {self.server_url}; the server must serve it",
            tuple(self.attempts),
        )

    def _on_resource_metadata(self, url: str, status: int, body: bytes) -> Action:
        doc = _json_object(body) if status == 200 else None
        if doc is None:
            self.attempts.append((url, f"HTTP {status}" if status != 200 else "not a JSON object"))
            return self._next_resource_candidate()
        self.attempts.append((url, "found"))
        try:
            self.resource_metadata = ResourceMetadata.parse(url, doc, self.server_url)
        except AuthorizationError:
            self._go("failed")
            raise
        self._go("server_metadata")
        self._issuer = self.resource_metadata.authorization_servers[0]
        self._candidates = authorization_server_urls(self._issuer)
        return self._next_server_candidate()

    def _next_server_candidate(self) -> Action:
        if self._candidates:
            return self._http("GET", self._candidates.pop(0), JSON_ACCEPT, None, "authorization server metadata")
        self._go("failed")
        kind = DiscoveryCORSError if self._cors_blocked else DiscoveryError
        raise kind(
            f"no metadata for the authorization server {self._issuer} (RFC 8414 / OpenID discovery)"
            + (
                "; the browser blocked a request: the server must send CORS headers on it" if self._cors_blocked else ""
            ),
            tuple(self.attempts),
        )

    def _on_server_metadata(self, url: str, status: int, body: bytes) -> Action:
        doc = _json_object(body) if status == 200 else None
        if doc is None:
            self.attempts.append((url, f"HTTP {status}" if status != 200 else "not a JSON object"))
            return self._next_server_candidate()
        self.attempts.append((url, "found"))
        try:
            meta = self.server_metadata = ServerMetadata.parse(url, doc, self._issuer)
        except AuthorizationError:
            self._go("failed")
            raise
        self.scope = self._choose_scope(meta)
        previous = self.previous
        held = self._stored(meta.issuer)
        if previous is not None and previous.refresh_token and previous.issuer == meta.issuer and self.status == 401:
            registration = registration_of(previous, self.settings, held)
            if registration is not None:
                self.registration = registration
                self._go("refresh")
                action = refresh_action(replace(previous, token_endpoint=meta.token_endpoint), registration)
                return self._http(action.method, action.url, action.headers, action.body, action.purpose)
        return self._register_or_authorize(meta, held)

    def _choose_scope(self, meta: ServerMetadata) -> str | None:
        if self.settings.scope is not None:
            return self.settings.scope or None
        challenged = _scopes(self.challenge.scope if self.challenge else None)
        assert self.resource_metadata is not None
        base = _union(challenged or self.resource_metadata.scopes_supported or ())
        if self.previous is not None:
            base = _union(_scopes(self.previous.scope), base)  # SEP-2350: never lose what was granted
        if base and self.settings.offline_access and "offline_access" in meta.scopes_supported:
            base = _union(base, ["offline_access"])
        return " ".join(base) or None

    # -- registration -----------------------------------------------------------------------------

    def _register_or_authorize(self, meta: ServerMetadata, held: ClientRegistration | None) -> Action:
        settings = self.settings
        if held is not None:
            self.registration = held
        elif settings.client_id:
            method = settings.token_endpoint_auth_method or _auth_method(
                meta.token_endpoint_auth_methods, bool(settings.client_secret)
            )
            self.registration = ClientRegistration(
                meta.issuer, settings.client_id, settings.client_secret, method, settings.redirect_uri, "pre-registered"
            )
        elif settings.client_metadata_url and meta.client_id_metadata_document_supported:
            self.registration = ClientRegistration(
                meta.issuer, settings.client_metadata_url, None, "none", settings.redirect_uri, "metadata document"
            )
        elif meta.registration_endpoint:
            self._go("register")
            body = json.dumps(self._registration_request(meta)).encode()
            headers = {"Content-Type": "application/json", **JSON_ACCEPT}
            return self._http("POST", meta.registration_endpoint, headers, body, "client registration")
        else:
            self._go("failed")
            offers = "a Client ID Metadata Document" if meta.client_id_metadata_document_supported else None
            hint = f"it supports {offers}: pass client_metadata_url=" if offers else "pass client_id= (pre-register)"
            raise RegistrationError(
                f"no way to register with {meta.issuer}: it has no registration_endpoint and this client has no "
                f"pre-registered client_id; {hint}"
            )
        return self._authorize()

    def _registration_request(self, meta: ServerMetadata) -> dict[str, Any]:
        settings = self.settings
        offered = meta.token_endpoint_auth_methods
        method = "none" if "none" in offered else _auth_method(offered, True)
        request: dict[str, Any] = {
            "client_name": settings.client_name,
            "redirect_uris": [settings.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": settings.application_type,
        }
        if self.scope:
            request["scope"] = self.scope
        return request

    def _on_registration(self, status: int, body: bytes) -> Action:
        meta = self.server_metadata
        assert meta is not None
        doc = _json_object(body)
        client_id = doc.get("client_id") if doc else None
        if status not in (200, 201) or doc is None or not isinstance(client_id, str) or not client_id:
            self._go("failed")
            error = doc.get("error") if doc else None
            detail = doc.get("error_description") if doc else body.decode("utf-8", "replace")[:200]
            raise RegistrationError(
                f"dynamic client registration at {meta.registration_endpoint} failed (HTTP {status}"
                + (f", {error!r}" if isinstance(error, str) else "")
                + f"): {detail or 'no client_id in the answer'}"
            )
        secret = doc.get("client_secret")
        secret = secret if isinstance(secret, str) and secret else None
        method = doc.get("token_endpoint_auth_method")
        if not isinstance(method, str):
            method = _auth_method(meta.token_endpoint_auth_methods, secret is not None)
        self.registration = ClientRegistration(
            meta.issuer, client_id, secret, method, self.settings.redirect_uri, "dynamic"
        )
        return self._authorize()

    # -- authorization -------------------------------------------------------------------------------

    def _authorize(self) -> Action:
        meta, registration, resource = self.server_metadata, self.registration, self.resource_metadata
        assert meta is not None and registration is not None and resource is not None
        self._go("authorize")
        verifier = _b64url(self._random(32))
        state = _b64url(self._random(16))
        params = {
            "response_type": "code",
            "client_id": registration.client_id,
            "redirect_uri": registration.redirect_uri or self.settings.redirect_uri,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            "state": state,
        }
        if self.scope:
            params["scope"] = self.scope
        params["resource"] = resource.resource
        self._pending = PendingAuthorization(
            server_url=self.server_url,
            resource=resource.resource,
            state=state,
            code_verifier=verifier,
            scope=self.scope,
            redirect_uri=params["redirect_uri"],
            registration=registration.to_json(),
            server_metadata=dict(meta.raw),
            metadata_url=meta.url,
        )
        reason: Literal["sign-in", "expired", "step-up"] = "sign-in"
        if self.status == 403:
            reason = "step-up"
        elif self.previous is not None:
            reason = "expired"
        url = _with_query(meta.authorization_endpoint, params)
        return OpenAuthorization(url, self._pending, self.scope, reason)

    def _redirect_params(self, url: str, pending: PendingAuthorization) -> dict[str, str]:
        meta = self.server_metadata
        assert meta is not None
        got, want = urlsplit(url), urlsplit(pending.redirect_uri)
        if (got.scheme.lower(), got.netloc.lower(), got.path) != (want.scheme.lower(), want.netloc.lower(), want.path):
            raise AuthorizationResponseError(
                f"the sign-in came back to {urlunsplit(got._replace(query='', fragment=''))!r}, not to this "
                f"client's redirect URI {pending.redirect_uri!r}; refusing it"
            )
        pairs = parse_qsl(got.query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        if any(names.count(name) > 1 for name in ("code", "state", "iss", "error")):
            raise AuthorizationResponseError(
                "the redirect repeats a parameter (code, state, iss or error); refusing it"
            )
        params = dict(pairs)
        if params.get("state") != pending.state:
            raise AuthorizationResponseError(
                "the redirect's state does not match this sign-in (a stale or forged response); sign in again"
            )
        iss = params.get("iss")
        if iss is not None and iss != meta.issuer:
            raise IssuerMismatchError(
                f"the redirect's iss {iss!r} is not the authorization server {meta.issuer!r} (RFC 9207): "
                "possibly a mix-up attack; refusing it"
            )
        if iss is None and meta.iss_parameter_supported:
            raise IssuerMismatchError(
                f"{meta.issuer} advertises authorization_response_iss_parameter_supported but its redirect has no "
                "iss (RFC 9207); refusing it"
            )
        if "error" in params:
            raise AuthorizationDeniedError(params["error"], params.get("error_description", ""))
        if not params.get("code"):
            raise AuthorizationResponseError("the redirect carries neither a code nor an error")
        return params

    def _base_tokens(self) -> Tokens:
        meta, registration = self.server_metadata, self.registration
        assert meta is not None and registration is not None
        resource = self.resource_metadata.resource if self.resource_metadata else (self._pending or _NO).resource
        return Tokens(
            access_token="",
            token_type="Bearer",
            resource=resource,
            issuer=meta.issuer,
            token_endpoint=meta.token_endpoint,
            client_id=registration.client_id,
            revocation_endpoint=meta.revocation_endpoint,
        )

    def _on_token(self, status: int, body: bytes) -> Action:
        try:
            tokens = token_response(status, body, now=self.now, base=self._base_tokens(), requested_scope=self.scope)
        except TokenError:
            self._go("failed")
            raise
        self._go("done")
        assert self.registration is not None
        return Authorized(tokens, self.registration)

    def _on_refresh(self, status: int, body: bytes) -> Action:
        assert self.previous is not None and self.server_metadata is not None
        base = replace(self._base_tokens(), refresh_token=self.previous.refresh_token)
        try:
            tokens = token_response(status, body, now=self.now, base=base, requested_scope=self.previous.scope)
        except TokenError as exc:
            if exc.error == "invalid_client":  # the registration is gone: register again
                return self._register_or_authorize(self.server_metadata, None)
            return self._register_or_authorize(self.server_metadata, self.registration)
        self._go("done")
        assert self.registration is not None
        return Authorized(tokens, self.registration)

    # -- internals -----------------------------------------------------------------------------------

    def _http(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, purpose: str) -> HTTPAction:
        self._action = HTTPAction(method, url, dict(headers), body, purpose)
        return self._action

    def _expect_http(self) -> HTTPAction:
        action, self._action = self._action, None
        if action is None or self.state in ("authorize", "done", "failed"):
            raise LocalProtocolError(f"the flow is not waiting for an HTTP answer (state {self.state})")
        return action

    def _go(self, state: FlowState) -> None:
        if (self.state, state) not in FLOW_TRANSITIONS:
            raise LocalProtocolError(f"authorization flow: no transition {self.state} -> {state}")
        self.state = state


_NO = PendingAuthorization("", "", "", "", None, "", {}, {}, "")
