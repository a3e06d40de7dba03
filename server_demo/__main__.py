"""``python -m server_demo``: serve every endpoint and the built site, or speak stdio.

Binds 127.0.0.1 by default; ``--allow-origin`` adds browser origins beyond
the loopback defaults; ``--store sqlite:PATH`` keeps SSE events and
sessions in SQLite so resumption survives a restart, ``--store redis://HOST:PORT/DB``
keeps them in Redis so replicas behind any load balancer serve the same sessions; ``--stdio`` speaks
line-delimited JSON-RPC on stdin/stdout instead (logs go to stderr).
OAuth (``/mcp/protected`` and its authorization server under ``/oauth``) is on
unless ``--no-oauth``. ``/ws/encrypted`` (every frame an AES-256-GCM envelope) is on unless
``--no-encryption``; its key comes from ``--encryption-key HEX`` (32 bytes), else
``--encryption-passphrase`` or ``$SERVER_DEMO_ENCRYPTION_PASSPHRASE``, else a public DEMO passphrase.
``--record-wire FILE`` (a test hook) appends every raw ``/ws/encrypted`` frame to FILE as JSON lines.
``--gateway FILE`` offers the upstream MCP servers of an ``mcpServers`` JSON file at
``/gateway/NAME/mcp`` and ``/gateway/NAME/ws`` (listed at ``/gateway``); without it one built-in
upstream, ``demo-stdio`` (this interpreter running ``-m server_demo --stdio``), is offered;
``--no-gateway`` offers none. ``--backend redis-queue --redis URL`` hands ``/mcp``, ``/mcp/json``,
``/mcp/stateless`` and ``/ws`` to a pool of queue workers, each started with
``python -m server_demo worker --redis URL [--capability NAME ...] [--visibility-timeout SECONDS]``
(:mod:`server_demo.queue_worker`). The MCP Apps sandbox proxy (:mod:`server_demo.sandbox`, a second
origin) listens on ``--sandbox-port PORT`` (default 0: a free port chosen at start; ``--no-sandbox``: none);
``GET /apps/sandbox.json`` on the main port says where.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from pathlib import Path

from .config import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_ALLOWED_ORIGINS,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEMO_PASSPHRASE,
    EncryptionConfig,
    SecurityConfig,
    stateful_json,
    stateful_sse,
    stateless_json,
)

__all__ = ["PASSPHRASE_ENV", "encryption_config", "main", "parse_args"]

PASSPHRASE_ENV = "SERVER_DEMO_ENCRYPTION_PASSPHRASE"
"""The environment variable ``/ws/encrypted``'s passphrase may come from."""

REPO_SITE = Path(__file__).resolve().parents[1] / "site" / "dist"

_SECRET_PARAMS = re.compile(r"([?&](?:code|access_token|refresh_token)=)[^&\s]*", re.IGNORECASE)


class _RedactSecrets(logging.Filter):
    """Keeps authorization codes and tokens in a query string (e.g. ``/oauth/callback.html?code=…``) out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the access log's path argument."""
        if isinstance(record.args, tuple):
            record.args = tuple(_SECRET_PARAMS.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def _positive_int(text: str) -> int:
    """An argparse type: an integer above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _hex_key(text: str) -> bytes:
    """An argparse type: 32 bytes as 64 hex digits."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not hex digits") from None
    if len(key) != 32:
        raise argparse.ArgumentTypeError(f"an AES-256 key is 32 bytes (64 hex digits), got {len(key)}")
    return key


def encryption_config(args: argparse.Namespace) -> EncryptionConfig | None:
    """``/ws/encrypted``'s key from the command line and environment (None: ``--no-encryption``)."""
    if args.no_encryption:
        return None
    passphrase = args.encryption_passphrase or os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    config = EncryptionConfig(passphrase=passphrase, key=args.encryption_key)
    if args.record_wire is not None:
        path: Path = args.record_wire

        def record(direction: str, frame: str) -> None:
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"direction": direction, "frame": frame}) + "\n")

        config.on_wire = record
    return config


