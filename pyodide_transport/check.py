"""``python -m pyodide_transport.check URL``: can a browser client use this MCP server?

Two kinds of checks, one report:

* **Browser rules**, probed with ``urllib`` as a page on a foreign origin would
  meet them: the CORS preflight (``OPTIONS``) for POST, GET and DELETE with
  every header MCP sends, ``Access-Control-Allow-Origin`` on real responses,
  and whether ``Mcp-Session-Id`` is exposed to scripts.
* **Authorization**, when the server answers 401: the ``WWW-Authenticate``
  challenge (and whether a page may read it), then every protected-resource and
  authorization-server metadata URL the client tries, in the spec's order, with
  whether each answers and allows a page's origin (CORS), whether a registration
  method is offered, and whether the token endpoint takes a page's POST.
* **Our transport end to end**: :class:`~pyodide_transport.fetch.FetchTransport`
  against the server, reporting the protocol versions offered
  (``server/discover`` and ``initialize``), the tools listed, SSE streaming,
  the GET stream and DELETE. ``--runtime`` says where it runs: ``chromium``
  (a real headless page on a loopback origin of its own, so CORS is the
  browser's), ``node`` (Pyodide in Node, over the JavaScript ``fetch``) or
  ``cpython`` (right here, over the ``httpx`` adapter of
  :mod:`pyodide_transport.cpython`). The browser runtimes boot from the cached
  offline runtime (:mod:`pyodide_transport.browser_testing.runtime`), or from
  ``--pyodide DIR``: a Pyodide folder (``pyodide.mjs`` and a
  ``pyodide-lock.json`` listing ``pyodide-transport``, as ``python build.py
  site`` builds in ``site/dist/pyodide``). This module's command defaults to
  ``cpython`` (``node`` with ``--pyodide``); ``pyodide-transport check`` (the
  installed command, :mod:`pyodide_transport.browser_testing.cli`) to ``chromium``.

Exit status (:mod:`pyodide_transport.check_report`): 0 when no check is blocking, 1 when one is,
2 when the check could not run as asked. ``--format text|json|junit`` picks the report (JUnit XML
for CI test tabs), ``--output FILE`` writes it to a file. With
``MCP_CONFORMANCE_SCENARIO`` set, the command is instead the client under test
of the official conformance suite's client mode: it runs that scenario
against the URL (the last argument), in CPython or, with ``--pyodide DIR``,
inside Pyodide, and exits 0 on success.

Examples::

    python -m pyodide_transport.check http://127.0.0.1:8000/mcp
    python -m pyodide_transport.check http://127.0.0.1:8000/mcp --pyodide site/dist/pyodide --json
    pyodide-transport check http://127.0.0.1:8000/mcp --format junit --output browser-check.xml
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import selectors
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from .check_report import EXIT_BLOCKING, EXIT_OK, EXIT_USAGE, FORMATS, Check, ReportFormat, render
from .errors import TransportError
from .streamable_http import BROWSER_REQUEST_HEADERS

if TYPE_CHECKING:
    from .browser_testing.session import Runtime as BootedRuntime

__all__ = [
    "NODE_RUNNER",
    "REQUIRED_HEADERS",
    "RUNTIME_CHOICES",
    "Check",
    "NodePyodide",
    "PyodideError",
    "conformance_scenario",
    "default_origin",
    "find_pyodide",
    "main",
    "parse_headers",
    "probe_authorization",
    "probe_browser_rules",
    "run_checks",
    "run_in_pyodide",
    "run_transport_checks",
    "transport_checks",
]

REQUIRED_HEADERS = BROWSER_REQUEST_HEADERS
"""Request headers a browser MCP client sends; the preflight must allow them all."""

NODE_RUNNER = Path(__file__).with_name("_node_runner.mjs")
"""The Node script that boots Pyodide and runs Python snippets for :class:`NodePyodide` (package data)."""

_TIMEOUT = 15.0
_CONFORMANCE_TIMEOUT = 28.0  # the suite kills its client after 30 s


# --- browser rules, over urllib -------------------------------------------------------------------


def _request(
    method: str, url: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read(256 * 1024)
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read(64 * 1024)


def _listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def _origin_allowed(headers: dict[str, str], origin: str) -> bool:
    return headers.get("access-control-allow-origin") in (origin, "*")


def _json_from(body: bytes, content_type: str) -> dict[str, Any] | None:
    text = body.decode("utf-8", "replace")
    candidates = [text]
    if "text/event-stream" in content_type:
        candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict) and ("result" in obj or "error" in obj):
            return obj
    return None


def default_origin(url: str) -> str:
    """A foreign origin for ``url``: the same host on another port (a page served elsewhere)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{1 if port != 1 else 2}"


