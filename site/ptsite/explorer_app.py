"""The MCP explorer page (Pyodide only): wires the pure view logic to the DOM and a Client.

Connection panel, tools (generated forms, results, progress, cancel),
resources (templates, subscriptions), prompts, the server log and the
message trace. Everything the server sends is rendered by
:func:`ptsite.dom.block_node` or ``textContent``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import js
import mcp_types as mt
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS
from pyodide.ffi import to_js

import pyodide_transport as pt
from pyodide_transport import _browser
from pyodide_transport.client import Client
from pyodide_transport.connection import transport_for
from pyodide_transport.errors import AuthorizationCancelledError, CORSError, MCPError
from pyodide_transport.oauth import OAuth, OAuthRequest
from pyodide_transport.oauth_core import OpenAuthorization

from .apps_view import AppsFeature
from .dom import FormView, Scope, block_node, by_testid, clear, el, report_error, set_error_sink, set_text, spawn
from .features import CallKind, CallOutcome, CallRecord, Feature
from .forms import build_form, parse_json_arguments
from .history_view import HistoryFeature
from .input_requests import InputRequests
from .palette import PaletteFeature
from .protocol_view import ProtocolFeature
from .roots_view import RootsFeature
from .servers_view import ServersFeature
from .settings import (
    IN_BROWSER,
    TRANSPORTS,
    Settings,
    deep_link,
    describe_error,
    endpoint_url,
    expand_uri_template,
    parse_deep_link,
    template_variables,
)
from .status_view import StatusFeature
from .tracing import TraceEntry, TracingTransport, oauth_entry
from .views import capability_summary, log_view, prompt_views, resource_contents_blocks, result_view

__all__ = ["Explorer", "main"]

MAX_TRACE = 1000
MAX_LOG = 1000


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


def _clock(wall: float) -> str:
    """Local wall-clock time with milliseconds, from the browser's clock."""
    date = js.Date.new(wall * 1000)
    return f"{str(date.toTimeString())[:8]}.{int(wall * 1000) % 1000:03d}"


