"""The gateway's configuration: upstream MCP servers in the usual ``mcpServers`` JSON format.

::

    {"mcpServers": {
        "files": {"command": "python", "args": ["-m", "files_server"], "env": {"TOKEN": "..."},
                  "policy": {"allow": ["tools/*"], "deny": ["tools/call"], "rate": 20},
                  "maxProcesses": 8},
        "remote": {"url": "http://127.0.0.1:9000/mcp", "forwardAuthorization": true},
        "pool": {"url": ["http://127.0.0.1:9001/mcp", "http://127.0.0.1:9002/mcp"]},
        "all": {"routes": {"files_": "files", "remote_": "remote"}, "default": "files"}
    }}

An upstream is a stdio command (``command``, optional ``args``, ``env``, ``cwd``, ``maxProcesses``)
or a URL (``url``: ``http(s)://`` for Streamable HTTP, ``ws(s)://`` for WebSocket; optional
``headers``). Both take ``policy`` (``allow``/``deny`` method lists or ``fnmatch`` patterns,
``rate`` messages per second per browser session), ``forwardAuthorization`` (default false) and
``breaker`` (``{"failures": N, "coolDown": SECONDS}``). Upstream commands and URLs come only from
here, never from a request. Every error names the field at fault (``mcpServers.files.args[1]``).

Backend pool: ``url`` may be a non-empty list of replicas of one kind (all ``http(s)://`` or all
``ws(s)://``). Each new browser session takes the next replica round-robin, skipping replicas whose
circuit breaker is open (each replica has its own breaker, configured by ``breaker``); when every
replica's breaker is open the next one is used anyway, so the browser gets the breaker's fast
"circuit open" error. A session stays on its replica (MCP sessions are stateful). Every replica URL
counts as a secret: listings never show one and error texts have them scrubbed.

Capability routing: a ``routes`` entry is a router, one MCP server made of others. Its keys are
tool-name prefixes, its values names of other (enabled, non-router) upstreams: tool ``add`` of the
upstream routed by ``sdk_`` is listed as ``sdk_add``, and a call of ``sdk_add`` reaches it as ``add``.
The optional ``default`` names the upstream that gets every other request (resources, prompts,
ping, logging, completion) and whose non-tool capabilities the router offers; without it those
requests get method-not-found. No prefix may start another (``a_`` and ``a_b_`` would be
ambiguous). A router takes only ``routes``, ``default``, ``description`` and ``disabled``; its
targets keep their own policy, breaker and ``forwardAuthorization``.

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
_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ROUTER_FIELDS = {"routes", "default", "description", "disabled"}
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
    "routes",
    "default",
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
    """One upstream server (see the module docstring); ``kind`` is ``stdio``, ``http``, ``websocket`` or ``router``.

    ``url`` is the first (or only) replica and ``urls`` every replica, in order; a router has
    ``routes`` (prefix to upstream name, in config order) and maybe ``default``.
    """

    name: str
    kind: Literal["stdio", "http", "websocket", "router"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = field(default=None, repr=False)
    urls: tuple[str, ...] = field(default=(), repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    policy: PolicySettings = field(default_factory=PolicySettings)
    forward_authorization: bool = False
    max_processes: int = DEFAULT_MAX_PROCESSES
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    routes: dict[str, str] = field(default_factory=dict)
    default: str | None = None

    def __post_init__(self) -> None:
        if self.url is not None and not self.urls:
            object.__setattr__(self, "urls", (self.url,))  # a single URL given directly is a pool of one

    @property
    def replicas(self) -> int:
        """How many replicas a URL upstream has (1 for any other kind)."""
        return max(1, len(self.urls))

    @property
    def targets(self) -> tuple[str, ...]:
        """A router's target upstreams, each once: the routed ones in config order, then ``default``."""
        names = [*self.routes.values(), *((self.default,) if self.default is not None else ())]
        return tuple(dict.fromkeys(names))

    def secrets(self) -> tuple[str, ...]:
        """Configured values that must never appear in logs or responses.

        Env and header values, and every replica URL with its ``host:port`` (a URL may carry a
        credential, and where an upstream lives is not the browser's business).
        """
        values = [*self.env.values(), *self.headers.values()]
        for url in self.urls:
            values.append(url)
            netloc = url.split("://", 1)[-1].split("/", 1)[0]
            values.append(netloc)
        return tuple(dict.fromkeys(v for v in values if len(v) >= 4))


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
    if "routes" in value:
        return _router(name, value)
    if "default" in value:
        raise _fail(f"{where}.default", "only a router (an entry with 'routes') takes a default")
    has_command, has_url = "command" in value, "url" in value
    if has_command == has_url:
        raise _fail(
            where, "needs exactly one of 'command' (stdio) or 'url' (Streamable HTTP or WebSocket), or 'routes'"
        )
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
    kind, urls = _urls(value["url"], f"{where}.url")
    headers = _str_map(value.get("headers", {}), f"{where}.headers")
    return UpstreamConfig(name=name, kind=kind, url=urls[0], urls=urls, headers=headers, **common)


