"""Errors the demo server's core raises inside handlers.

A handler raises :class:`RequestError` to answer its request with a JSON-RPC
error; the dispatcher turns it into the error response (and the HTTP layer
picks the status). :class:`InputRequired` is the 2026-07-28 way for a handler
to ask the client for sampling, elicitation or roots: the dispatcher answers
with an ``InputRequiredResult`` and the client retries with the responses.
"""

from __future__ import annotations

from typing import Any

from mcp_types import InputRequest

__all__ = ["InputRequired", "NoBackChannelError", "RequestError"]


class RequestError(Exception):
    """Answer the current request with a JSON-RPC error.

    Attributes:
        code: The JSON-RPC error code.
        message: A one-sentence description.
        data: Optional structured detail.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class NoBackChannelError(RequestError):
    """The transport cannot carry a server-to-client request (stateless HTTP, no stream)."""


class InputRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A 2026-07-28 handler needs client input before it can finish.

    Attributes:
        input_requests: Server-chosen keys mapped to the embedded requests.
        request_state: Opaque state the client echoes in its retry (sign it: see
            ``RequestContext.seal``), or ``None``.
    """

    def __init__(self, input_requests: dict[str, InputRequest], request_state: str | None = None) -> None:
        super().__init__(f"input required: {', '.join(input_requests)}")
        self.input_requests = input_requests
        self.request_state = request_state
