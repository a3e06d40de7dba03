"""The pure HTTP decisions: origins, hosts, Accept, Content-Type, versions, CORS headers."""

from __future__ import annotations

import json

import pytest

from server_demo.config import SecurityConfig
from server_demo.http_rules import (
    CORS_ALLOW_HEADERS,
    Rejection,
    accepted_types,
    check_accept,
    check_content_type,
    check_handshake_version,
    check_security,
    cors_headers,
    host_allowed,
    origin_allowed,
    preflight_headers,
)

LOOPBACK = SecurityConfig().allowed_origins


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost", True),
        ("http://[::1]:5173", True),
        ("https://localhost:8000", False),  # scheme matters
        ("http://localhost.evil.com", False),
        ("http://evil.example.com", False),
        ("null", False),
        ("http://127.0.0.1:notaport", False),
    ],
)
def test_default_origins_are_loopback_only(origin: str, ok: bool) -> None:
    assert origin_allowed(origin, LOOPBACK) is ok


def test_explicit_origin_patterns() -> None:
    assert origin_allowed("https://app.example.com", ["https://app.example.com"])
    assert not origin_allowed("https://app.example.com:8443", ["https://app.example.com"])
    assert origin_allowed("https://app.example.com:8443", ["https://app.example.com:*"])
    assert origin_allowed("https://anything.test", ["*"])


@pytest.mark.parametrize(
    ("host", "ok"),
    [("127.0.0.1:8000", True), ("localhost", True), ("[::1]:1", True), ("evil.example.com", False), (None, False)],
)
def test_host_guard(host: str | None, ok: bool) -> None:
    assert host_allowed(host, SecurityConfig().allowed_hosts) is ok
    assert host_allowed(host, ())  # no patterns: check disabled


def test_check_security_statuses() -> None:
    sec = SecurityConfig()
    assert check_security("127.0.0.1:1", None, sec) is None
    assert check_security("127.0.0.1:1", "http://localhost:3000", sec) is None
    rejected = check_security("evil.example.com", None, sec)
    assert rejected is not None and rejected.status == 403
    rejected = check_security("127.0.0.1:1", "http://evil.example.com", sec)
    assert rejected is not None and rejected.status == 403


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, text/event-stream", (True, True)),
        ("application/json;q=0.9", (True, False)),
        ("text/event-stream", (False, True)),
        ("*/*", (True, True)),
        ("application/*, text/*", (True, True)),
        ("application/json;q=0, text/event-stream", (False, True)),
        ("text/html", (False, False)),
        (None, (False, False)),
    ],
)
def test_accept_parsing(accept: str | None, expected: tuple[bool, bool]) -> None:
    assert accepted_types(accept) == expected


def test_check_accept_names_what_is_missing() -> None:
    rejected = check_accept("application/json", need_json=True, need_sse=True)
    assert rejected is not None and rejected.status == 406 and "text/event-stream" in rejected.message
    assert check_accept("application/json", need_json=True, need_sse=False) is None


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [("application/json", True), ("application/json; charset=utf-8", True), ("text/plain", False), (None, False)],
)
def test_content_type(content_type: str | None, ok: bool) -> None:
    rejected = check_content_type(content_type)
    assert (rejected is None) is ok
    if rejected is not None:
        assert rejected.status == 415


def test_handshake_version_header() -> None:
    assert check_handshake_version(None) is None
    assert check_handshake_version("2025-03-26") is None
    rejected = check_handshake_version("2030-01-01")
    assert rejected is not None and rejected.status == 400
    body = json.loads(rejected.body())
    assert body["id"] is None and body["error"]["data"]["requested"] == "2030-01-01"


def test_cors_headers() -> None:
    sec = SecurityConfig()
    assert cors_headers(None, sec) == {}
    assert cors_headers("http://evil.example.com", sec) == {}
    h = cors_headers("http://localhost:3000", sec)
    assert h["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Mcp-Session-Id" in h["Access-Control-Expose-Headers"]
    pre = preflight_headers("http://localhost:3000", "Content-Type, Mcp-Param-City, X-Other", sec)
    allowed = pre["Access-Control-Allow-Headers"].split(", ")
    assert set(CORS_ALLOW_HEADERS) <= set(allowed)
    assert "mcp-param-city" in allowed and "x-other" not in allowed


def test_rejection_bodies() -> None:
    assert Rejection(403, "no", code=None).body() == b"no"
    body = json.loads(Rejection(400, "bad", code=-32600, data={"x": 1}).body())
    assert body == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad", "data": {"x": 1}}}


def test_rejection_as_a_json_rpc_error_for_a_known_request() -> None:
    error = Rejection(400, "mismatch", code=-32020, data={"h": "v"}).error(7)
    assert (error.id, error.error.code, error.error.message, error.error.data) == (7, -32020, "mismatch", {"h": "v"})
    with pytest.raises(ValueError, match="plain-text"):
        Rejection(403, "no", code=None).error(None)