def _agree_with_replicas(url: str, *, secret: bool = True) -> bytes:
    """Reach Redis now (a clear exit if it cannot be) and get the key every replica signs ``requestState`` with."""
    from .sse.event_store import StoreUnavailableError
    from .sse.redis_store import RedisStore

    async def agree() -> bytes:
        store = RedisStore(url)
        try:
            await store.ping()
            return await store.shared_secret("request-state") if secret else b""
        finally:
            await store.close()

    try:
        return asyncio.run(agree())
    except StoreUnavailableError as exc:
        raise SystemExit(f"python -m server_demo: cannot reach Redis at {url}: {exc.__cause__}") from None


def _start_sandbox(host: str, port: int, site: Path | None, log_level: str) -> int:
    """Serve the MCP Apps sandbox proxy (:mod:`server_demo.sandbox`) on ``port`` (0: a free one) in a thread.

    The socket is bound here, so the port is known (and taken) before the main app starts; the thread
    is a daemon: it ends with the process.
    """
    import socket
    import threading

    import uvicorn

    from .sandbox import create_sandbox_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"python -m server_demo: cannot serve the sandbox proxy on port {port}: {exc}") from None
    sock.listen(128)
    config = uvicorn.Config(create_sandbox_app(site), log_level=log_level.lower(), lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), name="sandbox", daemon=True).start()
    bound: int = sock.getsockname()[1]
    return bound


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m server_demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--site", type=Path, default=None, help="static site directory (default: site/dist)")
    parser.add_argument(
        "--allow-origin", action="append", default=[], metavar="ORIGIN", help="extra allowed browser origin"
    )
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST", help="extra allowed Host")
    parser.add_argument(
        "--store",
        "--event-store",
        dest="store",
        default="memory",
        metavar="SPEC",
        help="sessions and SSE events of /mcp: memory (default), sqlite:PATH (they survive a restart) or "
        "redis://HOST:PORT/DB (replicas share them; also /mcp/json's sessions)",
    )
    parser.add_argument(
        "--session-idle-timeout",
        type=float,
        default=30 * 60,
        metavar="SECONDS",
        help="idle sessions expire after this long (default 1800)",
    )
    parser.add_argument("--no-oauth", action="store_true", help="serve neither /mcp/protected nor the OAuth server")
    parser.add_argument(
        "--token-lifetime",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="OAuth access token lifetime (default 3600)",
    )
    parser.add_argument("--no-encryption", action="store_true", help="do not serve /ws/encrypted")
    parser.add_argument(
        "--encryption-passphrase",
        default=None,
        metavar="TEXT",
        help=f"/ws/encrypted passphrase (PBKDF2-HMAC-SHA256); default ${PASSPHRASE_ENV}, else a public DEMO one",
    )
    parser.add_argument(
        "--encryption-key", type=_hex_key, default=None, metavar="HEX", help="/ws/encrypted raw key: 64 hex digits"
    )
    parser.add_argument(
        "--record-wire",
        type=Path,
        default=None,
        metavar="FILE",
        help="test hook: append every raw /ws/encrypted frame to FILE (JSON lines)",
    )
    parser.add_argument(
        "--gateway",
        type=Path,
        default=None,
        metavar="FILE",
        help="mcpServers JSON file of upstreams for /gateway (default: the built-in demo-stdio upstream)",
    )
    parser.add_argument("--no-gateway", action="store_true", help="serve no /gateway endpoints")
    parser.add_argument(
        "--sandbox-port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the MCP Apps sandbox proxy, a second origin (default 0: a free port chosen at start)",
    )
    parser.add_argument("--no-sandbox", action="store_true", help="serve no MCP Apps sandbox proxy")
    parser.add_argument("--stdio", action="store_true", help="speak MCP over stdin/stdout instead of HTTP")
    parser.add_argument(
        "--backend",
        choices=("core", "redis-queue"),
        default="core",
        help="who serves /mcp, /mcp/json, /mcp/stateless and /ws: the in-process core (default) or queue workers",
    )
    parser.add_argument("--redis", default=None, metavar="URL", help="the worker queue's Redis (--backend redis-queue)")
    parser.add_argument("--log-level", default="info", help="logging level (default info)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the server (``worker ...``: a queue worker, see :mod:`server_demo.queue_worker`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        from .queue_worker import main as worker_main

        worker_main(argv[1:])
        return
    args = parse_args(argv)
    if args.backend == "redis-queue" and not args.redis:
        raise SystemExit("python -m server_demo: --backend redis-queue needs --redis URL")
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    from .demo import build_demo_server

    if args.stdio:
        from .stdio import serve_stdio

        asyncio.run(serve_stdio(build_demo_server()))
        return

    import uvicorn

    from .app import AppConfig, create_app
    from .oauth import OAuthConfig

    hosts = list(DEFAULT_ALLOWED_HOSTS) + list(args.allow_host)
    if args.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(f"{args.host}:*")
    security = SecurityConfig(
        allowed_origins=(*DEFAULT_ALLOWED_ORIGINS, *args.allow_origin), allowed_hosts=tuple(hosts)
    )
    from .sse.spec import store_from_spec

    try:
        store = store_from_spec(args.store)
    except ValueError as exc:
        raise SystemExit(f"python -m server_demo: {exc}") from None
    server = build_demo_server()
    backend = None
    if args.backend == "redis-queue":
        from .queue_backend import QueueBackend
        from .queue_worker import build_worker_server

        _agree_with_replicas(args.redis, secret=False)  # one clear line now if the queue's Redis is not there
        server = build_worker_server()  # the workers' registry: the front door's header checks read it
        backend = QueueBackend(args.redis)
    if store.shared:
        server.state_key = _agree_with_replicas(args.store)
    from .gateway_config import GatewayConfigError, builtin_gateway_config, load_gateway_config

    try:
        gateway = None if args.no_gateway else (load_gateway_config(args.gateway) if args.gateway else None)
    except GatewayConfigError as exc:
        raise SystemExit(f"python -m server_demo: {exc}") from None
    if gateway is None and not args.no_gateway:
        gateway = builtin_gateway_config()
    site = args.site if args.site is not None else (REPO_SITE if REPO_SITE.is_dir() else None)
    sandbox_port = None if args.no_sandbox else _start_sandbox(args.host, args.sandbox_port, site, args.log_level)
    endpoint = {"security": security, "session_idle_timeout": args.session_idle_timeout}
    config = AppConfig(
        site_dir=site,
        security=security,
        sse=stateful_sse(**endpoint, event_store=store),
        json=stateful_json(**endpoint, **({"event_store": store} if store.shared else {})),
        stateless=stateless_json(**endpoint),
        protected=stateful_sse(**endpoint),
        oauth=None if args.no_oauth else OAuthConfig(token_lifetime=args.token_lifetime),
        encryption=encryption_config(args),
        gateway=gateway,
        gateway_endpoint=lambda: stateful_sse(**endpoint),
        backend=backend,
        sandbox_port=sandbox_port,
    )
    app = create_app(server, config)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"pyodide-transport demo server on http://{shown}:{args.port}/", flush=True)
    protected = "  /mcp/protected (OAuth)" if config.oauth is not None else ""
    encrypted = ""
    if config.encryption is not None:
        demo = config.encryption.key is None and config.encryption.passphrase == DEMO_PASSPHRASE
        encrypted = "  /ws/encrypted" + (" (DEMO passphrase: not secret)" if demo else "")
    print(
        f"  MCP: /mcp (SSE)  /mcp/json  /mcp/stateless{protected}  /ws{encrypted}   site: {site or '(none)'}",
        flush=True,
    )
    if sandbox_port is not None:
        print(f"  MCP Apps sandbox proxy: http://{shown}:{sandbox_port}/sandbox.html", flush=True)
    if gateway is not None:
        print(f"  gateway: /gateway  upstreams: {', '.join(gateway.upstreams) or '(none)'}", flush=True)
    if backend is not None:
        print(f"  backend: redis-queue (/mcp, /mcp/json, /mcp/stateless, /ws -> {backend.link.inbox})", flush=True)
    logging.getLogger("uvicorn.access").addFilter(_RedactSecrets())
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        ws_max_size=DEFAULT_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
