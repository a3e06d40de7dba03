"""Fixtures for the server core: a demo server over an in-memory transport pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from core_client import MemoryClient

from pyodide_transport.memory import InMemoryTransport
from server_demo.core import serve_transport
from server_demo.demo import build_demo_server


@pytest.fixture
async def client() -> AsyncIterator[MemoryClient]:
    client_end, server_end = InMemoryTransport.create_pair()
    server = build_demo_server(counter_interval=0.02, step_delay=0.005)
    task = asyncio.create_task(serve_transport(server, server_end))
    try:
        yield MemoryClient(client_end)
    finally:
        await client_end.close()
        async with asyncio.timeout(10):
            await task
