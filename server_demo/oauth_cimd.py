"""Client ID Metadata Documents: a client whose ``client_id`` is a URL describes itself in a JSON document there.

The authorization server fetches the document (https, or http on a loopback host for this
offline demo), with a short timeout, a size cap and no redirects, and accepts it only when
the document's own ``client_id`` is the URL it came from. Such clients are public (PKCE, no
secret). Fetching from this very server works: the fetch is async, so uvicorn serves it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from .oauth_store import OAuthClient, is_loopback_host, redirect_uri_problem

__all__ = [
    "DEFAULT_DOCUMENT_MAX_BYTES",
    "ClientDocumentError",
    "client_from_document",
    "document_url_problem",
    "fetch_client_document",
    "looks_like_document_url",
]

DEFAULT_DOCUMENT_MAX_BYTES: Final = 64 * 1024
"""Larger documents are refused."""

_GRANTS: Final = frozenset({"authorization_code", "refresh_token"})


class ClientDocumentError(Exception):
    """The metadata document could not be fetched or is not acceptable (the message says why)."""


def looks_like_document_url(client_id: str | None) -> bool:
    """Whether a ``client_id`` is meant as a metadata document URL (starts with https:// or http://)."""
    return bool(client_id) and str(client_id).lower().startswith(("https://", "http://"))


def document_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a metadata document URL, or None.

    https with a path, or http on a loopback host; no credentials, no fragment, no dot segments.
    """
    if not url.isascii() or any(c.isspace() for c in url):
        return "the client_id URL must be ASCII without spaces"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return "the client_id is not a valid URL"
    if not parts.hostname:
        return "the client_id URL has no host"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "a client_id URL must use https (plain http only on a loopback host)"
    if parts.scheme not in ("https", "http"):
        return "a client_id URL must use https"
    if parts.username is not None or parts.password is not None:
        return "the client_id URL must not carry credentials"
    if parts.fragment or "#" in url:
        return "the client_id URL must not have a fragment"
    if parts.path in ("", "/"):
        return "the client_id URL must have a path"
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return "the client_id URL must not contain dot segments"
    return None


async def fetch_client_document(
    url: str,
    *,
    time_limit: float,
    max_bytes: int = DEFAULT_DOCUMENT_MAX_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """GET the document at ``url``: 200, at most ``max_bytes``, a JSON object; redirects are not followed.

    ``time_limit`` bounds the whole fetch (connect, headers and body), in seconds.

    Raises:
        ClientDocumentError: Anything else (network error, status, size, not JSON).
    """
    problem = document_url_problem(url)
    if problem is not None:
        raise ClientDocumentError(problem)
    try:
        async with asyncio.timeout(time_limit):
            return await _fetch(url, time_limit, max_bytes, transport)
    except TimeoutError:
        raise ClientDocumentError(f"fetching the client metadata document took longer than {time_limit} s") from None


async def _fetch(
    url: str, time_limit: float, max_bytes: int, transport: httpx.AsyncBaseTransport | None
) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    try:
        async with (
            httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(time_limit), follow_redirects=False, trust_env=False
            ) as http,
            http.stream("GET", url, headers={"Accept": "application/json", "Accept-Encoding": "identity"}) as response,
        ):
            if response.status_code != 200:
                raise ClientDocumentError(f"fetching the client metadata document gave HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ClientDocumentError(f"the client metadata document is larger than {max_bytes} bytes")
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ClientDocumentError(f"the client metadata document is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ClientDocumentError(f"could not fetch the client metadata document ({type(exc).__name__})") from None
    try:
        document = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise ClientDocumentError("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise ClientDocumentError("the client metadata document is not a JSON object")
    return document


def client_from_document(url: str, document: dict[str, Any]) -> OAuthClient:
    """The public client a fetched document describes.

    Raises:
        ClientDocumentError: ``client_id`` differs from ``url``, a secret is present, or a field is invalid.
    """
    if document.get("client_id") != url:
        raise ClientDocumentError("the document's client_id is not the URL it was fetched from")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientDocumentError("a client metadata document must not contain a client secret")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientDocumentError("a metadata-document client must use token_endpoint_auth_method none")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise ClientDocumentError("the document must list its redirect_uris")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            raise ClientDocumentError(f"redirect_uris: {problem}")
    grants = document.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants) or not set(grants) <= _GRANTS:
        raise ClientDocumentError("grant_types may only contain authorization_code and refresh_token")
    if "authorization_code" not in grants:
        raise ClientDocumentError("grant_types must include authorization_code")
    responses = document.get("response_types", ["code"])
    if responses != ["code"]:
        raise ClientDocumentError('response_types must be ["code"]')
    name = document.get("client_name")
    if name is not None and not isinstance(name, str):
        raise ClientDocumentError("client_name must be a string")
    scope = document.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise ClientDocumentError("scope must be a space-separated string")
    app_type = document.get("application_type", "web")
    if app_type not in ("web", "native"):
        raise ClientDocumentError("application_type must be web or native")
    return OAuthClient(
        client_id=url,
        redirect_uris=tuple(uris),
        client_name=name[:200] if name else None,
        grant_types=tuple(dict.fromkeys(grants)),
        token_endpoint_auth_method="none",
        scope=scope,
        application_type=app_type,
        kind="metadata-document",
    )
