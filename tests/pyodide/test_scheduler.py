"""The batching scheduler (``pyodide_transport._browser.BatchScheduler``) inside real Pyodide.

Every asyncio hop of a batch runs in one JavaScript microtask; the tests check what an event loop
must still guarantee: FIFO order, cancelled handles skipped, exceptions reported without stopping
the batch, timers firing while a coroutine spins on ``sleep(0)`` (the batch yields to the host),
and ``install_scheduler(False)`` giving scheduling back to the webloop.
"""

from __future__ import annotations

import json

from node_runtime import NodePyodide

CHECKS = """
import asyncio, json, time
import pyodide_transport
from pyodide_transport import _browser

loop = asyncio.get_running_loop()
out = {}
assert pyodide_transport.install_scheduler()
scheduler = _browser._scheduler
out["installed"] = loop.call_soon == scheduler.call_soon

order = []
for i in range(5):
    loop.call_soon(order.append, i)
skipped = loop.call_soon(order.append, "cancelled")
skipped.cancel()
await asyncio.sleep(0)
await asyncio.sleep(0)
out["fifo"] = order

errors = []
loop.set_exception_handler(lambda _loop, ctx: errors.append(str(ctx.get("exception"))))
after = []
loop.call_soon(lambda: 1 / 0)
loop.call_soon(after.append, "still ran")
await asyncio.sleep(0)
await asyncio.sleep(0)
loop.set_exception_handler(None)
out["error_reported"] = errors
out["after_error"] = after

before = scheduler.batches
start = time.perf_counter()
for _ in range(2000):
    await asyncio.sleep(0)
out["hop_us"] = (time.perf_counter() - start) / 2000 * 1e6
out["batches_for_2000_hops"] = scheduler.batches - before

fired = []
loop.call_later(0.02, fired.append, True)
end = time.monotonic() + 2.0
while not fired and time.monotonic() < end:
    await asyncio.sleep(0)
out["timer_fired_while_spinning"] = bool(fired)

pyodide_transport.install_scheduler(False)
out["uninstalled"] = "call_soon" not in loop.__dict__
await asyncio.sleep(0)
pyodide_transport.install_scheduler(True)
out["reinstalled"] = loop.call_soon == _browser._scheduler.call_soon
json.dumps(out)
"""


def test_batching_scheduler_keeps_the_loop_guarantees(pyodide: NodePyodide) -> None:
    result = json.loads(pyodide.run(CHECKS, timeout=60))
    assert result["installed"] and result["uninstalled"] and result["reinstalled"]
    assert result["fifo"] == [0, 1, 2, 3, 4]
    assert result["error_reported"] == ["division by zero"] and result["after_error"] == ["still ran"]
    assert result["timer_fired_while_spinning"]
    assert result["batches_for_2000_hops"] < 2000  # one batch runs many hops (each hop is its own JS task otherwise)


def test_outside_pyodide_install_scheduler_does_nothing() -> None:
    import pyodide_transport

    assert pyodide_transport.install_scheduler() is False
