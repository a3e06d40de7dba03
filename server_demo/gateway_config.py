"""The gateway's configuration: upstream MCP servers in the usual ``mcpServers`` JSON format.

::

    {"mcpServers": {
        "files": {"command": "python", "args": ["-m", "files_server"], "env": {"TOKEN": "..."},
                  "policy": {"allow": ["tools/*"], "deny": ["tools/call"], "rate": 20},
                  "maxProcesses": 8},
        "remote": {"url": "http://127.0.0.1:9000/mcp", "forwardAuthorization": true}
    }}

An upstream is a stdio command (``command``, optional ``args``, ``env``, ``cwd``, ``maxProcesses``)
or a URL (``url``: ``http(s)://`` for Streamable HTTP, ``ws(s)://`` for WebSocket; optional
``headers``). Both take ``policy`` (``allow``/``deny`` method lists or ``fnmatch`` patterns,
``rate`` messages per second per browser session), ``forwardAuthorization`` (default false) and
``breaker`` (``{"failures": N, "coolDown": SECONDS}``). Upstream commands and URLs come only from
here, never from a request. Every error names the field at fault (``mcpServers.files.args[1]``).

A stdio process gets only :data:`INHERITED_ENV` from the gateway's own environment (when set)
plus the configured ``env``; nothing else of the gateway's environment reaches it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "BUILTIN_UPSTREAM",
    "DEFAULT_MAX_PROCESSES",
    "INHERITED_ENV",
    "BreakerSettings",
    "GatewayConfig",
    "GatewayConfigError",
    "PolicySettings",
    "UpstreamConfig",
    "builtin_gateway_config",
    "load_gateway_config",
    "parse_gateway_config",
]

INHERITED_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "TZ")
"""The only variables of the gateway's environment a stdio upstream inherits (when set)."""

DEFAULT_MAX_PROCESSES: Final = 32
"""Live processes per stdio upstream unless ``maxProcesses`` says otherwise."""

BUILTIN_UPSTREAM: Final = "demo-stdio"
"""The upstream offered when no ``--gateway`` file is given: this interpreter running ``-m server_demo --stdio``."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KNOWN = {
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "policy",
    "forwardAuthorization",
    "maxProcesses",
    "breaker",
    "type",
    "transport",
    "description",
    "disabled",
}


class GatewayConfigError(ValueError):
    """A gateway configuration that cannot be used; the message names the field."""


@dataclass(frozen=True)
class PolicySettings:
    """Per-session rules: methods allowed (None: all) and denied, and a rate in messages per second."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    rate: float | None = None


@dataclass(frozen=True)
class BreakerSettings:
    """The circuit breaker of one upstream (shared by all its sessions)."""

    failures: int = 3
    cool_down: float = 10.0


@dataclass(frozen=True)
class UpstreamConfig:
    """One upstream server (see the module docstring); ``kind`` is ``stdio``, ``http`` or ``websocket``."""

    name: str
    kind: Literal["stdio", "http", "websocket"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    policy: PolicySettings = field(default_factory=PolicySettings)
    forward_authorization: bool = False
    max_processes: int = DEFAULT_MAX_PROCESSES
    breaker: BreakerSettings = field(default_factory=BreakerSettings)

    def secrets(self) -> tuple[str, ...]:
        """Configured values that must never appear in logs or responses (env and header values)."""
        values = [*self.env.values(), *self.headers.values()]
        return tuple(v for v in values if len(v) >= 4)


@dataclass(frozen=True)
class GatewayConfig:
    """Every upstream, by name."""

    upstreams: dict[str, UpstreamConfig]


def _fail(where: str, problem: str) -> GatewayConfigError:
    return GatewayConfigError(f"gateway config: {where}: {problem}")


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, f"must be a non-empty string, got {type(value).__name__}")
    return value


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object of strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(f"{where}.{key}", f"must be a string, got {type(item).__name__}")
        out[str(key)] = item
    return out


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(where, f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"{where}[{i}]", f"must be a string, got {type(item).__name__}")
    return tuple(value)