def probe_browser_rules(
    url: str, origin: str, extra_headers: Mapping[str, str] | None = None
) -> tuple[list[Check], dict[str, Any]]:
    """Probe CORS and header exposure as a page on ``origin`` would meet them.

    ``extra_headers`` (e.g. ``Authorization``) go on every request a client would send them on,
    and the preflight must allow them too.

    Returns:
        The checks, and facts learned (``session``, ``handshake_version``, ``modern_versions``).
    """
    checks: list[Check] = []
    facts: dict[str, Any] = {}
    extra = dict(extra_headers or {})
    required_headers = [*REQUIRED_HEADERS, *(h.lower() for h in extra if h.lower() not in REQUIRED_HEADERS)]
    wanted = ", ".join(required_headers)
    for method, required in (("POST", True), ("GET", False), ("DELETE", False)):
        try:
            status, headers, _ = _request(
                "OPTIONS",
                url,
                {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": wanted},
            )
        except OSError as exc:
            checks.append(Check(f"CORS preflight for {method}", "fail", f"no answer: {exc}"))
            continue
        allowed_headers = _listed(headers.get("access-control-allow-headers"))
        missing = [h for h in required_headers if h not in allowed_headers and "*" not in allowed_headers]
        methods = _listed(headers.get("access-control-allow-methods"))
        problems = []
        if not 200 <= status < 300:
            problems.append(f"OPTIONS answered HTTP {status}")
        if not _origin_allowed(headers, origin):
            problems.append(f"Access-Control-Allow-Origin is {headers.get('access-control-allow-origin')!r}")
        if missing:
            problems.append(f"headers not allowed: {', '.join(missing)}")
        if method.lower() not in methods and "*" not in methods and method != "POST":
            problems.append(f"{method} not in Access-Control-Allow-Methods")
        name = f"CORS preflight for {method} from {origin}"
        if problems:
            checks.append(Check(name, "fail" if required else "warn", "; ".join(problems)))
        else:
            checks.append(Check(name, "pass", f"HTTP {status}"))

    accept = "application/json, text/event-stream"
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "pyodide-transport-check", "version": "0.1.0"},
        },
    }
    try:
        status, headers, body = _request(
            "POST",
            url,
            {**extra, "Origin": origin, "Content-Type": "application/json", "Accept": accept},
            json.dumps(init).encode(),
        )
    except OSError as exc:
        checks.append(Check("initialize from a foreign origin", "fail", f"no answer: {exc}"))
        return checks, facts
    reply = _json_from(body, headers.get("content-type", ""))
    version = (reply or {}).get("result", {}).get("protocolVersion") if reply else None
    facts["handshake_version"] = version
    if status in (401, 403):
        facts["refused"] = {"status": status, "headers": headers}
        checks.append(Check("initialize (handshake era)", "info", f"HTTP {status}: the server wants a sign-in"))
        return checks, facts
    session = headers.get("mcp-session-id")
    facts["session"] = session
    if not 200 <= status < 300 or not version:
        checks.append(Check("initialize (handshake era)", "info", f"HTTP {status}: the server offers no handshake"))
    else:
        checks.append(Check("initialize (handshake era)", "pass", f"protocol version {version}"))
        if not _origin_allowed(headers, origin):
            checks.append(
                Check(
                    "Access-Control-Allow-Origin on responses",
                    "fail",
                    "the POST response does not allow the page's origin: the browser discards it",
                )
            )
        else:
            checks.append(Check("Access-Control-Allow-Origin on responses", "pass"))
        exposed = _listed(headers.get("access-control-expose-headers"))
        if session is None:
            checks.append(Check("Mcp-Session-Id exposed", "info", "stateless server: no session id"))
        elif "mcp-session-id" in exposed or "*" in exposed:
            checks.append(Check("Mcp-Session-Id exposed", "pass"))
        else:
            checks.append(
                Check(
                    "Mcp-Session-Id exposed",
                    "fail",
                    "the server sets Mcp-Session-Id but does not list it in Access-Control-Expose-Headers: "
                    "a browser hides it and every later request fails",
                )
            )
        if session is not None:
            headers_del = {**extra, "Origin": origin, "Mcp-Session-Id": session, "MCP-Protocol-Version": str(version)}
            with contextlib.suppress(OSError):
                _request("DELETE", url, headers_del)

    discover = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "server/discover",
        "params": {
            "_meta": {
                PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION,
                CLIENT_INFO_META_KEY: {"name": "pyodide-transport-check", "version": "0.1.0"},
                CLIENT_CAPABILITIES_META_KEY: {},
            }
        },
    }
    modern_headers = {
        **extra,
        "Origin": origin,
        "Content-Type": "application/json",
        "Accept": accept,
        "MCP-Protocol-Version": LATEST_MODERN_VERSION,
        "Mcp-Method": "server/discover",
    }
    try:
        status, headers, body = _request("POST", url, modern_headers, json.dumps(discover).encode())
        reply = _json_from(body, headers.get("content-type", ""))
        supported = (reply or {}).get("result", {}).get("supportedVersions") if reply else None
    except OSError:
        supported = None
    facts["modern_versions"] = supported if isinstance(supported, list) else []
    if facts["modern_versions"]:
        checks.append(Check("server/discover (2026-07-28 era)", "pass", ", ".join(facts["modern_versions"])))
    else:
        checks.append(Check("server/discover (2026-07-28 era)", "info", "not offered"))
    return checks, facts


