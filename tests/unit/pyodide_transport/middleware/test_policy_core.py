"""The pure policy decisions: method lists, size, token buckets, the refusal answer."""

from __future__ import annotations

import pytest

from pyodide_transport.messages import encode_message, make_notification, make_request, make_response
from pyodide_transport.middleware.policy_core import (
    LIFECYCLE_METHODS,
    POLICY_ERROR_CODE,
    Policy,
    PolicyCore,
    RateLimit,
    Refusal,
    TokenBucket,
    decide,
    refusal_response,
)


def test_an_empty_policy_refuses_nothing() -> None:
    assert Policy().unlimited
    for message in (make_request(1, "tools/call"), make_notification("x"), make_response(1, {"a": "b" * 10_000})):
        assert decide(Policy(), "out", message, 0.0) is None


def test_deny_list_exact_and_pattern() -> None:
    policy = Policy.of(deny_methods=["tools/call", "resources/*"])
    refusal = decide(policy, "out", make_request(1, "tools/call"), 0.0)
    assert refusal == Refusal("method", "method rule: outgoing request 'tools/call' is denied")
    assert decide(policy, "in", make_notification("resources/updated"), 0.0) is not None
    assert decide(policy, "out", make_request(2, "tools/list"), 0.0) is None


def test_allow_list_lets_lifecycle_methods_through_unless_denied() -> None:
    policy = Policy.of(allow_methods={"tools/*"})
    assert decide(policy, "out", make_request(1, "tools/list"), 0.0) is None
    refusal = decide(policy, "out", make_request(2, "prompts/list"), 0.0)
    assert refusal is not None and refusal.rule == "method" and "not allowed" in refusal.reason
    for method in LIFECYCLE_METHODS:
        assert decide(policy, "out", make_request(3, method), 0.0) is None
    assert decide(Policy.of(allow_methods=(), deny_methods={"ping"}), "out", make_request(4, "ping"), 0.0) is not None


def test_responses_have_no_method_but_a_size() -> None:
    denied = Policy.of(allow_methods=())
    assert decide(denied, "in", make_response(1, {}), 0.0) is None
    response = make_response(1, {"text": "x" * 100})
    size = len(encode_message(response).encode())
    assert decide(Policy(max_message_size=size), "in", response, 0.0) is None
    refusal = decide(Policy(max_message_size=size - 1), "in", response, 0.0)
    assert refusal is not None and refusal.rule == "size"
    assert refusal.reason == f"size rule: incoming response of {size} bytes is over the limit of {size - 1} bytes"


def test_size_counts_utf8_bytes() -> None:
    message = make_notification("n", {"t": "é" * 10})
    assert decide(Policy(max_message_size=len(encode_message(message))), "out", message, 0.0) is not None


def test_token_bucket_refills_continuously() -> None:
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=2))
    assert bucket.take(10.0) == 0.0 and bucket.take(10.0) == 0.0
    assert bucket.take(10.0) == pytest.approx(0.5)
    assert bucket.take(10.25) == pytest.approx(0.25)  # a refused take spends nothing
    assert bucket.take(10.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.take(100.0) == 0.0  # capped at the burst
    assert bucket.take(100.0) > 0.0
    assert bucket.take(99.0) > 0.0  # a clock going backwards adds nothing


def test_rate_rule_spends_tokens_only_on_admitted_requests_and_notifications() -> None:
    policy = Policy.of(deny_methods={"tools/call"}, rate=RateLimit(1.0, burst=1))
    core = PolicyCore(policy, Policy())
    assert core.decide("out", make_request(1, "tools/call"), 0.0) is not None  # method refusal: no token spent
    assert core.decide("out", make_response("s1", {}), 0.0) is None  # responses are not rate-limited
    assert core.decide("out", make_request(2, "tools/list"), 0.0) is None
    refusal = core.decide("out", make_notification("notifications/progress"), 0.5)
    assert refusal is not None and refusal.rule == "rate"
    assert "limited to 1/s (burst 1)" in refusal.reason and "0.5 s" in refusal.reason
    assert core.decide("in", make_request("s2", "ping"), 0.5) is None  # the other direction has its own rules
    assert core.decide("out", make_request(3, "tools/list"), 1.0) is None


@pytest.mark.parametrize("args", [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_rate_limit_must_be_sensible(args: tuple[float, int]) -> None:
    with pytest.raises(ValueError):
        RateLimit(*args)


def test_refusal_response_names_the_rule() -> None:
    answer = refusal_response(make_request("s1", "sampling/createMessage"), Refusal("method", "method rule: no"))
    assert answer.id == "s1" and answer.error.code == POLICY_ERROR_CODE == -32600
    assert "method rule" in answer.error.message
    assert answer.error.data == {"rule": "method", "reason": "method rule: no"}
