"""The Protocol tab (the trace grouped per request) and the Network tab (every HTTP exchange) (Pyodide only).

The models are pure: :class:`~ptsite.protocol.ProtocolModel` groups the trace,
:class:`~ptsite.network.NetworkLog` keeps the exchanges a
:class:`~ptsite.network.RecordingHTTPClient` records (it is the transport's ``fetch=`` for
``http(s)://`` URLs). This module draws them: one collapsed row per group (method, id, status,
duration, events) that opens on its timeline, one row per exchange with the headers that matter
and what is wrong with them, the findings first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import js
from pyodide.ffi import to_js

from pyodide_transport._browser import BrowserHTTPClient

from .dom import Scope, by_testid, clear, el, set_text, spawn
from .features import Feature
from .network import Diagnosis, Exchange, NetworkLog, RecordingHTTPClient, key_headers
from .protocol import STATUSES, Group, ProtocolModel, matches
from .tracing import TraceEntry, describe

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["ProtocolFeature"]

_ROLE_TEXT = {
    "request": "sent",
    "retry": "retry",
    "progress": "progress",
    "cancel": "cancel",
    "server-request": "server asks",
    "answer": "our answer",
    "input-required": "input required",
    "response": "result",
    "error": "error",
    "log": "log",
    "notification": "notification",
    "oauth": "oauth",
}


def _node(value: Any) -> Any:
    """``None`` for a JavaScript ``null`` (what ``querySelector`` and ``closest`` give when nothing matches)."""
    return None if value is None or type(value).__name__ == "JsNull" else value


def _offset(seconds: float) -> str:
    return "+0 ms" if seconds <= 0 else f"+{describe(seconds)}"


class ProtocolFeature(Feature):
    """The Protocol and Network tabs."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.model = ProtocolModel()
        self.log = NetworkLog(self._on_exchange)
        self.scope = Scope()
        self._rows: dict[int, tuple[Any, Any, int]] = {}  # group key -> (row, timeline, events drawn)
        self._exchange_rows: dict[int, Any] = {}
        self._findings: dict[int, list[Diagnosis]] = {}  # exchange seq -> its findings
        self._http = True
        self._transport_note = ""

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Draw both panes' toolbars and empty lists."""
        self.log.origin = str(js.location.origin)
        root = by_testid("protocol-root")
        self.method_filter = el(
            "input", type="search", testid="protocol-filter", placeholder="tools/call", spellcheck="false"
        )
        self.status_filter = el("select", testid="protocol-status-filter")
        self.status_filter.appendChild(el("option", "any status", value=""))
        for status in STATUSES:
            self.status_filter.appendChild(el("option", status, value=status))
        self.hide_pings = el("input", type="checkbox", testid="protocol-hide-pings", checked=True)
        clear_button = el("button", "Clear", type="button", cls="small-btn", testid="protocol-clear")
        toolbar = el(
            "div",
            cls="toolbar protocol-toolbar",
            children=[
                el("label", cls="inline", children=[el("span", "Method"), self.method_filter]),
                el("label", cls="inline", children=[el("span", "Status"), self.status_filter]),
                el("label", cls="inline", children=[self.hide_pings, el("span", "Hide pings")]),
                clear_button,
            ],
        )
        self.list = el("ol", cls="protocol-list", testid="protocol-list", aria_label="Requests and their messages")
        root.appendChild(
            el(
                "p",
                "Each request with its progress, cancellation, server requests, input rounds and answer. "
                "Open one for its timeline; click a message for its JSON.",
                cls="muted small",
            )
        )
        root.appendChild(toolbar)
        root.appendChild(self.list)
        for node, event in ((self.method_filter, "input"), (self.status_filter, "change"), (self.hide_pings, "change")):
            self.scope.on(node, event, lambda _e: self._refilter())
        self.scope.on(clear_button, "click", lambda _e: self._clear_protocol())
        self.scope.on(self.list, "click", self._on_list_click)

        net = by_testid("network-root")
        net_clear = el("button", "Clear", type="button", cls="small-btn", testid="network-clear")
        self.network_note = el("p", "", cls="hint", testid="network-note", hidden=True)
        self.findings = el("ul", cls="network-findings", testid="network-findings", hidden=True)
        self.network_list = el("ol", cls="network-list", testid="network-list", aria_label="HTTP exchanges")
        net.appendChild(
            el(
                "div",
                cls="toolbar",
                children=[
                    el(
                        "span",
                        "Every HTTP request of the connection: status, timing, the headers browsers care about.",
                        cls="muted",
                    ),
                    net_clear,
                ],
            )
        )
        net.appendChild(self.network_note)
        net.appendChild(self.findings)
        net.appendChild(self.network_list)
        self.scope.on(net_clear, "click", lambda _e: self._clear_network())
        self.alert = el("span", "", cls="tab-alert", testid="network-alert", hidden=True)
        by_testid("tab-network").appendChild(self.alert)

    # ------------------------------------------------------------ connection

    def transport_options(self, url: str) -> dict[str, Any]:
        """A recording ``fetch=`` for HTTP URLs; WebSocket and worker transports take none."""
        self.network_list.appendChild(
            el("li", f"Connecting to {url}", cls="network-connection muted small", testid="network-connection")
        )
        if url.startswith(("http://", "https://")):
            self._http = True
            self.network_note.hidden = True
            return {"fetch": RecordingHTTPClient(BrowserHTTPClient(), self.log, relate=self.model.relate)}
        self._http = False
        kind = "WebSocket" if url.startswith(("ws://", "wss://")) else "in-browser (MessagePort)"
        set_text(
            self.network_note,
            f"The {kind} transport has no HTTP exchanges to show: its messages are in the Protocol and Trace tabs.",
        )
        self.network_note.hidden = False
        return {}

    def disconnected(self) -> None:
        """Pending groups end with the connection."""
        for group in self.model.close_pending(time.time()):
            self._draw(group)
        self._count()

    # ------------------------------------------------------------------ protocol

    def on_trace(self, entry: TraceEntry) -> None:
        """Put the message in its group and redraw that group's row."""
        dropped = self.model.dropped
        group = self.model.add(entry)
        if entry.kind == "oauth":
            self.log.oauth(entry)
        if self.model.dropped != dropped:
            for key in [k for k in self._rows if k not in self.model.groups]:
                self._rows.pop(key)[0].remove()
        self._draw(group)
        self._count()

    def _visible(self, group: Group) -> bool:
        return matches(group, str(self.method_filter.value), str(self.status_filter.value), self.hide_pings.checked)

    def _count(self) -> None:
        shown = sum(1 for g in self.model.groups.values() if not (self.hide_pings.checked and g.is_ping))
        set_text(by_testid("protocol-count"), str(shown) if shown else "")

    def _draw(self, group: Group) -> None:
        drawn = self._rows.get(group.key)
        if drawn is None:
            summary = el("summary", testid="protocol-summary")
            timeline = el("ol", cls="protocol-events", testid="protocol-events")
            details = el("details", children=[summary, timeline])
            row = el("li", cls="protocol-group", testid="protocol-group", data_key=group.key, children=[details])
            self.list.appendChild(row)
            drawn = (row, timeline, 0)
        row, timeline, count = drawn
        row.dataset.method = group.method
        row.dataset.ping = "true" if group.is_ping else "false"
        row.dataset.status = group.status
        row.dataset.kind = group.kind
        row.dataset.events = str(len(group.events))
        row.dataset.rounds = str(group.rounds)
        row.classList.toggle("unlinked", group.unlinked)
        summary = row.querySelector("summary")
        clear(summary)
        title = group.method or group.kind
        summary.appendChild(el("span", title, cls="pg-method", testid="protocol-method"))
        summary.appendChild(el("span", f"#{group.msg_id}" if group.msg_id else "", cls="pg-id muted"))
        summary.appendChild(
            el("span", group.status, cls=f"badge pg-status st-{group.status}", testid="protocol-status")
        )
        single = group.kind in ("notification", "oauth") and len(group.events) == 1
        duration = "" if single else describe(group.duration) if group.duration is not None else "…"
        summary.appendChild(el("span", duration, cls="pg-dur", testid="protocol-duration"))
        events = f"{len(group.events)} event{'s' if len(group.events) != 1 else ''}"
        if group.rounds > 1:
            events += f" · {group.rounds} rounds"
        summary.appendChild(el("span", events, cls="pg-count muted", testid="protocol-event-count"))
        flags = []
        if group.unlinked:
            flags.append(el("span", "unlinked", cls="badge warn", title=group.note, testid="protocol-unlinked"))
        elif group.waiting:
            flags.append(el("span", "waiting for input", cls="badge"))
        for flag in flags:
            summary.appendChild(flag)
        for index in range(count, len(group.events)):
            event = group.events[index]
            button = el(
                "button",
                type="button",
                cls="pe-button",
                testid="protocol-event",
                data_role=event.role,
                data_index=index,
                data_method=event.entry.method,
                aria_expanded="false",
                children=[
                    el("span", _offset(event.offset), cls="pe-offset", testid="protocol-event-offset"),
                    el("span", _ROLE_TEXT.get(event.role, event.role), cls=f"pe-role role-{event.role}"),
                    el("span", event.label, cls="pe-label"),
                    el("span", f"by {event.link}" if event.link else "", cls="pe-link muted"),
                ],
            )
            timeline.appendChild(el("li", cls="protocol-event", data_role=event.role, children=[button]))
        if group.note:
            note = _node(row.querySelector(".pg-note"))
            if note is None:
                row.querySelector("details").appendChild(el("p", group.note, cls="pg-note hint"))
        self._rows[group.key] = (row, timeline, len(group.events))
        row.hidden = not self._visible(group)

    def _on_list_click(self, evt: Any) -> None:
        button = _node(evt.target.closest("button[data-index]"))
        if button is None:
            return
        row = _node(button.closest("[data-key]"))
        group = self.model.groups.get(int(row.dataset.key)) if row is not None else None
        if group is None:
            return
        item = button.parentNode
        shown = _node(item.querySelector("pre"))
        if shown is not None:
            shown.remove()
            button.setAttribute("aria-expanded", "false")
            return
        entry = group.events[int(button.dataset.index)].entry
        text = entry.pretty()
        if entry.headers:
            text = "\n".join(f"{k}: {v}" for k, v in entry.headers.items()) + "\n\n" + text
        item.appendChild(el("pre", text, cls="pe-json", testid="protocol-event-json"))
        button.setAttribute("aria-expanded", "true")

    def _refilter(self) -> None:
        for key, (row, _, _) in self._rows.items():
            group = self.model.groups.get(key)
            if group is not None:
                row.hidden = not self._visible(group)
        self._count()

    def _clear_protocol(self) -> None:
        self.model.clear()
        self._rows.clear()
        clear(self.list)
        self._count()

    # ------------------------------------------------------------------ network

    def _on_exchange(self, exchange: Exchange) -> None:
        row = self._exchange_rows.get(exchange.seq)
        if row is None:
            row = el(
                "li",
                cls="network-exchange",
                testid="network-exchange",
                children=[el("details", children=[el("summary"), el("div", cls="nx-body")])],
            )
            self._exchange_rows[exchange.seq] = row
            self.network_list.appendChild(row)
            kept = {e.seq for e in self.log.exchanges}
            for seq in [s for s in self._exchange_rows if s not in kept]:
                self._exchange_rows.pop(seq).remove()
                self._findings.pop(seq, None)
        if exchange.failure_kind == "cors" and not exchange.probe:
            exchange.probe = "running"
            spawn(self._probe(exchange))
        findings = self._findings[exchange.seq] = self.log.diagnoses(exchange)
        row.dataset.method = exchange.method
        row.dataset.state = exchange.state
        row.dataset.status = str(exchange.status) if exchange.status is not None else ""
        row.dataset.rpc = exchange.rpc_method
        row.dataset.problems = ",".join(d.code for d in findings)
        summary = row.querySelector("summary")
        clear(summary)
        summary.appendChild(el("span", exchange.method, cls="nx-method", testid="network-method"))
        path = exchange.path + (f" · {exchange.purpose}" if exchange.purpose else "")
        summary.appendChild(el("span", path, cls="nx-path", title=exchange.url, testid="network-path"))
        rpc = exchange.rpc_method + (f" #{exchange.rpc_id}" if exchange.rpc_id else "")
        summary.appendChild(el("span", rpc, cls="nx-rpc muted"))
        status = str(exchange.status) if exchange.status is not None else exchange.state
        ok = exchange.status is not None and exchange.status < 400 and exchange.failure_kind in ("", "aborted")
        summary.appendChild(el("span", status, cls=f"badge {'ok' if ok else 'err'}", testid="network-status"))
        summary.appendChild(el("span", exchange.duration_text(), cls="nx-dur muted", testid="network-duration"))
        summary.appendChild(el("span", exchange.content_type, cls="nx-type muted", testid="network-type"))
        if any(d.level != "info" for d in findings):
            summary.appendChild(el("span", "problem", cls="badge warn", testid="network-problem"))
        body = row.querySelector(".nx-body")
        clear(body)
        if exchange.failure:
            body.appendChild(el("p", exchange.failure, cls="error-text", testid="network-failure"))
        for finding in findings:
            body.appendChild(self._finding(finding))
        rows = key_headers(exchange)
        table = el("table", cls="nx-headers", testid="network-headers")
        table.appendChild(
            el("caption", "Headers that matter for browsers (received ones only when the page may read them)")
        )
        for direction, name, value in rows:
            table.appendChild(
                el(
                    "tr",
                    data_header=name.lower(),
                    children=[el("td", direction, cls="muted"), el("th", name, scope="row"), el("td", value)],
                )
            )
        if not rows:
            table.appendChild(el("tr", children=[el("td", "none", colspan=3, cls="muted")]))
        body.appendChild(table)
        extra = f"{exchange.body_bytes} bytes read"
        if exchange.messages:
            extra += f" · {exchange.messages} messages"
        body.appendChild(el("p", extra, cls="muted small"))
        self._show_findings()
        set_text(by_testid("network-count"), str(len(self.log.exchanges)))

    async def _probe(self, exchange: Exchange) -> None:
        """After a CORS failure: is anything there? A ``no-cors`` HEAD gets an opaque answer from any server."""
        options = to_js(
            {"method": "HEAD", "mode": "no-cors", "cache": "no-store"}, dict_converter=js.Object.fromEntries
        )
        try:
            await js.fetch(exchange.url, options)
        except Exception:
            self.log.probed(exchange, "unreachable")
        else:
            self.log.probed(exchange, "reachable")

    @staticmethod
    def _finding(finding: Diagnosis) -> Any:
        return el(
            "p",
            finding.text,
            cls=f"nx-finding level-{finding.level}",
            testid="network-diagnosis",
            data_code=finding.code,
            data_level=finding.level,
        )

    def _show_findings(self) -> None:
        """The distinct problems of the kept exchanges, newest text of each, above the list."""
        latest: dict[str, tuple[Diagnosis, Exchange]] = {}
        for exchange in self.log.exchanges:
            for finding in self._findings.get(exchange.seq, ()):
                if finding.level != "info":
                    latest[finding.code] = (finding, exchange)
        clear(self.findings)
        self.alert.hidden = not latest
        set_text(self.alert, f"{len(latest)} problem{'s' if len(latest) != 1 else ''}")
        for finding, exchange in latest.values():
            item = el("li", cls=f"level-{finding.level}", testid="network-finding", data_code=finding.code)
            where = exchange.url if exchange.cross_origin else exchange.path
            item.appendChild(el("strong", f"{exchange.method} {where}: "))
            item.appendChild(el("span", finding.text))
            self.findings.appendChild(item)
        self.findings.hidden = not latest

    def _clear_network(self) -> None:
        self.log.clear()
        self._exchange_rows.clear()
        self._findings.clear()
        clear(self.network_list)
        self._show_findings()
        set_text(by_testid("network-count"), "")