# --- the authorization side, over urllib -----------------------------------------------------------


_Doc = TypeVar("_Doc")


def _get_document(url: str, origin: str) -> tuple[Check | None, dict[str, Any] | None, bool]:
    """GET a metadata document as a page on ``origin``: (a check when it failed, the JSON, CORS ok)."""
    try:
        status, headers, body = _request("GET", url, {"Origin": origin, "Accept": "application/json"})
    except OSError as exc:
        return Check(url, "info", f"no answer: {exc}"), None, False
    cors = _origin_allowed(headers, origin)
    if status != 200:
        return Check(url, "info", f"HTTP {status}"), None, cors
    try:
        doc = json.loads(body)
    except ValueError:
        return Check(url, "warn", "HTTP 200 but not JSON"), None, cors
    if not isinstance(doc, dict):
        return Check(url, "warn", "HTTP 200 but not a JSON object"), None, cors
    return None, doc, cors


def _cors_detail(cors: bool, origin: str) -> str:
    return "CORS allows the page" if cors else f"no Access-Control-Allow-Origin for {origin}: a page cannot read it"


def _first_document(
    checks: list[Check],
    what: str,
    candidates: list[str],
    origin: str,
    parse: Callable[[str, dict[str, Any]], _Doc],
    describe: Callable[[_Doc], str],
) -> _Doc | None:
    """Try ``candidates`` in order; a check for each one tried; the first usable document, parsed."""
    for candidate in candidates:
        failed, doc, cors = _get_document(candidate, origin)
        if failed is not None:
            checks.append(Check(f"{what} {failed.name}", failed.status, failed.detail))
            continue
        assert doc is not None
        try:
            found = parse(candidate, doc)
        except TransportError as exc:
            checks.append(Check(f"{what} {candidate}", "fail", str(exc)))
            return None
        checks.append(
            Check(f"{what} {candidate}", "pass" if cors else "fail", describe(found) + _cors_detail(cors, origin))
        )
        return found
    return None


