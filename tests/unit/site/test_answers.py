"""Automatic answers (ptsite.answers): which requests are alike, and what a kept answer sends."""

from __future__ import annotations

import pytest
from ptsite.answers import USER_REJECTED, AutoRule, sampling_result, shape_key

from pyodide_transport.errors import MCPError

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def test_every_sampling_request_is_alike() -> None:
    assert shape_key("sampling") == shape_key("sampling", "anything", {"x": 1}) == "sampling"


def test_elicitations_are_alike_only_with_the_same_message_and_schema() -> None:
    key = shape_key("elicitation", "Your name?", SCHEMA)
    reordered = {"required": ["name"], "properties": {"name": {"type": "string"}}, "type": "object"}
    assert shape_key("elicitation", "Your name?", reordered) == key  # key order does not matter
    assert shape_key("elicitation", "Your age?", SCHEMA) != key
    assert shape_key("elicitation", "Your name?", {**SCHEMA, "required": []}) != key
    assert key.startswith("elicitation:")


def test_a_kept_sampling_reply_becomes_a_result() -> None:
    result = sampling_result({"text": "42", "model": "me", "stopReason": "maxTokens"})
    assert result.content.type == "text" and result.content.text == "42"  # type: ignore[union-attr]
    assert (result.role, result.model, result.stop_reason) == ("assistant", "me", "maxTokens")
    defaults = sampling_result({"text": "hi"})
    assert (defaults.model, defaults.stop_reason) == ("human (explorer)", "endTurn")


def test_a_kept_rejection_rejects_again() -> None:
    with pytest.raises(MCPError) as caught:
        sampling_result({"reject": True})
    assert caught.value.code == USER_REJECTED


def test_rule_summaries() -> None:
    assert AutoRule("sampling", "sampling", {"text": "ok"}).summary() == "reply 'ok'"
    assert AutoRule("sampling", "sampling", {"reject": True}).summary() == "reject"
    rule = AutoRule(shape_key("elicitation", "m", SCHEMA), "m", {"action": "accept", "content": {"name": "Ada"}})
    assert rule.summary() == 'accept {"name":"Ada"}'
    assert AutoRule("elicitation:x", "m", {"action": "decline"}).summary() == "decline"
