"""Fault tests: servers in-process (uvicorn on 127.0.0.1) or as subprocesses, and a cutting TCP proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from tcp_proxy import TcpProxy


@pytest.fixture
async def make_proxy() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    """``await make_proxy(upstream_port)``: a proxy on a free loopback port, stopped after the test."""
    proxies: list[TcpProxy] = []

    async def make(upstream_port: int) -> TcpProxy:
        proxy = TcpProxy(upstream_port)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            await proxy.stop()