def probe_authorization(url: str, origin: str, facts: Mapping[str, Any]) -> list[Check]:
    """The authorization side as a browser client meets it: the challenge, then every discovery URL tried.

    Reports which protected-resource and authorization-server metadata URLs answer (RFC 9728,
    RFC 8414, OpenID discovery, in the spec's order), whether a page may read each (CORS), and
    whether what they say is usable (resource, issuer, PKCE S256, a registration method).
    """
    from .oauth_core import (
        ResourceMetadata,
        ServerMetadata,
        authorization_server_urls,
        bearer_challenge,
        protected_resource_urls,
    )

    refused = facts.get("refused")
    if not refused:
        return [Check("Authorization", "info", "not required: the server answered without a sign-in")]
    headers: dict[str, str] = refused["headers"]
    checks: list[Check] = []
    raw = headers.get("www-authenticate")
    challenge = bearer_challenge(raw)
    exposed = _listed(headers.get("access-control-expose-headers"))
    if challenge is None:
        checks.append(
            Check(
                f"WWW-Authenticate on the HTTP {refused['status']}",
                "warn",
                f"no Bearer challenge ({raw!r}): the client can only guess the metadata URLs",
            )
        )
    else:
        detail = ", ".join(f"{k}={v}" for k, v in challenge.params.items()) or "no parameters"
        checks.append(Check(f"WWW-Authenticate on the HTTP {refused['status']}", "pass", f"Bearer {detail}"))
        if "www-authenticate" in exposed or "*" in exposed:
            checks.append(Check("WWW-Authenticate exposed", "pass"))
        else:
            checks.append(
                Check(
                    "WWW-Authenticate exposed",
                    "warn",
                    "not listed in Access-Control-Expose-Headers: a page cannot read resource_metadata or the "
                    "scope a step-up needs (add it to Access-Control-Expose-Headers)",
                )
            )
    resource = _first_document(
        checks,
        "protected-resource metadata",
        protected_resource_urls(url, challenge),
        origin,
        lambda at, doc: ResourceMetadata.parse(at, doc, url),
        lambda found: f"authorization servers {', '.join(found.authorization_servers)}; ",
    )
    if resource is None:
        checks.append(Check("protected-resource metadata", "fail", "no usable document at any RFC 9728 URL"))
        return checks
    issuer = resource.authorization_servers[0]
    server = _first_document(
        checks,
        "authorization-server metadata",
        authorization_server_urls(issuer),
        origin,
        lambda at, doc: ServerMetadata.parse(at, doc, issuer),
        lambda found: "",
    )
    if server is None:
        checks.append(Check("authorization-server metadata", "fail", f"no usable document for issuer {issuer}"))
        return checks
    ways = [
        w
        for w, ok in (
            ("Client ID Metadata Documents", server.client_id_metadata_document_supported),
            ("Dynamic Client Registration", server.registration_endpoint is not None),
        )
        if ok
    ]
    checks.append(
        Check(
            "client registration",
            "pass" if ways else "warn",
            ", ".join(ways) if ways else "neither CIMD nor DCR: only a pre-registered client id can sign in",
        )
    )
    checks.append(
        Check(
            "authorization response iss (RFC 9207)",
            "pass" if server.iss_parameter_supported else "info",
            "advertised" if server.iss_parameter_supported else "not advertised",
        )
    )
    try:
        code, answer, _ = _request(
            "OPTIONS",
            server.token_endpoint,
            {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        cors = 200 <= code < 300 and _origin_allowed(answer, origin)
    except OSError:
        cors = False
    checks.append(
        Check(
            f"token endpoint {server.token_endpoint}",
            "pass" if cors else "fail",
            "a page may POST to it"
            if cors
            else f"its CORS preflight does not allow {origin}: a page cannot get tokens",
        )
    )
    return checks


# --- our transport, end to end (CPython or Pyodide) -----------------------------------------------


def _host_options() -> dict[str, Any]:
    """``connect`` options for this runtime: the browser's ``fetch`` under Pyodide, else ``httpx``.

    Raises:
        LocalProtocolError: Outside Pyodide without ``httpx`` (the ``cpython`` extra).
    """
    if sys.platform == "emscripten":
        return {}
    from .cpython import default_http_client

    return {"fetch": default_http_client()}


def _host_name() -> str:
    if sys.platform == "emscripten":
        return f"Pyodide, Python {platform.python_version()}, fetch"
    return f"{platform.python_implementation()} {platform.python_version()}, httpx"


async def transport_checks(url: str, headers: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Run FetchTransport against ``url`` in this runtime and describe what it saw (JSON-able dicts).

    ``headers`` go on every request (e.g. ``Authorization`` for a server that wants a token).
    """
    from . import connect
    from .client import Client
    from .fetch import FetchTransport

    extra = dict(headers or {})

    out: list[Check] = []
    try:
        client = await connect(url, headers=extra, request_timeout=_TIMEOUT, **_host_options())
    except (TransportError, OSError) as exc:
        out.append(Check("connect with FetchTransport", "fail", f"{type(exc).__name__}: {exc}"))
        return [asdict(c) for c in out]
    try:
        detail = f"{client.era} era, version {client.protocol_version} ({_host_name()})"
        out.append(Check("connect with FetchTransport", "pass", detail))
        tools = await client.list_tools()
        names = ", ".join(t.name for t in tools.tools[:8]) + (" ..." if len(tools.tools) > 8 else "")
        out.append(Check("tools listed", "pass", f"{len(tools.tools)} tools: {names}"))
    except TransportError as exc:
        out.append(Check("tools listed", "fail", f"{type(exc).__name__}: {exc}"))
    finally:
        await client.close()
    client = Client(
        FetchTransport(url, headers=extra, **_host_options()),
        protocol_version=LATEST_HANDSHAKE_VERSION,
        request_timeout=_TIMEOUT,
    )
    try:
        await client.connect()
    except TransportError as exc:
        if client.server_info is None:  # no handshake era here: allowed
            out.append(Check("handshake-era session", "info", f"not available: {type(exc).__name__}: {exc}"))
        else:  # initialize was answered, the session's next request was not
            hint = " (in a browser: the page could not read Mcp-Session-Id)" if sys.platform == "emscripten" else ""
            detail = f"initialize was answered, then the session was refused{hint}: {type(exc).__name__}: {exc}"
            out.append(Check("handshake-era session", "fail", detail))
        return [asdict(c) for c in out]
    transport: Any = client.transport
    try:
        await client.list_tools()
        for _ in range(100):
            if transport.stats["get_stream"] != "opening":
                break
            await asyncio.sleep(0.02)
        sse = transport.stats["sse_responses"]
        out.append(
            Check(
                "SSE streaming",
                "pass" if sse else "info",
                f"{sse} responses streamed as SSE" if sse else "the server answers with JSON only (allowed)",
            )
        )
        stream = transport.stats["get_stream"]
        if transport.session_id is None:
            out.append(Check("GET stream", "info", "stateless server: no session, no GET stream"))
        else:
            out.append(Check("GET stream", "pass" if stream in ("open", "unavailable (405)") else "warn", stream))
    except TransportError as exc:
        out.append(Check("handshake-era requests", "fail", f"{type(exc).__name__}: {exc}"))
    finally:
        session = transport.session_id
        await client.close()
    if session is not None:
        status = transport.stats["delete_status"]
        ok = status is not None and (200 <= status < 300 or status == 405)
        out.append(Check("DELETE ends the session", "pass" if ok else "warn", f"HTTP {status}"))
    return [asdict(c) for c in out]


async def conformance_scenario(
    name: str, url: str, protocol_version: str | None = None, context: dict[str, Any] | None = None
) -> None:
    """Act as the client under test for one scenario of the official conformance suite.

    Args:
        name: The scenario (``MCP_CONFORMANCE_SCENARIO``).
        url: The scenario's mock server.
        protocol_version: The revision the suite runs at (``MCP_CONFORMANCE_PROTOCOL_VERSION``); a
            2026-07-28 run pins it, a handshake-era run lets the client negotiate.
        context: The scenario's ``MCP_CONFORMANCE_CONTEXT`` (e.g. the tool calls to make).

    Raises:
        TransportError: The scenario's traffic failed.
        ValueError: An unknown scenario.
    """
    from mcp_types import (
        CreateMessageRequestParams,
        CreateMessageResult,
        ElicitRequestFormParams,
        ElicitRequestURLParams,
        ElicitResult,
        ListRootsResult,
        TextContent,
    )

    from . import connect

    client: Any = None
    unrelated: list[Any] = []

    async def answer_form(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        schema = params.requested_schema if isinstance(params, ElicitRequestFormParams) else {}
        properties = schema.get("properties") if isinstance(schema, dict) else None
        content: dict[str, Any] = {}
        for key, prop in (properties or {}).items():
            if isinstance(prop, dict) and prop.get("default") is not None:
                content[key] = prop["default"]
            elif isinstance(prop, dict) and prop.get("type") == "boolean":
                content[key] = True
        if name == "sep-2322-client-request-state" and not unrelated:  # another call between the rounds
            unrelated.append(await client.call_tool("test_mrtr_unrelated", {}))
        return ElicitResult(action="accept", content=content)

    async def sample(params: CreateMessageRequestParams) -> CreateMessageResult:
        return CreateMessageResult(role="assistant", content=TextContent(text="ok"), model="conformance-client")

    async def roots() -> ListRootsResult:
        return ListRootsResult(roots=[])

    modern = protocol_version is not None and protocol_version >= "2026"
    extra: dict[str, Any] = {}
    if name.startswith("auth/"):
        extra["auth"] = conformance_oauth(context or {})
    client = await connect(
        url,
        **extra,
        protocol_version=protocol_version if modern else None,
        elicitation_handler=answer_form,
        sampling_handler=sample,
        roots_handler=roots,
        request_timeout=25.0,
        **_host_options(),
    )
    try:
        await _drive_scenario(client, name, context or {})
    finally:
        await client.close()


CONFORMANCE_CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
"""The Client ID Metadata Document URL the suite's authorization server expects (it is never fetched)."""


def conformance_oauth(context: dict[str, Any]) -> Any:
    """The OAuth the suite's ``auth/*`` scenarios expect: a native client signing in headlessly.

    The mock authorization server redirects straight back, so :func:`headless_redirect_handler`
    follows it; ``pre-registration`` passes its credentials in the context.
    """
    from .oauth import OAuth, headless_redirect_handler

    return OAuth(
        redirect_uri="http://localhost:3000/callback",
        redirect_handler=headless_redirect_handler,
        client_name="pyodide-transport conformance client",
        client_id=context.get("client_id"),
        client_secret=context.get("client_secret"),
        client_metadata_url=CONFORMANCE_CLIENT_METADATA_URL,
        application_type="native",
    )


async def _drive_scenario(client: Any, name: str, context: dict[str, Any]) -> None:
    """The calls each conformance scenario expects of a client (see each scenario's description)."""

    async def ok(tool: str, arguments: dict[str, Any] | None = None) -> None:
        result = await client.call_tool(tool, arguments or {})
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")

    if name in ("initialize", "request-metadata", "json-schema-ref-no-deref"):
        await client.list_tools()
    elif name.startswith("auth/"):  # sign in, then what a signed-in client does
        await client.list_tools()
        await client.call_tool("test-tool", {})
    elif name == "tools_call":
        tools = await client.list_tools()
        assert any(t.name == "add_numbers" for t in tools.tools)
        await ok("add_numbers", {"a": 5, "b": 3})
    elif name == "elicitation-sep1034-client-defaults":
        await ok("test_client_elicitation_defaults")
    elif name == "sse-retry":
        await client.list_tools()
        await ok("test_reconnection")
    elif name == "sep-2322-client-request-state":
        for tool in ("test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_no_result_type"):
            await ok(tool)
    elif name == "http-standard-headers":
        tools = (await client.list_tools()).tools
        if tools:
            await client.call_tool(tools[0].name, {})
        resources = (await client.list_resources()).resources
        if resources:
            await client.read_resource(str(resources[0].uri))
        prompts = (await client.list_prompts()).prompts
        if prompts:
            await client.get_prompt(prompts[0].name)
    elif name == "http-custom-headers":
        await client.list_tools()  # the transport learns which arguments go into Mcp-Param-* headers
        for call in context.get("toolCalls", []):
            await ok(call["name"], call.get("arguments") or {})
    elif name == "http-invalid-tool-headers":
        for tool in (await client.list_tools()).tools:  # the invalid ones are left out already
            arguments = {key: "x" for key in (tool.input_schema.get("required") or [])}
            await ok(tool.name, arguments)
    else:
        raise ValueError(f"unknown conformance scenario {name!r}")


# --- Pyodide in Node ------------------------------------------------------------------------------


class PyodideError(TransportError):
    """Python code raised inside Pyodide, or the Node runner could not boot or answer in time.

    The message holds the Pyodide traceback and the snippet's printed output.
    """


def find_pyodide(path: Path) -> Path:
    """The Pyodide folder at ``path``: the folder itself or its ``pyodide/`` (so ``site/dist`` works too).

    Raises:
        PyodideError: No ``pyodide.mjs`` with a ``pyodide-lock.json`` there.
    """
    for candidate in (path, path / "pyodide"):
        if (candidate / "pyodide.mjs").is_file() and (candidate / "pyodide-lock.json").is_file():
            return candidate
    raise PyodideError(
        f"no Pyodide in {path}: expected pyodide.mjs and pyodide-lock.json (python build.py site builds site/dist)"
    )


def _node_command(node: str | None) -> list[str]:
    """Node and the flags it needs: ``WebSocket`` is behind a flag before Node 22."""
    exe = node or os.environ.get("PT_NODE") or shutil.which("node")
    if exe is None:
        raise PyodideError("running Pyodide needs Node (>= 20) on PATH, or PT_NODE set to it")
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        major = int(version.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise PyodideError(f"cannot run Node ({exe}): {exc}") from None
    if major < 20:
        raise PyodideError(f"Pyodide needs Node >= 20; {exe} is {version.strip()}")
    return [exe, "--experimental-websocket"] if major < 22 else [exe]


class NodePyodide:
    """One Pyodide interpreter in a Node process, fed Python snippets over stdin.

    ``run(code)`` ships source to :data:`NODE_RUNNER` and returns the value of
    its last expression as text (top-level ``await`` allowed, fresh globals per
    snippet). The interpreter boots once and keeps its modules between snippets.

    Args:
        pyodide: The Pyodide folder (see :func:`find_pyodide`).
        mounts: ``{name: host_dir}``: each folder is mounted at
            ``site-packages/name`` inside Pyodide, so ``import name.module`` works.
        node: The Node executable (default: ``$PT_NODE``, else ``node`` on PATH).
        boot_timeout: Seconds Pyodide may take to boot and load its packages.

    Raises:
        PyodideError: No Pyodide there, no Node, or the interpreter did not boot.
    """

    def __init__(
        self,
        pyodide: Path,
        *,
        mounts: Mapping[str, Path] | None = None,
        node: str | None = None,
        boot_timeout: float = 120.0,
    ) -> None:
        folder = find_pyodide(pyodide)
        command = [*_node_command(node), str(NODE_RUNNER), str(folder)]
        command += [f"{name}={Path(host).resolve()}" for name, host in (mounts or {}).items()]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self._selector = selectors.DefaultSelector()
        assert self._proc.stdout is not None
        self._selector.register(self._proc.stdout, selectors.EVENT_READ)
        self._next_id = 0
        try:
            self.info: dict[str, Any] = self._read(boot_timeout)
            if not self.info.get("ready"):
                raise PyodideError(f"Pyodide did not boot: {self.info.get('error')}\n{self.info.get('output', '')}")
        except BaseException:
            self.close()
            raise

    def _read(self, timeout: float) -> dict[str, Any]:
        """The next JSON line from the runner (other lines are skipped)."""
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._selector.select(remaining):
                continue
            line = self._proc.stdout.readline()
            if not line:
                self._proc.wait(timeout=10)
                err = self._proc.stderr.read() if self._proc.stderr else ""
                raise PyodideError(f"the Node/Pyodide process exited ({self._proc.returncode}): {err[-2000:]}")
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message
        self.close()
        raise PyodideError(f"Pyodide did not answer within {timeout:.0f} s")

    def run(self, code: str, timeout: float = 120.0) -> str | None:
        """Run ``code`` and return its last expression as text (``None`` for ``None``).

        Raises:
            PyodideError: The code raised inside Pyodide, or no answer within ``timeout`` seconds
                (the process is then stopped).
        """
        if self._proc.stdin is None or self._proc.poll() is not None:
            raise PyodideError("the Node/Pyodide process is not running")
        self._next_id += 1
        request_id = self._next_id
        self._proc.stdin.write(json.dumps({"id": request_id, "code": code}) + "\n")
        self._proc.stdin.flush()
        while True:
            reply = self._read(timeout)
            if reply.get("id") == request_id:
                break
        if not reply.get("ok"):
            raise PyodideError(f"{reply.get('error')}\n--- output ---\n{reply.get('output', '')}")
        result: str | None = reply.get("result")
        return result

    @property
    def running(self) -> bool:
        """Whether the Node process is still there (a timed-out run stops it)."""
        return self._proc.poll() is None

    def run_json(self, code: str, timeout: float = 120.0) -> Any:
        """Run ``code`` whose last expression is a JSON string, and decode it."""
        text = self.run(code, timeout)
        return None if text is None else json.loads(text)

    def close(self) -> None:
        """Stop the Node process. Idempotent."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=10)
        self._selector.close()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> NodePyodide:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def run_in_pyodide(code: str, pyodide: Path, timeout: float = 60.0) -> str | None:
    """Boot Pyodide from the folder ``pyodide``, run ``code`` once and return its last expression.

    ``timeout`` covers the boot and the run.

    Raises:
        PyodideError: No Pyodide or Node, the code raised, or it took too long.
    """
    deadline = time.monotonic() + timeout
    with NodePyodide(pyodide, boot_timeout=timeout) as runtime:
        return runtime.run(code, timeout=max(1.0, deadline - time.monotonic()))


# --- the command ----------------------------------------------------------------------------------


Runtime = Literal["cpython", "node", "chromium"]
RUNTIME_CHOICES: tuple[Runtime, ...] = ("cpython", "node", "chromium")


def run_transport_checks(
    url: str,
    pyodide: Path | None = None,
    runtime: Runtime | None = None,
    headers: Mapping[str, str] | None = None,
    booted: BootedRuntime | None = None,
) -> list[Check]:
    """The end-to-end half of the report: :func:`transport_checks` in CPython, Node-Pyodide or a Chromium page.

    ``runtime`` defaults to ``node`` when a ``pyodide`` folder is given, else ``cpython``. The
    browser runtimes boot from ``pyodide`` or, without one, from the cached offline runtime
    (:func:`pyodide_transport.browser_testing.runtime.ensure_runtime`); ``booted`` is one already
    running (the pytest plugin's), used and left running.

    Raises:
        RuntimeSetupError: The runtime could not be fetched, or no browser was found.
    """
    runtime = runtime or ("node" if pyodide is not None else "cpython")
    if runtime == "cpython":
        if importlib.util.find_spec("httpx") is None:
            from .cpython import INSTALL_HINT

            return [Check("FetchTransport end to end", "skip", f"running it in CPython needs httpx: {INSTALL_HINT}")]
        return [Check(**c) for c in asyncio.run(transport_checks(url, headers))]
    from .browser_testing.session import start_runtime

    owned = booted is None
    try:
        booted = booted or start_runtime(runtime, pyodide)
    except PyodideError as exc:
        return [Check(f"FetchTransport in Pyodide ({runtime})", "fail", str(exc)[:500])]
    try:
        info = booted.info
        where = f"Chromium {info['browser']}, page {info['origin']}" if runtime == "chromium" else "Node"
        found = [Check("runtime", "info", f"{where}, Pyodide with Python {info.get('python')}")]
        request = {"op": "checks", "url": url, "headers": dict(headers or {})}
        found += [Check(**c) for c in booted.request(request, 120.0).result(130.0)]
        return found
    except PyodideError as exc:
        return [Check(f"FetchTransport in Pyodide ({runtime})", "fail", str(exc)[:500])]
    finally:
        if owned:
            booted.close()


def run_checks(
    url: str,
    *,
    origin: str | None = None,
    runtime: Runtime | None = None,
    pyodide: Path | None = None,
    headers: Mapping[str, str] | None = None,
    booted: BootedRuntime | None = None,
) -> list[Check]:
    """The whole report: browser rules and authorization over ``urllib``, then the transport half in ``runtime``.

    ``headers`` (e.g. a test token's ``Authorization``) go on every request but the preflights;
    ``booted`` is a runtime already running (see :func:`run_transport_checks`).

    Raises:
        RuntimeSetupError: The browser runtime could not be fetched or started.
    """
    origin = origin or default_origin(url)
    checks, facts = probe_browser_rules(url, origin, headers)
    checks += probe_authorization(url, origin, facts)
    if facts.get("refused"):
        checks.append(Check("FetchTransport end to end", "skip", "needs a sign-in (not attempted by this check)"))
    else:
        checks += run_transport_checks(url, pyodide, runtime, headers, booted)
    return checks


def _conformance(url: str, scenario: str, pyodide: Path | None) -> int:
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    try:
        if pyodide is None:
            run = conformance_scenario(scenario, url, version, context)
            asyncio.run(asyncio.wait_for(run, _CONFORMANCE_TIMEOUT))
        else:
            arguments = f"{scenario!r}, {url!r}, {version!r}, json.loads({json.dumps(context)!r})"
            code = (
                "import json\nfrom pyodide_transport.check import conformance_scenario\n"
                f"await conformance_scenario({arguments})\n'ok'"
            )
            run_in_pyodide(code, pyodide, timeout=_CONFORMANCE_TIMEOUT)
    except Exception as exc:  # any failure of the client under test is a failed scenario
        print(f"scenario {scenario} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"scenario {scenario}: ok")
    return 0


def parse_headers(items: list[str]) -> dict[str, str]:
    """``["Name: value", ...]`` (``--header`` arguments) as a dict.

    Raises:
        ValueError: An item is not ``NAME: VALUE``, or would split the request (a space in the name,
            a line break anywhere).
    """
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or any(c in name.strip() for c in " \t\r\n") or any(c in value for c in "\r\n"):
            raise ValueError(f"header {item!r}: expected 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    return headers


def _parser(prog: str, default_runtime: Runtime | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    parser.add_argument("--origin", help="the page origin to probe CORS with (default: same host, another port)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON (the same as --format json)")
    parser.add_argument("--format", choices=FORMATS, default=None, help="report format: text (default), json, junit")
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="write the report there (stdout then gets the text summary)"
    )
    parser.add_argument(
        "--pyodide",
        type=Path,
        metavar="DIR",
        help="boot Pyodide from this folder (e.g. site/dist/pyodide) instead of the cached runtime; "
        "alone, it runs the transport half in Node",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header on every request but the preflights, e.g. 'Authorization: Bearer TOKEN' (repeatable)",
    )
    default = default_runtime or "cpython, or node with --pyodide"
    parser.add_argument(
        "--runtime",
        choices=RUNTIME_CHOICES,
        default=default_runtime,
        help=f"where the transport half runs: a Chromium page, Node-Pyodide or CPython (default: {default})",
    )
    return parser


def main(
    argv: list[str] | None = None,
    *,
    prog: str = "python -m pyodide_transport.check",
    default_runtime: Runtime | None = None,
) -> int:
    """Run the checks (or a conformance scenario) and return the exit status.

    ``default_runtime`` is where the transport half runs without ``--runtime``: ``None`` (this
    module's command) keeps CPython, or Node with ``--pyodide``; ``pyodide-transport check`` passes
    ``"chromium"``.
    """
    args_list = sys.argv[1:] if argv is None else argv
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO")
    if scenario and not args_list:
        print(
            "usage: MCP_CONFORMANCE_SCENARIO=name python -m pyodide_transport.check [--pyodide DIR] URL",
            file=sys.stderr,
        )
        return 2
    args = _parser(prog, default_runtime).parse_args(args_list)
    fmt: ReportFormat = args.format or ("json" if args.json else "text")
    try:
        headers = parse_headers(args.header)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.pyodide is not None:
        try:
            find_pyodide(args.pyodide)
        except PyodideError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    if scenario:
        return _conformance(args.url, scenario, args.pyodide)
    from .browser_testing.runtime import RuntimeSetupError

    try:
        checks = run_checks(args.url, origin=args.origin, runtime=args.runtime, pyodide=args.pyodide, headers=headers)
    except RuntimeSetupError as exc:
        print(f"cannot run the check in {args.runtime}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = render(args.url, checks, fmt)
    if args.output is not None:
        try:
            args.output.write_text(report + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"cannot write the report to {args.output}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        report = render(args.url, checks, "text")
    print(report)
    return EXIT_BLOCKING if any(c.fatal for c in checks) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
