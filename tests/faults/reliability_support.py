"""The reliability helpers for the fault tests of this folder: they live in ``devtools.reliability``."""

from __future__ import annotations

from devtools.reliability import (
    HANDSHAKE,
    ROOT,
    HttpxHTTPClient,
    ServerProcess,
    cpython_connect,
    live_app,
    reliability_server,
    server_process,
    until,
)

__all__ = [
    "HANDSHAKE",
    "ROOT",
    "HttpxHTTPClient",
    "ServerProcess",
    "cpython_connect",
    "live_app",
    "reliability_server",
    "server_process",
    "until",
]
