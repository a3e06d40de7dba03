"""The gateway's pure cores (router, shared upstream: messages in, actions out), replica choice, pool/router config."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND

from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    TransportMessage,
    error_response,
    make_notification,
    make_request,
    make_response,
    message_to_obj,
)
from server_demo.gateway import Upstream, _error_for
from server_demo.gateway_config import GatewayConfigError, parse_gateway_config
from server_demo.gateway_core import (
    SUBSCRIPTION_ID_META_KEY,
    Deliver,
    RequestDone,
    RouterCore,
    SharedCore,
    ToBrowser,
    ToTarget,
    ToUpstream,
)

ROUTES = {"calc_": "a", "sdk_": "b"}


def _core(default: str | None = "a", routes: dict[str, str] | None = None) -> RouterCore:
    return RouterCore("all", routes or ROUTES, default)


def _to_targets(core: RouterCore) -> list[tuple[str, dict[str, Any]]]:
    actions = core.drain()
    assert all(isinstance(a, ToTarget) for a in actions), actions
    return [(a.target, message_to_obj(a.message)) for a in actions if isinstance(a, ToTarget)]


def _to_browser(core: RouterCore) -> list[tuple[dict[str, Any], Any]]:
    actions = core.drain()
    assert all(isinstance(a, ToBrowser) for a in actions), actions
    return [(message_to_obj(a.message), a.related) for a in actions if isinstance(a, ToBrowser)]


def _init_result(name: str, **caps: Any) -> dict[str, Any]:
    return {"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": {"name": name, "version": "1"}}


def _answer(core: RouterCore, target: str, sent: dict[str, Any], result: dict[str, Any]) -> None:
    core.from_target(target, make_response(sent["id"], result))


def test_initialize_goes_to_every_target_and_merges() -> None:
    core = _core()
    core.from_browser(make_request(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    sent = dict(_to_targets(core))
    assert set(sent) == {"a", "b"} and sent["a"]["id"] != sent["b"]["id"]
    assert sent["a"]["params"]["protocolVersion"] == "2025-11-25"
    _answer(core, "b", sent["b"], _init_result("b", tools={"listChanged": True}, prompts={}))
    assert core.drain() == [] and core.active_requests == 1
    _answer(core, "a", sent["a"], _init_result("a", tools={}, resources={"subscribe": True}, logging={}))
    [(answer, related)] = _to_browser(core)
    assert related == 1 and answer["id"] == 1
    result = answer["result"]
    assert result["serverInfo"]["name"] == "gateway:all"
    assert result["capabilities"] == {"tools": {"listChanged": True}, "resources": {"subscribe": True}, "logging": {}}
    assert core.active_requests == 0


def test_without_a_default_only_tools_are_offered_and_the_rest_is_method_not_found() -> None:
    core = _core(default=None)
    core.from_browser(make_request("i", "initialize", {}))
    for target, sent in _to_targets(core):
        _answer(core, target, sent, {**_init_result(target, tools={}, resources={}), "instructions": "x"})
    [(answer, _)] = _to_browser(core)
    assert answer["result"]["capabilities"] == {"tools": {}} and "instructions" not in answer["result"]
    for method in ("resources/list", "prompts/get", "ping", "logging/setLevel", "completion/complete"):
        core.from_browser(make_request(7, method, {}))
        [(error, related)] = _to_browser(core)
        assert error["error"]["code"] == METHOD_NOT_FOUND and method in error["error"]["message"] and related == 7


def test_other_requests_go_to_the_default_with_a_gateway_id() -> None:
    core = _core(default="b")
    core.from_browser(make_request("r1", "resources/read", {"uri": "demo://x"}))
    [(target, sent)] = _to_targets(core)
    assert target == "b" and sent["method"] == "resources/read" and sent["params"] == {"uri": "demo://x"}
    assert sent["id"] != "r1"
    core.from_target("b", make_response(sent["id"], {"contents": []}))
    assert _to_browser(core) == [({"jsonrpc": "2.0", "id": "r1", "result": {"contents": []}}, "r1")]


def test_tools_list_is_the_union_with_prefixes_and_pages_with_a_gateway_cursor() -> None:
    core = _core(routes={"calc_": "a", "math_": "a", "sdk_": "b"})
    core.from_browser(make_request(2, "tools/list", {}))
    sent = dict(_to_targets(core))
    assert set(sent) == {"a", "b"}  # one request per target, whatever its prefixes
    _answer(core, "a", sent["a"], {"tools": [{"name": "add", "inputSchema": {}}], "nextCursor": "a-page-2"})
    _answer(core, "b", sent["b"], {"tools": [{"name": "add", "inputSchema": {}}]})
    [(answer, _)] = _to_browser(core)
    names = [t["name"] for t in answer["result"]["tools"]]
    assert names == ["calc_add", "math_add", "sdk_add"]
    cursor = answer["result"]["nextCursor"]
    core.from_browser(make_request(3, "tools/list", {"cursor": cursor}))
    [(target, page)] = _to_targets(core)
    assert target == "a" and page["params"]["cursor"] == "a-page-2"
    _answer(core, "a", page, {"tools": [{"name": "mul", "inputSchema": {}}]})
    [(answer, _)] = _to_browser(core)
    assert [t["name"] for t in answer["result"]["tools"]] == ["calc_mul", "math_mul"]
    assert "nextCursor" not in answer["result"]
    core.from_browser(make_request(4, "tools/list", {"cursor": "not-ours"}))
    [(error, _)] = _to_browser(core)
    assert error["error"]["code"] == INVALID_PARAMS


def test_tools_call_goes_to_the_prefix_target_without_the_prefix() -> None:
    core = _core()
    core.from_browser(make_request(5, "tools/call", {"name": "sdk_add", "arguments": {"a": 1}}))
    [(target, sent)] = _to_targets(core)
    assert target == "b" and sent["params"] == {"name": "add", "arguments": {"a": 1}}
    core.from_target("b", error_response(sent["id"], -32000, "boom"))
    [(error, related)] = _to_browser(core)
    assert error == {"jsonrpc": "2.0", "id": 5, "error": {"code": -32000, "message": "boom"}} and related == 5


@pytest.mark.parametrize("name", ["nope_add", "calc_", "add", None])
def test_tools_call_of_an_unknown_prefix_is_invalid_params_naming_the_tool(name: str | None) -> None:
    core = _core()
    core.from_browser(make_request(6, "tools/call", {"name": name}))
    [(error, _)] = _to_browser(core)
    assert error["error"]["code"] == INVALID_PARAMS and repr(name) in error["error"]["message"]
    assert core.active_requests == 0


def test_same_ids_from_browser_and_targets_never_mix() -> None:
    core = _core()
    core.from_browser(make_request(1, "tools/call", {"name": "calc_x"}))
    core.from_browser(make_request(2, "tools/call", {"name": "sdk_x"}))
    (ta, to_a), (tb, to_b) = _to_targets(core)
    assert (ta, tb) == ("a", "b")
    # both targets ask the browser something with the same id "1"
    core.from_target("a", make_request(1, "sampling/createMessage", {"q": "a"}))
    core.from_target("b", make_request(1, "elicitation/create", {"q": "b"}))
    (ask_a, rel_a), (ask_b, rel_b) = _to_browser(core)
    assert ask_a["id"] != ask_b["id"] and (rel_a, rel_b) == (1, 2)
    assert ask_a["params"] == {"q": "a"} and ask_b["method"] == "elicitation/create"
    core.from_browser(make_response(ask_b["id"], {"action": "decline"}))
    core.from_browser(error_response(ask_a["id"], -1, "no"))
    assert _to_targets(core) == [
        ("b", {"jsonrpc": "2.0", "id": 1, "result": {"action": "decline"}}),
        ("a", {"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}}),
    ]
    core.from_browser(make_response(ask_a["id"], {}))  # answered already: dropped
    assert core.drain() == []
    # answers come back under the browser's ids; a target answering another's id is ignored
    core.from_target("a", make_response(to_b["id"], {"stolen": True}))
    assert core.drain() == []
    core.from_target("b", make_response(to_b["id"], {"content": []}))
    core.from_target("a", make_response(to_a["id"], {"content": []}))
    assert [(m["id"], r) for m, r in _to_browser(core)] == [(2, 2), (1, 1)]


def test_progress_tokens_are_rewritten_both_ways() -> None:
    core = _core()
    core.from_browser(make_request(9, "tools/call", {"name": "calc_slow", "_meta": {"progressToken": "tok"}}))
    [(_, sent)] = _to_targets(core)
    gateway_token = sent["params"]["_meta"]["progressToken"]
    assert gateway_token != "tok" and sent["params"]["name"] == "slow"
    core.from_target("b", make_notification("notifications/progress", {"progressToken": gateway_token}))
    assert core.drain() == []  # not b's token
    core.from_target("a", make_notification("notifications/progress", {"progressToken": gateway_token, "progress": 1}))
    [(note, related)] = _to_browser(core)
    assert note["params"] == {"progressToken": "tok", "progress": 1} and related == 9


def test_browser_cancel_reaches_the_target_with_its_id() -> None:
    core = _core()
    core.from_browser(make_request("c", "tools/call", {"name": "sdk_slow"}))
    [(_, sent)] = _to_targets(core)
    core.from_browser(make_notification("notifications/cancelled", {"requestId": "c", "reason": "user"}))
    actions = core.drain()
    assert actions[1] == RequestDone("c")
    assert isinstance(actions[0], ToTarget) and actions[0].target == "b"
    assert message_to_obj(actions[0].message)["params"] == {"requestId": sent["id"], "reason": "user"}
    core.from_target("b", make_response(sent["id"], {}))  # a late answer is dropped
    assert core.drain() == [] and core.active_requests == 0


def test_target_cancel_of_its_own_request_is_translated() -> None:
    core = _core()
    core.from_target("b", make_request("q", "roots/list", None))
    [(ask, related)] = _to_browser(core)
    assert related is None  # b works on nothing for the browser: the session's stream
    core.from_target("a", make_notification("notifications/cancelled", {"requestId": "q"}))
    assert core.drain() == []  # not a's request
    core.from_target("b", make_notification("notifications/cancelled", {"requestId": "q"}))
    [(note, _)] = _to_browser(core)
    assert note["params"] == {"requestId": ask["id"]}


def test_target_notifications() -> None:
    core = _core(default="a")
    core.from_browser(make_request(3, "tools/call", {"name": "sdk_log"}))
    core.drain()
    log = make_notification("notifications/message", {"level": "info", "data": "x"})
    core.from_target("b", log)
    core.from_target("a", log)
    core.from_target("b", make_notification("notifications/tools/list_changed"))
    core.from_target("b", make_notification("notifications/resources/list_changed"))  # not the default's: dropped
    core.from_target("a", make_notification("notifications/prompts/list_changed"))
    seen = [(m["method"], r) for m, r in _to_browser(core)]
    assert seen == [
        ("notifications/message", 3),
        ("notifications/message", None),
        ("notifications/tools/list_changed", 3),
        ("notifications/prompts/list_changed", None),
    ]


def test_browser_notifications_go_to_every_target() -> None:
    core = _core(default="c")
    core.from_browser(make_notification("notifications/initialized"))
    assert [t for t, _ in _to_targets(core)] == ["a", "b", "c"]


def test_a_fan_out_error_names_the_target_and_late_answers_are_dropped() -> None:
    core = _core()
    core.from_browser(make_request(1, "tools/list", {}))
    sent = dict(_to_targets(core))
    core.from_target("b", error_response(sent["b"]["id"], -32603, "it broke"))
    [(error, _)] = _to_browser(core)
    assert error["error"]["message"] == "upstream 'b': it broke" and error["error"]["data"] == {"upstream": "b"}
    _answer(core, "a", sent["a"], {"tools": []})
    assert core.drain() == [] and core.active_requests == 0


def test_duplicate_browser_id_and_unreachable_browser() -> None:
    core = _core()
    core.from_browser(make_request(1, "tools/call", {"name": "calc_x"}))
    core.drain()
    core.from_browser(make_request(1, "tools/call", {"name": "calc_y"}))
    [(error, _)] = _to_browser(core)
    assert "already in use" in error["error"]["message"]
    core.from_target("a", make_request(77, "sampling/createMessage", {}))
    [(ask, _)] = _to_browser(core)
    core.browser_unreachable(ask["id"], "no stream")
    [(target, answer)] = _to_targets(core)
    assert target == "a" and answer["id"] == 77 and "no stream" in answer["error"]["message"]


def test_messages_are_real_envelopes() -> None:
    core = _core()
    core.from_browser(make_request(1, "ping", None))
    [action] = core.drain()
    assert isinstance(action, ToTarget)
    message: TransportMessage = action.message
    assert isinstance(message, JSONRPCRequest) and not isinstance(message, JSONRPCNotification)
    core.from_target("a", make_response(message.id, {}))
    [answer] = core.drain()
    assert isinstance(answer, ToBrowser) and isinstance(answer.message, JSONRPCResponse)
    assert not isinstance(answer.message, JSONRPCError)


# -- the pool and router config, and replica choice ------------------------------------------------


def _servers(**servers: Any) -> dict[str, Any]:
    return {"mcpServers": servers}


def test_pool_config() -> None:
    config = parse_gateway_config(_servers(p={"url": ["http://127.0.0.1:1/mcp", "http://127.0.0.1:2/mcp"]}))
    pool = config.upstreams["p"]
    assert pool.kind == "http" and pool.replicas == 2 and pool.url == "http://127.0.0.1:1/mcp"
    assert "127.0.0.1" not in repr(pool)
    single = parse_gateway_config(_servers(s={"url": "ws://127.0.0.1:3/ws"})).upstreams["s"]
    assert single.urls == ("ws://127.0.0.1:3/ws",) and single.replicas == 1


def test_router_config() -> None:
    config = parse_gateway_config(
        _servers(
            a={"command": "x"},
            b={"url": "http://127.0.0.1:1/mcp"},
            all={"routes": {"a_": "a", "b_": "b"}, "default": "a", "description": "both"},
        )
    )
    router = config.upstreams["all"]
    assert router.kind == "router" and router.routes == {"a_": "a", "b_": "b"} and router.targets == ("a", "b")


@pytest.mark.parametrize(
    ("servers", "field"),
    [
        ({"p": {"url": []}}, "mcpServers.p.url"),
        ({"p": {"url": ["http://127.0.0.1:1/", 3]}}, "mcpServers.p.url[1]"),
        ({"p": {"url": ["http://127.0.0.1:1/", "ftp://127.0.0.1/"]}}, "mcpServers.p.url[1]"),
        ({"p": {"url": ["http://127.0.0.1:1/", "ws://127.0.0.1:2/"]}}, "mcpServers.p.url[1]"),
        ({"p": {"url": ["http://127.0.0.1:1/", "http://127.0.0.1:1/"]}}, "mcpServers.p.url"),
        ({"r": {"routes": {}}}, "mcpServers.r.routes"),
        ({"r": {"routes": []}}, "mcpServers.r.routes"),
        ({"r": {"routes": {"a_": "nope"}}}, "mcpServers.r.routes.a_"),
        ({"r": {"routes": {"a_": 3}}}, "mcpServers.r.routes.a_"),
        ({"r": {"routes": {"a b": "a"}}}, "mcpServers.r.routes.a b"),
        ({"r": {"routes": {"a_": "a", "a_b_": "a"}}}, "mcpServers.r.routes.a_b_"),
        ({"r": {"routes": {"a_": "off"}}}, "mcpServers.r.routes.a_"),
        ({"r": {"routes": {"a_": "r2"}}, "r2": {"routes": {"a_": "a"}}}, "mcpServers.r.routes.a_"),
        ({"r": {"routes": {"a_": "a"}, "default": "nope"}}, "mcpServers.r.default"),
        ({"r": {"routes": {"a_": "a"}, "default": "off"}}, "mcpServers.r.default"),
        ({"r": {"routes": {"a_": "a"}, "policy": {}}}, "mcpServers.r.policy"),
        ({"r": {"routes": {"a_": "a"}, "command": "x"}}, "mcpServers.r.command"),
        ({"r": {"command": "x", "default": "a"}}, "mcpServers.r.default"),
    ],
)
def test_bad_pool_and_router_configs_name_the_field(servers: dict[str, Any], field: str) -> None:
    base = {"a": {"command": "x"}, "off": {"command": "x", "disabled": True}}
    with pytest.raises(GatewayConfigError) as caught:
        parse_gateway_config(_servers(**base, **servers))
    assert f": {field}: " in str(caught.value)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_replicas_round_robin_skipping_open_breakers() -> None:
    clock = _Clock()
    urls = [f"http://127.0.0.1:{port}/mcp" for port in (1, 2, 3)]
    config = parse_gateway_config(_servers(p={"url": urls, "breaker": {"failures": 1, "coolDown": 5}}))
    upstream = Upstream(config.upstreams["p"], clock=clock)
    assert [upstream.pick_replica() for _ in range(4)] == [0, 1, 2, 0]
    upstream.breakers[2].failed(clock.now)
    assert upstream.breakers[2].state == "open"
    assert [upstream.pick_replica() for _ in range(4)] == [1, 0, 1, 0]
    for breaker in upstream.breakers[:2]:
        breaker.failed(clock.now)
    assert [upstream.pick_replica() for _ in range(3)] == [1, 2, 0]  # all open: in turn anyway
    clock.now = 6.0  # the cool-down is over: each may have its trial
    assert [upstream.pick_replica() for _ in range(3)] == [1, 2, 0]
    assert upstream.describe() == {
        "name": "p",
        "kind": "http",
        "endpoints": {"mcp": "/gateway/p/mcp", "ws": "/gateway/p/ws"},
        "replicas": 3,
    }


def test_open_uses_each_replica_and_errors_hide_every_url() -> None:
    urls = [f"http://127.0.0.1:{port}/mcp" for port in (11, 12)]
    upstream = Upstream(parse_gateway_config(_servers(p={"url": urls})).upstreams["p"])
    for _ in range(3):
        upstream.open({})
    assert upstream.opened == [2, 1]
    text = f"could not reach {urls[1]} (127.0.0.1:12) nor {urls[0]}"
    error = _error_for(1, ConnectionClosedError(text), upstream.config)
    assert "127.0.0.1" not in error.error.message and "'p'" in error.error.message


def test_a_router_has_no_connection_of_its_own_and_lists_its_routes() -> None:
    config = parse_gateway_config(_servers(a={"command": "x"}, r={"routes": {"a_": "a"}, "default": "a"}))
    router = Upstream(config.upstreams["r"])
    with pytest.raises(ConnectionClosedError, match="router"):
        router.open({})
    assert router.describe()["routes"] == {"a_": "a"} and router.describe()["default"] == "a"


# -- SharedCore: one upstream, many sessionless callers ---------------------------------------------


def test_shared_core_rewrites_ids_and_tokens_and_routes_answers_back() -> None:
    core: SharedCore[str] = SharedCore("up")
    a_id, a_sent = core.start("a", make_request(1, "tools/call", {"name": "x", "_meta": {"progressToken": "t"}}))
    b_id, b_sent = core.start("b", make_request(1, "tools/call", {"name": "y"}))  # the same browser id: no clash
    assert a_id != b_id and a_sent.id == a_id and b_sent.id == b_id
    assert (a_sent.params or {})["_meta"]["progressToken"] == a_id and "_meta" not in (b_sent.params or {})
    assert core.in_flight == 2

    progress = make_notification("notifications/progress", {"progressToken": a_id, "progress": 1})
    (delivered,) = core.from_upstream(progress)
    assert isinstance(delivered, Deliver) and delivered.owner == "a" and delivered.related == 1
    assert (delivered.message.params or {})["progressToken"] == "t"  # type: ignore[union-attr]
    assert core.from_upstream(make_notification("notifications/progress", {"progressToken": b_id})) == []

    (answer,) = core.from_upstream(make_response(b_id, {"content": []}))
    assert isinstance(answer, Deliver) and answer.owner == "b" and answer.message.id == 1  # type: ignore[union-attr]
    assert core.from_upstream(make_response(b_id, {})) == []  # answered once only
    assert core.in_flight == 1


def test_shared_core_unnamed_notifications_go_only_to_a_lone_caller() -> None:
    core: SharedCore[str] = SharedCore("up")
    log = make_notification("notifications/message", {"level": "info", "data": "x"})
    assert core.from_upstream(log) == [] and core.dropped == 1  # nobody in flight
    core.start("a", make_request(7, "tools/call", {}))
    (only,) = core.from_upstream(log)
    assert isinstance(only, Deliver) and only.owner == "a" and only.related == 7
    core.start("b", make_request(8, "tools/call", {}))
    assert core.from_upstream(log) == [] and core.dropped == 2  # it could be either's: dropped


def test_shared_core_cancel_lost_and_server_requests() -> None:
    core: SharedCore[str] = SharedCore("up")
    gid, _ = core.start("a", make_request(1, "tools/call", {}))
    action = core.cancel(gid, "closed")
    assert isinstance(action, ToUpstream) and action.message.method == "notifications/cancelled"  # type: ignore[union-attr]
    assert (action.message.params or {})["requestId"] == gid  # type: ignore[union-attr]
    assert core.cancel(gid, "again") is None and core.from_upstream(make_response(gid, {})) == []

    first, _ = core.start("a", make_request(2, "x", {}))
    core.start("b", make_request(3, "y", {}))
    assert [c.owner for c in core.lost([first, "gw-unknown", 5])] == ["a"]
    assert [c.browser_id for c in core.lost()] == [3] and core.in_flight == 0
    gid, _ = core.start("c", make_request(4, "z", {}))
    assert core.forget(gid) is not None and core.in_flight == 0

    (refusal,) = core.from_upstream(make_request(99, "sampling/createMessage", {}))
    assert isinstance(refusal, ToUpstream) and isinstance(refusal.message, JSONRPCError)
    assert refusal.message.id == 99 and refusal.message.error.code == METHOD_NOT_FOUND


def test_shared_core_gives_a_listen_streams_notifications_to_its_caller_under_its_id() -> None:
    core: SharedCore[str] = SharedCore("up")
    listen_id, _ = core.start("a", make_request(5, "subscriptions/listen", {}))
    core.start("b", make_request(5, "tools/call", {}))  # another caller in flight: no guessing needed
    meta = {SUBSCRIPTION_ID_META_KEY: listen_id, "other": 1}
    (note,) = core.from_upstream(make_notification("notifications/resources/updated", {"uri": "u", "_meta": meta}))
    assert isinstance(note, Deliver) and note.owner == "a" and note.related == 5
    assert (note.message.params or {})["_meta"] == {SUBSCRIPTION_ID_META_KEY: 5, "other": 1}  # type: ignore[union-attr]
    stale = {SUBSCRIPTION_ID_META_KEY: "gw-999"}
    assert core.from_upstream(make_notification("notifications/resources/updated", {"_meta": stale})) == []
