"""The protocol view's grouping: requests with their progress, cancellation, server requests and rounds."""

from __future__ import annotations

from typing import Any

from ptsite.protocol import ProtocolModel, matches
from ptsite.tracing import TraceEntry


class Wire:
    """Makes trace entries with a clock that moves 10 ms per message."""

    def __init__(self) -> None:
        self.seq = 0
        self.now = 1000.0
        self.sent: dict[tuple[str, str], float] = {}

    def entry(self, direction: str, body: dict[str, Any], method: str = "") -> TraceEntry:
        self.seq += 1
        self.now += 0.01
        if "method" in body:
            kind = "request" if "id" in body else "notification"
        else:
            kind = "error" if "error" in body else "response"
        msg_id = "" if body.get("id") is None else str(body["id"])
        duration = None
        if kind == "request":
            self.sent[(direction, msg_id)] = self.now
        elif kind in ("response", "error"):
            asker = "in" if direction == "out" else "out"
            start = self.sent.pop((asker, msg_id), None)
            duration = None if start is None else self.now - start
        return TraceEntry(
            self.seq,
            direction,
            kind,
            body.get("method", method),
            msg_id,
            self.now,
            duration,
            body,
        )

    def request(self, msg_id: int, method: str, params: dict[str, Any] | None = None) -> TraceEntry:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            body["params"] = params
        return self.entry("out", body)

    def result(self, msg_id: int, result: dict[str, Any], direction: str = "in") -> TraceEntry:
        return self.entry(direction, {"jsonrpc": "2.0", "id": msg_id, "result": result})

    def notify(self, method: str, params: dict[str, Any], direction: str = "in") -> TraceEntry:
        return self.entry(direction, {"jsonrpc": "2.0", "method": method, "params": params})


def test_a_call_with_progress_is_one_group_with_its_timeline() -> None:
    wire, model = Wire(), ProtocolModel()
    group = model.add(wire.request(5, "tools/call", {"name": "long", "_meta": {"progressToken": 5}}))
    assert group.status == "pending" and group.duration is None
    for step in (1, 2):
        assert (
            model.add(wire.notify("notifications/progress", {"progressToken": 5, "progress": step, "total": 2}))
            is group
        )
    assert model.add(wire.result(5, {"content": []})) is group
    assert group.status == "ok"
    assert [e.role for e in group.events] == ["request", "progress", "progress", "response"]
    assert [e.link for e in group.events] == ["", "progressToken", "progressToken", "id"]
    assert group.events[1].label == "← progress 1 / 2"
    offsets = [e.offset for e in group.events]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert group.duration is not None and abs(group.duration - 0.03) < 1e-6
    assert group.summary().startswith("tools/call #5 · ok · 30 ms · 4 events")
    assert len(model.groups) == 1


def test_cancellation_ends_the_group_and_a_late_answer_keeps_it_cancelled() -> None:
    wire, model = Wire(), ProtocolModel()
    group = model.add(wire.request(3, "tools/call", {"name": "slow"}))
    model.add(wire.notify("notifications/cancelled", {"requestId": 3, "reason": "user"}, direction="out"))
    assert group.status == "cancelled"
    assert group.events[-1].label == "→ cancelled #3: user"
    model.add(wire.result(3, {"content": []}))
    assert group.status == "cancelled" and len(group.events) == 3


def test_errors_and_tool_errors() -> None:
    wire, model = Wire(), ProtocolModel()
    failed = model.add(wire.request(1, "tools/call", {"name": "x"}))
    model.add(wire.entry("in", {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}}))
    assert failed.status == "error" and "bad" in failed.events[-1].label
    tool = model.add(wire.request(2, "tools/call", {"name": "x"}))
    model.add(wire.result(2, {"content": [], "isError": True}))
    assert tool.status == "error" and "isError" in tool.events[-1].label


def test_handshake_server_request_linked_by_its_stream() -> None:
    wire, model = Wire(), ProtocolModel()
    group = model.add(wire.request(7, "tools/call", {"name": "ask_llm"}))
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {}}
    model.relate(sampling, "7")  # the recorder read it off the POST's event stream
    model.relate({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}}, "7")
    assert model.add(wire.entry("in", sampling)) is group
    assert model.add(wire.notify("notifications/message", {"level": "info", "data": "thinking"})) is group
    assert model.add(wire.result(0, {"role": "assistant"}, direction="out")) is group
    model.add(wire.result(7, {"content": []}))
    assert [e.role for e in group.events] == ["request", "server-request", "log", "answer", "response"]
    assert group.events[1].link == "stream" and group.status == "ok"


def test_server_request_without_association_is_unlinked() -> None:
    wire, model = Wire(), ProtocolModel()
    call = model.add(wire.request(7, "tools/call", {"name": "ask_llm"}))
    asked = model.add(wire.entry("in", {"jsonrpc": "2.0", "id": 0, "method": "roots/list"}))
    assert asked is not call and asked.kind == "server-request" and asked.unlinked
    assert asked.note == "the wire does not say which request it belongs to"
    assert model.add(wire.result(0, {"roots": []}, direction="out")) is asked
    assert asked.status == "ok"
    # on the GET stream: its own row, but not unlinked (the wire says: no request)
    model.relate({"id": 1, "method": "roots/list"}, None)
    standalone = model.add(wire.entry("in", {"jsonrpc": "2.0", "id": 1, "method": "roots/list"}))
    assert standalone.kind == "server-request" and not standalone.unlinked


