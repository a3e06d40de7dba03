"""The gateway's ``mcpServers`` config: what parses, and bad configs that name the field at fault."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from server_demo.__main__ import parse_args
from server_demo.gateway import StdioUpstreamTransport, Upstream
from server_demo.gateway_config import (
    BUILTIN_UPSTREAM,
    DEFAULT_MAX_PROCESSES,
    INHERITED_ENV,
    GatewayConfigError,
    builtin_gateway_config,
    load_gateway_config,
    parse_gateway_config,
)


def _one(server: Any, name: str = "x") -> Any:
    return parse_gateway_config({"mcpServers": {name: server}}).upstreams[name]


def test_stdio_upstream() -> None:
    upstream = _one(
        {
            "command": "python",
            "args": ["-m", "thing"],
            "env": {"TOKEN": "abcdef"},
            "cwd": "/tmp",
            "policy": {"allow": ["tools/*"], "deny": ["tools/call"], "rate": 5},
            "maxProcesses": 3,
            "breaker": {"failures": 2, "coolDown": 1.5},
        }
    )
    assert upstream.kind == "stdio" and upstream.command == "python" and upstream.args == ("-m", "thing")
    assert upstream.env == {"TOKEN": "abcdef"} and upstream.cwd == "/tmp" and upstream.max_processes == 3
    assert upstream.policy.allow == ("tools/*",) and upstream.policy.deny == ("tools/call",)
    assert upstream.policy.rate == 5 and upstream.breaker.failures == 2 and upstream.breaker.cool_down == 1.5
    assert not upstream.forward_authorization
    assert "abcdef" not in repr(upstream) and upstream.secrets() == ("abcdef",)


def test_url_upstreams_and_defaults() -> None:
    config = parse_gateway_config(
        {
            "mcpServers": {
                "h": {"url": "http://127.0.0.1:9/mcp", "forwardAuthorization": True, "headers": {"X-Key": "k3y!"}},
                "w": {"url": "ws://127.0.0.1:9/ws"},
                "off": {"command": "nothing", "disabled": True},
            }
        }
    )
    assert set(config.upstreams) == {"h", "w"}
    h, w = config.upstreams["h"], config.upstreams["w"]
    assert h.kind == "http" and h.forward_authorization and h.headers == {"X-Key": "k3y!"}
    assert w.kind == "websocket" and w.max_processes == DEFAULT_MAX_PROCESSES and w.policy.allow is None
    assert "127.0.0.1" not in repr(h)  # a URL may carry a credential: kept out of reprs


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "(top level)"),
        ({}, "mcpServers"),
        ({"mcpServers": []}, "mcpServers"),
        ({"mcpServers": {"a": "python"}}, "mcpServers.a"),
        ({"mcpServers": {"a/b": {"command": "x"}}}, "mcpServers.a/b"),
        ({"mcpServers": {"a": {}}}, "mcpServers.a"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://127.0.0.1/"}}}, "mcpServers.a"),
        ({"mcpServers": {"a": {"command": ""}}}, "mcpServers.a.command"),
        ({"mcpServers": {"a": {"command": "x", "args": "-v"}}}, "mcpServers.a.args"),
        ({"mcpServers": {"a": {"command": "x", "args": ["ok", 3]}}}, "mcpServers.a.args[1]"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}, "mcpServers.a.env.K"),
        ({"mcpServers": {"a": {"command": "x", "maxProcesses": 0}}}, "mcpServers.a.maxProcesses"),
        ({"mcpServers": {"a": {"command": "x", "maxProcesses": 1.5}}}, "mcpServers.a.maxProcesses"),
        ({"mcpServers": {"a": {"command": "x", "headers": {}}}}, "mcpServers.a.headers"),
        ({"mcpServers": {"a": {"command": "x", "bogus": 1}}}, "mcpServers.a.bogus"),
        ({"mcpServers": {"a": {"command": "x", "policy": {"rate": -1}}}}, "mcpServers.a.policy.rate"),
        ({"mcpServers": {"a": {"command": "x", "policy": {"allow": "tools/*"}}}}, "mcpServers.a.policy.allow"),
        ({"mcpServers": {"a": {"command": "x", "policy": {"block": []}}}}, "mcpServers.a.policy.block"),
        ({"mcpServers": {"a": {"command": "x", "breaker": {"failures": True}}}}, "mcpServers.a.breaker.failures"),
        ({"mcpServers": {"a": {"command": "x", "forwardAuthorization": "yes"}}}, "mcpServers.a.forwardAuthorization"),
        ({"mcpServers": {"a": {"url": "file:///etc/passwd"}}}, "mcpServers.a.url"),
        ({"mcpServers": {"a": {"url": "http:nohost"}}}, "mcpServers.a.url"),
        ({"mcpServers": {"a": {"url": "http://127.0.0.1/", "env": {}}}}, "mcpServers.a.env"),
    ],
)
def test_bad_configs_name_the_field(data: Any, field: str) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        parse_gateway_config(data)
    assert f": {field}: " in str(caught.value)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}}))
    assert list(load_gateway_config(path).upstreams) == ["a"]
    path.write_text("{not json")
    with pytest.raises(GatewayConfigError, match="not JSON"):
        load_gateway_config(path)
    with pytest.raises(GatewayConfigError, match="cannot read"):
        load_gateway_config(tmp_path / "missing.json")


def test_builtin_upstream_is_this_interpreter_running_the_demo() -> None:
    upstream = builtin_gateway_config().upstreams[BUILTIN_UPSTREAM]
    assert upstream.command == sys.executable and upstream.args[:3] == ("-m", "server_demo", "--stdio")


def test_cli_gateway_flags(tmp_path: Path) -> None:
    assert parse_args([]).gateway is None and not parse_args([]).no_gateway
    assert parse_args(["--no-gateway"]).no_gateway
    assert parse_args(["--gateway", "servers.json"]).gateway == Path("servers.json")


def test_child_environment_is_only_the_basics_plus_the_configured_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SECRET_TOKEN", "do-not-inherit")
    monkeypatch.setenv("PATH", "/usr/bin")
    upstream = _one({"command": "x", "env": {"API_KEY": "configured"}})
    env = StdioUpstreamTransport(upstream).environment()
    assert env["API_KEY"] == "configured" and env["PATH"] == "/usr/bin"
    assert "SERVER_SECRET_TOKEN" not in env
    assert set(env) <= {*INHERITED_ENV, "API_KEY"}
    assert all(env[k] == os.environ[k] for k in env if k != "API_KEY")


def test_authorization_reaches_the_upstream_only_when_configured() -> None:
    browser = {"authorization": "Bearer t"}
    plain = Upstream(_one({"url": "http://127.0.0.1:9/mcp"})).open(browser)
    forwarding = Upstream(_one({"url": "http://127.0.0.1:9/mcp", "forwardAuthorization": True})).open(browser)
    assert "Authorization" not in _headers(plain)
    assert _headers(forwarding)["Authorization"] == "Bearer t"


def _headers(transport: Any) -> dict[str, str]:
    while not hasattr(transport, "_core"):
        transport = transport.inner
    return dict(transport._core.custom_headers)
