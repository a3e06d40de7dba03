"""``connect()`` and the whole transport suite in CPython, against the real demo server.

The scenarios live in ``tests/pyodide/transport_scenarios.py`` and run
unchanged inside Pyodide (``tests/pyodide/test_transports.py``); here the
transports run over the httpx/websockets adapters.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import pyodide_transport
from devtools.ports import free_port
from devtools.transports import HttpxHTTPClient, cpython_connect, websockets_connector
from pyodide_transport.connection import split_options, transport_for
from pyodide_transport.errors import LocalProtocolError, NetworkError
from pyodide_transport.fetch import FetchTransport
from pyodide_transport.websocket import WebSocketTransport
from tests.pyodide import transport_scenarios as scenarios

ENDPOINTS = ["/mcp", "/mcp/json", "/mcp/stateless", "/ws"]
ERAS = ["auto", scenarios.HANDSHAKE]


def endpoint_url(base: str, endpoint: str) -> str:
    return (base.replace("http://", "ws://") if endpoint == "/ws" else base) + endpoint


@pytest.mark.parametrize("stack", scenarios.STACKS)
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("scenario", list(scenarios.SUITE))
async def test_suite(demo_server: Any, scenario: str, endpoint: str, era: str, stack: str) -> None:
    url = endpoint_url(demo_server.url, endpoint)
    outcome = await scenarios.run_stacked(scenario, cpython_connect, url, era, stack)
    if stack == "middleware":
        assert outcome["logged"]["out"] > 0 and outcome["logged"]["in"] > 0, outcome
    if scenario == "initialize":
        assert outcome["era"] == ("modern" if era == "auto" else "handshake")
        assert outcome["transport"] == ("websocket" if endpoint == "/ws" else "streamable-http")


def test_split_options_routes_by_name() -> None:
    transport, client = split_options(
        WebSocketTransport, {"ping_interval": 5.0, "request_timeout": 3.0, "on_log": print, "protocol_version": "x"}
    )
    assert transport == {"ping_interval": 5.0, "request_timeout": 3.0}
    assert client == {"request_timeout": 3.0, "on_log": print, "protocol_version": "x"}  # shared name: both
    transport, client = split_options(FetchTransport, {"headers": {"a": "b"}, "request_timeout": 3.0})
    assert transport == {"headers": {"a": "b"}}
    assert client == {"request_timeout": 3.0}


def test_unknown_option_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) pingInterval.*WebSocketTransport accepts"):
        split_options(WebSocketTransport, {"pingInterval": 1})


async def test_scheme_picks_the_transport() -> None:
    assert isinstance(transport_for("http://127.0.0.1:1/mcp", fetch=HttpxHTTPClient()), FetchTransport)
    assert isinstance(transport_for("wss://127.0.0.1:1/ws", connector=websockets_connector), WebSocketTransport)
    with pytest.raises(LocalProtocolError, match="scheme must be http, https, ws, wss or worker"):
        await pyodide_transport.connect("ftp://127.0.0.1/mcp")
    with pytest.raises(LocalProtocolError, match="a worker: URL needs a browser"):  # CPython has no Worker
        transport_for("worker:./server-worker.js")
    with pytest.raises(LocalProtocolError, match="a worker: URL needs a browser"):
        await pyodide_transport.connect("worker:./server-worker.js", max_message_size=10)
    with pytest.raises(TypeError, match=r"unknown option\(s\) headers"):  # a port takes no HTTP headers
        await pyodide_transport.connect("worker:./server-worker.js", headers={"A": "b"})


async def test_outside_pyodide_the_cpython_adapters_are_the_defaults() -> None:
    from pyodide_transport.cpython import HttpxHTTPClient as Shipped
    from pyodide_transport.cpython import websockets_connect

    fetch = FetchTransport("http://127.0.0.1:1/mcp")
    assert isinstance(fetch._http, Shipped)
    await fetch.close()
    assert WebSocketTransport("ws://127.0.0.1:1/ws")._connector is websockets_connect


def test_without_the_cpython_extra_the_defaults_explain_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.setitem(sys.modules, "websockets", None)
    with pytest.raises(LocalProtocolError, match=r"pyodide-transport\[cpython\]"):
        FetchTransport("http://127.0.0.1:1/mcp")
    with pytest.raises(LocalProtocolError, match=r"pyodide-transport\[cpython\]"):
        WebSocketTransport("ws://127.0.0.1:1/ws")


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/mcp", "ws://127.0.0.1:{port}/ws"])
async def test_connect_failure_raises_network_error_and_cleans_up(url: str) -> None:
    with pytest.raises(NetworkError):
        await cpython_connect(url.format(port=free_port()), request_timeout=5.0)
