"""The gateway's sans-I/O decisions: capability routing, and one upstream shared by sessionless requests.

No asyncio, no I/O: feed messages in, drain what to send where. The shells are
:class:`server_demo.gateway_router.RouterSession` and :class:`server_demo.gateway_shared.SharedUpstream`.

**Capability routing** (:class:`RouterCore`).
A router entry (``{"routes": {"calc_": "demo-a", "sdk_": "sdk"}, "default": "demo-a"}``, see
:mod:`server_demo.gateway_config`) is served at ``/gateway/NAME/mcp`` and ``/ws`` like any upstream,
but behind each browser session sits a :class:`RouterSession`: one upstream connection per target
(each a :class:`~server_demo.gateway.ForwardingSession`, so each keeps its own policy, breaker,
replica choice and error scrubbing) and a :class:`RouterCore` deciding where every message goes.

:class:`RouterCore` is sans-I/O: feed it browser messages (:meth:`~RouterCore.from_browser`) and
target messages (:meth:`~RouterCore.from_target`), then :meth:`~RouterCore.drain` what to do:
:class:`ToTarget`, :class:`ToBrowser` or :class:`RequestDone`. What it decides:

* ``initialize`` and ``server/discover`` go to every target; the answer is the default target's
  (else the first's) with ``serverInfo`` renamed ``gateway:NAME``, the ``tools`` capability always,
  every other capability only from the default target (and for discovery only the versions every
  target supports). One target's error is the answer.
* ``tools/list`` goes to every routed target; each tool is listed once per prefix routing to its
  target, the prefix prepended. A page cursor is the gateway's own: the targets' cursors, encoded.
* ``tools/call`` of ``PREFIX+NAME`` goes to the prefix's target as ``NAME``; no such prefix is -32602.
* Any other request goes to the ``default`` target, or is -32601 without one.
* Ids are the gateway's: a request sent to a target gets a fresh id (and a fresh progress token),
  mapped back on its answer; a target's request to the browser (sampling, elicitation, roots) gets a
  fresh id too, and the browser's answer returns to that target under the original id. A browser's
  ``notifications/cancelled`` reaches the target holding the request, with the target's id.
* Target notifications pass to the browser (resource and prompt ones only from the default target,
  the only one whose resources and prompts the browser can reach); progress and a target's
  cancellation of its own request are translated. Other browser notifications go to every target.

**Sharing** (:class:`SharedCore`): the sessionless (2026-07-28) requests of a stdio upstream share
one process. Each goes upstream under a gateway id (``gw-N``, its ``progressToken`` too) and its
answer, progress and ``subscriptions/listen`` notifications (by their subscription id) come back
under the browser's; a cancellation becomes ``notifications/cancelled``
with the gateway id; a notification naming no request reaches a caller only when exactly one request
is in flight (otherwise it is dropped and counted: it could belong to anyone); a server-to-client
request is refused upstream (this era asks inside results).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeAlias, TypeVar

from mcp_types.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND

from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    error_response,
    make_notification,
    make_request,
    make_response,
)

__all__ = [
    "SUBSCRIPTION_ID_META_KEY",
    "Action",
    "Deliver",
    "RequestDone",
    "RouterCore",
    "SharedCall",
    "SharedCore",
    "ToBrowser",
    "ToTarget",
    "ToUpstream",
]


_FAN_OUT: Final = ("initialize", "server/discover")
_DEFAULT_ONLY_NOTIFICATIONS: Final = ("notifications/resources/", "notifications/prompts/")


@dataclass(frozen=True)
class ToTarget:
    """Send ``message`` to the target upstream named ``target``."""

    target: str
    message: TransportMessage


@dataclass(frozen=True)
class ToBrowser:
    """Send ``message`` to the browser; ``related`` is the browser request it belongs to, if any."""

    message: TransportMessage
    related: RequestId | None


@dataclass(frozen=True)
class RequestDone:
    """The browser request ``request_id`` ended without an answer (it was cancelled)."""

    request_id: RequestId


Action: TypeAlias = ToTarget | ToBrowser | RequestDone


@dataclass
class _Out:
    """A request the gateway sent a target on behalf of a browser request."""

    target: str
    browser_id: RequestId
    token: str | int | None  # the browser's progress token, if it gave one


@dataclass
class _Call:
    """One browser request the router is answering."""

    method: str
    fan_out: bool
    out: dict[int, str] = field(default_factory=dict)  # gateway id -> target, still unanswered
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> result (a fan-out)
    order: tuple[str, ...] = ()  # the fan-out's targets, in route order


def _token_of(params: Mapping[str, Any] | None) -> str | int | None:
    meta = (params or {}).get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def _with_token(params: dict[str, Any] | None, token: str | int) -> dict[str, Any]:
    """``params`` (copied) with ``_meta.progressToken`` replaced."""
    out = dict(params or {})
    meta = out.get("_meta")
    out["_meta"] = {**(meta if isinstance(meta, dict) else {}), "progressToken": token}
    return out


def _encode_cursor(cursors: Mapping[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(cursors), separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: object) -> dict[str, str] | None:
    if not isinstance(cursor, str):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {str(k): v for k, v in data.items()}


class RouterCore:
    """The router's decisions for one browser session, without I/O (see the module docstring).

    Args:
        name: The router's name (``serverInfo`` says ``gateway:NAME``).
        routes: Tool-name prefix to target name (no prefix starts another: the config checks).
        default: The target of every request that is not about tools, if any.
    """

    def __init__(self, name: str, routes: Mapping[str, str], default: str | None = None) -> None:
        self.name = name
        self.routes = dict(routes)
        self.default = default
        self.routed: tuple[str, ...] = tuple(dict.fromkeys(self.routes.values()))
        self.targets: tuple[str, ...] = tuple(dict.fromkeys([*self.routed, *((default,) if default else ())]))
        self._actions: list[Action] = []
        self._calls: dict[RequestId, _Call] = {}
        self._out: dict[int, _Out] = {}  # insertion-ordered: the newest is last
        self._tokens: dict[str, int] = {}  # gateway progress token -> gateway id
        self._asked: dict[int, tuple[str, RequestId]] = {}  # browser-facing id -> (target, target's id)
        self._next_id = 0
        self.dropped = 0  # messages that belonged nowhere (the shell may report them)
        self.last_dropped = ""

    def _drop(self, what: str, *args: object) -> None:
        self.dropped += 1
        self.last_dropped = what % args

    @property
    def active_requests(self) -> int:
        """Browser requests not answered yet."""
        return len(self._calls)

    def drain(self) -> list[Action]:
        """What to do now, in order (the list is handed over and forgotten)."""
        actions, self._actions = self._actions, []
        return actions

    # -- from the browser ---------------------------------------------------------------------------

    def from_browser(self, message: TransportMessage) -> None:
        """Take one browser message."""
        if isinstance(message, JSONRPCRequest):
            self._browser_request(message)
        elif isinstance(message, JSONRPCNotification):
            self._browser_notification(message)
        else:
            asked = self._asked.pop(message.id, None) if isinstance(message.id, int) else None
            if asked is None:
                self._drop("dropped an answer to no known request (%r)", message.id)
                return
            target, target_id = asked
            self._emit_target(target, _with_id(message, target_id))

    def browser_unreachable(self, request_id: RequestId, reason: str) -> None:
        """The browser could not be sent the request ``request_id`` (one of a target's): tell that target."""
        self.from_browser(error_response(request_id, INVALID_REQUEST, f"client unreachable: {reason}"))

    def _browser_request(self, request: JSONRPCRequest) -> None:
        if request.id in self._calls:
            self._answer(request.id, INVALID_REQUEST, f"request id {request.id!r} is already in use")
            return
        method, params = request.method, request.params
        if method in _FAN_OUT:
            self._fan_out(request, {target: params for target in self.targets})
        elif method == "tools/list":
            self._list_tools(request)
        elif method == "tools/call":
            self._call_tool(request)
        elif self.default is not None:
            self._calls[request.id] = _Call(method, fan_out=False)
            self._send(request.id, self.default, method, params)
        else:
            self._answer(
                request.id,
                METHOD_NOT_FOUND,
                f"Method not found: {method} (router {self.name!r} has no default upstream)",
            )

    def _list_tools(self, request: JSONRPCRequest) -> None:
        params = request.params or {}
        if params.get("cursor") is None:
            self._fan_out(request, {target: params for target in self.routed})
            return
        cursors = _decode_cursor(params["cursor"])
        if cursors is None or not cursors or not set(cursors) <= set(self.routed):
            self._answer(request.id, INVALID_PARAMS, "Invalid cursor")
            return
        self._fan_out(request, {t: {**params, "cursor": cursors[t]} for t in self.routed if t in cursors})

    def _call_tool(self, request: JSONRPCRequest) -> None:
        params = request.params or {}
        name = params.get("name")
        prefix = self.prefix_of(name) if isinstance(name, str) else None
        if not isinstance(name, str) or prefix is None:
            self._answer(
                request.id, INVALID_PARAMS, f"Unknown tool: {name!r} (no route of {self.name!r} has its prefix)"
            )
            return
        self._calls[request.id] = _Call("tools/call", fan_out=False)
        self._send(request.id, self.routes[prefix], "tools/call", {**params, "name": name[len(prefix) :]})

    def prefix_of(self, tool: str) -> str | None:
        """The route prefix of the tool name ``tool`` (a tool name is longer than its prefix), if any."""
        return next((p for p in self.routes if tool.startswith(p) and len(tool) > len(p)), None)

    def _fan_out(self, request: JSONRPCRequest, params: Mapping[str, dict[str, Any] | None]) -> None:
        call = _Call(request.method, fan_out=True, order=tuple(params))
        self._calls[request.id] = call
        if not params:
            self._finish_fan_out(request.id, call)
            return
        for target, target_params in params.items():
            self._send(request.id, target, request.method, target_params)

    def _send(self, browser_id: RequestId, target: str, method: str, params: dict[str, Any] | None) -> None:
        """Send a request to ``target`` under a fresh gateway id (and progress token)."""
        self._next_id += 1
        gateway_id = self._next_id
        token = _token_of(params)
        if token is not None:
            gateway_token = f"gw-{gateway_id}"
            self._tokens[gateway_token] = gateway_id
            params = _with_token(params, gateway_token)
        self._out[gateway_id] = _Out(target, browser_id, token)
        self._calls[browser_id].out[gateway_id] = target
        self._emit_target(target, make_request(gateway_id, method, params))

    def _browser_notification(self, message: JSONRPCNotification) -> None:
        if message.method == "notifications/cancelled":
            params = message.params or {}
            request_id = params.get("requestId")
            call = self._calls.get(request_id) if isinstance(request_id, str | int) else None
            if call is None or request_id is None:
                return
            for gateway_id, target in call.out.items():
                self._emit_target(target, make_notification(message.method, {**params, "requestId": gateway_id}))
            self._forget(request_id)
            self._actions.append(RequestDone(request_id))
        elif message.method == "notifications/progress":
            self._drop("dropped a progress notification from the browser")
        else:
            for target in self.targets:
                self._emit_target(target, message)

    # -- from a target ------------------------------------------------------------------------------

    def from_target(self, target: str, message: TransportMessage) -> None:
        """Take one message from the target named ``target``."""
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._target_answer(target, message)
        elif isinstance(message, JSONRPCRequest):
            self._next_id += 1
            self._asked[self._next_id] = (target, message.id)
            self._emit_browser(make_request(self._next_id, message.method, message.params), self._related(target))
        else:
            self._target_notification(target, message)

    def _target_answer(self, target: str, message: JSONRPCResponse | JSONRPCError) -> None:
        out = self._out.get(message.id) if isinstance(message.id, int) else None
        if out is None or out.target != target:
            self._drop("dropped an answer from %s to no known request", target)
            return
        assert isinstance(message.id, int)
        browser_id = out.browser_id
        call = self._calls[browser_id]
        self._drop_out(message.id)
        del call.out[message.id]
        if not call.fan_out:
            self._forget(browser_id)
            self._emit_browser(_with_id(message, browser_id), browser_id)
            return
        if isinstance(message, JSONRPCError):
            self._forget(browser_id)
            error = message.error
            named = f"{target!r}" in error.message  # the gateway's own errors name the upstream already
            text = error.message if named else f"upstream {target!r}: {error.message}"
            data = error.data if error.data is not None else {"upstream": target}
            self._emit_browser(error_response(browser_id, error.code, text, data), browser_id)
            return
        call.results[target] = message.result
        if not call.out:
            self._finish_fan_out(browser_id, call)

    def _finish_fan_out(self, browser_id: RequestId, call: _Call) -> None:
        self._forget(browser_id)
        results = {target: call.results.get(target, {}) for target in call.order}
        if call.method == "tools/list":
            merged = self._merge_tools(results)
        else:
            merged = self._merge_handshake(call.method, results)
        self._emit_browser(make_response(browser_id, merged), browser_id)

    def _merge_handshake(self, method: str, results: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """``initialize``/``server/discover``: the default's (or first's) answer, capabilities merged."""
        base_target = self.default if self.default is not None and self.default in results else next(iter(results))
        merged = dict(results[base_target])
        own = merged.get("capabilities")
        capabilities: dict[str, Any] = {}
        if self.default is not None and isinstance(own, dict):
            capabilities = {key: value for key, value in own.items() if key != "tools"}
        else:
            merged.pop("instructions", None)  # the first target's instructions do not describe the whole
        list_changed = False
        for target in self.routed:
            tools = (results.get(target, {}).get("capabilities") or {}).get("tools")
            list_changed |= isinstance(tools, dict) and tools.get("listChanged") is True
        capabilities["tools"] = {"listChanged": True} if list_changed else {}
        merged["capabilities"] = capabilities
        if method == "initialize" or "serverInfo" in merged:
            merged["serverInfo"] = {"name": f"gateway:{self.name}", "version": "0"}
        if method == "server/discover":
            supported = [v for v in merged.get("supportedVersions") or [] if isinstance(v, str)]
            for result in results.values():
                theirs = result.get("supportedVersions") or []
                supported = [v for v in supported if v in theirs]
            merged["supportedVersions"] = supported
        return merged

    def _merge_tools(self, results: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """``tools/list``: every target's tools, once per prefix routed to it, the prefix prepended."""
        tools: list[Any] = []
        cursors: dict[str, str] = {}
        merged: dict[str, Any] = {}
        for target, result in results.items():
            for key, value in result.items():
                if key not in ("tools", "nextCursor", "ttlMs"):
                    merged.setdefault(key, value)
            if isinstance(result.get("ttlMs"), int):
                merged["ttlMs"] = min(merged.get("ttlMs", result["ttlMs"]), result["ttlMs"])
            if isinstance(result.get("nextCursor"), str):
                cursors[target] = result["nextCursor"]
            for prefix in (p for p, t in self.routes.items() if t == target):
                for tool in result.get("tools") or []:
                    if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                        tools.append({**tool, "name": prefix + tool["name"]})
        merged["tools"] = tools
        if cursors:
            merged["nextCursor"] = _encode_cursor(cursors)
        return merged

    def _target_notification(self, target: str, message: JSONRPCNotification) -> None:
        params = message.params or {}
        if message.method == "notifications/progress":
            gateway_id = self._tokens.get(str(params.get("progressToken")))
            out = self._out.get(gateway_id) if gateway_id is not None else None
            if out is None or out.target != target or out.token is None:
                return  # progress of a request already answered or cancelled
            self._emit_browser(
                make_notification(message.method, {**params, "progressToken": out.token}), out.browser_id
            )
        elif message.method == "notifications/cancelled":
            request_id = params.get("requestId")
            browser_id = next((b for b, (t, r) in self._asked.items() if t == target and r == request_id), None)
            if browser_id is None:
                return
            del self._asked[browser_id]
            self._emit_browser(
                make_notification(message.method, {**params, "requestId": browser_id}), self._related(target)
            )
        elif message.method.startswith(_DEFAULT_ONLY_NOTIFICATIONS) and target != self.default:
            self._drop("dropped %s from %s (not the default)", message.method, target)
        else:
            self._emit_browser(message, self._related(target))

    # -- helpers ------------------------------------------------------------------------------------

    def _related(self, target: str) -> RequestId | None:
        """The newest browser request ``target`` is working on (what its messages belong to), if any."""
        return next((out.browser_id for out in reversed(self._out.values()) if out.target == target), None)

    def _answer(self, browser_id: RequestId, code: int, text: str) -> None:
        self._emit_browser(error_response(browser_id, code, text), browser_id)

    def _forget(self, browser_id: RequestId) -> None:
        call = self._calls.pop(browser_id, None)
        if call is not None:
            for gateway_id in call.out:
                self._drop_out(gateway_id)

    def _drop_out(self, gateway_id: int) -> None:
        out = self._out.pop(gateway_id, None)
        if out is not None and out.token is not None:
            self._tokens.pop(f"gw-{gateway_id}", None)

    def _emit_target(self, target: str, message: TransportMessage) -> None:
        self._actions.append(ToTarget(target, message))

    def _emit_browser(self, message: TransportMessage, related: RequestId | None) -> None:
        self._actions.append(ToBrowser(message, related))


def _with_id(message: JSONRPCResponse | JSONRPCError, request_id: RequestId) -> JSONRPCResponse | JSONRPCError:
    if isinstance(message, JSONRPCResponse):
        return make_response(request_id, message.result)
    return error_response(request_id, message.error.code, message.error.message, message.error.data)


# -- sharing ----------------------------------------------------------------------------------------

SUBSCRIPTION_ID_META_KEY: Final = "io.modelcontextprotocol/subscriptionId"
"""Where a 2026-07-28 ``subscriptions/listen`` stream's notifications name the request that opened it."""

Owner = TypeVar("Owner")


@dataclass
class SharedCall(Generic[Owner]):
    """One caller's request on the shared upstream: who asked, under which id, with which progress token."""

    owner: Owner
    browser_id: RequestId
    token: str | int | None


@dataclass(frozen=True)
class Deliver(Generic[Owner]):
    """Give ``message`` to ``owner`` (it belongs to that caller's request ``related``)."""

    owner: Owner
    message: TransportMessage
    related: RequestId


@dataclass(frozen=True)
class ToUpstream:
    """Send ``message`` to the shared upstream."""

    message: TransportMessage


class SharedCore(Generic[Owner]):
    """The id book of one shared upstream (see the module docstring); ``Owner`` is whatever the shell delivers to."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dropped = 0  # notifications that named no request while several (or none) were in flight
        self.last_dropped = ""
        self._calls: dict[str, SharedCall[Owner]] = {}
        self._next = 0

    @property
    def in_flight(self) -> int:
        """Requests sent upstream and not answered yet."""
        return len(self._calls)

    def start(self, owner: Owner, request: JSONRPCRequest) -> tuple[str, JSONRPCRequest]:
        """Register ``request`` of ``owner``; return its gateway id and the request to send upstream."""
        self._next += 1
        gateway_id = f"gw-{self._next}"
        params: dict[str, Any] = dict(request.params or {})
        token = _token_of(params)
        if token is not None:
            params = _with_token(params, gateway_id)
        self._calls[gateway_id] = SharedCall(owner, request.id, token)
        return gateway_id, make_request(gateway_id, request.method, params)

    def forget(self, gateway_id: str) -> SharedCall[Owner] | None:
        """Drop a request that never reached the upstream (its send failed)."""
        return self._calls.pop(gateway_id, None)

    def cancel(self, gateway_id: str, reason: str) -> ToUpstream | None:
        """The caller went away before the answer: forget it and tell the upstream (None: already answered)."""
        if self._calls.pop(gateway_id, None) is None:
            return None
        params = {"requestId": gateway_id, "reason": reason}
        return ToUpstream(make_notification("notifications/cancelled", params))

    def lost(self, gateway_ids: Iterable[RequestId] | None = None) -> list[SharedCall[Owner]]:
        """Requests that will get no answer (those ids, or all when None): the shell answers each with an error."""
        if gateway_ids is None:
            calls, self._calls = list(self._calls.values()), {}
            return calls
        return [self._calls.pop(i) for i in gateway_ids if isinstance(i, str) and i in self._calls]

    def from_upstream(self, message: TransportMessage) -> list[Deliver[Owner] | ToUpstream]:
        """What to do with one upstream message."""
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            call = self._calls.pop(str(message.id), None) if message.id is not None else None
            if call is None:
                return []  # an answer to a request already cancelled
            return [Deliver(call.owner, _with_id(message, call.browser_id), call.browser_id)]
        if isinstance(message, JSONRPCRequest):
            refusal = error_response(message.id, METHOD_NOT_FOUND, "no client can be asked on a shared upstream")
            return [ToUpstream(refusal)]
        assert isinstance(message, JSONRPCNotification)
        if message.method == "notifications/progress":
            call = self._calls.get(str((message.params or {}).get("progressToken")))
            if call is None or call.token is None:
                return []
            restored = make_notification(message.method, {**(message.params or {}), "progressToken": call.token})
            return [Deliver(call.owner, restored, call.browser_id)]
        params = message.params or {}
        meta = params.get("_meta")
        named = meta.get(SUBSCRIPTION_ID_META_KEY) if isinstance(meta, dict) else None
        if isinstance(meta, dict) and isinstance(named, str) and named in self._calls:  # a listen stream's
            call = self._calls[named]
            restored = make_notification(
                message.method, {**params, "_meta": {**meta, SUBSCRIPTION_ID_META_KEY: call.browser_id}}
            )
            return [Deliver(call.owner, restored, call.browser_id)]
        if len(self._calls) == 1:
            only = next(iter(self._calls.values()))
            return [Deliver(only.owner, message, only.browser_id)]
        self.dropped += 1
        self.last_dropped = f"a {message.method} named no request"
        return []
