"""The MCP Apps host protocol (SEP-1865, 2026-01-26), sans-I/O: one :class:`AppHost` per rendered app.

The page feeds :meth:`AppHost.feed` every JSON-RPC message that came from the app's frame (the
sandbox proxy, which relays the app), and the outcome of the tool call that opened the app
(:meth:`AppHost.tool_result`); it then drains :meth:`AppHost.drain` for what to do: messages to post
to the frame, calls to make through the MCP client, a resize, lines for the explorer's log, things to
show the user, and the end of the app. Nothing here touches the DOM or the network.

States (:data:`TRANSITIONS`)::

    waiting-proxy --sandbox-proxy-ready--> resource-sent --ui/initialize--> initializing
    initializing --ui/notifications/initialized--> ready
    initializing | ready --teardown()--> tearing-down --answer or timeout--> closed
    waiting-proxy | resource-sent --teardown()--> closed

Rules the host keeps: nothing is sent to the app before ``ui/notifications/initialized`` (then
``tool-input``, then ``tool-result`` or ``tool-cancelled``); ``tools/call`` only reaches tools of this
server whose ``_meta.ui.visibility`` includes ``"app"``; unknown methods get method-not-found;
malformed messages are dropped, and reported once. ``ui/open-link`` is offered to the user, who opens
the link in a new tab or declines it (the app gets ``{}`` or an error then).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qs, urlencode, urlsplit

from pyodide_transport.apps import APP_MIME_TYPE, validate_csp
from pyodide_transport.errors import RemoteProtocolError

__all__ = [
    "HOST_PROTOCOL_VERSION",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "REFUSED",
    "TEARDOWN_TIMEOUT",
    "TRANSITIONS",
    "Action",
    "AppHost",
    "AppResource",
    "AppState",
    "CallTool",
    "Closed",
    "Log",
    "OfferLink",
    "PostMessage",
    "ReadResource",
    "Resize",
    "Show",
    "app_resource",
    "app_tools",
    "frame_url",
    "resource_uri",
    "sandbox_from_query",
    "sandbox_origin",
    "sandbox_problem",
    "ui_meta",
    "visibility",
]

HOST_PROTOCOL_VERSION: Final = "2026-01-26"
"""The MCP Apps revision this host speaks."""

TEARDOWN_TIMEOUT: Final = 2.0
"""Seconds the page waits for the answer to ``ui/resource-teardown`` before removing the frame."""

METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INVALID_REQUEST: Final = -32600
REFUSED: Final = -32000
"""The implementation-defined error of the spec (refused tool, denied link, ...)."""

TEARDOWN_ID: Final = "host-teardown-1"

AppState: TypeAlias = Literal["waiting-proxy", "resource-sent", "initializing", "ready", "tearing-down", "closed"]

TRANSITIONS: Final[dict[AppState, dict[str, AppState]]] = {
    "waiting-proxy": {"sandbox-proxy-ready": "resource-sent", "teardown": "closed"},
    "resource-sent": {"ui/initialize": "initializing", "teardown": "closed"},
    "initializing": {"ui/notifications/initialized": "ready", "teardown": "tearing-down"},
    "ready": {"teardown": "tearing-down"},
    "tearing-down": {"teardown-answered": "closed", "teardown-timeout": "closed"},
    "closed": {},
}
"""Every state change of an app, by event; an event a state does not list changes nothing."""


# ------------------------------------------------------------------ tool metadata


def ui_meta(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool's ``_meta.ui`` (a tool as JSON; the deprecated flat ``ui/resourceUri`` key is read too)."""
    meta = tool.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    ui = meta.get("ui")
    found = dict(ui) if isinstance(ui, dict) else {}
    if not isinstance(found.get("resourceUri"), str) and isinstance(meta.get("ui/resourceUri"), str):
        found["resourceUri"] = meta["ui/resourceUri"]
    return found


def resource_uri(tool: dict[str, Any]) -> str | None:
    """The ``ui://`` resource of a tool's app, or None (no app, or not a ``ui://`` URI)."""
    uri = ui_meta(tool).get("resourceUri")
    return uri if isinstance(uri, str) and uri.startswith("ui://") else None


