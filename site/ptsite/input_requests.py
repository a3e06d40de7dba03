"""Sampling and elicitation requests from the server, answered inline by the user.

The requests show up in a "Requests from the server" panel pinned above the tabs (so it is seen
from any tab): each one is a card with the request in full and the reply form; several wait in
a queue, oldest first. When the first one arrives, focus moves to its form and a polite live
region announces it; when the last one is answered, focus goes back where it was.

Automatic answers: a card's "Answer requests like this one automatically" box keeps the answer
given for requests of the same shape, in this page only (nothing is stored):

* sampling: any sampling request gets the same reply (a human stands in for the LLM; the rule
  is "keep saying this");
* form elicitation: keyed by the message *and* the requested schema (a stable hash of their
  canonical JSON), so a different question is never answered with an old answer;
* URL elicitation has no automatic answer: opening a URL needs the user.

An automatic answer leaves a compact note with a "Stop answering automatically" button; the
active rules are listed with remove buttons.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import js
import mcp_types as mt
from pyodide.ffi import create_once_callable, to_js

from .answers import DEFAULT_MODEL, STOP_REASONS, AutoRule, canonical, sampling_result, shape_key
from .dom import FormView, Scope, clear, el, set_text
from .features import Feature
from .forms import build_form

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["InputRequests"]

MAX_NOTES = 5


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    """Resolve ``future`` unless it already is (a second click does nothing)."""
    if not future.done():
        future.set_result(value)


def _block_text(content: Any) -> tuple[str, str]:
    """``(type, text)`` for one content block of a sampling message: text as is, others summarised."""
    if not isinstance(content, dict):
        return "unknown", canonical(content)
    kind = str(content.get("type", "unknown"))
    if kind == "text" and isinstance(content.get("text"), str):
        return kind, content["text"]
    if kind in ("image", "audio"):
        data = content.get("data")
        size = len(data) * 3 // 4 if isinstance(data, str) else 0
        return kind, f"[{kind} {content.get('mimeType', '?')}, about {size} bytes]"
    if kind == "tool_use":
        return kind, f"[tool_use {content.get('name')} {canonical(content.get('input'))}]"
    if kind == "tool_result":
        return kind, f"[tool_result for {content.get('toolUseId')}: {canonical(content.get('content'))}]"
    return kind, f"[{kind}] {canonical(content)}"


class _Pending:
    """One request waiting for the user: its card and its answer."""

    def __init__(self, number: int, kind: str, title: str) -> None:
        self.number = number
        self.kind = kind
        self.scope = Scope()
        self.answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.heading = el("h3", title, id=f"input-request-{number}-title")
        self.card = el(
            "div",
            cls="request-card",
            role="group",
            testid="input-request-dialog",
            data_kind=kind,
            data_request=number,
            aria_labelledby=f"input-request-{number}-title",
            children=[self.heading],
        )
        self.auto: Any = None


class InputRequests(Feature):
    """Answers ``sampling/createMessage`` and ``elicitation/create`` from inline forms."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()
        self.rules_scope = Scope()
        self.notes_scope = Scope()
        self.pending: list[_Pending] = []
        self.rules: dict[str, AutoRule] = {}
        self.counter = 0
        self.return_focus: Any = None
        self.root: Any = None

    # ------------------------------------------------------------- the panel

    def setup(self) -> None:
        """Make the panel above the tabs."""
        self.live = el("div", "", cls="sr-only", testid="input-announce", aria_live="polite", role="status")
        self.count = el("span", "", cls="count", testid="input-request-count")
        title = el("h2", id="input-requests-title", children=[el("span", "Requests from the server "), self.count])
        self.queue = el("div", cls="request-queue", testid="input-request-queue")
        self.panel = el(
            "section",
            cls="input-requests",
            testid="input-request",
            aria_labelledby="input-requests-title",
            hidden=True,
            children=[title, self.queue],
        )
        self.notes = el("ul", cls="auto-notes", testid="auto-notes", aria_label="Answered automatically")
        self.rules_list = el("ul", cls="auto-rules-list", testid="auto-rules-list")
        self.rules_box = el(
            "details",
            cls="auto-rules",
            testid="auto-rules",
            hidden=True,
            children=[el("summary", "Automatic answers", testid="auto-rules-toggle"), self.rules_list],
        )
        self.root = el(
            "div", cls="input-root", testid="input-root", children=[self.live, self.panel, self.notes, self.rules_box]
        )
        workspace = js.document.querySelector(".workspace")
        if workspace is not None:
            workspace.insertBefore(self.root, workspace.firstChild)
        else:
            js.document.body.appendChild(self.root)

    def _announce(self, text: str) -> None:
        set_text(self.live, "")
        js.setTimeout(create_once_callable(lambda: set_text(self.live, text)), 50)

    def _refresh_panel(self) -> None:
        self.panel.hidden = not self.pending
        set_text(self.count, f"({len(self.pending)})" if len(self.pending) > 1 else "")
        for index, item in enumerate(self.pending):
            item.card.classList.toggle("current", index == 0)

    def _enqueue(self, item: _Pending) -> None:
        first = not self.pending
        if first:
            active = js.document.activeElement
            self.return_focus = active if active is not None and active != js.document.body else None
        self.pending.append(item)
        self.queue.appendChild(item.card)
        self._refresh_panel()
        what = "asks your LLM" if item.kind == "sampling" else "asks you"
        waiting = f" {len(self.pending)} requests are waiting." if len(self.pending) > 1 else ""
        self._announce(f"The server {what}: see Requests from the server.{waiting}")
        if first:
            self._focus_card(item)

    def focus_first(self) -> bool:
        """Move focus to the oldest waiting request's form (the palette's "Answer the server's request")."""
        if not self.pending:
            return False
        self._focus_card(self.pending[0])
        return True

    def _focus_card(self, item: _Pending) -> None:
        target = item.card.querySelector("textarea, input:not([type=checkbox]), select, button")
        item.card.scrollIntoView(to_js({"block": "nearest"}, dict_converter=js.Object.fromEntries))
        if target is not None:
            target.focus()

    def _dequeue(self, item: _Pending) -> None:
        active = js.document.activeElement
        had_focus = active is None or active == js.document.body or bool(item.card.contains(active))
        item.scope.clear()
        item.card.remove()
        if item in self.pending:
            self.pending.remove(item)
        self._refresh_panel()
        if self.pending:
            if had_focus:
                self._focus_card(self.pending[0])
            return
        back, self.return_focus = self.return_focus, None
        if had_focus and back is not None and back.isConnected and not back.disabled:
            back.focus()

    def _auto_box(self, item: _Pending, label: str) -> Any:
        box = el("input", type="checkbox", testid="auto-respond")
        item.auto = box
        return el("label", cls="inline small auto-respond", children=[box, el("span", label)])

    def disconnected(self) -> None:
        """The session is gone: its requests can no longer be answered."""
        for item in list(self.pending):
            if not item.answer.done():
                item.answer.cancel()

    # ------------------------------------------------------------- auto rules

    def _remember(self, key: str, label: str, answer: dict[str, Any]) -> None:
        self.rules[key] = AutoRule(key, label, answer)
        self._render_rules()

    def _forget(self, key: str) -> None:
        rule = self.rules.pop(key, None)
        self._render_rules()
        if rule is not None:
            self._announce(f"Stopped answering automatically: {rule.label}")

    def _render_rules(self) -> None:
        self.rules_scope.clear()
        clear(self.rules_list)
        self.rules_box.hidden = not self.rules
        if self.rules:
            self.rules_box.open = True
        for rule in self.rules.values():
            remove = el(
                "button",
                "Remove",
                type="button",
                cls="small-btn",
                testid="auto-rule-remove",
                aria_label=f"Remove the automatic answer to {rule.label}",
            )
            text = f"{rule.label} → {rule.summary()} · used {rule.used} times"
            self.rules_list.appendChild(
                el("li", testid="auto-rule", data_key=rule.key, children=[el("span", text), remove])
            )
            self.rules_scope.on(remove, "click", functools.partial(_drop_event, self._forget, rule.key))

    def _note(self, rule: AutoRule) -> None:
        rule.used += 1
        self._render_rules()
        stop = el("button", "Stop answering automatically", type="button", cls="small-btn", testid="auto-note-stop")
        dismiss = el("button", "✕", type="button", cls="small-btn", testid="auto-note-dismiss", aria_label="Dismiss")
        note = el(
            "li",
            cls="auto-note",
            testid="auto-note",
            data_key=rule.key,
            children=[el("span", f"Answered automatically: {rule.label} → {rule.summary()}"), stop, dismiss],
        )
        self.notes.appendChild(note)
        while self.notes.childElementCount > MAX_NOTES:
            self.notes.firstElementChild.remove()

        def stop_rule(_evt: Any) -> None:
            self._forget(rule.key)
            note.remove()

        self.notes_scope.on(stop, "click", stop_rule)
        self.notes_scope.on(dismiss, "click", lambda _e: note.remove())
        self._announce(f"Answered automatically: {rule.label}")

    # ----------------------------------------------------------------- hooks

    def client_options(self) -> dict[str, Any]:
        """The Client answers sampling and elicitation through this feature."""
        return {"sampling_handler": self.sampling, "elicitation_handler": self.elicitation}

    # -------------------------------------------------------------- sampling

    async def sampling(self, params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
        """Answer a sampling request with the reply typed by the user (a human stands in for the LLM)."""
        rule = self.rules.get(shape_key("sampling"))
        if rule is not None:
            self._note(rule)
            return sampling_result(rule.answer)
        self.counter += 1
        item = _Pending(self.counter, "sampling", "The server asks your LLM (sampling)")
        card, raw = item.card, _dump(params)
        card.appendChild(el("p", "You play the LLM: read the request and type the reply.", cls="muted small"))
        card.appendChild(_sampling_details(raw))
        messages = el("div", cls="sampling-messages", testid="sampling-messages")
        for index, message in enumerate(raw.get("messages") or []):
            role = str(message.get("role", "?"))
            content = message.get("content")
            blocks = content if isinstance(content, list) else [content]
            for block in blocks:
                kind, text = _block_text(block)
                messages.appendChild(
                    el(
                        "div",
                        cls="sampling-message",
                        data_role=role,
                        data_content_type=kind,
                        children=[
                            el("div", f"message {index + 1} · {role} · {kind}", cls="meta"),
                            el("pre", f"{role}: {text}", cls="block", testid="sampling-message"),
                        ],
                    )
                )
        card.appendChild(messages)
        reply = el("textarea", testid="sampling-reply", rows=4)
        role = el("select", testid="sampling-role", children=[el("option", r, value=r) for r in ("assistant", "user")])
        model = el("input", type="text", testid="sampling-model", spellcheck="false")
        model.value = DEFAULT_MODEL
        stop = el("select", testid="sampling-stop-reason", children=[el("option", s, value=s) for s in STOP_REASONS])
        card.appendChild(el("label", "Reply (text content)", children=[reply]))
        card.appendChild(
            el(
                "div",
                cls="reply-meta",
                children=[
                    el("label", "Role", children=[role]),
                    el("label", "Model", children=[model]),
                    el("label", "Stop reason", children=[stop]),
                ],
            )
        )
        card.appendChild(self._auto_box(item, "Answer requests like this one automatically (any sampling request)"))
        send = el("button", "Send reply", type="button", cls="primary", testid="sampling-send")
        reject = el("button", "Reject", type="button", testid="sampling-reject")
        card.appendChild(el("div", cls="buttons", children=[send, reject]))

        def answer(reject_it: bool) -> None:
            if reject_it:
                value: dict[str, Any] = {"reject": True}
            else:
                value = {
                    "reject": False,
                    "text": str(reply.value),
                    "role": str(role.value),
                    "model": str(model.value).strip() or DEFAULT_MODEL,
                    "stopReason": str(stop.value),
                }
            if item.auto.checked:
                self._remember(shape_key("sampling"), "sampling (any request)", value)
            _settle(item.answer, value)

        item.scope.on(send, "click", lambda _e: answer(False))
        item.scope.on(reject, "click", lambda _e: answer(True))
        item.scope.on(reply, "keydown", lambda e: answer(False) if _ctrl_enter(e) else None)
        self._enqueue(item)
        try:
            value = await item.answer
        finally:
            self._dequeue(item)
        return sampling_result(value)

    # ----------------------------------------------------------- elicitation

    async def elicitation(self, params: mt.ElicitRequestFormParams | mt.ElicitRequestURLParams) -> mt.ElicitResult:
        """Ask the user to fill the requested form (or to visit a URL), then accept, decline or cancel."""
        url_mode = isinstance(params, mt.ElicitRequestURLParams)
        key = ""
        if not url_mode:
            key = shape_key("elicitation", params.message, _dump(params).get("requestedSchema"))
            rule = self.rules.get(key)
            if rule is not None:
                self._note(rule)
                return mt.ElicitResult.model_validate(rule.answer)
        self.counter += 1
        item = _Pending(self.counter, "elicitation", "The server asks you (elicitation)")
        card = item.card
        card.appendChild(el("p", params.message, cls="request-message", testid="elicitation-message"))
        view: FormView | None = None
        if isinstance(params, mt.ElicitRequestURLParams):
            card.appendChild(el("p", "It asks you to open this URL (check where it leads first):", cls="muted small"))
            card.appendChild(el("pre", params.url, cls="block", testid="elicitation-url"))
            opener = el("button", "Open this URL in a new tab", type="button", testid="elicitation-open")
            safe = params.url.lower().startswith(("https://", "http://"))
            opener.disabled = not safe
            card.appendChild(el("div", cls="buttons", children=[opener]))
            if not safe:
                card.appendChild(el("p", "Only http(s) URLs can be opened from here.", cls="hint"))
            url = params.url
            item.scope.on(opener, "click", lambda _e: js.window.open(url, "_blank", "noopener,noreferrer"))
            if params.elicitation_id:
                card.appendChild(el("div", f"elicitation id: {params.elicitation_id}", cls="meta"))
        else:
            view = FormView(build_form(params.requested_schema), item.scope, prefix="elicit")
            card.appendChild(view.node)
            card.appendChild(
                self._auto_box(item, "Answer requests like this one automatically (same message and form)")
            )
        accept = el("button", "Accept", type="button", cls="primary", testid="elicit-accept")
        decline = el("button", "Decline", type="button", testid="elicit-decline")
        cancel = el("button", "Cancel", type="button", testid="elicit-cancel")
        card.appendChild(el("div", cls="buttons", children=[accept, decline, cancel]))
        message = params.message

        def finish(value: dict[str, Any]) -> None:
            if item.auto is not None and item.auto.checked and key:
                self._remember(key, f"elicitation {message!r}", value)
            _settle(item.answer, value)

        def on_accept(_evt: Any) -> None:
            content: dict[str, Any] | None = None
            if view is not None:
                content, errors = view.values()
                if errors:
                    return
            finish({"action": "accept", "content": content} if content is not None else {"action": "accept"})

        item.scope.on(accept, "click", on_accept)
        item.scope.on(decline, "click", lambda _e: finish({"action": "decline"}))
        item.scope.on(cancel, "click", lambda _e: finish({"action": "cancel"}))
        self._enqueue(item)
        try:
            value = await item.answer
        finally:
            self._dequeue(item)
        return mt.ElicitResult.model_validate(value)


def _sampling_details(raw: dict[str, Any]) -> Any:
    """The request's parameters beside the messages: system prompt, model preferences, limits, tools."""
    rows: list[tuple[str, str]] = []
    if raw.get("systemPrompt"):
        rows.append(("System prompt", str(raw["systemPrompt"])))
    prefs = raw.get("modelPreferences")
    if isinstance(prefs, dict):
        hints = [str(h.get("name")) for h in prefs.get("hints") or [] if isinstance(h, dict)]
        parts = [f"hints: {', '.join(hints)}"] if hints else []
        for name in ("costPriority", "speedPriority", "intelligencePriority"):
            if name in prefs:
                parts.append(f"{name.removesuffix('Priority')} {prefs[name]}")
        rows.append(("Model preferences", " · ".join(parts) or "none"))
    rows.append(("Max tokens", str(raw.get("maxTokens", "?"))))
    for name, label in (
        ("temperature", "Temperature"),
        ("stopSequences", "Stop sequences"),
        ("includeContext", "Include context"),
        ("metadata", "Metadata"),
        ("toolChoice", "Tool choice"),
    ):
        if name in raw:
            value = raw[name]
            rows.append((label, value if isinstance(value, str) else canonical(value)))
    listing = el("dl", cls="request-params", testid="sampling-params")
    for label, value in rows:
        listing.appendChild(el("dt", label))
        listing.appendChild(el("dd", value, data_param=label))
    tools = raw.get("tools")
    box = el("div", children=[listing])
    if isinstance(tools, list) and tools:
        tool_list = el("ul", cls="sampling-tools", testid="sampling-tools")
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            schema = el("pre", json.dumps(tool.get("inputSchema"), indent=2), cls="block json")
            tool_list.appendChild(
                el(
                    "li",
                    children=[
                        el("strong", str(tool.get("name"))),
                        el("span", f" {tool.get('description') or ''}", cls="muted small"),
                        el("details", children=[el("summary", "input schema"), schema]),
                    ],
                )
            )
        box.appendChild(el("div", f"Tools the LLM may call ({len(tools)}):", cls="meta"))
        box.appendChild(tool_list)
    return box


def _ctrl_enter(evt: Any) -> bool:
    return str(evt.key) == "Enter" and bool(evt.ctrlKey or evt.metaKey)


def _drop_event(func: Callable[[str], None], value: str, _evt: Any) -> None:
    """Call ``func(value)``, dropping the DOM event (for ``functools.partial`` handlers)."""
    func(value)
