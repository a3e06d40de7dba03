"""``python -m pyodide_transport.check URL``: can a browser client use this MCP server?

Two kinds of checks, one report:

* **Browser rules**, probed from CPython with ``urllib`` as a page on a foreign
  origin would meet them: the CORS preflight (``OPTIONS``) for POST, GET and
  DELETE with every header MCP sends, ``Access-Control-Allow-Origin`` on real
  responses, and whether ``Mcp-Session-Id`` is exposed to scripts.
* **Our transport end to end**: :class:`~pyodide_transport.fetch.FetchTransport`
  runs inside real Pyodide (Node, from the repository's built ``site/dist``)
  and reports the protocol versions offered (``server/discover`` and
  ``initialize``), the tools listed, SSE streaming, the GET stream and DELETE.

Exit status 0 only when every required check passes. With
``MCP_CONFORMANCE_SCENARIO`` set, the command is instead the client under test
of the official conformance suite's client mode: it runs that scenario
against the URL (the last argument) inside Pyodide and exits 0 on success.

The transport half needs the repository (``site/dist``, ``tests/pyodide/runner.mjs``)
and Node; without them those checks are reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from .streamable_http import BROWSER_REQUEST_HEADERS

__all__ = [
    "REQUIRED_HEADERS",
    "Check",
    "conformance_scenario",
    "main",
    "probe_browser_rules",
    "run_in_pyodide",
    "transport_checks",
]

REQUIRED_HEADERS = BROWSER_REQUEST_HEADERS
"""Request headers a browser MCP client sends; the preflight must allow them all."""

_ROOT = Path(__file__).resolve().parents[1]
_TIMEOUT = 15.0


@dataclass
class Check:
    """One line of the report.

    Attributes:
        name: What was checked.
        status: ``"pass"``, ``"fail"``, ``"warn"`` (not fatal), ``"info"`` or ``"skip"``.
        detail: What was seen, and the fix when it failed.
    """

    name: str
    status: str
    detail: str = ""

    @property
    def fatal(self) -> bool:
        """Whether this check keeps a browser client from using the server."""
        return self.status == "fail"


# --- browser rules, from CPython ------------------------------------------------------------------


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


def probe_browser_rules(url: str, origin: str) -> tuple[list[Check], dict[str, Any]]:
    """Probe CORS and header exposure as a page on ``origin`` would meet them.

    Returns:
        The checks, and facts learned (``session``, ``handshake_version``, ``modern_versions``).
    """
    checks: list[Check] = []
    facts: dict[str, Any] = {}
    wanted = ", ".join(REQUIRED_HEADERS)
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
        missing = [h for h in REQUIRED_HEADERS if h not in allowed_headers and "*" not in allowed_headers]
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
            {"Origin": origin, "Content-Type": "application/json", "Accept": accept},
            json.dumps(init).encode(),
        )
    except OSError as exc:
        checks.append(Check("initialize from a foreign origin", "fail", f"no answer: {exc}"))
        return checks, facts
    reply = _json_from(body, headers.get("content-type", ""))
    version = (reply or {}).get("result", {}).get("protocolVersion") if reply else None
    facts["handshake_version"] = version
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
            headers_del = {"Origin": origin, "Mcp-Session-Id": session, "MCP-Protocol-Version": str(version)}
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


# --- our transport, inside Pyodide ----------------------------------------------------------------


async def transport_checks(url: str) -> list[dict[str, str]]:
    """Run FetchTransport against ``url`` (meant to run inside Pyodide) and describe what it saw."""
    from . import connect
    from .errors import TransportError

    out: list[Check] = []
    try:
        client = await connect(url, request_timeout=_TIMEOUT)
    except (TransportError, OSError) as exc:
        out.append(Check("connect with FetchTransport", "fail", f"{type(exc).__name__}: {exc}"))
        return [asdict(c) for c in out]
    try:
        out.append(Check("connect with FetchTransport", "pass", f"{client.era} era, version {client.protocol_version}"))
        tools = await client.list_tools()
        names = ", ".join(t.name for t in tools.tools[:8]) + (" ..." if len(tools.tools) > 8 else "")
        out.append(Check("tools listed", "pass", f"{len(tools.tools)} tools: {names}"))
    except TransportError as exc:
        out.append(Check("tools listed", "fail", f"{type(exc).__name__}: {exc}"))
    finally:
        await client.close()
    try:
        client = await connect(url, protocol_version=LATEST_HANDSHAKE_VERSION, request_timeout=_TIMEOUT)
    except TransportError as exc:
        out.append(Check("handshake-era session", "info", f"not available: {type(exc).__name__}: {exc}"))
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


async def conformance_scenario(name: str, url: str) -> None:
    """Act as the client under test for one scenario of the official conformance suite.

    Raises:
        TransportError: The scenario's traffic failed.
        ValueError: An unknown scenario.
    """
    from mcp_types import ElicitRequestFormParams, ElicitRequestURLParams, ElicitResult

    from . import connect

    async def accept_defaults(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        schema = params.requested_schema if isinstance(params, ElicitRequestFormParams) else {}
        properties = schema.get("properties") if isinstance(schema, dict) else None
        content: dict[str, Any] = {}
        for key, prop in (properties or {}).items():
            if isinstance(prop, dict) and prop.get("default") is not None:
                content[key] = prop["default"]
        return ElicitResult(action="accept", content=content)

    client = await connect(url, elicitation_handler=accept_defaults, request_timeout=25.0)
    try:
        if name == "initialize":
            await client.list_tools()
        elif name == "tools_call":
            tools = await client.list_tools()
            assert any(t.name == "add_numbers" for t in tools.tools)
            result = await client.call_tool("add_numbers", {"a": 5, "b": 3})
            if result.is_error:
                raise RuntimeError(f"add_numbers failed: {result.content}")
        elif name == "elicitation-sep1034-client-defaults":
            result = await client.call_tool("test_client_elicitation_defaults", {})
            if result.is_error:
                raise RuntimeError(f"elicitation tool failed: {result.content}")
        elif name == "sse-retry":
            await client.list_tools()
            result = await client.call_tool("test_reconnection", {})
            if result.is_error:
                raise RuntimeError(f"test_reconnection failed: {result.content}")
        else:
            raise ValueError(f"unknown conformance scenario {name!r}")
    finally:
        await client.close()


def _node() -> str | None:
    configured = os.environ.get("PT_NODE")
    if configured:
        return configured
    return shutil.which("node")


def run_in_pyodide(code: str, timeout: float = 60.0) -> str | None:
    """Run Python ``code`` in Pyodide (Node, the repository's ``site/dist``); return its last expression.

    Raises:
        FileNotFoundError: No built site, runner or Node.
        RuntimeError: The code raised inside Pyodide (the message holds its error).
    """
    dist = _ROOT / "site" / "dist"
    runner = _ROOT / "tests" / "pyodide" / "runner.mjs"
    node = _node()
    if not (dist / "pyodide" / "pyodide-lock.json").exists() or not runner.exists() or node is None:
        raise FileNotFoundError("needs the repository's built site (python build.py site), its runner and Node")
    command = [node, "--experimental-websocket", str(runner), str(dist), str(_ROOT / "tests")]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps({"id": 1, "code": code}) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                if not line.startswith("{"):
                    continue
                reply = json.loads(line)
                if reply.get("id") != 1:
                    continue
                if not reply.get("ok"):
                    raise RuntimeError(f"{reply.get('error')}\n{reply.get('output', '')}".strip())
                result: str | None = reply.get("result")
                return result
            else:
                raise subprocess.TimeoutExpired(command, timeout)
        raise RuntimeError(f"the Pyodide runner exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# --- the command ----------------------------------------------------------------------------------

_MARKS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "info": "INFO", "skip": "SKIP"}


def _report(url: str, checks: list[Check]) -> str:
    lines = [f"Browser compatibility of {url}", ""]
    lines += [f"  [{_MARKS[c.status]}] {c.name}" + (f": {c.detail}" if c.detail else "") for c in checks]
    failed = [c for c in checks if c.fatal]
    lines += [
        "",
        "A browser client can fully use this server." if not failed else f"{len(failed)} blocking problem(s).",
    ]
    return "\n".join(lines)


def _conformance(url: str, scenario: str) -> int:
    code = (
        "from pyodide_transport.check import conformance_scenario\n"
        f"await conformance_scenario({scenario!r}, {url!r})\n'ok'"
    )
    try:
        run_in_pyodide(code, timeout=28.0)
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        print(f"scenario {scenario} failed: {exc}", file=sys.stderr)
        return 1
    print(f"scenario {scenario}: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the checks (or a conformance scenario) and return the exit status."""
    args_list = sys.argv[1:] if argv is None else argv
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO")
    if scenario:
        if not args_list:
            print("usage: MCP_CONFORMANCE_SCENARIO=name python -m pyodide_transport.check URL", file=sys.stderr)
            return 2
        return _conformance(args_list[-1], scenario)
    parser = argparse.ArgumentParser(prog="python -m pyodide_transport.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    parser.add_argument("--origin", help="the page origin to probe CORS with (default: same host, another port)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(args_list)
    origin = args.origin or default_origin(args.url)
    checks, _facts = probe_browser_rules(args.url, origin)
    code = (
        "import json\nfrom pyodide_transport.check import transport_checks\n"
        f"json.dumps(await transport_checks({args.url!r}))"
    )
    try:
        result = run_in_pyodide(code, timeout=120.0)
        checks += [Check(**c) for c in json.loads(result or "[]")]
    except FileNotFoundError as exc:
        checks.append(Check("FetchTransport in Pyodide", "skip", str(exc)))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        checks.append(Check("FetchTransport in Pyodide", "fail", str(exc)[:500]))
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print(_report(args.url, checks))
    return 1 if any(c.fatal for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
