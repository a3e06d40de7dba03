"""MessagePortTransport over a real ``MessageChannel``, inside Pyodide (Node): run by ``test_port_in_pyodide.py``.

Each function returns plain data for the host-side test to assert on. The worker is a stand-in: an
``EventTarget`` with ``postMessage`` (it keeps the ports it is handed) and ``terminate`` (it counts),
so an ``error`` event can be dispatched on it the way a browser's ``Worker`` fires one when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import js
from pyodide.code import run_js

from pyodide_transport.errors import ConnectionClosedError, RemoteProtocolError
from pyodide_transport.messages import make_notification, make_request
from pyodide_transport.port import MessagePortTransport, open_worker_port

_FAKE_WORKER_JS = """
(() => {
  class FakeWorker extends EventTarget {
    constructor() { super(); this.received = []; this.ports = []; this.terminated = 0; }
    postMessage(message, transfer) { this.received.push(message); this.ports.push(...(transfer || [])); }
    terminate() { this.terminated += 1; }
    fail(message, filename, lineno) {
      const event = new Event('error');
      if (message !== undefined) Object.assign(event, {message, filename, lineno});
      this.dispatchEvent(event);
    }
  }
  return () => new FakeWorker();
})()
"""

_new_worker: Any = None


def fake_worker() -> Any:
    """A new stand-in ``Worker`` (an ``EventTarget``)."""
    global _new_worker
    if _new_worker is None:
        _new_worker = run_js(_FAKE_WORKER_JS)
    return _new_worker()


def channel_pair(**options: Any) -> tuple[MessagePortTransport, MessagePortTransport]:
    """Two transports on the two ends of a new ``MessageChannel``."""
    channel = js.MessageChannel.new()
    return MessagePortTransport(channel.port1, **options), MessagePortTransport(channel.port2, **options)


async def ordering(count: int = 1000) -> dict[str, Any]:
    a, b = channel_pair()
    for i in range(count):
        await a.send(make_request(i, "ping"))
        await b.send(make_notification("n", {"i": i}))
    there = [(await b.receive()).id for _ in range(count)]  # type: ignore[union-attr]
    back = [(await a.receive()).params["i"] for _ in range(count)]  # type: ignore[union-attr, index]
    await a.close()
    return {"there": there == list(range(count)), "back": back == list(range(count))}


async def close_from(side: str) -> dict[str, Any]:
    a, b = channel_pair()
    closing, other = (a, b) if side == "a" else (b, a)
    await closing.send(make_notification("before"))
    pending = asyncio.ensure_future(other.receive())
    second = asyncio.ensure_future(other.receive())
    await asyncio.sleep(0)
    await closing.close(reason="bye from " + side)
    first = (await asyncio.wait_for(pending, 5)).method  # type: ignore[union-attr]
    try:
        await asyncio.wait_for(second, 5)
        woke = "no error"
    except ConnectionClosedError as exc:
        woke = exc.reason
    refused = []
    for transport in (closing, other):
        try:
            await transport.send(make_notification("late"))
            refused.append(False)
        except ConnectionClosedError:
            refused.append(True)
    await other.close()
    await closing.close()
    return {
        "first": first,
        "reason": woke,
        "refused": refused,
        "connected": [a.is_connected(), b.is_connected()],
    }


async def bad_input() -> dict[str, Any]:
    """A non-string, an object of another type, a messageerror, text that is no JSON-RPC, an oversize one."""
    channel = js.MessageChannel.new()
    ours = MessagePortTransport(channel.port1, max_message_size=1000)
    raw = channel.port2
    run_js("(port) => { port.postMessage(42); port.postMessage({type: 'hello'}); }")(raw)
    raw.postMessage("not json")
    raw.postMessage("x" * 2000)
    channel.port1.dispatchEvent(js.Event.new("messageerror"))
    raw.postMessage('{"jsonrpc":"2.0","method":"after"}')
    errors = []
    for _ in range(5):
        try:
            await asyncio.wait_for(ours.receive(), 5)
            errors.append("no error")
        except RemoteProtocolError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    after = (await asyncio.wait_for(ours.receive(), 5)).method  # type: ignore[union-attr]
    connected = ours.is_connected()
    await ours.close()
    raw.close()
    return {"errors": sorted(errors), "after": after, "connected": connected}


async def cycles(count: int = 100) -> dict[str, Any]:
    """Open and close ``count`` pairs (every other one closed from the peer only); count live proxies."""
    from pyodide_transport._browser import live_proxy_count

    before = live_proxy_count()
    peak = 0
    for i in range(count):
        worker = fake_worker()
        channel = js.MessageChannel.new()
        a = MessagePortTransport(channel.port1, owner=worker)
        b = MessagePortTransport(channel.port2)
        peak = max(peak, live_proxy_count())
        if i % 10 == 0:
            await a.send(make_request(i, "ping"))
            assert (await b.receive()).id == i  # type: ignore[union-attr]
        if i % 2:
            await b.close()  # only the peer: a lets go when the close message arrives
            with contextlib.suppress(ConnectionClosedError):
                await asyncio.wait_for(a.receive(), 5)
        else:
            await a.close()
            await b.close()
        assert not worker.terminated
    await asyncio.sleep(0.05)
    return {"before": before, "peak": peak, "after": live_proxy_count()}


async def worker_crash() -> dict[str, Any]:
    """``open_worker_port`` to a stand-in worker; its ``error`` event ends the page's transport."""
    from pyodide_transport._browser import live_proxy_count

    before = live_proxy_count()
    worker = fake_worker()
    page = open_worker_port(worker)
    connect = worker.received[0].to_py()
    served = MessagePortTransport(worker.ports[0])  # the worker's side, as a worker would take it
    await page.send(make_request(1, "ping"))
    first = (await asyncio.wait_for(served.receive(), 5)).id  # type: ignore[union-attr]
    pending = asyncio.ensure_future(page.receive())
    await asyncio.sleep(0)
    worker.fail("ReferenceError: boom is not defined", "worker.js", 3)
    try:
        await asyncio.wait_for(pending, 5)
        page_error = "no error"
    except ConnectionClosedError as exc:
        page_error = str(exc)
    try:
        await asyncio.wait_for(served.receive(), 5)
        worker_error = "no error"
    except ConnectionClosedError as exc:
        worker_error = exc.reason
    worker.fail("again")  # no listener left: nothing happens
    await page.close()
    await served.close()
    # an error event without a message (a script that failed to load)
    bare = fake_worker()
    other = open_worker_port(bare)
    bare.fail()
    try:
        await asyncio.wait_for(other.receive(), 5)
        bare_error = "no error"
    except ConnectionClosedError as exc:
        bare_error = str(exc)
    await other.close()
    bare.ports[0].close()
    return {
        "connect": connect,
        "first": first,
        "page": page_error,
        "worker": worker_error,
        "bare": bare_error,
        "terminated": worker.terminated + bare.terminated,
        "proxies": [before, live_proxy_count()],
    }


async def client_over_worker_port() -> dict[str, Any]:
    """A Client through ``open_worker_port`` to the demo server served on the port the worker got."""
    from pyodide_transport.client import Client
    from server_demo import build_demo_server, serve_transport

    worker = fake_worker()
    transport = open_worker_port(worker)
    server = asyncio.ensure_future(serve_transport(build_demo_server(), MessagePortTransport(worker.ports[0])))
    async with Client(transport, request_timeout=10) as client:
        result = await client.call_tool("echo", {"message": "through the port"})
        text = result.content[0].text  # type: ignore[union-attr]
        version = client.protocol_version
    await asyncio.wait_for(server, 5)  # the close message ends the server's loop
    return {"text": text, "version": version, "server_done": server.done()}
