"""MessagePortTransport inside real Pyodide (Node): a real ``MessageChannel``, the JS adapter of ``_browser``.

The scenarios are ``port_scenarios.py`` (Pyodide-side code); the transport suite
(``transport_scenarios.py``) also runs over a port here, with the demo server in the same Pyodide.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from node_runtime import NodePyodide

from tests.pyodide.transport_scenarios import HANDSHAKE, STACKS, SUITE

pytestmark = pytest.mark.pyodide


def run(pyodide: NodePyodide, call: str) -> Any:
    code = f"import json\nimport tests.pyodide.port_scenarios as P\njson.dumps(await P.{call})"
    return pyodide.run_json(code)


def test_1000_messages_in_order_both_ways(pyodide: NodePyodide) -> None:
    assert run(pyodide, "ordering(1000)") == {"there": True, "back": True}


@pytest.mark.parametrize("side", ["a", "b"])
def test_close_from_either_side(pyodide: NodePyodide, side: str) -> None:
    outcome = run(pyodide, f"close_from({side!r})")
    assert outcome == {
        "first": "before",  # what was sent before the close is read first
        "reason": f"bye from {side}",
        "refused": [True, True],
        "connected": [False, False],
    }


def test_bad_input_is_a_clear_error_and_nothing_after_it_is_lost(pyodide: NodePyodide) -> None:
    outcome = run(pyodide, "bad_input()")
    assert outcome["after"] == "after" and outcome["connected"]
    errors = outcome["errors"]
    assert len(errors) == 5, errors
    text = "\n".join(errors)
    assert "MessageTooLargeError: MessagePort message of 2000 characters exceeds max_message_size=1000" in text
    assert "invalid JSON" in text
    assert "number, not a string" in text
    assert 'object of type "hello", not a string' in text
    assert "could not be deserialized (messageerror)" in text


def test_100_open_close_cycles_leave_no_live_proxies(pyodide: NodePyodide) -> None:
    outcome = run(pyodide, "cycles(100)")
    assert outcome["peak"] == outcome["before"] + 3  # each port's listener, the owner's error listener
    assert outcome["after"] == outcome["before"]


def test_a_worker_error_ends_the_transport_naming_it(pyodide: NodePyodide) -> None:
    outcome = run(pyodide, "worker_crash()")
    assert outcome["connect"] == {"type": "mcp-connect"}
    assert outcome["first"] == 1
    assert outcome["page"] == "the worker failed: ReferenceError: boom is not defined (worker.js:3)"
    assert outcome["worker"] == "worker error: ReferenceError: boom is not defined (worker.js:3)"
    assert "an error event without a message" in outcome["bare"]
    assert outcome["terminated"] == 0  # close() never terminates the worker
    before, after = outcome["proxies"]
    assert after == before


def test_a_client_reaches_the_demo_server_through_open_worker_port(pyodide: NodePyodide) -> None:
    outcome = run(pyodide, "client_over_worker_port()")
    assert outcome["text"] == "through the port" and outcome["server_done"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("era", ["auto", HANDSHAKE])
@pytest.mark.parametrize("scenario", list(SUITE))
def test_suite_over_a_message_channel(pyodide: NodePyodide, scenario: str, era: str, stack: str) -> None:
    code = f"""
import json
import tests.pyodide.transport_scenarios as S
outcome = await S.run_stacked({scenario!r}, S.connect_over_port, S.PORT_URL, {era!r}, {stack!r})
outcome["servers_running"] = await S.port_servers_done()
json.dumps(outcome)
"""
    outcome = pyodide.run_json(code)
    if stack == "middleware":
        assert outcome["logged"]["out"] > 0 and outcome["logged"]["in"] > 0, outcome
    if scenario == "initialize":
        assert outcome["transport"] == "message-port"
        assert outcome["era"] == ("modern" if era == "auto" else "handshake")
    assert json.dumps(outcome)  # plain data came back
