"""The bearer check of the protected MCP endpoint (RFC 6750, RFC 9728 challenges, MCP step-up).

:class:`BearerGuard` wraps a Streamable HTTP endpoint (the demo mounts one at ``/mcp/protected``
that serves the same core as ``/mcp``: same tools, both protocol eras, same Host, Origin and
CORS rules) and lets a request through only with ``Authorization: Bearer <token>``, a token
the :class:`~server_demo.oauth.OAuthProvider` issued for ``<origin>/mcp/protected``:

* no token (or another scheme): 401, ``WWW-Authenticate: Bearer resource_metadata="…", scope="…"``;
* a token that is unknown, revoked, expired or for another resource: 401 with
  ``error="invalid_token"`` and an ``error_description``;
* a ``tools/call`` of a tool in :attr:`~server_demo.oauth.OAuthConfig.tool_scopes` without that
  scope: 403 ``error="insufficient_scope"`` naming every scope the call needs (step-up).

Challenges carry the CORS headers (``WWW-Authenticate`` is exposed) so a page can read them.
Preflights pass without a token. A token in the query string is never looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from authlib.oauth2.rfc6750 import InsufficientScopeError, InvalidTokenError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import SecurityConfig
from .http import read_body
from .http_rules import Rejection, check_security, cors_headers
from .oauth import OAuthProvider, request_origin
from .oauth_store import Token, scope_list

__all__ = ["BearerGuard", "bearer_challenge", "scopes_needed"]

_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_QUOTE_UNSAFE: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def bearer_challenge(
    resource_metadata: str,
    scope: str | None,
    error: str | None = None,
    description: str | None = None,
) -> str:
    """A ``WWW-Authenticate`` value: ``Bearer`` and the parameters that are set, quoted (unsafe characters: ``?``).

    ``description`` is only sent with an ``error`` (RFC 6750 §3: no error code when no token was sent).
    """
    params = [("error", error), ("error_description", description if error else None)]
    params.append(("resource_metadata", resource_metadata))
    params.append(("scope", scope))
    parts = [f'{name}="{_QUOTE_UNSAFE.sub("?", value)}"' for name, value in params if value]
    return "Bearer " + ", ".join(parts)


def scopes_needed(body: bytes, tool_scopes: Mapping[str, str]) -> list[str]:
    """The extra scopes the ``tools/call`` requests in a POST body need (empty when it is not JSON or calls none)."""
    if not tool_scopes:
        return []
    try:
        parsed: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []  # the endpoint answers the parse error
    messages = parsed if isinstance(parsed, list) else [parsed]
    needed: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            continue
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if isinstance(name, str) and name in tool_scopes:
            needed.extend(scope_list(tool_scopes[name]))
    return list(dict.fromkeys(needed))


class BearerGuard:
    """ASGI wrapper: the wrapped endpoint, for requests with a valid access token only.

    Args:
        app: The MCP endpoint (it keeps answering preflights and applying its own rules).
        provider: The authorization server whose tokens are accepted (its config names the scopes).
        security: Host and Origin rules (the endpoint's), applied before the token check.
        max_body_bytes: The endpoint's POST body limit (the guard reads the body to see which tool is called).
    """

    def __init__(self, app: ASGIApp, provider: OAuthProvider, security: SecurityConfig, max_body_bytes: int) -> None:
        self.app = app
        self.provider = provider
        self.security = security
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's token, then hand it (its body replayed) to the endpoint."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        rejected = check_security(headers.get("host"), origin, self.security)
        if rejected is not None or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # the endpoint answers both (403, preflight) the same way
            return
        cors = cors_headers(origin, self.security)
        own = request_origin(scope)
        config = self.provider.config
        required = scope_list(config.required_scope)
        values = headers.getlist("authorization")
        scheme, _, token_string = (values[0] if values else "").strip().partition(" ")
        if scheme.lower() != "bearer":
            await self._challenge(send, cors, own, 401, required, None, "This endpoint needs an OAuth access token")
            return
        token_string = token_string.strip()
        if len(values) > 1 or not _TOKEN_RE.match(token_string):
            await self._challenge(
                send, cors, own, 401, required, "invalid_token", "The Authorization header is not 'Bearer <token>'"
            )
            return
        token = await self._check(send, cors, own, token_string, required)
        if token is None:
            return
        replay = receive
        if scope["method"] == "POST":
            body = await read_body(headers, receive, self.max_body_bytes)
            if isinstance(body, Rejection):
                await _send(send, body.status, body.body(), {**cors, "Content-Type": body.media_type})
                return
            extra = [s for s in scopes_needed(body, config.tool_scopes) if s not in required]
            if extra:
                needed = [*required, *extra]
                if await self._check(send, cors, own, token_string, needed) is None:
                    return
            replay = _replaying(body, receive)
        state = dict(scope.get("state") or {})
        state["oauth_token"] = token
        await self.app({**scope, "state": state}, replay, send)

    async def _check(
        self, send: Send, cors: dict[str, str], origin: str, token_string: str, scopes: list[str]
    ) -> Token | None:
        """The token when it grants ``scopes`` on this resource; otherwise the challenge is sent and None returned."""
        try:
            return self.provider.check_access_token(token_string, self.provider.resource_url(origin), scopes)
        except InsufficientScopeError:
            description = f"This request needs the scopes: {' '.join(scopes)}"
            await self._challenge(send, cors, origin, 403, scopes, "insufficient_scope", description)
        except InvalidTokenError as error:
            description = str(error.description or "The access token is not valid")
            required = scope_list(self.provider.config.required_scope)
            await self._challenge(send, cors, origin, 401, required, "invalid_token", description)
        return None

    async def _challenge(
        self,
        send: Send,
        cors: Mapping[str, str],
        origin: str,
        status: int,
        scopes: Iterable[str],
        error: str | None,
        description: str,
    ) -> None:
        scope = " ".join(scopes) or None
        challenge = bearer_challenge(self.provider.resource_metadata_url(origin), scope, error, description)
        body = json.dumps({"error": error or "unauthorized", "error_description": description}).encode()
        headers = {
            **cors,
            "WWW-Authenticate": challenge,
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
        }
        await _send(send, status, body, headers)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the connection says next (e.g. the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