_URL_KINDS: Final[dict[str, Literal["http", "websocket"]]] = {
    "http": "http",
    "https": "http",
    "ws": "websocket",
    "wss": "websocket",
}


def _url_kind(value: object, where: str) -> Literal["http", "websocket"]:
    url = _str(value, where)
    scheme = url.split(":", 1)[0].lower()
    if scheme not in _URL_KINDS or "://" not in url:
        raise _fail(where, "must be an http://, https://, ws:// or wss:// URL")
    return _URL_KINDS[scheme]


def _urls(value: object, where: str) -> tuple[Literal["http", "websocket"], tuple[str, ...]]:
    """One URL, or a backend pool: a non-empty list of replica URLs, all of one kind."""
    if not isinstance(value, list):
        return _url_kind(value, where), (str(value),)
    if not value:
        raise _fail(where, "a list of replicas must not be empty")
    kinds = [_url_kind(item, f"{where}[{i}]") for i, item in enumerate(value)]
    for i, kind in enumerate(kinds):
        if kind != kinds[0]:
            raise _fail(f"{where}[{i}]", f"replicas must all be of one kind ({kinds[0]}, like {where}[0]), got {kind}")
    if len(set(value)) != len(value):
        raise _fail(where, "lists the same replica twice")
    return kinds[0], tuple(value)


def _router(name: str, value: dict[str, Any]) -> UpstreamConfig:
    """A router entry, checked on its own (its targets are checked against the whole config later)."""
    where = f"mcpServers.{name}"
    extra = set(value) - _ROUTER_FIELDS
    if extra:
        raise _fail(f"{where}.{sorted(extra)[0]}", "a router (an entry with 'routes') takes only routes and default")
    routes = value["routes"]
    if not isinstance(routes, dict):
        raise _fail(f"{where}.routes", f"must be an object of prefix to upstream name, got {type(routes).__name__}")
    if not routes:
        raise _fail(f"{where}.routes", "must route at least one prefix")
    out: dict[str, str] = {}
    for prefix, target in routes.items():
        if not _PREFIX.match(prefix):
            raise _fail(f"{where}.routes.{prefix}", "a prefix is 1-64 letters, digits, '.', '_' or '-'")
        out[prefix] = _str(target, f"{where}.routes.{prefix}")
    for prefix in out:
        longer = next((p for p in out if p != prefix and p.startswith(prefix)), None)
        if longer is not None:
            raise _fail(
                f"{where}.routes.{longer}", f"starts with the prefix {prefix!r}: a tool name would be ambiguous"
            )
    default = _str(value["default"], f"{where}.default") if "default" in value else None
    return UpstreamConfig(name=name, kind="router", routes=out, default=default)


def _check_router(router: UpstreamConfig, upstreams: dict[str, UpstreamConfig], disabled: set[str]) -> None:
    """A router's targets exist, are enabled and are not routers themselves."""
    where = f"mcpServers.{router.name}"
    fields = [(f"{where}.routes.{prefix}", target) for prefix, target in router.routes.items()]
    if router.default is not None:
        fields.append((f"{where}.default", router.default))
    for at, target in fields:
        if target in disabled:
            raise _fail(at, f"names the upstream {target!r}, which is disabled")
        if target not in upstreams:
            raise _fail(at, f"names no configured upstream ({target!r})")
        if upstreams[target].kind == "router":
            raise _fail(at, f"names {target!r}, a router: a router routes only to plain upstreams")


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
    disabled: set[str] = set()
    for name, value in servers.items():
        if isinstance(value, dict) and value.get("disabled") is True:
            disabled.add(name)
            continue
        upstreams[name] = _upstream(name, value)
    for upstream in upstreams.values():
        if upstream.kind == "router":
            _check_router(upstream, upstreams, disabled)
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
