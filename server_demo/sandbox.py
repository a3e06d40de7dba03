"""The MCP Apps sandbox proxy: ``sandbox.html`` on a second origin, with the app's CSP as an HTTP header.

A web host must render an MCP App (SEP-1865) inside a sandbox proxy iframe whose origin differs from
the host's. ``python -m server_demo`` serves this small app on a second loopback port
(``--sandbox-port``); the explorer learns its URL from ``GET /apps/sandbox.json`` on the main port.

``GET /sandbox.html?csp=JSON&parent=ORIGIN`` answers the page of ``site/sandbox/`` with a
``Content-Security-Policy`` header built by :func:`build_csp` from ``csp`` (the resource's
``_meta.ui.csp``, checked by :func:`validate_csp`; absent: the spec's restrictive default). The app's
``srcdoc`` iframe inherits that policy; ``sandbox.js`` also writes it as a ``<meta http-equiv>`` into
the app's HTML, so a static copy of the page (no server to send headers) enforces it too. Bad input
gets a 400 with a plain-text reason.

This module's CSP part is pure (no I/O); :func:`create_sandbox_app` is the Starlette app.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pyodide_transport.apps import build_csp, validate_csp
from pyodide_transport.errors import RemoteProtocolError

__all__ = ["SANDBOX_SOURCE", "create_sandbox_app", "parse_csp_query", "sandbox_dir"]

SANDBOX_SOURCE = Path(__file__).resolve().parent.parent / "site" / "sandbox"
"""The page's sources in the repository (the built site has a copy in ``dist/sandbox/``)."""


def parse_csp_query(text: str | None) -> dict[str, list[str]] | None:
    """The ``csp`` query parameter (JSON of ``_meta.ui.csp``; absent, empty or ``null``: the default).

    Raises:
        RemoteProtocolError: Not JSON, or not a valid CSP object.
    """
    if text is None or not text.strip():
        return None
    if len(text) > 16_384:
        raise RemoteProtocolError("the csp parameter is too long")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise RemoteProtocolError(f"the csp parameter is not JSON: {exc}") from None
    return validate_csp(raw)


def sandbox_dir(site_dir: Path | None) -> Path:
    """Where the page's files are: ``SITE/sandbox`` if the served site has them, else the sources."""
    if site_dir is not None and (site_dir / "sandbox" / "sandbox.html").is_file():
        return site_dir / "sandbox"
    return SANDBOX_SOURCE


_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def create_sandbox_app(site_dir: Path | None = None) -> Starlette:
    """The sandbox proxy's origin: ``/sandbox.html`` (with the CSP header) and ``/sandbox.js``."""
    folder = sandbox_dir(site_dir)

    async def page(request: Request) -> Response:
        try:
            csp = parse_csp_query(request.query_params.get("csp"))
        except RemoteProtocolError as exc:
            return PlainTextResponse(f"Bad csp parameter: {exc}\n", status_code=400, headers=_COMMON_HEADERS)
        html = (folder / "sandbox.html").read_bytes()
        headers = {**_COMMON_HEADERS, "Content-Security-Policy": build_csp(csp)}
        return Response(html, media_type="text/html; charset=utf-8", headers=headers)

    async def script(request: Request) -> Response:
        body = (folder / "sandbox.js").read_bytes()
        return Response(body, media_type="text/javascript; charset=utf-8", headers=_COMMON_HEADERS)

    async def index(request: Request) -> Response:
        return PlainTextResponse("MCP Apps sandbox proxy: load /sandbox.html in an iframe.\n", headers=_COMMON_HEADERS)

    return Starlette(
        routes=[
            Route("/sandbox.html", page, methods=["GET", "HEAD"]),
            Route("/sandbox.js", script, methods=["GET", "HEAD"]),
            Route("/", index, methods=["GET", "HEAD"]),
        ]
    )
