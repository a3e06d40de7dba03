"""The protocol view's model: the message trace grouped per request (pure Python, no ``js``).

Every message of the trace (:class:`~ptsite.tracing.TraceEntry`) joins a :class:`Group`: a client
request with what belongs to it (its ``notifications/progress`` by ``progressToken``, its
``notifications/cancelled`` by ``requestId``, the server-to-client requests made while it runs and
our answers to them, the final response or error), or a row of its own (a notification outside
any request, a server request the wire does not tie to one, an OAuth request).

Server-to-client requests reach the client in two ways:

* handshake era: as JSON-RPC requests of their own. Only the HTTP stream they arrive on says which
  request they belong to; :meth:`ProtocolModel.relate` takes that association (the network
  recorder reads it off the POST's event stream). Without it (WebSocket, the in-browser worker, the
  GET stream) they are rows of their own, marked ``unlinked``.
* 2026-07-28 era: as an ``input_required`` result; the client answers in a new request (a new id)
  with the same method, ``inputResponses`` and the result's ``requestState``. The state ties the
  rounds together; without one, a retry of the same method and tool answering exactly the keys a
  pending group asked for is linked too. Anything else is a group of its own, marked ``unlinked``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .tracing import TraceEntry, describe

__all__ = [
    "MAX_GROUPS",
    "Event",
    "Group",
    "GroupKind",
    "GroupStatus",
    "ProtocolModel",
    "matches",
]

MAX_GROUPS = 500
"""Groups kept; the oldest go first (finished ones before pending ones)."""

GroupStatus: TypeAlias = Literal["pending", "ok", "error", "cancelled"]
GroupKind: TypeAlias = Literal["request", "notification", "server-request", "oauth", "unlinked"]

STATUSES: tuple[GroupStatus, ...] = ("pending", "ok", "error", "cancelled")

_LISTEN = "subscriptions/listen"


@dataclass
class Event:
    """One message inside a group.

    Attributes:
        entry: The trace entry.
        role: ``request``, ``retry`` (a later round), ``progress``, ``cancel``, ``server-request``,
            ``answer`` (ours, to a server request), ``input-required``, ``response``, ``error``,
            ``log``, ``notification`` or ``oauth``.
        label: One line for the timeline.
        offset: Seconds since the group's first message.
        link: How it was tied to the group (``progressToken``, ``requestId``, ``stream``,
            ``requestState``, ``inputResponses``, ``id``), ``""`` for the first message.
    """

    entry: TraceEntry
    role: str
    label: str
    offset: float
    link: str = ""


@dataclass
class Group:
    """A request and everything that belongs to it, or a message of its own.

    Attributes:
        key: Unique, increasing.
        kind: ``request`` (ours), ``server-request`` (the server's, unlinked to any of ours),
            ``notification``, ``oauth`` or ``unlinked`` (a response or retried round whose request
            is not in the view).
        method: The method (of the first request).
        msg_id: The id of the first request (``""`` for notifications).
        started: Wall time of its first message.
        status: ``pending``, ``ok``, ``error`` or ``cancelled``.
        events: The timeline.
        note: Why it is unlinked, or what else to know.
    """

    key: int
    kind: GroupKind
    method: str
    msg_id: str
    started: float
    status: GroupStatus = "pending"
    events: list[Event] = field(default_factory=list)
    ended: float | None = None
    note: str = ""
    ids: list[str] = field(default_factory=list)
    waiting: frozenset[str] = frozenset()  # keys of an input_required result not answered yet
    ping: bool = False  # a liveness check (``server/discover`` serves as one in the 2026-07-28 era)

    @property
    def duration(self) -> float | None:
        """Seconds from the first message to the outcome (``None`` while pending)."""
        return None if self.ended is None else self.ended - self.started

    @property
    def rounds(self) -> int:
        """Requests sent for it (more than 1 after input-required rounds)."""
        return len(self.ids)

    @property
    def is_ping(self) -> bool:
        """A ``ping``, or a request sent as one (hidden by the "hide pings" filter)."""
        return self.ping or self.method == "ping"

    @property
    def unlinked(self) -> bool:
        """Its messages could not be tied to a request."""
        return self.kind == "unlinked" or (self.kind == "server-request" and bool(self.note))

    def summary(self) -> str:
        """One line: ``tools/call #5 · ok · 12 ms · 4 events``."""
        parts = [self.method or self.kind]
        if self.msg_id:
            parts[0] += f" #{self.msg_id}"
        parts.append(self.status)
        if self.duration is not None:
            parts.append(describe(self.duration))
        parts.append(f"{len(self.events)} event{'s' if len(self.events) != 1 else ''}")
        if self.rounds > 1:
            parts.append(f"{self.rounds} rounds")
        return " · ".join(parts)

    def add(self, entry: TraceEntry, role: str, label: str, link: str = "") -> Event:
        """Append an event (its offset from the group's start)."""
        event = Event(entry, role, label, max(0.0, entry.wall_time - self.started), link)
        self.events.append(event)
        return event

    def finish(self, status: GroupStatus, wall: float) -> None:
        """Set the outcome (a cancelled group stays cancelled when a late answer arrives)."""
        if self.status == "cancelled" and self.ended is not None:
            return
        self.status = status
        self.ended = wall


def matches(group: Group, method: str, status: str, hide_pings: bool) -> bool:
    """Whether ``group`` passes the filter.

    ``method``: a substring of the group's method (any case); ``status``: one of :data:`STATUSES`,
    or ``""`` for all; ``hide_pings``: leave ``ping`` groups out.
    """
    if hide_pings and group.is_ping:
        return False
    if status and group.status != status:
        return False
    return method.strip().lower() in group.method.lower()


def _params(entry: TraceEntry) -> dict[str, Any]:
    params = entry.body.get("params")
    return params if isinstance(params, dict) else {}


def _result(entry: TraceEntry) -> dict[str, Any]:
    result = entry.body.get("result")
    return result if isinstance(result, dict) else {}


def _id_text(value: Any) -> str:
    return "" if value is None or isinstance(value, bool) else str(value)


def _progress_label(params: dict[str, Any]) -> str:
    value, total, message = params.get("progress"), params.get("total"), params.get("message")
    text = f"progress {_num(value)}" + (f" / {_num(total)}" if total is not None else "")
    return text + (f" · {message}" if isinstance(message, str) and message else "")


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _state_key(state: Any) -> str:
    return json.dumps(state, sort_keys=True) if not isinstance(state, str) else state


def _name(params: dict[str, Any]) -> str:
    for key in ("name", "uri"):
        if isinstance(params.get(key), str):
            return str(params[key])
    ref = params.get("ref")
    return json.dumps(ref, sort_keys=True) if ref is not None else ""


class ProtocolModel:
    """Groups trace entries as they arrive (see the module docstring).

    Args:
        max_groups: Groups kept (:data:`MAX_GROUPS`).
    """

    def __init__(self, max_groups: int = MAX_GROUPS) -> None:
        self.max_groups = max_groups
        self.groups: OrderedDict[int, Group] = OrderedDict()
        self.dropped = 0
        self._next = 0
        self._by_id: dict[tuple[str, str], Group] = {}  # (direction of the request, id) -> group
        self._by_token: dict[str, Group] = {}
        self._by_state: dict[str, Group] = {}
        self._related: dict[str, str | None] = {}  # server request id -> our request id (None: no request)
        self._logs: dict[str, list[str | None]] = {}  # method -> FIFO of our request ids they came with
        self._pings: list[str] = []  # methods of liveness checks about to be sent

    # ------------------------------------------------------------------ associations

    def relate(self, message: dict[str, Any], request_id: str | None) -> None:
        """The wire said ``message`` (a server request or notification) came with our request ``request_id``.

        ``None``: it came on a stream of no request (the GET stream). The network recorder calls this
        for every message of an event stream, before the client receives it.
        """
        method = message.get("method")
        if not isinstance(method, str):
            return
        if "id" in message:
            self._related[_id_text(message.get("id"))] = request_id
        elif method == "notifications/message":
            self._logs.setdefault(method, []).append(request_id)

    def expect_ping(self, method: str) -> None:
        """The next request of ``method`` is a liveness check (the 2026-07-28 era pings with ``server/discover``)."""
        self._pings.append(method)

    def close_pending(self, wall: float) -> list[Group]:
        """The connection closed: every pending group ends as ``cancelled`` (and says why); returns them."""
        ended = [g for g in self.groups.values() if g.status == "pending"]
        for group in ended:
            group.finish("cancelled", wall)
            group.waiting = frozenset()
            group.note = group.note or "the connection closed before it was answered"
        self._by_id.clear()
        self._by_token.clear()
        self._by_state.clear()
        return ended

    def clear(self) -> None:
        """Forget every group (the associations of messages still to come are kept)."""
        self.groups.clear()
        self._by_id.clear()
        self._by_token.clear()
        self._by_state.clear()

    # ------------------------------------------------------------------ grouping

    def _new(self, kind: GroupKind, entry: TraceEntry, note: str = "") -> Group:
        self._next += 1
        group = Group(self._next, kind, entry.method, entry.msg_id, entry.wall_time, note=note)
        self.groups[group.key] = group
        while len(self.groups) > self.max_groups:
            victim = next((g for g in self.groups.values() if g.status != "pending"), None)
            if victim is None:
                victim = next(iter(self.groups.values()))
            self._drop(victim)
        return group

    def _drop(self, group: Group) -> None:
        del self.groups[group.key]
        self.dropped += 1
        for table in (self._by_id, self._by_token, self._by_state):
            _purge(table, group)

    def add(self, entry: TraceEntry) -> Group:
        """Put ``entry`` in its group (a new one, or one it belongs to) and return that group."""
        if entry.kind == "oauth":
            group = self._new("oauth", entry)
            group.add(entry, "oauth", f"{entry.body.get('http', '')} → {entry.body.get('outcome', '')}")
            status = entry.body.get("status")
            ok = isinstance(status, int) and 200 <= status < 400
            group.finish("ok" if ok else "error", entry.wall_time)
            return group
        if entry.kind == "request":
            return self._request(entry) if entry.direction == "out" else self._server_request(entry)
        if entry.kind in ("response", "error"):
            return self._answer(entry)
        return self._notification(entry)

    def _register(self, group: Group, entry: TraceEntry) -> None:
        self._by_id[(entry.direction, entry.msg_id)] = group
        group.ids.append(entry.msg_id)
        meta = _params(entry).get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if token is not None:
            self._by_token[_id_text(token)] = group

    def _request(self, entry: TraceEntry) -> Group:
        params = _params(entry)
        group: Group | None = None
        link = ""
        state = params.get("requestState")
        answers = params.get("inputResponses")
        if state is not None:
            group = self._by_state.pop(_state_key(state), None)
            link = "requestState"
        if group is None and isinstance(answers, dict):
            keys = frozenset(answers)
            name = _name(params)
            for candidate in reversed(self.groups.values()):
                if (
                    candidate.kind == "request"
                    and candidate.waiting
                    and candidate.method == entry.method
                    and keys == candidate.waiting
                    and _name(_params(candidate.events[0].entry)) == name
                ):
                    group, link = candidate, "inputResponses"
                    break
        if group is not None:
            group.waiting = frozenset()
            self._register(group, entry)
            group.add(entry, "retry", f"→ retried round {group.rounds} #{entry.msg_id} (with the answers)", link)
            return group
        if state is not None or isinstance(answers, dict):
            note = "a retried round whose first round is not in the view (its requestState matches none)"
            group = self._new("unlinked", entry, note)
            self._register(group, entry)
            group.add(entry, "retry", f"→ retried round #{entry.msg_id} (unlinked)")
            return group
        group = self._new("request", entry)
        if entry.method in self._pings:
            self._pings.remove(entry.method)
            group.ping = True
        self._register(group, entry)
        name = _name(params)
        group.add(entry, "request", f"→ {entry.method}" + (f" {name}" if name else "") + f" #{entry.msg_id}")
        return group

    def _server_request(self, entry: TraceEntry) -> Group:
        label = f"← server asks: {entry.method} #{entry.msg_id}"
        if entry.msg_id in self._related:
            related = self._related.pop(entry.msg_id)
            owner = self._by_id.get(("out", related)) if related is not None else None
            if owner is not None:
                self._by_id[("in", entry.msg_id)] = owner
                owner.add(entry, "server-request", label, "stream")
                return owner
            note = "" if related is None else "it came with a request that is no longer in the view"
        else:
            note = "the wire does not say which request it belongs to"
        group = self._new("server-request", entry, note)
        self._by_id[("in", entry.msg_id)] = group
        group.add(entry, "server-request", label)
        return group

    def _answer(self, entry: TraceEntry) -> Group:
        if entry.direction == "out":  # our answer to a server request
            group = self._by_id.pop(("in", entry.msg_id), None)
            what = "error" if entry.kind == "error" else "result"
            label = f"→ our {what} to {entry.method or 'the server'} #{entry.msg_id}"
            if group is None:
                group = self._new("unlinked", entry, "an answer to a server request not in the view")
                group.add(entry, "answer", label)
                return group
            group.add(entry, "answer", label, "id")
            if group.kind == "server-request":
                group.finish("error" if entry.kind == "error" else "ok", entry.wall_time)
            return group
        group = self._by_id.pop(("out", entry.msg_id), None)
        duration = f" ({describe(entry.duration)})" if entry.duration is not None else ""
        if group is None:
            group = self._new("unlinked", entry, "a response to a request not in the view")
            group.add(entry, entry.kind, f"← {entry.kind} #{entry.msg_id}")
            group.finish("error" if entry.kind == "error" else "ok", entry.wall_time)
            return group
        if entry.kind == "error":
            error = entry.body.get("error")
            text = error.get("message", "") if isinstance(error, dict) else ""
            group.add(entry, "error", f"← error #{entry.msg_id}: {text}{duration}", "id")
            group.finish("error", entry.wall_time)
            return group
        result = _result(entry)
        if result.get("resultType") == "input_required":
            asks = result.get("inputRequests")
            asks = asks if isinstance(asks, dict) else {}
            methods = ", ".join(
                f"{key}: {req.get('method', '?')}" if isinstance(req, dict) else key for key, req in asks.items()
            )
            state = result.get("requestState")
            if state is not None:
                self._by_state[_state_key(state)] = group
            group.waiting = frozenset(asks)
            tail = " and its requestState" if state is not None else ""
            group.add(entry, "input-required", f"← input required #{entry.msg_id}: {methods or 'none'}{tail}", "id")
            return group
        if result.get("isError"):
            group.add(entry, "response", f"← result #{entry.msg_id}: tool error (isError){duration}", "id")
            group.finish("error", entry.wall_time)
        else:
            group.add(entry, "response", f"← result #{entry.msg_id}{duration}", "id")
            group.finish("ok", entry.wall_time)
        return group

    def _notification(self, entry: TraceEntry) -> Group:
        params = _params(entry)
        arrow = "→" if entry.direction == "out" else "←"
        if entry.method == "notifications/progress":
            group = self._by_token.get(_id_text(params.get("progressToken")))
            label = f"{arrow} {_progress_label(params)}"
            if group is not None:
                group.add(entry, "progress", label, "progressToken")
                return group
            own = self._new("unlinked", entry, "progress for a token no request in the view carries")
            own.add(entry, "progress", label)
            own.finish("ok", entry.wall_time)
            return own
        if entry.method == "notifications/cancelled":
            target = _id_text(params.get("requestId"))
            asker = "out" if entry.direction == "out" else "in"
            group = self._by_id.get((asker, target))
            reason = params.get("reason")
            label = f"{arrow} cancelled #{target}" + (f": {reason}" if isinstance(reason, str) and reason else "")
            if group is not None:
                group.add(entry, "cancel", label, "requestId")
                if asker == "out" or group.kind == "server-request":
                    group.finish("cancelled", entry.wall_time)
                return group
        if entry.method == "notifications/message" and entry.direction == "in":
            queue = self._logs.get(entry.method)
            related = queue.pop(0) if queue else None
            owner = self._by_id.get(("out", related)) if related is not None else None
            if owner is not None and owner.method != _LISTEN:
                level = params.get("level", "")
                owner.add(entry, "log", f"← log {level}: {_short(params.get('data'))}", "stream")
                return owner
        group = self._new("notification", entry)
        detail = params.get("uri") or params.get("level") or ""
        group.add(entry, "notification", f"{arrow} {entry.method}" + (f" {detail}" if detail else ""))
        group.finish("ok", entry.wall_time)
        return group


def _purge(table: dict[Any, Group], group: Group) -> None:
    for key in [k for k, g in table.items() if g is group]:
        del table[key]


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
