"""Answers to the server's sampling and elicitation requests, as the explorer keeps them (pure).

What makes two requests "alike" for an automatic answer (:func:`shape_key`): any sampling
request is like any other (a human stands in for the LLM: "keep saying this"); a form elicitation
is keyed by its message *and* its requested schema (a stable hash of their canonical JSON), so a
different question is never answered with an old answer. URL elicitation has no automatic answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as mt

from pyodide_transport.errors import MCPError

__all__ = ["DEFAULT_MODEL", "STOP_REASONS", "USER_REJECTED", "AutoRule", "canonical", "sampling_result", "shape_key"]

USER_REJECTED = -1
"""The JSON-RPC error code of a request the user rejected."""

DEFAULT_MODEL = "human (explorer)"
"""The ``model`` a typed sampling reply names."""

STOP_REASONS = ("endTurn", "stopSequence", "maxTokens")
"""The stop reasons a reply may give."""


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): for keys and for short summaries."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def shape_key(kind: Literal["sampling", "elicitation"], message: str = "", schema: Any = None) -> str:
    """What makes two requests "alike" for an automatic answer (see the module docstring)."""
    if kind == "sampling":
        return "sampling"
    digest = hashlib.sha256(canonical({"message": message, "schema": schema}).encode()).hexdigest()
    return f"elicitation:{digest[:16]}"


@dataclass
class AutoRule:
    """An answer kept for requests of one shape.

    Attributes:
        key: The :func:`shape_key`.
        label: What the rule list says (the request's kind and message).
        answer: The JSON-ready reply: for sampling ``{"reject": bool, "text", "role", "model",
            "stopReason"}``, for elicitation ``{"action", "content"}``.
        used: How many requests it answered.
    """

    key: str
    label: str
    answer: dict[str, Any]
    used: int = 0

    def summary(self) -> str:
        """The answer in a few words."""
        if self.key == "sampling":
            if self.answer.get("reject"):
                return "reject"
            return f"reply {self.answer.get('text', '')!r}"
        action = str(self.answer.get("action"))
        content = self.answer.get("content")
        return f"{action} {canonical(content)}" if content else action


def sampling_result(answer: dict[str, Any]) -> mt.CreateMessageResult:
    """The reply a sampling answer (as :class:`AutoRule` keeps it) stands for.

    Raises:
        MCPError: The answer is a rejection (code :data:`USER_REJECTED`).
    """
    if answer.get("reject"):
        raise MCPError(USER_REJECTED, "the user rejected the sampling request")
    return mt.CreateMessageResult.model_validate(
        {
            "role": answer.get("role", "assistant"),
            "content": {"type": "text", "text": answer.get("text", "")},
            "model": answer.get("model", DEFAULT_MODEL),
            "stopReason": answer.get("stopReason", "endTurn"),
        }
    )
