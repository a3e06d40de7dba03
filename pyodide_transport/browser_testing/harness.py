"""The test side inside the runtime: sessions with a connected Client, and snippets run against them.

This module runs where the client runs (a Chromium page's Pyodide, Node-Pyodide, or CPython). The
host (:mod:`pyodide_transport.browser_testing.session`) sends it one JSON request at a time through
:func:`dispatch` and gets one JSON answer back:

* ``{"op": "open", "session": id, "url": ..., "options": {...}, "setup": code}`` connects a
  :class:`~pyodide_transport.client.Client` (``pyodide_transport.connect`` with those options).
  ``setup``, if any, runs first in the session's namespace; each of :data:`CLIENT_HOOKS` it defines
  (``sampling_handler``, ``elicitation_handler``, ``wrap``, ...) is passed to ``connect`` too, so a
  test answers the server's requests, or adds middleware, with Python that runs in the page;
* ``{"op": "run", "session": id, "code": ...}`` runs Python source in that session's namespace, where
  ``client`` and ``url`` are bound; top-level ``await`` is allowed and the value of a final expression
  is the answer (pydantic models as their JSON form, by alias);
* ``{"op": "close", "session": id}`` closes the client;
* ``{"op": "checks", "url": ..., "headers": {...}}`` runs the transport half of ``pyodide-transport check`` here.

The answer is ``{"ok": true, "value": ..., "output": ...}`` or ``{"ok": false, "error": {"type",
"message", "traceback", "code"}, "output": ...}``: what a snippet raises travels back typed by
name, never as a value; ``output`` is what it printed (the host prints it again, so pytest
shows it with a failing test).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import io
import json
import sys
import traceback
from typing import Any

import pyodide_transport

from ..check import _host_options, transport_checks
from ..client import Client
from ..errors import MCPError

__all__ = ["CLIENT_HOOKS", "SESSIONS", "dispatch", "evaluate", "jsonable"]

CLIENT_HOOKS = (
    "sampling_handler",
    "elicitation_handler",
    "roots_handler",
    "on_log",
    "on_tools_list_changed",
    "on_resources_list_changed",
    "on_prompts_list_changed",
    "on_resource_updated",
    "on_error",
    "capabilities",
    "client_info",
    "wrap",
    "auth",
)
"""Names a session's ``setup`` code may define to have them passed to ``pyodide_transport.connect``."""

SESSIONS: dict[str, dict[str, Any]] = {}
"""Open sessions by id: each is the namespace its snippets run in (``client`` and ``url`` bound)."""


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: pydantic models by alias without unset fields, dataclasses as dicts."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_none=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


async def evaluate(code: str, namespace: dict[str, Any]) -> Any:
    """Run ``code`` in ``namespace`` with top-level ``await``; the value of its last expression, else ``None``."""
    tree = ast.parse(code, "<browser_mcp>", "exec")
    last: ast.expr | None = None
    if tree.body and isinstance(final := tree.body[-1], ast.Expr):
        last = final.value
        tree.body.pop()
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    body = eval(compile(tree, "<browser_mcp>", "exec", flags=flags), namespace)  # the test's own code
    if asyncio.iscoroutine(body):
        await body
    if last is None:
        return None
    value = eval(compile(ast.Expression(last), "<browser_mcp>", "eval", flags=flags), namespace)
    if asyncio.iscoroutine(value):
        value = await value
    return value


def _error(exc: BaseException) -> dict[str, Any]:
    code = exc.code if isinstance(exc, MCPError) else None
    message = exc.error_message if isinstance(exc, MCPError) else str(exc)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "message": message, "traceback": text[-6000:], "code": code}


async def _open(session: str, url: str, options: dict[str, Any], setup: str) -> dict[str, Any]:
    if session in SESSIONS:
        raise ValueError(f"session {session!r} is already open")
    namespace: dict[str, Any] = {"url": url, "asyncio": asyncio, "json": json, "__name__": "__browser_mcp__"}
    if setup:
        await evaluate(setup, namespace)
    hooks = {name: namespace[name] for name in CLIENT_HOOKS if name in namespace}
    client: Client = await pyodide_transport.connect(url, **{**_host_options(), **options, **hooks})
    namespace["client"] = client
    SESSIONS[session] = namespace
    info = client.server_info
    return {
        "protocol_version": client.protocol_version,
        "era": client.era,
        "server": jsonable(info) if info is not None else None,
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


async def _close(session: str) -> None:
    namespace = SESSIONS.pop(session, None)
    if namespace is not None:
        await namespace["client"].close()


async def dispatch(request: str) -> str:
    """Carry out one JSON request (see the module docstring) and return the JSON answer."""
    printed = io.StringIO()
    try:
        req = json.loads(request)
        op = req["op"]
        if op == "open":
            value: Any = await _open(req["session"], req["url"], req.get("options") or {}, req.get("setup") or "")
        elif op == "run":
            namespace = SESSIONS.get(req["session"])
            if namespace is None:
                raise LookupError(f"no open session {req['session']!r}")
            with contextlib.redirect_stdout(printed):
                value = jsonable(await evaluate(req["code"], namespace))
        elif op == "close":
            await _close(req["session"])
            value = None
        elif op == "checks":
            value = await transport_checks(req["url"], req.get("headers"))
        else:
            raise ValueError(f"unknown request {op!r}")
        return json.dumps({"ok": True, "value": value, "output": printed.getvalue()})
    except Exception as exc:  # the host raises it again, typed by name, with this traceback
        return json.dumps({"ok": False, "error": _error(exc), "output": printed.getvalue()})
