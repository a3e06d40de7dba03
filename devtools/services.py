"""Real services from Debian for tests and benchmarks: ``redis-server`` and ``haproxy`` on free loopback ports.

Each runs in the foreground as our child (no daemon, nothing written to disk, no
config outside a temporary directory) and is stopped by :meth:`stop` or when the
context ends. ``python build.py test`` installs them (``apt-get``); a machine
without them fails with a message that says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from .ports import free_port, wait_for_port
from .processes import stop_process

__all__ = ["HAProxy", "RedisServer", "require"]


def require(program: str) -> str:
    """The path of ``program``, or a RuntimeError naming the Debian package to install."""
    path = shutil.which(program) or (f"/usr/sbin/{program}" if Path(f"/usr/sbin/{program}").exists() else None)
    if path is None:
        raise RuntimeError(f"{program} is not installed: run the tests through `python build.py test` (apt-get)")
    return path


class _Service:
    """A child process listening on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and reap it."""
        stop_process(self.proc, timeout=5)

    def __enter__(self) -> _Service:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class RedisServer(_Service):
    """``redis-server`` on a free port of 127.0.0.1, in memory only (no RDB, no AOF)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        cmd = [
            require("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc, timeout=15)

    def __enter__(self) -> RedisServer:
        return self


class HAProxy(_Service):
    """``haproxy`` balancing HTTP round-robin over ``backends`` (loopback ports), no session affinity.

    Health checks every 200 ms take a dead backend out of the rotation; a request
    whose connection to a backend fails is redispatched to another one.
    """

    def __init__(self, backends: Sequence[int], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="haproxy-")
        servers = "\n".join(
            f"    server r{i} 127.0.0.1:{p} check inter 200 fall 1 rise 2" for i, p in enumerate(backends)
        )
        config = f"""global
    maxconn 2000
defaults
    mode http
    retries 2
    option redispatch
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
frontend mcp
    bind 127.0.0.1:{self.port}
    default_backend replicas
backend replicas
    balance roundrobin
    option http-server-close
{servers}
"""
        path = Path(self._dir.name) / "haproxy.cfg"
        path.write_text(config)
        self.proc = subprocess.Popen(
            [require("haproxy"), "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(self.port, self.proc, timeout=15)

    def stop(self) -> None:
        """Stop haproxy and drop its config."""
        super().stop()
        self._dir.cleanup()

    def __enter__(self) -> HAProxy:
        return self