def test_modern_input_required_rounds_are_linked_by_request_state() -> None:
    wire, model = Wire(), ProtocolModel()
    group = model.add(wire.request(4, "tools/call", {"name": "ask_user", "arguments": {}}))
    asks = {"e1": {"method": "elicitation/create", "params": {"message": "name?"}}}
    model.add(wire.result(4, {"resultType": "input_required", "inputRequests": asks, "requestState": "s1"}))
    assert group.status == "pending" and group.waiting == frozenset({"e1"})
    assert "e1: elicitation/create" in group.events[-1].label
    retry = {"name": "ask_user", "arguments": {}, "inputResponses": {"e1": {"action": "accept"}}, "requestState": "s1"}
    assert model.add(wire.request(5, "tools/call", retry)) is group
    assert group.events[-1].role == "retry" and group.events[-1].link == "requestState"
    model.add(wire.result(5, {"content": []}))
    assert group.status == "ok" and group.rounds == 2 and group.ids == ["4", "5"]
    assert "2 rounds" in group.summary()


def test_modern_round_without_state_links_by_the_answered_keys() -> None:
    wire, model = Wire(), ProtocolModel()
    group = model.add(wire.request(4, "tools/call", {"name": "ask_llm"}))
    asks = {"s": {"method": "sampling/createMessage", "params": {}}}
    model.add(wire.result(4, {"resultType": "input_required", "inputRequests": asks}))
    other = model.add(wire.request(5, "tools/call", {"name": "ask_llm", "inputResponses": {"other": {}}}))
    assert other is not group and other.kind == "unlinked" and other.unlinked  # keys differ
    assert model.add(wire.request(6, "tools/call", {"name": "ask_llm", "inputResponses": {"s": {}}})) is group
    assert group.events[-1].link == "inputResponses"


def test_a_round_whose_state_matches_nothing_is_unlinked() -> None:
    wire, model = Wire(), ProtocolModel()
    lone = model.add(wire.request(9, "tools/call", {"name": "x", "requestState": "gone", "inputResponses": {}}))
    assert lone.kind == "unlinked" and "requestState matches none" in lone.note


def test_notifications_outside_requests_are_rows_of_their_own() -> None:
    wire, model = Wire(), ProtocolModel()
    call = model.add(wire.request(1, "tools/call", {"name": "x"}))
    changed = model.add(wire.notify("notifications/tools/list_changed", {}))
    updated = model.add(wire.notify("notifications/resources/updated", {"uri": "demo://counter"}))
    log = model.add(wire.notify("notifications/message", {"level": "info", "data": "hi"}))  # no association
    stray = model.add(wire.notify("notifications/progress", {"progressToken": 99, "progress": 1}))
    assert len({id(g) for g in (call, changed, updated, log, stray)}) == 5
    assert changed.kind == "notification" and changed.status == "ok"
    assert updated.events[0].label.endswith("demo://counter")
    assert stray.unlinked


def test_oauth_requests_are_rows() -> None:
    wire, model = Wire(), ProtocolModel()
    body = {"http": "GET http://127.0.0.1/.well-known/oauth-protected-resource", "status": 200, "outcome": "ok"}
    group = model.add(TraceEntry(1, "out", "oauth", "discovery", "", wire.now, None, body))
    assert group.kind == "oauth" and group.status == "ok" and "→ ok" in group.events[0].label
    failed = dict(body, status=None, outcome="NetworkError")
    assert model.add(TraceEntry(2, "out", "oauth", "token", "", wire.now, None, failed)).status == "error"


def test_groups_are_capped_finished_ones_first() -> None:
    wire, model = Wire(), ProtocolModel(max_groups=3)
    pending = model.add(wire.request(1, "tools/call", {"name": "slow", "_meta": {"progressToken": 1}}))
    for i in range(2, 6):
        model.add(wire.request(i, "ping"))
        model.add(wire.result(i, {}))
    assert len(model.groups) == 3 and pending.key in model.groups and model.dropped == 2
    for i in range(6, 9):
        model.add(wire.request(i, "tools/call", {"name": "slow"}))
    assert pending.key not in model.groups  # all pending: the oldest goes
    # its progress no longer finds it: a row of its own, the dropped group's tables are gone
    assert model.add(wire.notify("notifications/progress", {"progressToken": 1, "progress": 1})).unlinked


def test_filter_by_method_status_and_pings() -> None:
    wire, model = Wire(), ProtocolModel()
    ping = model.add(wire.request(1, "ping"))
    model.add(wire.result(1, {}))
    call = model.add(wire.request(2, "tools/call", {"name": "x"}))
    assert matches(ping, "", "", False) and not matches(ping, "", "", True)
    assert matches(call, "TOOLS", "pending", True) and not matches(call, "tools", "ok", True)
    assert not matches(call, "prompts", "", False)
    model.expect_ping("server/discover")  # the 2026-07-28 era pings with server/discover
    check = model.add(wire.request(3, "server/discover"))
    later = model.add(wire.request(4, "server/discover"))
    assert check.is_ping and not matches(check, "", "", True) and not later.is_ping


def test_clear_forgets_groups() -> None:
    wire, model = Wire(), ProtocolModel()
    model.add(wire.request(1, "tools/call", {"name": "x"}))
    model.clear()
    assert not model.groups
    assert model.add(wire.result(1, {})).kind == "unlinked"


def test_closing_ends_pending_groups() -> None:
    wire, model = Wire(), ProtocolModel()
    listen = model.add(wire.request(1, "subscriptions/listen", {}))
    done = model.add(wire.request(2, "tools/list"))
    model.add(wire.result(2, {"tools": []}))
    assert model.close_pending(wire.now + 1) == [listen]
    assert listen.status == "cancelled" and listen.note == "the connection closed before it was answered"
    assert done.status == "ok"
    assert model.add(wire.result(1, {})).kind == "unlinked"  # nothing waits any more