def visibility(tool: dict[str, Any]) -> list[str]:
    """Who may call the tool: ``model`` and/or ``app`` (default both)."""
    value = ui_meta(tool).get("visibility")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return ["model", "app"]


def app_tools(tools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools that open an app (those with a ``ui://`` resource and ``model`` in their visibility)."""
    return [t for t in tools if resource_uri(t) is not None and "model" in visibility(t)]


@dataclass(frozen=True)
class AppResource:
    """An app's HTML and its sandbox settings, from the ``resources/read`` contents."""

    uri: str
    html: str
    csp: dict[str, Any] | None = None
    permissions: dict[str, Any] = field(default_factory=dict)
    prefers_border: bool | None = None


def app_resource(uri: str, result: dict[str, Any]) -> AppResource:
    """The app in a ``resources/read`` result (JSON), checked.

    Raises:
        ValueError: No contents for ``uri``, a MIME type other than :data:`APP_MIME_TYPE`, or no HTML.
    """
    import base64

    contents = result.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ValueError(f"{uri}: the server returned no contents")
    item = next((c for c in contents if isinstance(c, dict) and c.get("uri") == uri), contents[0])
    if not isinstance(item, dict):
        raise ValueError(f"{uri}: malformed contents")
    mime = str(item.get("mimeType") or "")
    if mime.replace(" ", "").lower() != APP_MIME_TYPE:
        raise ValueError(f"{uri}: MIME type {mime or '(none)'} is not {APP_MIME_TYPE}: not rendered as an app")
    if isinstance(item.get("text"), str):
        html = str(item["text"])
    elif isinstance(item.get("blob"), str):
        try:
            html = base64.b64decode(item["blob"], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{uri}: the blob is not base64 UTF-8 HTML ({exc})") from None
    else:
        raise ValueError(f"{uri}: the contents carry neither text nor blob")
    meta = item.get("_meta")
    ui = meta.get("ui") if isinstance(meta, dict) else None
    ui = ui if isinstance(ui, dict) else {}
    try:
        csp = validate_csp(ui.get("csp"))
    except RemoteProtocolError as exc:
        raise ValueError(f"{uri}: its _meta.ui.csp is refused: {exc}") from None
    permissions = ui.get("permissions") if isinstance(ui.get("permissions"), dict) else {}
    border = ui.get("prefersBorder")
    return AppResource(uri, html, csp, dict(permissions or {}), border if isinstance(border, bool) else None)


# ------------------------------------------------------------------ the sandbox proxy


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def sandbox_from_query(query: str) -> str | None:
    """The ``?sandbox=URL`` deep-link parameter (an http(s) URL), or None."""
    for value in parse_qs(query.lstrip("?")).get("sandbox", []):
        if _origin(value) is not None:
            return value
    return None


def sandbox_problem(url: str | None, page_origin: str) -> str | None:
    """Why the sandbox proxy at ``url`` cannot be used by a page at ``page_origin`` (None: it can)."""
    if not url:
        return (
            "No sandbox proxy is configured, so apps cannot be shown. Run the demo server (python -m server_demo), "
            "or serve dist/sandbox/ on a second origin and write its URL into apps/sandbox.json, "
            "or add ?sandbox=URL to this page's address."
        )
    origin = _origin(url)
    if origin is None:
        return f"The sandbox proxy URL {url!r} is not an http(s) URL."
    if origin == page_origin.lower():
        return "The sandbox proxy must be on another origin than the explorer (MCP Apps requires it)."
    return None


def sandbox_origin(url: str) -> str:
    """The origin messages from the sandbox proxy at ``url`` come from."""
    return _origin(url) or ""


def frame_url(base: str, csp: dict[str, Any] | None, parent: str) -> str:
    """The sandbox proxy's address for one app: its CSP (JSON, sent back as a header) and the host's origin."""
    query = {"parent": parent}
    if csp is not None:
        query["csp"] = json.dumps(csp, separators=(",", ":"), sort_keys=True)
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class PostMessage:
    """Post ``message`` to the app's frame (the sandbox proxy relays it)."""

    message: dict[str, Any]


@dataclass(frozen=True)
class CallTool:
    """Call a tool for the app; answer with :meth:`AppHost.call_done` (``request_id`` is the app's)."""

    request_id: str | int
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ReadResource:
    """Read a resource for the app; answer with :meth:`AppHost.call_done`."""

    request_id: str | int
    uri: str


@dataclass(frozen=True)
class Resize:
    """The app's content size changed: size the frame (``None``: leave that dimension)."""

    width: int | None
    height: int | None


@dataclass(frozen=True)
class Log:
    """A line for the explorer's log (the app's own logs and the host's audit of app requests)."""

    level: str
    logger: str
    text: str


@dataclass(frozen=True)
class Show:
    """Something the app sent for the user (``message``, ``model-context``) or a notice (``notice``)."""

    kind: str
    text: str


@dataclass(frozen=True)
class OfferLink:
    """The app asks to open ``url``: offer it; answer with :meth:`AppHost.link_decided`."""

    request_id: str | int
    url: str


@dataclass(frozen=True)
class Closed:
    """The app is done: remove its frame."""

    reason: str


Action: TypeAlias = PostMessage | CallTool | ReadResource | Resize | Log | Show | OfferLink | Closed


def _text_of(data: Any) -> str:
    return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, sort_keys=True)


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


# ------------------------------------------------------------------ the host


class AppHost:
    """The host side of one rendered app.

    Args:
        tool: The tool that opened the app (JSON, as ``tools/list`` gave it).
        arguments: The arguments of that call (sent as ``ui/notifications/tool-input``).
        resource: The app's HTML and sandbox settings.
        server_tools: This server's tools by name (JSON): the only ones the app may call.
        host_info: ``{"name", "version"}`` of the explorer.
        theme: ``light`` or ``dark``.
        max_height: The frame's maximum height in CSS pixels.
        width: The frame's fixed width, if known.
    """

    def __init__(
        self,
        *,
        tool: dict[str, Any],
        arguments: dict[str, Any],
        resource: AppResource,
        server_tools: dict[str, dict[str, Any]],
        host_info: dict[str, str],
        theme: str = "light",
        max_height: int = 600,
        width: int | None = None,
    ) -> None:
        self.tool = tool
        self.arguments = dict(arguments)
        self.resource = resource
        self.server_tools = dict(server_tools)
        self.host_info = dict(host_info)
        self.theme = theme if theme in ("light", "dark") else "light"
        self.max_height = max_height
        self.width = width
        self.state: AppState = "waiting-proxy"
        self.app_info: dict[str, Any] = {}
        self.dropped = 0  # malformed messages (reported once)
        self._actions: list[Action] = []
        self._outcome: dict[str, Any] | None = None  # the tool-result or tool-cancelled notification, once known
        self._delivered = False
        self._links: set[str | int] = set()

    # -- driving ----------------------------------------------------------------------------
    def drain(self) -> list[Action]:
        """The actions produced since the last drain, in order."""
        actions, self._actions = self._actions, []
        return actions

    def _post(self, message: dict[str, Any]) -> None:
        self._actions.append(PostMessage({"jsonrpc": "2.0", **message}))

    def _answer(self, request_id: str | int, result: dict[str, Any]) -> None:
        self._post({"id": request_id, "result": result})

    def _error(self, request_id: str | int, code: int, message: str) -> None:
        self._post({"id": request_id, "error": {"code": code, "message": message}})

    def _go(self, event: str) -> bool:
        after = TRANSITIONS[self.state].get(event)
        if after is None:
            return False
        self.state = after
        return True

    def _drop(self, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1:
            self._actions.append(
                Log(
                    "warning",
                    "app",
                    f"dropped a malformed message from the app ({why}); further ones are dropped silently",
                )
            )

    # -- the tool call that opened the app --------------------------------------------------
    def tool_result(self, result: dict[str, Any]) -> None:
        """The tool call ended with ``result`` (a ``CallToolResult`` as JSON, ``isError`` or not)."""
        self._settle({"method": "ui/notifications/tool-result", "params": result})

    def tool_cancelled(self, reason: str) -> None:
        """The tool call was cancelled or failed without a result."""
        self._settle({"method": "ui/notifications/tool-cancelled", "params": {"reason": reason}})

    def _settle(self, notification: dict[str, Any]) -> None:
        if self._outcome is None:
            self._outcome = notification
            self._deliver()

    def _deliver(self) -> None:
        if self.state == "ready" and self._outcome is not None and not self._delivered:
            self._delivered = True
            self._post(self._outcome)

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self, reason: str = "closed by the user") -> None:
        """Begin closing: ``ui/resource-teardown`` to an initialized app, else close at once."""
        if not self._go("teardown"):
            return
        if self.state == "closed":
            self._actions.append(Closed(reason))
            return
        self._post({"id": TEARDOWN_ID, "method": "ui/resource-teardown", "params": {"reason": reason}})

    def teardown_timeout(self) -> None:
        """The app did not answer the teardown in time: close anyway."""
        if self._go("teardown-timeout"):
            self._actions.append(Log("warning", "app", "the app did not answer ui/resource-teardown in time"))
            self._actions.append(Closed("timeout"))

    # -- answers of calls made for the app ----------------------------------------------------
    def call_done(self, request_id: str | int, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """A :class:`CallTool` or :class:`ReadResource` ended: ``result`` (JSON) or ``error`` (text)."""
        if self.state not in ("initializing", "ready"):
            return  # the app is gone or going: nobody to answer
        if error is not None or result is None:
            self._error(request_id, REFUSED, error or "the call failed")
        else:
            self._answer(request_id, result)

    def link_decided(self, request_id: str | int, opened: bool) -> None:
        """The user opened (``True``) or declined the link the app asked for."""
        if request_id not in self._links:
            return
        self._links.discard(request_id)
        if self.state not in ("initializing", "ready"):
            return
        if opened:
            self._answer(request_id, {})
        else:
            self._error(request_id, REFUSED, "Link opening denied by user")

    # -- messages from the frame ----------------------------------------------------------------
    def feed(self, message: Any) -> None:
        """One message from the app's frame (already checked to come from it)."""
        if self.state == "closed":
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self._drop("not a JSON-RPC 2.0 object")
            return
        method = message.get("method")
        has_id = "id" in message
        if method is None:
            if has_id and ("result" in message or "error" in message) and _is_id(message["id"]):
                self._response(message)
            else:
                self._drop("neither a request, a notification nor a response")
            return
        if not isinstance(method, str):
            self._drop("method is not a string")
            return
        params = message.get("params", {})
        if params is None:
            params = {}
        if not has_id:
            if isinstance(params, dict):
                self._notification(method, params)
            else:
                self._drop(f"{method}: params is not an object")
            return
        request_id = message["id"]
        if not _is_id(request_id):
            self._drop(f"{method}: id is not a string or an integer")
            return
        if not isinstance(params, dict):
            self._error(request_id, INVALID_PARAMS, "params must be an object")
            return
        self._request(request_id, method, params)

    def _response(self, message: dict[str, Any]) -> None:
        if message["id"] == TEARDOWN_ID and self._go("teardown-answered"):
            if "error" in message:
                self._actions.append(Log("warning", "app", f"the app's teardown failed: {_text_of(message['error'])}"))
            self._actions.append(Closed("closed"))

    def _notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "ui/notifications/sandbox-proxy-ready":
            if self._go("sandbox-proxy-ready"):
                resource = self.resource
                ready: dict[str, Any] = {"html": resource.html, "permissions": {}}
                if resource.csp is not None:
                    ready["csp"] = resource.csp
                self._post({"method": "ui/notifications/sandbox-resource-ready", "params": ready})
            return
        if method == "ui/notifications/initialized":
            if self._go("ui/notifications/initialized"):
                self._post({"method": "ui/notifications/tool-input", "params": {"arguments": self.arguments}})
                self._deliver()
            return
        if method == "ui/notifications/size-changed":
            self._actions.append(Resize(self._dimension(params.get("width")), self._height(params.get("height"))))
            return
        if method == "notifications/message":
            level = params.get("level")
            level = level if isinstance(level, str) else "info"
            logger = params.get("logger")
            self._actions.append(
                Log(level, f"app:{logger}" if isinstance(logger, str) else "app", _text_of(params.get("data")))
            )
            return
        if method.startswith("ui/notifications/sandbox-"):
            return  # reserved for the proxy
        self._actions.append(Log("debug", "app", f"ignored notification {method}"))

    def _dimension(self, value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return None
        return math.ceil(value)

    def _height(self, value: Any) -> int | None:
        height = self._dimension(value)
        return None if height is None else min(height, self.max_height)

    def _request(self, request_id: str | int, method: str, params: dict[str, Any]) -> None:
        if method == "ui/initialize":
            if not self._go("ui/initialize"):
                self._error(request_id, INVALID_REQUEST, f"ui/initialize is not expected now (state {self.state})")
                return
            info = params.get("appInfo")
            self.app_info = dict(info) if isinstance(info, dict) else {}
            self._answer(request_id, self.initialize_result())
            return
        if method == "ping":
            self._answer(request_id, {})
            return
        if self.state == "tearing-down":
            self._error(request_id, REFUSED, "the app is being closed")
            return
        if self.state not in ("initializing", "ready"):
            self._error(request_id, INVALID_REQUEST, "send ui/initialize first")
            return
        if method == "tools/call":
            self._tools_call(request_id, params)
        elif method == "resources/read":
            uri = params.get("uri")
            if not isinstance(uri, str) or not uri:
                self._error(request_id, INVALID_PARAMS, "resources/read needs a uri")
                return
            self._actions.append(Log("info", "app", f"app → resources/read {uri}"))
            self._actions.append(ReadResource(request_id, uri))
        elif method == "ui/open-link":
            url = params.get("url")
            if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")) or len(url) > 2048:
                self._error(request_id, REFUSED, "Invalid URL")
                return
            self._links.add(request_id)
            self._actions.append(Log("info", "app", f"app → ui/open-link {url} (offered to the user)"))
            self._actions.append(OfferLink(request_id, url))
        elif method in ("ui/message", "ui/update-model-context"):
            kind = "message" if method == "ui/message" else "model-context"
            self._actions.append(Log("info", "app", f"app → {method}"))
            self._actions.append(Show(kind, _text_of(params)))
            self._answer(request_id, {})
        elif method == "ui/request-display-mode":
            self._answer(request_id, {"mode": "inline"})
        else:
            self._error(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")

    def _tools_call(self, request_id: str | int, params: dict[str, Any]) -> None:
        name = params.get("name")
        arguments = params.get("arguments", {})
        if not isinstance(name, str) or not name:
            self._error(request_id, INVALID_PARAMS, "tools/call needs a tool name")
            return
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            self._error(request_id, INVALID_PARAMS, "tools/call arguments must be an object")
            return
        tool = self.server_tools.get(name)
        if tool is None:
            self._actions.append(Log("warning", "app", f"app → tools/call {name}: refused (not on this server)"))
            self._error(request_id, REFUSED, f"Tool {name} is not on this server")
            return
        allowed = visibility(tool)
        if "app" not in allowed:
            self._actions.append(Log("warning", "app", f"app → tools/call {name}: refused (visibility {allowed})"))
            self._error(
                request_id, REFUSED, f"Tool {name} may not be called by apps (visibility: {', '.join(allowed)})"
            )
            return
        self._actions.append(Log("info", "app", f"app → tools/call {name} {_text_of(arguments)}"))
        self._actions.append(CallTool(request_id, name, dict(arguments)))

    def initialize_result(self) -> dict[str, Any]:
        """The answer to ``ui/initialize``: protocol version, host info, capabilities and context."""
        dimensions: dict[str, int] = {"maxHeight": self.max_height}
        if self.width is not None:
            dimensions["width"] = self.width
        return {
            "protocolVersion": HOST_PROTOCOL_VERSION,
            "hostInfo": self.host_info,
            "hostCapabilities": {
                "serverTools": {},
                "serverResources": {},
                "logging": {},
                "openLinks": {},
                "sandbox": {"permissions": {}, "csp": self.resource.csp or {}},
            },
            "hostContext": {
                "toolInfo": {"tool": self.tool},
                "theme": self.theme,
                "displayMode": "inline",
                "availableDisplayModes": ["inline"],
                "containerDimensions": dimensions,
                "platform": "web",
            },
        }