class Explorer:
    """The explorer page's state and event handlers."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.url = ""
        self.scope = Scope()  # static page controls
        self.tool_scope = Scope()  # the selected tool's form
        self.resource_scope = Scope()
        self.prompt_scope = Scope()
        self.list_scope = Scope()
        self.tools: list[mt.Tool] = []
        self.resources: list[mt.Resource] = []
        self.templates: list[mt.ResourceTemplate] = []
        self.prompts: list[mt.Prompt] = []
        self.call_task: asyncio.Future[Any] | None = None
        self.viewing_uri: str | None = None
        self.update_count = 0
        self.trace_count = 0
        self.log_count = 0
        self.csp_blocked: list[str] = []
        self.upstreams: dict[str, dict[str, Any]] = {}  # this server's gateway upstreams, by name
        self._offered: tuple[dict[str, Any], str] | None = None  # (upstream, blocked URL) after a CORS failure
        # Sign-in for protected servers: tokens in this tab's sessionStorage, the sign-in in a popup
        # opened from the "Sign in" click (or in this tab), every discovery request in the trace.
        self.auth = OAuth(
            redirect_handler=self._sign_in, client_name="pyodide-transport explorer", on_request=self._on_oauth
        )
        self.input_requests = InputRequests(self)
        self.features: list[Feature] = [
            ServersFeature(self),
            StatusFeature(self),
            RootsFeature(self),
            self.input_requests,
            AppsFeature(self),
            HistoryFeature(self),
            ProtocolFeature(self),
            PaletteFeature(self),
        ]

    # ------------------------------------------------------------ page setup

    def setup(self) -> None:
        """Fill the static controls from the deep link and bind their events."""
        origin = str(js.location.origin)
        settings = parse_deep_link(str(js.location.search), origin)
        select = by_testid("transport-select")
        for choice in TRANSPORTS.values():
            select.appendChild(el("option", choice.label, value=choice.key))
        protocol = by_testid("protocol-select")
        for version in reversed(KNOWN_PROTOCOL_VERSIONS):
            protocol.appendChild(el("option", version, value=version))
        by_testid("server-url").value = settings.server
        select.value = settings.transport
        by_testid("header-name").value = settings.header_name
        by_testid("header-value").value = settings.header_value
        by_testid("gateway-auto").checked = settings.gateway_auto
        self._transport_hint()
        set_text(
            by_testid("runtime-info"),
            f"Python {sys.version.split()[0]} · Pyodide · pyodide-transport {pt.__version__}",
        )
        set_error_sink(self._show_app_error)

        self.scope.on(js.document, "securitypolicyviolation", self._on_csp_violation)
        self.scope.on(by_testid("connect-button"), "click", lambda _e: self.connect())
        self.scope.on(by_testid("disconnect-button"), "click", lambda _e: self.disconnect())
        self.scope.on(select, "change", lambda _e: self._transport_hint())
        for name in ("server-url", "transport-select"):
            self.scope.on(by_testid(name), "change", lambda _e: self._update_share_link())
        self.scope.on(by_testid("server-url"), "keydown", self._enter_connects)
        self.scope.on(by_testid("tools-refresh"), "click", lambda _e: self.load_tools())
        self.scope.on(by_testid("resources-refresh"), "click", lambda _e: self.load_resources())
        self.scope.on(by_testid("prompts-refresh"), "click", lambda _e: self.load_prompts())
        self.scope.on(by_testid("log-level"), "change", lambda _e: self.apply_log_level())
        self.scope.on(by_testid("log-clear"), "click", lambda _e: self._clear_log())
        self.scope.on(by_testid("trace-clear"), "click", lambda _e: self._clear_trace())
        for tab in js.document.querySelectorAll("[data-tab]"):
            name = str(tab.dataset.tab)
            self.scope.on(tab, "click", functools.partial(_ignore_event, self.show_tab, name))
        self.scope.on(by_testid("sign-out-button"), "click", lambda _e: self.sign_out())
        self.scope.on(by_testid("gateway-select"), "change", lambda _e: self._pick_upstream())
        self.scope.on(by_testid("gateway-auto"), "change", lambda _e: self._update_share_link())
        self.scope.on(by_testid("gateway-offer-button"), "click", lambda _e: self._take_offer())
        self.scope.on(select, "change", lambda _e: self._pick_upstream())
        self._update_share_link()
        for feature in self.features:
            feature.setup()
        by_testid("connect-button").disabled = False
        js.document.body.classList.remove("booting")
        js.document.body.dataset.ready = "true"
        spawn(self._start(settings))

    async def _load_gateway(self) -> None:
        """List the upstreams of this server's gateway (stdio servers, servers without CORS), if it has one."""
        try:
            response = await js.fetch(
                f"{js.location.origin}/gateway", to_js({"headers": {"Accept": "application/json"}})
            )
            if not response.ok:
                return
            listing = (await response.json()).to_py()
        except Exception:  # no gateway here (a static host, or --no-gateway): the list stays hidden
            return
        upstreams = listing.get("upstreams") if isinstance(listing, dict) else None
        if not isinstance(upstreams, list):
            return
        select = by_testid("gateway-select")
        for upstream in upstreams:
            if isinstance(upstream, dict) and isinstance(upstream.get("name"), str):
                name = upstream["name"]
                self.upstreams[name] = upstream
                select.appendChild(el("option", f"{name} ({upstream.get('kind', '?')})", value=name))
        by_testid("gateway-row").hidden = not self.upstreams
        by_testid("gateway-auto-row").hidden = not self.upstreams

    def _pick_upstream(self) -> None:
        """Point the URL at the chosen upstream's gateway endpoint for the chosen transport."""
        upstream = self.upstreams.get(str(by_testid("gateway-select").value))
        by_testid("gateway-route").hidden = True
        if upstream is None:
            return
        endpoints = upstream.get("endpoints") or {}
        origin = str(js.location.origin)
        if TRANSPORTS[str(by_testid("transport-select").value)].websocket:
            url = origin.replace("http", "ws", 1) + str(endpoints.get("ws", ""))
        else:
            url = origin + str(endpoints.get("mcp", ""))
        by_testid("server-url").value = url
        set_text(by_testid("transport-hint"), f"Through the gateway: {upstream['name']} ({upstream.get('kind')})")
        self._update_share_link()

    def _note_fallback(self) -> None:
        note = by_testid("connection-note")
        set_text(
            note,
            "No MCP server answered at this page's origin (a static host?): using the in-browser demo server, "
            "the demo server's core running in a Web Worker of this page.",
        )
        note.hidden = False

    async def _gateway_match(self, url: str) -> dict[str, Any] | None:
        """The upstream of this page's server's gateway configured with ``url``, if any."""
        query = js.encodeURIComponent(url)
        try:
            response = await js.fetch(
                f"{js.location.origin}/gateway/match?url={query}", to_js({"headers": {"Accept": "application/json"}})
            )
            if not response.ok:
                return None
            found = (await response.json()).to_py()
        except Exception:  # no gateway at this page's origin
            return None
        return found if isinstance(found, dict) and isinstance(found.get("name"), str) else None

    async def _offer_gateway(self, blocked: str) -> None:
        """After a CORS failure: offer (or, with "use the gateway" ticked, take) the gateway's route to ``blocked``."""
        upstream = await self._gateway_match(blocked)
        if upstream is None:
            return
        name = upstream["name"]
        self.upstreams.setdefault(name, upstream)
        self._offered = (upstream, blocked)
        if by_testid("gateway-auto").checked:
            await self._route_through(upstream, blocked)
            return
        set_text(
            by_testid("gateway-offer-text"),
            f"{blocked} does not let this page connect (CORS). This page's server has it configured as the "
            f"gateway upstream {name!r}: the gateway can connect to it for you.",
        )
        set_text(by_testid("gateway-offer-button"), f"Connect through the gateway ({name})")
        by_testid("gateway-offer").hidden = False

    def _take_offer(self) -> Any:
        offered, self._offered = self._offered, None
        by_testid("gateway-offer").hidden = True
        return self._route_through(*offered) if offered is not None else None

    async def _route_through(self, upstream: dict[str, Any], blocked: str) -> None:
        """Connect to ``blocked`` through the gateway upstream ``upstream``, and say so."""
        select = by_testid("gateway-select")
        if not any(str(option.value) == upstream["name"] for option in select.options):
            select.appendChild(
                el("option", f"{upstream['name']} ({upstream.get('kind', '?')})", value=upstream["name"])
            )
        select.value = upstream["name"]
        self._pick_upstream()
        route = by_testid("gateway-route")
        set_text(
            route,
            f"Direct connection to {blocked} was blocked by CORS: using the gateway route "
            f"{upstream['name']} ({by_testid('server-url').value}).",
        )
        route.hidden = False
        await self.connect()

    async def _start(self, settings: Settings) -> None:
        """Finish a sign-in that left this tab (the redirect fallback) and connect; else autoconnect."""
        spawn(self._load_gateway())  # beside, not before: the redirect's answer is taken at once
        try:
            server = await self.auth.resume_redirect()
        except Exception as exc:
            self._status("error", "Sign-in failed")
            self._error(describe_error(exc))
            return
        if server is not None:
            by_testid("server-url").value = server
            if TRANSPORTS[str(by_testid("transport-select").value)].websocket:
                by_testid("transport-select").value = "http-sse"  # the URL has its path: any HTTP choice keeps it
            await self.connect()
        elif settings.autoconnect:
            await self.connect(quiet=settings.implied)

    def _enter_connects(self, evt: Any) -> Any:
        if str(evt.key) == "Enter" and self.client is None:
            return self.connect()
        return None

    def _show_app_error(self, text: str) -> None:
        node = by_testid("app-error")
        set_text(node, text)
        node.hidden = False

    def settings(self) -> Settings:
        """The connection panel's settings."""
        return self._settings()

    def apply_settings(self, settings: Settings) -> None:
        """Fill the connection panel with ``settings`` (while disconnected)."""
        by_testid("server-url").value = settings.server
        by_testid("transport-select").value = settings.transport
        by_testid("header-name").value = settings.header_name
        by_testid("header-value").value = settings.header_value
        by_testid("gateway-auto").checked = settings.gateway_auto
        self._transport_hint()
        self._update_share_link()

    def _settings(self) -> Settings:
        return Settings(
            server=str(by_testid("server-url").value).strip(),
            transport=str(by_testid("transport-select").value),
            header_name=str(by_testid("header-name").value).strip(),
            header_value=str(by_testid("header-value").value).strip(),
            gateway_auto=bool(by_testid("gateway-auto").checked),
        )

    def _transport_hint(self) -> None:
        choice = TRANSPORTS.get(str(by_testid("transport-select").value))
        hint = ""
        if choice is not None:
            hint = f"{choice.path} · {choice.blurb}" if choice.path else choice.blurb
            if choice.websocket:
                hint += ". Browsers cannot send custom headers on a WebSocket: the header is not sent."
        set_text(by_testid("transport-hint"), hint)

    def _update_share_link(self) -> None:
        by_testid("share-link").setAttribute("href", "./index.html" + deep_link(self._settings()))

    def show_tab(self, name: str) -> None:
        """Show one pane."""
        for tab in js.document.querySelectorAll("[data-tab]"):
            tab.classList.toggle("active", str(tab.dataset.tab) == name)
        for pane in js.document.querySelectorAll("[data-pane]"):
            pane.classList.toggle("active", str(pane.dataset.pane) == name)

    # ------------------------------------------------------------ connection

    def _status(self, state: str, text: str) -> None:
        node = by_testid("connection-status")
        node.dataset.state = state
        set_text(node, text)

    def _error(self, text: str) -> None:
        node = by_testid("connection-error")
        set_text(node, text)
        node.hidden = not text

    def _set_connected_controls(self, connected: bool) -> None:
        by_testid("connect-button").disabled = connected
        by_testid("disconnect-button").disabled = not connected
        for name in ("tools-refresh", "resources-refresh", "prompts-refresh"):
            by_testid(name).disabled = not connected
        for name in ("server-url", "transport-select", "header-name", "header-value", "protocol-select"):
            by_testid(name).disabled = connected

    def _on_csp_violation(self, evt: Any) -> None:
        self.csp_blocked.append(str(evt.blockedURI))

    def _csp_explanation(self, url: str) -> str:
        """Say so when this page's own Content-Security-Policy blocked the connection."""
        origin = urlsplit(url)
        for blocked in self.csp_blocked:
            if urlsplit(blocked).netloc == origin.netloc:
                return (
                    f"This page's Content-Security-Policy (connect-src) blocked {url}: the server that serves "
                    "this page only lets it connect to its own origin. Open the explorer from a server without "
                    "that restriction to reach other MCP servers."
                )
        return ""

    async def connect(self, quiet: bool = False) -> None:
        """Connect with the panel's settings and load everything the server offers.

        Args:
            quiet: An automatic attempt at the page's own origin: a failure is no error.
        """
        if self.client is not None:
            return
        settings = self._settings()
        self._error("")
        by_testid("gateway-offer").hidden = True
        try:
            url = endpoint_url(settings.server, settings.transport)
        except ValueError as exc:
            self._status("error", "Not connected")
            self._error(str(exc))
            return
        self.url = url
        choice = TRANSPORTS[settings.transport]
        options: dict[str, Any] = {}
        for feature in self.features:
            options.update(feature.transport_options(url))
        if settings.header_name and not choice.websocket:
            options["headers"] = {settings.header_name: settings.header_value}
        if not choice.websocket:  # a page cannot set Authorization on a WebSocket
            options["auth"] = self.auth
        by_testid("connect-button").disabled = True
        self._status("connecting", f"Connecting to {url}…")
        try:
            if choice.in_browser:
                options = {}  # a MessagePort: no headers, no sign-in
            transport = TracingTransport(transport_for(url, **options), self._on_trace)
            client_options: dict[str, Any] = {
                "client_info": mt.Implementation(name="pyodide-transport-explorer", version=pt.__version__),
                "protocol_version": str(by_testid("protocol-select").value) or None,
                "on_log": self._on_log,
                "on_tools_list_changed": lambda: self.load_tools(),
                "on_resources_list_changed": lambda: self.load_resources(),
                "on_prompts_list_changed": lambda: self.load_prompts(),
                "on_resource_updated": self._on_resource_updated,
                "on_error": self._on_client_error,
            }
            for feature in self.features:
                client_options.update(feature.client_options())
            client = Client(transport, **client_options)
            await client.connect()
        except Exception as exc:
            by_testid("connect-button").disabled = False
            if quiet:  # no server behind this page (a static host): use the one in the browser
                by_testid("transport-select").value = IN_BROWSER
                self._transport_hint()
                set_text(by_testid("connection-error"), "")
                self._note_fallback()
                await self.connect()
                return
            await asyncio.sleep(0.05)  # a CSP violation event arrives just after the failed fetch
            self._status("error", "Connection failed")
            self._error(self._csp_explanation(url) or describe_error(exc, url))
            if isinstance(exc, CORSError):
                await self._offer_gateway(url)
            return
        self.client = client
        self._set_connected_controls(True)
        self._show_server_info(client, url)
        self._show_auth()
        self._status("connected", f"Connected · {choice.label}")
        self._update_share_link()
        caps = client.server_capabilities
        if caps is not None and caps.logging is not None:
            await self.apply_log_level()
        await asyncio.gather(self.load_tools(), self.load_resources(), self.load_prompts())
        for feature in self.features:
            try:
                await feature.connected(client)
            except Exception as exc:  # one feature's failure leaves the session and the others alone
                report_error(exc)

    def _show_server_info(self, client: Client, url: str) -> None:
        info = client.server_info
        name = f"{info.title or info.name} {info.version}" if info else "(the server did not say)"
        set_text(by_testid("server-name"), name)
        set_text(by_testid("protocol-version"), f"{client.protocol_version} ({client.era} era)")
        set_text(by_testid("endpoint-url"), url)
        session = getattr(client.transport, "session_id", None)
        set_text(
            by_testid("session-id"), session if isinstance(session, str) else "none (this era or mode has no session)"
        )
        caps = by_testid("server-capabilities")
        clear(caps)
        summary = capability_summary(_dump(client.server_capabilities) if client.server_capabilities else None)
        for label in summary or ["none"]:
            caps.appendChild(el("li", label))
        set_text(by_testid("server-instructions"), client.instructions or "—")
        by_testid("server-info").hidden = False

    async def disconnect(self) -> None:
        """Close the session and reset the panes."""
        client, self.client = self.client, None
        if self.call_task is not None:
            self.call_task.cancel()
        if client is not None:
            await client.close()
        for feature in self.features:
            feature.disconnected()
        self._set_connected_controls(False)
        self._status("disconnected", "Disconnected")
        by_testid("server-info").hidden = True
        self.tools, self.resources, self.templates, self.prompts = [], [], [], []
        self.viewing_uri = None
        for scope in (self.tool_scope, self.resource_scope, self.prompt_scope, self.list_scope):
            scope.clear()
        for name, text in (("tool-list", "tools"), ("resource-list", "resources"), ("prompt-list", "prompts")):
            clear(by_testid(name))
            by_testid(name).appendChild(el("li", f"Connect to list {text}.", cls="empty"))
        clear(by_testid("template-list"))
        for name, text in (("tool-detail", "a tool"), ("resource-detail", "a resource"), ("prompt-detail", "a prompt")):
            clear(by_testid(name))
            by_testid(name).appendChild(el("p", f"Select {text}.", cls="empty"))
        for name in ("tools-count", "resources-count", "prompts-count"):
            set_text(by_testid(name), "")

    # ------------------------------------------------------------ sign-in

    async def _sign_in(self, prompt: OpenAuthorization) -> str:
        """The OAuth redirect handler: ask for a click, then sign in in a popup (or in this tab).

        Browsers open a popup only during a user gesture, so the popup opens in the "Sign in"
        click handler itself; when it is blocked (or "in this tab" is ticked) the page leaves for
        the authorization server and the site's ``oauth/callback.html`` brings the user back.
        """
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        server = prompt.pending.server_url
        asked = f" (scope {prompt.scope})" if prompt.scope else ""
        reason = {
            "sign-in": f"{server} asks you to sign in{asked}.",
            "expired": f"Your sign-in to {server} expired: it no longer accepts the token. Sign in again{asked}.",
            "step-up": f"{server} needs more access for this{asked}: sign in again to grant it.",
        }[prompt.reason]
        panel, text = by_testid("auth-panel"), by_testid("auth-reason")
        set_text(text, reason)
        panel.dataset.reason = prompt.reason
        panel.hidden = False
        previous = str(by_testid("connection-status").textContent)
        self._status("auth", "Sign-in required")
        buttons = Scope()

        def leave() -> None:
            set_text(text, "Signing in in this tab…")
            _browser.redirect_to(prompt.url, prompt.pending.state)

        def click(_evt: Any) -> None:
            if answer.done():
                return
            if by_testid("sign-in-redirect").checked:
                leave()
                return
            promise = _browser.start_popup(prompt.url, prompt.pending.state)
            if promise is None:  # blocked: fall back to a redirect
                leave()
                return
            set_text(text, "Waiting for the sign-in window…")
            by_testid("sign-in-button").disabled = True
            spawn(_settle_with(answer, _browser.wait_popup(promise)))

        def cancel(_evt: Any) -> None:
            if not answer.done():
                answer.set_exception(AuthorizationCancelledError("you cancelled it"))

        buttons.on(by_testid("sign-in-button"), "click", click)
        buttons.on(by_testid("sign-in-cancel"), "click", cancel)
        try:
            return await answer
        finally:
            buttons.clear()
            by_testid("sign-in-button").disabled = False
            panel.hidden = True
            if self.client is not None:
                self._status("connected", previous)

    def _on_oauth(self, request: OAuthRequest) -> None:
        self._on_trace(oauth_entry(request, time.time()))
        if request.purpose in ("token", "refresh") and request.status == 200:
            asyncio.get_running_loop().call_soon(self._show_auth)  # the tokens are stored by then

    def _show_auth(self) -> None:
        """Show the scopes granted and the token's expiry (hidden when not signed in)."""
        tokens = self.auth.tokens(self.url) if self.url else None
        by_testid("auth-info").hidden = tokens is None
        if tokens is None:
            return
        set_text(by_testid("auth-scopes"), tokens.scope or "(the server named none)")
        if tokens.expires_at is None:
            expiry = "does not expire (the server gave no lifetime)"
        else:
            left = tokens.expires_at - time.time()
            when = _clock(tokens.expires_at)[:8]
            expiry = f"expired at {when}" if left <= 0 else f"expires at {when} (in {_minutes(left)})"
            if tokens.refresh_token:
                expiry += " · refreshable"
        set_text(by_testid("auth-expiry"), expiry)

    async def sign_out(self) -> None:
        """Revoke and forget the tokens for this server, then disconnect."""
        url = self.url
        await self.disconnect()
        await self.auth.sign_out(url)
        by_testid("auth-info").hidden = True
        self._status("disconnected", "Signed out")

    def _require(self) -> Client:
        if self.client is None:
            raise RuntimeError("not connected")
        return self.client

    def _on_client_error(self, exc: Exception) -> None:
        self.add_log("client", "pyodide-transport", f"{type(exc).__name__}: {exc}")
        client = self.client
        if client is not None and not client.is_connected():
            self._status("error", "Connection lost")
            self._error(describe_error(exc, self.url))

    # ------------------------------------------------------------------ calls

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: Any = None, origin: str = "explorer"
    ) -> mt.CallToolResult:
        """Call a tool and record the call (history, features); errors propagate to the caller."""
        client = self._require()
        result: mt.CallToolResult = await self._recorded(
            "tool", name, arguments, origin, client.call_tool(name, arguments, progress=progress)
        )
        return result

    async def get_prompt(self, name: str, arguments: dict[str, str], *, origin: str = "explorer") -> mt.GetPromptResult:
        """Get a prompt and record the call."""
        client = self._require()
        result: mt.GetPromptResult = await self._recorded(
            "prompt", name, dict(arguments), origin, client.get_prompt(name, arguments)
        )
        return result

    async def read_resource(self, uri: str, *, origin: str = "explorer") -> mt.ReadResourceResult:
        """Read a resource and record the call."""
        client = self._require()
        result: mt.ReadResourceResult = await self._recorded("resource", uri, {}, origin, client.read_resource(uri))
        return result

    async def _recorded(self, kind: CallKind, name: str, arguments: dict[str, Any], origin: str, call: Any) -> Any:
        """Await ``call``, then tell every feature how it went (one :class:`CallRecord`)."""
        client = self._require()
        wall, started = time.time(), time.perf_counter()
        outcome: CallOutcome = "ok"
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            answer = await call
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except MCPError as exc:
            outcome, error = "error", f"The server refused the call: {exc}"
            raise
        except Exception as exc:
            outcome, error = "error", describe_error(exc, self.url)
            raise
        else:
            result = _dump(answer)
            if result.get("isError"):
                outcome = "tool-error"
            return answer
        finally:
            record = CallRecord(
                kind=kind,
                name=name,
                arguments=arguments,
                server=self.url,
                protocol_version=client.protocol_version or "",
                era=client.era or "",
                started=wall,
                duration=time.perf_counter() - started,
                outcome=outcome,
                result=result,
                error=error,
                origin=origin,
            )
            for feature in self.features:
                try:
                    feature.on_call(record)
                except Exception as exc:
                    report_error(exc)

    # ------------------------------------------------------------------ lists

    def _fill_list(self, testid: str, items: list[tuple[str, str, str]], on_pick: Any, empty: str) -> None:
        """Fill a list with buttons (key, name, description); ``on_pick(key)`` on click."""
        node = by_testid(testid)
        clear(node)
        if not items:
            node.appendChild(el("li", empty, cls="empty"))
        for key, name, desc in items:
            button = el(
                "button",
                type="button",
                testid=f"{testid.removesuffix('-list')}-item-{key}",
                data_key=key,
                children=[el("span", name, cls="name"), el("span", desc, cls="desc", title=desc)],
            )
            self.list_scope.on(button, "click", functools.partial(_ignore_event, on_pick, key))
            node.appendChild(el("li", children=[button]))

    def _select_in(self, testid: str, key: str) -> None:
        for button in by_testid(testid).querySelectorAll("button[data-key]"):
            button.classList.toggle("selected", str(button.dataset.key) == key)

    async def load_tools(self) -> None:
        """List the server's tools."""
        client = self._require()
        caps = client.server_capabilities
        if caps is not None and caps.tools is None:
            self._fill_list("tool-list", [], None, "This server offers no tools.")
            return
        try:
            self.tools = list((await client.list_tools()).tools)
        except Exception as exc:
            self._fill_list("tool-list", [], None, f"Listing tools failed: {describe_error(exc)}")
            return
        items = [(t.name, t.name, t.title or t.description or "") for t in self.tools]
        self._fill_list("tool-list", items, self.select_tool, "No tools.")
        set_text(by_testid("tools-count"), str(len(self.tools)))
        for feature in self.features:
            feature.on_tools(self.tools)

    async def load_resources(self) -> None:
        """List resources and templates."""
        client = self._require()
        caps = client.server_capabilities
        if caps is not None and caps.resources is None:
            self._fill_list("resource-list", [], None, "This server offers no resources.")
            return
        try:
            self.resources = list((await client.list_resources()).resources)
            self.templates = list((await client.list_resource_templates()).resource_templates)
        except Exception as exc:
            self._fill_list("resource-list", [], None, f"Listing resources failed: {describe_error(exc)}")
            return
        items = [(r.uri, r.name, r.uri) for r in self.resources]
        self._fill_list("resource-list", items, self.open_resource, "No resources.")
        templates = [(t.name, t.name, t.uri_template) for t in self.templates]
        self._fill_list("template-list", templates, self.select_template, "No templates.")
        set_text(by_testid("resources-count"), str(len(self.resources) + len(self.templates)))

    async def load_prompts(self) -> None:
        """List prompts."""
        client = self._require()
        caps = client.server_capabilities
        if caps is not None and caps.prompts is None:
            self._fill_list("prompt-list", [], None, "This server offers no prompts.")
            return
        try:
            self.prompts = list((await client.list_prompts()).prompts)
        except Exception as exc:
            self._fill_list("prompt-list", [], None, f"Listing prompts failed: {describe_error(exc)}")
            return
        items = [(p.name, p.name, p.title or p.description or "") for p in self.prompts]
        self._fill_list("prompt-list", items, self.select_prompt, "No prompts.")
        set_text(by_testid("prompts-count"), str(len(self.prompts)))

    # ------------------------------------------------------------------ tools

    def select_tool(self, name: str, arguments: dict[str, Any] | None = None) -> None:
        """Show a tool's form; with ``arguments``, in the JSON editor holding them (edit and re-run)."""
        tool = next((t for t in self.tools if t.name == name), None)
        if tool is None:
            return
        self._select_in("tool-list", name)
        self.tool_scope.clear()
        detail = by_testid("tool-detail")
        clear(detail)
        schema = _dump(tool)["inputSchema"]
        form = build_form(schema)
        head = el("div", cls="detail-head", children=[el("h3", tool.name, testid="tool-title")])
        if tool.title:
            head.appendChild(el("span", tool.title, cls="muted"))
        if tool.annotations is not None:
            for flag, label in (
                ("read_only_hint", "read-only"),
                ("destructive_hint", "destructive"),
                ("idempotent_hint", "idempotent"),
            ):
                if getattr(tool.annotations, flag):
                    head.appendChild(el("span", label, cls="badge warn" if flag == "destructive_hint" else "badge"))
        ui = _ui_meta(tool)
        if ui.get("resourceUri"):
            head.appendChild(el("span", "MCP App", cls="badge", testid="tool-app-badge", title=str(ui["resourceUri"])))
        visibility = ui.get("visibility")
        if isinstance(visibility, list) and "model" not in visibility:
            head.appendChild(el("span", "app-only", cls="badge", testid="tool-app-only", title="hidden from the model"))
        detail.appendChild(head)
        if tool.description:
            detail.appendChild(el("p", tool.description, cls="muted", testid="tool-description"))

        view = FormView(form, self.tool_scope)
        json_box = el(
            "textarea",
            cls="code",
            testid="json-editor",
            spellcheck="false",
            hidden=True,
            rows=8,
            aria_label="Arguments as JSON",
        )
        mode = el("button", "Edit as JSON", type="button", cls="small-btn", testid="form-mode-toggle")
        if form.fallback:
            view.node.hidden = True
            json_box.hidden = False
            json_box.value = "{}"
            mode.disabled = True
            note = f"The form cannot express this schema ({form.fallback}): edit the arguments as JSON."
            detail.appendChild(el("p", note, cls="hint"))
        mode_row = el(
            "div",
            cls="mode-row",
            children=[el("strong", "Arguments", cls="small"), mode],
        )
        detail.appendChild(mode_row)
        if form.notes:  # what the schema says beyond the fields: shown, not enforced (the server checks it)
            notes = el("div", cls="hint", testid="schema-notes")
            notes.appendChild(el("div", "The schema also requires (the server checks these):"))
            for line in form.notes:
                notes.appendChild(el("code", line, cls="small"))
            detail.appendChild(notes)
        detail.appendChild(view.node)
        detail.appendChild(json_box)
        json_error = el("p", cls="error-text", testid="json-error", hidden=True)
        detail.appendChild(json_error)

        def toggle(_evt: Any) -> None:
            if json_box.hidden:
                args, _ = view.values()
                view.show_errors({})
                json_box.value = json.dumps(args, indent=2)
                json_box.hidden, view.node.hidden = False, True
                set_text(mode, "Back to the form")
            else:
                json_box.hidden, view.node.hidden = True, False
                set_text(mode, "Edit as JSON")

        self.tool_scope.on(mode, "click", toggle)
        if arguments is not None:
            json_box.value = json.dumps(arguments, indent=2)
            json_box.hidden, view.node.hidden = False, True
            set_text(mode, "Back to the form")

        call = el("button", "Call tool", type="button", cls="primary", testid="call-button")
        cancel = el("button", "Cancel", type="button", cls="danger", testid="cancel-button", disabled=True)
        detail.appendChild(el("div", cls="buttons", children=[call, cancel]))
        bar = el("progress", testid="progress-bar", max="1")
        bar_text = el("span", "", cls="small muted", testid="progress-text")
        progress_row = el("div", cls="progress-row", testid="progress", hidden=True, children=[bar, bar_text])
        detail.appendChild(progress_row)
        result_box = el("div", testid="tool-result-box")
        detail.appendChild(result_box)

        def read_arguments() -> dict[str, Any] | None:
            if not json_box.hidden:
                args, problem = parse_json_arguments(str(json_box.value))
                set_text(json_error, problem)
                json_error.hidden = not problem
                return args
            args, errors = view.values()
            return None if errors else args

        async def run(_evt: Any) -> None:
            args = read_arguments()
            if args is None:
                return
            call.disabled, cancel.disabled = True, False
            progress_row.hidden = True
            bar.removeAttribute("value")
            set_text(bar_text, "")
            clear(result_box)
            result_box.appendChild(el("p", "Calling…", cls="muted", testid="call-pending"))

            def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress_row.hidden = False
                if total:
                    bar.max = total
                    bar.value = value
                    text = f"{value:g} / {total:g}"
                else:
                    bar.removeAttribute("value")
                    text = f"{value:g}"
                set_text(bar_text, f"{text}{' · ' + message if message else ''}")

            self.call_task = asyncio.ensure_future(self.call_tool(tool.name, args, progress=on_progress))
            try:
                result = await self.call_task
            except asyncio.CancelledError:
                self._render_outcome(result_box, "Cancelled: the server was told to stop.", "cancelled")
            except MCPError as exc:
                self._render_outcome(result_box, f"The server refused the call: {exc}", "error")
            except Exception as exc:
                self._render_outcome(result_box, describe_error(exc, self.url), "error")
            else:
                self.render_result(result_box, _dump(result))
            finally:
                self.call_task = None
                call.disabled, cancel.disabled = False, True

        def stop(_evt: Any) -> None:
            if self.call_task is not None:
                self.call_task.cancel()

        self.tool_scope.on(call, "click", run)
        self.tool_scope.on(cancel, "click", stop)

    def _render_outcome(self, box: Any, text: str, state: str) -> None:
        clear(box)
        head = el("div", cls="result-head", children=[el("span", state, testid="result-status")])
        body = el("div", cls="result-body", children=[el("pre", text, cls="block notice", testid="result-block")])
        box.appendChild(el("div", cls="result error", testid="tool-result", data_state=state, children=[head, body]))

    def render_result(self, box: Any, raw: dict[str, Any]) -> None:
        """Show a tool result (its content blocks and structuredContent) in ``box``."""
        view = result_view(raw)
        clear(box)
        state = "error" if view.is_error else "ok"
        label = "Tool error (isError)" if view.is_error else "Result"
        head = el(
            "div",
            cls="result-head",
            children=[el("span", label, testid="result-status"), el("span", f"{len(view.blocks)} content blocks")],
        )
        body = el("div", cls="result-body")
        for block in view.blocks:
            body.appendChild(block_node(block, on_link=self._open_resource_link, scope=self.tool_scope))
        if view.structured is not None:
            body.appendChild(
                el(
                    "div",
                    cls="structured",
                    children=[
                        el("h4", "structuredContent"),
                        el("pre", view.structured, cls="block json", testid="result-structured"),
                    ],
                )
            )
        box.appendChild(el("div", cls=f"result {state}", testid="tool-result", data_state=state, children=[head, body]))

    async def _open_resource_link(self, uri: str) -> None:
        self.show_tab("resources")
        await self.open_resource(uri)

    # -------------------------------------------------------------- resources

    async def open_resource(self, uri: str) -> None:
        """Read a resource and show it, with a subscribe toggle."""
        self._select_in("resource-list", uri)
        self._select_in("template-list", "")
        client = self._require()
        self.resource_scope.clear()
        detail = by_testid("resource-detail")
        clear(detail)
        self.viewing_uri, self.update_count = uri, 0
        detail.appendChild(el("div", cls="detail-head", children=[el("h3", uri, testid="resource-uri")]))
        caps = client.server_capabilities
        can_subscribe = bool(caps and caps.resources and caps.resources.subscribe)
        subscribed = uri in client.subscriptions
        toggle = el(
            "button",
            "Unsubscribe" if subscribed else "Subscribe to updates",
            type="button",
            testid="subscribe-button",
            disabled=not can_subscribe,
        )
        live = el("span", "", cls="badge ok", testid="resource-live", hidden=not subscribed)
        detail.appendChild(el("div", cls="buttons", children=[toggle, live]))
        content = el("div", cls="result-body", testid="resource-content")
        detail.appendChild(content)

        async def flip(_evt: Any) -> None:
            toggle.disabled = True
            try:
                if uri in client.subscriptions:
                    await client.unsubscribe(uri)
                else:
                    await client.subscribe(uri)
            except Exception as exc:
                self.add_log("client", "explorer", f"subscription change failed: {describe_error(exc)}")
            now = uri in client.subscriptions
            set_text(toggle, "Unsubscribe" if now else "Subscribe to updates")
            live.hidden = not now
            set_text(live, f"live · {self.update_count} updates")
            toggle.disabled = False

        self.resource_scope.on(toggle, "click", flip)
        await self._show_contents(uri, content)

    async def _show_contents(self, uri: str, content: Any, record: bool = True) -> None:
        try:
            result = await self.read_resource(uri) if record else await self._require().read_resource(uri)
        except Exception as exc:
            clear(content)
            content.appendChild(el("pre", describe_error(exc), cls="block notice", testid="resource-block"))
            return
        clear(content)
        for block in resource_contents_blocks(_dump(result).get("contents")):
            content.appendChild(block_node(block, testid="resource-block"))

    def _on_resource_updated(self, uri: str) -> None:
        self.add_log("notice", "resources/updated", uri)
        if uri != self.viewing_uri:
            return
        self.update_count += 1
        live = by_testid("resource-live")
        if live is not None:
            set_text(live, f"live · {self.update_count} updates")
        content = by_testid("resource-content")
        if content is not None and self.client is not None:
            spawn(self._show_contents(uri, content, record=False))

    def select_template(self, name: str) -> None:
        """Show a template's variable inputs and a Read button."""
        template = next((t for t in self.templates if t.name == name), None)
        if template is None:
            return
        self._select_in("template-list", name)
        self._select_in("resource-list", "")
        self.resource_scope.clear()
        self.viewing_uri = None
        detail = by_testid("resource-detail")
        clear(detail)
        detail.appendChild(
            el("div", cls="detail-head", children=[el("h3", template.uri_template, testid="template-uri")])
        )
        if template.description:
            detail.appendChild(el("p", template.description, cls="muted"))
        inputs: dict[str, Any] = {}
        form = el("div", cls="form")
        for var in template_variables(template.uri_template):
            box = el("input", type="text", testid=f"template-var-{var}", spellcheck="false")
            options = el("datalist", id=f"complete-{var}")
            box.setAttribute("list", f"complete-{var}")
            inputs[var] = box
            form.appendChild(el("label", children=[el("span", var, cls="label"), box, options]))
            ref = {"type": "ref/resource", "uri": template.uri_template}
            complete = functools.partial(_ignore_event, self._complete, ref, var, box, options, dict)
            self.resource_scope.on(box, "input", complete)
        preview = el("p", "", cls="small muted", testid="template-preview")
        form.appendChild(preview)
        detail.appendChild(form)
        read = el("button", "Read", type="button", cls="primary", testid="template-read")
        detail.appendChild(el("div", cls="buttons", children=[read]))
        content = el("div", cls="result-body", testid="resource-content")
        detail.appendChild(content)

        def uri() -> str:
            return expand_uri_template(template.uri_template, {k: str(v.value) for k, v in inputs.items()})

        def refresh(_evt: Any) -> None:
            set_text(preview, uri())

        for box in inputs.values():
            self.resource_scope.on(box, "input", refresh)
        refresh(None)

        async def go(_evt: Any) -> None:
            await self._show_contents(uri(), content)

        self.resource_scope.on(read, "click", go)

    async def _complete(
        self, ref: dict[str, str], var: str, box: Any, options: Any, context: Callable[[], dict[str, str]]
    ) -> None:
        """Offer the server's completions for ``var`` (``completion/complete``) in the field's datalist."""
        client = self.client
        caps = client.server_capabilities if client else None
        if client is None or caps is None or caps.completions is None:
            return
        try:
            result = await client.complete(ref, var, str(box.value), context() or None)
        except Exception:  # a completion is a hint: a failure leaves the field as typed
            return
        clear(options)
        for value in result.completion.values:
            options.appendChild(el("option", value=value))

    # ---------------------------------------------------------------- prompts

    def select_prompt(self, name: str) -> None:
        """Show a prompt's argument form."""
        prompt = next((p for p in self.prompts if p.name == name), None)
        if prompt is None:
            return
        self._select_in("prompt-list", name)
        self.prompt_scope.clear()
        detail = by_testid("prompt-detail")
        clear(detail)
        detail.appendChild(el("div", cls="detail-head", children=[el("h3", prompt.name, testid="prompt-title")]))
        if prompt.description:
            detail.appendChild(el("p", prompt.description, cls="muted"))
        schema: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for arg in prompt.arguments or []:
            schema["properties"][arg.name] = {"type": "string", "description": arg.description or ""}
            if arg.title:
                schema["properties"][arg.name]["title"] = arg.title
            if arg.required:
                schema["required"].append(arg.name)
        view = FormView(build_form(schema), self.prompt_scope, prefix="prompt-arg")
        detail.appendChild(view.node)

        def filled() -> dict[str, str]:
            return {k: str(v) for k, v in view.raw().items() if isinstance(v, str) and v}

        ref = {"type": "ref/prompt", "name": prompt.name}
        for arg in prompt.arguments or []:
            box = by_testid(f"prompt-arg-{arg.name}", view.node)
            if box is None:
                continue
            options = el("datalist", id=f"prompt-complete-{arg.name}", testid=f"prompt-complete-{arg.name}")
            box.setAttribute("list", f"prompt-complete-{arg.name}")
            box.setAttribute("autocomplete", "off")
            box.parentNode.appendChild(options)
            complete = functools.partial(_ignore_event, self._complete, ref, arg.name, box, options, filled)
            self.prompt_scope.on(box, "input", complete)
            self.prompt_scope.on(box, "focus", complete)
        get = el("button", "Get prompt", type="button", cls="primary", testid="prompt-get")
        detail.appendChild(el("div", cls="buttons", children=[get]))
        out = el("div", testid="prompt-result")
        detail.appendChild(out)

        async def run(_evt: Any) -> None:
            args, errors = view.values()
            if errors:
                return
            clear(out)
            try:
                result = await self.get_prompt(prompt.name, {k: str(v) for k, v in args.items()})
            except Exception as exc:
                out.appendChild(el("pre", describe_error(exc), cls="block notice", testid="prompt-message"))
                return
            raw = _dump(result)
            if raw.get("description"):
                out.appendChild(el("p", raw["description"], cls="muted"))
            for message in prompt_views(raw):
                out.appendChild(
                    el(
                        "div",
                        cls="card",
                        testid="prompt-message",
                        data_role=message.role,
                        children=[el("div", message.role, cls="meta"), block_node(message.block, "prompt-block")],
                    )
                )

        self.prompt_scope.on(get, "click", run)

    # -------------------------------------------------------------------- log

    async def apply_log_level(self) -> None:
        """Ask the server for messages at the selected level and above."""
        client = self.client
        if client is None:
            return
        level = str(by_testid("log-level").value)
        try:
            await client.set_logging_level(level)  # type: ignore[arg-type]
        except Exception as exc:
            self.add_log("client", "explorer", f"setting the log level failed: {describe_error(exc)}")

    def _on_log(self, params: mt.LoggingMessageNotificationParams) -> None:
        view = log_view(_dump(params))
        self.add_log(view.level, view.logger, view.text)

    def add_log(self, level: str, logger: str, text: str) -> None:
        """Add a line to the Log pane."""
        listing = by_testid("log-list")
        entry = el(
            "li",
            cls="log-entry",
            testid="log-entry",
            data_level=level,
            children=[
                el("span", _clock(time.time()), cls="muted"),
                el("span", level, cls=f"lvl lvl-{level}"),
                el("span", logger, cls="muted"),
                el("span", text, cls="text"),
            ],
        )
        listing.appendChild(entry)
        while listing.childElementCount > MAX_LOG:
            listing.firstElementChild.remove()
        self.log_count += 1
        set_text(by_testid("log-count"), str(self.log_count))

    def _clear_log(self) -> None:
        clear(by_testid("log-list"))
        self.log_count = 0
        set_text(by_testid("log-count"), "")

    # ------------------------------------------------------------------ trace

    def _on_trace(self, entry: TraceEntry) -> None:
        for feature in self.features:
            try:
                feature.on_trace(entry)
            except Exception as exc:
                report_error(exc)
        listing = by_testid("trace-list")
        duration = f"{entry.duration * 1000:.1f} ms" if entry.duration is not None else ""
        what = " ".join(p for p in (entry.kind, entry.method, f"#{entry.msg_id}" if entry.msg_id else "") if p)
        summary = el(
            "summary",
            children=[
                el("span", _clock(entry.wall_time), cls="muted"),
                el("span", entry.arrow, cls="arrow", title="sent" if entry.direction == "out" else "received"),
                el("span", what, cls="what"),
                el("span", duration, cls="dur", testid="trace-duration"),
            ],
        )
        body = el("pre", entry.pretty(), testid="trace-body")
        shown = [summary, body]
        if entry.headers:  # e.g. Mcp-Param-* (SEP-2243): on the wire, not in the body
            lines = "\n".join(f"{name}: {value}" for name, value in entry.headers.items())
            shown.insert(1, el("pre", lines, cls="trace-headers", testid="trace-headers"))
        node = el(
            "li",
            testid="trace-entry",
            cls=f"trace-entry {entry.direction} kind-{entry.kind}",
            data_direction=entry.direction,
            data_kind=entry.kind,
            data_method=entry.method,
            children=[el("details", children=shown)],
        )
        listing.appendChild(node)
        while listing.childElementCount > MAX_TRACE:
            listing.firstElementChild.remove()
        self.trace_count += 1
        set_text(by_testid("trace-count"), str(self.trace_count))

    def _clear_trace(self) -> None:
        clear(by_testid("trace-list"))
        self.trace_count = 0
        set_text(by_testid("trace-count"), "")


