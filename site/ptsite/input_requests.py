"""Sampling and elicitation requests from the server, answered by the user (owner: input helper)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import mcp_types as mt

from pyodide_transport.errors import MCPError

from .dom import FormView, Scope, by_testid, clear, el
from .features import Feature
from .forms import build_form

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["USER_REJECTED", "InputRequests"]

USER_REJECTED = -1


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    """Resolve ``future`` unless it already is (a second click does nothing)."""
    if not future.done():
        future.set_result(value)


class InputRequests(Feature):
    """Answers ``sampling/createMessage`` and ``elicitation/create`` from a form the user fills."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.dialog_scope = Scope()

    def client_options(self) -> dict[str, Any]:
        """The Client answers sampling and elicitation through this feature."""
        return {"sampling_handler": self.sampling, "elicitation_handler": self.elicitation}

    def _open_dialog(self, title: str, testid: str) -> Any:
        self.dialog_scope.clear()
        dialog = by_testid("input-request-dialog")
        clear(dialog)
        dialog.dataset.kind = testid
        dialog.appendChild(el("h2", title))
        by_testid("input-request").hidden = False
        return dialog

    def _close_dialog(self) -> None:
        self.dialog_scope.clear()
        clear(by_testid("input-request-dialog"))
        by_testid("input-request").hidden = True

    async def sampling(self, params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
        """Answer a sampling request with text typed by the user (a human stands in for the LLM)."""
        try:
            dialog = self._open_dialog("The server asks your LLM", "sampling")
            dialog.appendChild(el("p", "You play the LLM: read the request and type the reply.", cls="muted small"))
            if params.system_prompt:
                dialog.appendChild(el("div", f"system: {params.system_prompt}", cls="meta"))
            for message in params.messages:
                raw = _dump(message)
                content = raw.get("content")
                text = content.get("text") if isinstance(content, dict) else None
                dialog.appendChild(
                    el(
                        "pre",
                        f"{raw.get('role')}: {text if isinstance(text, str) else json.dumps(content)}",
                        cls="block",
                        testid="sampling-message",
                    )
                )
            reply = el("textarea", testid="sampling-reply", rows=4)
            dialog.appendChild(el("label", "Reply", children=[reply]))
            send = el("button", "Send reply", type="button", cls="primary", testid="sampling-send")
            reject = el("button", "Reject", type="button", testid="sampling-reject")
            dialog.appendChild(el("div", cls="buttons", children=[send, reject]))
            answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self.dialog_scope.on(send, "click", lambda _e: _settle(answer, str(reply.value)))
            self.dialog_scope.on(reject, "click", lambda _e: _settle(answer, None))
            text = await answer
        finally:
            self._close_dialog()
        if text is None:
            raise MCPError(USER_REJECTED, "the user rejected the sampling request")
        return mt.CreateMessageResult(
            role="assistant", content=mt.TextContent(text=text), model="human (explorer)", stop_reason="endTurn"
        )

    async def elicitation(self, params: mt.ElicitRequestFormParams | mt.ElicitRequestURLParams) -> mt.ElicitResult:
        """Ask the user to fill the requested form (or to visit a URL), then accept, decline or cancel."""
        try:
            dialog = self._open_dialog("The server asks you", "elicitation")
            dialog.appendChild(el("p", params.message, testid="elicitation-message"))
            view: FormView | None = None
            if isinstance(params, mt.ElicitRequestURLParams):
                dialog.appendChild(el("p", "It asks you to open this URL yourself:", cls="muted small"))
                dialog.appendChild(el("pre", params.url, cls="block", testid="elicitation-url"))
            else:
                view = FormView(build_form(params.requested_schema), self.dialog_scope, prefix="elicit")
                dialog.appendChild(view.node)
            accept = el("button", "Accept", type="button", cls="primary", testid="elicit-accept")
            decline = el("button", "Decline", type="button", testid="elicit-decline")
            cancel = el("button", "Cancel", type="button", testid="elicit-cancel")
            dialog.appendChild(el("div", cls="buttons", children=[accept, decline, cancel]))
            answer: asyncio.Future[mt.ElicitResult] = asyncio.get_running_loop().create_future()

            def on_accept(_evt: Any) -> None:
                content: dict[str, Any] | None = None
                if view is not None:
                    content, errors = view.values()
                    if errors:
                        return
                if not answer.done():
                    answer.set_result(mt.ElicitResult(action="accept", content=content))

            self.dialog_scope.on(accept, "click", on_accept)
            self.dialog_scope.on(decline, "click", lambda _e: _settle(answer, mt.ElicitResult(action="decline")))
            self.dialog_scope.on(cancel, "click", lambda _e: _settle(answer, mt.ElicitResult(action="cancel")))
            return await answer
        finally:
            self._close_dialog()
