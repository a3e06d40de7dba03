"""The 2026-07-28 fixtures: input-required rounds with sealed requestState (SEP-2322) and the SEP-2575 probes."""

from __future__ import annotations

from typing import Any

import pytest
from core_client import MemoryClient, modern_meta

from pyodide_transport.messages import JSONRPCError
from server_demo.core import open_state, seal_state

ELICIT = {"elicitation": {}}


def call(name: str, caps: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "arguments": {}, "_meta": modern_meta(**(caps if caps is not None else ELICIT)), **extra}


def accept(**content: Any) -> dict[str, Any]:
    return {"action": "accept", "content": content}


async def test_elicitation_round_trip_asks_again_when_the_answer_is_missing(client: MemoryClient) -> None:
    first = await client.result("tools/call", call("test_input_required_result_elicitation"))
    assert (
        first["resultType"] == "input_required"
        and first["inputRequests"]["user_name"]["method"] == "elicitation/create"
    )
    again = await client.result(
        "tools/call", call("test_input_required_result_elicitation", inputResponses={"other": accept(name="x")})
    )
    assert again["resultType"] == "input_required"  # a missing answer is asked for again, not an error
    done = await client.result(
        "tools/call",
        call(
            "test_input_required_result_elicitation",
            inputResponses={"user_name": accept(name="Ada"), "extra": accept(foo="bar")},
        ),
    )
    assert done["resultType"] == "complete" and done["content"][0]["text"] == "Hello, Ada!"


async def test_a_malformed_answer_is_invalid_params(client: MemoryClient) -> None:
    reply = await client.request(
        "tools/call", call("test_input_required_result_elicitation", inputResponses={"user_name": 7})
    )
    assert isinstance(reply, JSONRPCError) and reply.error.code == -32602


async def test_multi_round_carries_sealed_state_through_three_rounds(client: MemoryClient) -> None:
    r1 = await client.result("tools/call", call("test_input_required_result_multi_round"))
    assert set(r1["inputRequests"]) == {"step1"}
    r2 = await client.result(
        "tools/call",
        call(
            "test_input_required_result_multi_round",
            inputResponses={"step1": accept(name="Ada")},
            requestState=r1["requestState"],
        ),
    )
    assert set(r2["inputRequests"]) == {"step2"} and r2["requestState"] != r1["requestState"]
    r3 = await client.result(
        "tools/call",
        call(
            "test_input_required_result_multi_round",
            inputResponses={"step2": accept(color="teal")},
            requestState=r2["requestState"],
        ),
    )
    assert r3["content"][0]["text"] == "Ada likes teal"


async def test_an_altered_request_state_is_refused(client: MemoryClient) -> None:
    first = await client.result("tools/call", call("test_input_required_result_tampered_state"))
    state = first["requestState"]
    tampered = state[:-1] + ("0" if state[-1] != "0" else "1")
    reply = await client.request(
        "tools/call",
        call(
            "test_input_required_result_tampered_state",
            inputResponses={"confirm": accept(ok=True)},
            requestState=tampered,
        ),
    )
    assert isinstance(reply, JSONRPCError) and reply.error.code == -32602 and "integrity" in reply.error.message


async def test_only_declared_capabilities_are_asked(client: MemoryClient) -> None:
    sampling_only = await client.result("tools/call", call("test_input_required_result_capabilities", {"sampling": {}}))
    assert [r["method"] for r in sampling_only["inputRequests"].values()] == ["sampling/createMessage"]
    nothing = await client.result("tools/call", call("test_input_required_result_capabilities", {}))
    assert nothing["resultType"] == "complete"


async def test_prompts_can_require_input_too(client: MemoryClient) -> None:
    params = {"name": "test_input_required_result_prompt", "_meta": modern_meta(**ELICIT)}
    first = await client.result("prompts/get", params)
    assert first["resultType"] == "input_required"
    done = await client.result("prompts/get", {**params, "inputResponses": {"user_context": accept(context="docs")}})
    assert "docs" in done["messages"][0]["content"]["text"]


async def test_missing_capability_probe_answers_minus_32021(client: MemoryClient) -> None:
    reply = await client.request("tools/call", call("test_missing_capability", {}))
    assert isinstance(reply, JSONRPCError) and reply.error.code == -32021


@pytest.mark.parametrize("state", ["", "x", "e30.", "e30.00", "not-base64!.abcd"])
def test_open_state_refuses_what_was_not_sealed(state: str) -> None:
    assert open_state(b"k" * 32, state) is None


def test_sealed_state_opens_only_under_its_key() -> None:
    token = seal_state(b"a" * 32, {"round": 1})
    assert open_state(b"a" * 32, token) == {"round": 1}
    assert open_state(b"b" * 32, token) is None