def _ui_meta(tool: mt.Tool) -> dict[str, Any]:
    """The tool's MCP Apps metadata (``_meta.ui``; the deprecated flat ``ui/resourceUri`` key too)."""
    meta = tool.meta or {}
    ui = meta.get("ui")
    found = dict(ui) if isinstance(ui, dict) else {}
    if "resourceUri" not in found and isinstance(meta.get("ui/resourceUri"), str):
        found["resourceUri"] = meta["ui/resourceUri"]
    return found


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


async def _settle_with(answer: asyncio.Future[str], outcome: Any) -> None:
    """Resolve ``answer`` with what ``outcome`` gives (or raises), unless it was settled already."""
    try:
        value = await outcome
    except Exception as exc:
        if not answer.done():
            answer.set_exception(exc)
        return
    if not answer.done():
        answer.set_result(value)


def _ignore_event(func: Callable[..., Any], *args: Any) -> Any:
    """Call ``func(*args)``, dropping the DOM event passed last (for ``functools.partial`` handlers)."""
    return func(*args[:-1])


_explorer: Explorer | None = None


async def main() -> None:
    """Start the explorer (called by the page's PyScript tag)."""
    global _explorer
    _explorer = Explorer()
    try:
        _explorer.setup()
    except Exception as exc:
        report_error(exc)
        raise