def _number(value: object, where: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _fail(where, f"must be a {'whole ' if integer else ''}number, got {type(value).__name__}")
    if not value > 0:
        raise _fail(where, f"must be positive, got {value}")
    return float(value)


def _policy(value: object, where: str) -> PolicySettings:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, got {type(value).__name__}")
    unknown = set(value) - {"allow", "deny", "rate"}
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field (known: allow, deny, rate)")
    allow = _str_list(value["allow"], f"{where}.allow") if "allow" in value else None
    deny = _str_list(value.get("deny", []), f"{where}.deny")
    rate = _number(value["rate"], f"{where}.rate") if "rate" in value else None
    return PolicySettings(allow, deny, rate)


def _breaker(value: object, where: str) -> BreakerSettings:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, got {type(value).__name__}")
    unknown = set(value) - {"failures", "coolDown"}
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field (known: failures, coolDown)")
    failures = int(_number(value.get("failures", 3), f"{where}.failures", integer=True))
    return BreakerSettings(failures, _number(value.get("coolDown", 10.0), f"{where}.coolDown"))


def _upstream(name: str, value: object) -> UpstreamConfig:
    where = f"mcpServers.{name}"
    if not _NAME.match(name):
        raise _fail(where, "a name is 1-64 letters, digits, '.', '_' or '-' (it becomes a URL path segment)")
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, got {type(value).__name__}")
    unknown = set(value) - _KNOWN
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
    has_command, has_url = "command" in value, "url" in value
    if has_command == has_url:
        raise _fail(where, "needs exactly one of 'command' (stdio) or 'url' (Streamable HTTP or WebSocket)")
    forward = value.get("forwardAuthorization", False)
    if not isinstance(forward, bool):
        raise _fail(f"{where}.forwardAuthorization", f"must be true or false, got {type(forward).__name__}")
    common: dict[str, Any] = {
        "policy": _policy(value["policy"], f"{where}.policy") if "policy" in value else PolicySettings(),
        "forward_authorization": forward,
        "breaker": _breaker(value["breaker"], f"{where}.breaker") if "breaker" in value else BreakerSettings(),
    }
    if has_command:
        for key in ("headers",):
            if key in value:
                raise _fail(f"{where}.{key}", "only a 'url' upstream takes headers")
        max_processes = value.get("maxProcesses", DEFAULT_MAX_PROCESSES)
        return UpstreamConfig(
            name=name,
            kind="stdio",
            command=_str(value["command"], f"{where}.command"),
            args=_str_list(value.get("args", []), f"{where}.args"),
            env=_str_map(value.get("env", {}), f"{where}.env"),
            cwd=_str(value["cwd"], f"{where}.cwd") if "cwd" in value else None,
            max_processes=int(_number(max_processes, f"{where}.maxProcesses", integer=True)),
            **common,
        )
    for key in ("args", "env", "cwd", "maxProcesses"):
        if key in value:
            raise _fail(f"{where}.{key}", "only a 'command' upstream takes this field")
    url = _str(value["url"], f"{where}.url")
    scheme = url.split(":", 1)[0].lower()
    kinds: dict[str, Literal["http", "websocket"]] = {
        "http": "http",
        "https": "http",
        "ws": "websocket",
        "wss": "websocket",
    }
    if scheme not in kinds or "://" not in url:
        raise _fail(f"{where}.url", "must be an http://, https://, ws:// or wss:// URL")
    headers = _str_map(value.get("headers", {}), f"{where}.headers")
    return UpstreamConfig(name=name, kind=kinds[scheme], url=url, headers=headers, **common)


def parse_gateway_config(data: object) -> GatewayConfig:
    """Validate a parsed ``mcpServers`` document.

    Raises:
        GatewayConfigError: The document is not usable; the message names the field.
    """
    if not isinstance(data, dict):
        raise _fail("(top level)", f"must be an object, got {type(data).__name__}")
    servers = data.get("mcpServers")
    if servers is None:
        raise _fail("mcpServers", 'missing (the file must look like {"mcpServers": {NAME: {...}}})')
    if not isinstance(servers, dict):
        raise _fail("mcpServers", f"must be an object, got {type(servers).__name__}")
    upstreams: dict[str, UpstreamConfig] = {}
    for name, value in servers.items():
        if isinstance(value, dict) and value.get("disabled") is True:
            continue
        upstreams[name] = _upstream(name, value)
    return GatewayConfig(upstreams)


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway config file.

    Raises:
        GatewayConfigError: The file is unreadable, not JSON, or not a usable config.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"gateway config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GatewayConfigError(f"gateway config: {path} is not JSON: {exc}") from None
    return parse_gateway_config(data)


def builtin_gateway_config() -> GatewayConfig:
    """The default: one upstream, :data:`BUILTIN_UPSTREAM`, this interpreter running the demo over stdio."""
    root = str(Path(__file__).resolve().parents[1])
    upstream = UpstreamConfig(
        name=BUILTIN_UPSTREAM,
        kind="stdio",
        command=sys.executable,
        args=("-m", "server_demo", "--stdio", "--log-level", "warning"),
        env={"PYTHONPATH": root},
        cwd=root,
    )
    return GatewayConfig({BUILTIN_UPSTREAM: upstream})
