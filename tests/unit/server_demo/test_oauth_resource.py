"""The OAuth-protected MCP endpoint ``/mcp/protected``: challenges, expiry, step-up, both protocol eras, CORS."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from test_oauth import ORIGIN, PAGE, Harness, harness_for

from devtools.mcp_http import INIT, initialize, modern_body, modern_headers, post
from server_demo.__main__ import parse_args
from server_demo.app import AppConfig, create_app
from server_demo.config import stateful_sse
from server_demo.demo import build_demo_server
from server_demo.oauth import OAuthConfig
from server_demo.oauth_resource import bearer_challenge, scopes_needed

PROTECTED = "/mcp/protected"
METADATA = f"{ORIGIN}/.well-known/oauth-protected-resource/mcp/protected"
CHALLENGE = f'Bearer resource_metadata="{METADATA}", scope="mcp:tools"'
ADMIN_CALL = modern_body(7, "tools/call", {"name": "long_running", "arguments": {"steps": 1, "delay_ms": 0}})
ECHO_CALL = modern_body(8, "tools/call", {"name": "echo", "arguments": {"message": "hi"}})


@pytest.fixture
async def h() -> Any:
    async with harness_for() as harness:
        yield harness


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def call(h: Harness, body: dict[str, Any], token: str | None, **extra: str) -> httpx.Response:
    """POST a 2026-07-28 tools/call to the protected endpoint, reading the whole answer."""
    name = body["params"].get("name")
    headers = {**modern_headers(body["method"], name), **(bearer(token) if token else {}), **extra}
    return await h.http.post(PROTECTED, json=body, headers=headers)


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Bearer ")
    params = {}
    for part in value[len("Bearer ") :].split('", '):
        name, _, quoted = part.partition("=")
        params[name] = quoted.strip('"')
    return params


# --- no token, bad token ---------------------------------------------------------------------------------------


async def test_no_token_is_401_with_the_challenge_and_cors(h: Harness) -> None:
    response = await h.http.post(PROTECTED, json=INIT, headers={"origin": PAGE, "accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error_description"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_every_method_needs_the_token(h: Harness, method: str) -> None:
    response = await h.http.request(method, PROTECTED, headers={"accept": "text/event-stream"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


async def test_curl_like_post_gets_the_challenge(h: Harness) -> None:
    response = await h.http.post(PROTECTED, content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert 'resource_metadata="' in response.headers["www-authenticate"]


async def test_preflight_passes_without_a_token_and_allows_authorization(h: Harness) -> None:
    response = await h.http.options(
        PROTECTED,
        headers={
            "origin": PAGE,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, mcp-protocol-version",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_host_and_origin_guards_come_before_the_token(h: Harness) -> None:
    foreign = await h.http.post(PROTECTED, json=INIT, headers={"origin": "https://evil.test"})
    assert foreign.status_code == 403
    assert "www-authenticate" not in foreign.headers
    assert "access-control-allow-origin" not in foreign.headers
    rebinding = await h.http.post(PROTECTED, json=INIT, headers={"host": "evil.test:8000"})
    assert rebinding.status_code == 403


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("Bearer not-a-token-we-issued", "invalid_token"),
        ("Bearer ", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("Bearer \u00e9t\u00e9", "invalid_token"),  # sent as latin-1 bytes
        ('Bearer ab"c', "invalid_token"),
        ("Basic dXNlcjpwYXNz", None),  # another scheme: as if no token was sent
        ("Token abc", None),
    ],
)
async def test_bad_tokens_are_401_invalid_token(h: Harness, authorization: str, error: str | None) -> None:
    response = await h.http.post(
        PROTECTED,
        json=INIT,
        headers={
            "authorization": authorization.encode("latin-1"),
            "origin": PAGE,
            "accept": "application/json, text/event-stream",
        },
    )
    assert response.status_code == 401
    params = challenge_params(response.headers["www-authenticate"])
    assert params["resource_metadata"] == METADATA
    assert params["scope"] == "mcp:tools"
    assert params.get("error") == error
    if error is not None:
        assert params["error_description"]
    else:
        assert "error_description" not in params
    assert response.headers["access-control-allow-origin"] == PAGE


async def test_a_token_in_the_query_string_is_ignored(h: Harness) -> None:
    token = (await h.login())["access_token"]
    response = await h.http.post(f"{PROTECTED}?access_token={token}", json=INIT, headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


async def test_expired_token_is_401_invalid_token(h: Harness) -> None:
    token = (await h.login())["access_token"]
    assert (await call(h, ECHO_CALL, token)).status_code == 200
    h.clock.now += 3600
    response = await call(h, ECHO_CALL, token)
    assert response.status_code == 401
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert "expired" in params["error_description"]
    assert params["resource_metadata"] == METADATA


async def test_token_lifetime_is_configurable() -> None:
    async with harness_for(token_lifetime=60) as h:
        token = await h.login()
        assert token["expires_in"] == 60
        h.clock.now += 59
        assert (await call(h, ECHO_CALL, token["access_token"])).status_code == 200
        h.clock.now += 1
        assert (await call(h, ECHO_CALL, token["access_token"])).status_code == 401


async def test_revoked_token_is_401(h: Harness) -> None:
    token = (await h.login())["access_token"]
    revoked = await h.http.post("/oauth/revoke", data={"token": token, "client_id": "pyodide-transport-explorer"})
    assert revoked.status_code == 200
    response = await call(h, ECHO_CALL, token)
    assert response.status_code == 401
    assert "revoked" in challenge_params(response.headers["www-authenticate"])["error_description"]


async def test_token_for_another_origin_is_401() -> None:
    async with harness_for() as h:
        token = (await h.login())["access_token"]
        response = await call(h, ECHO_CALL, token, host="localhost:8000")  # audience is 127.0.0.1:8000
        assert response.status_code == 401
        params = challenge_params(response.headers["www-authenticate"])
        assert params["error"] == "invalid_token"
        assert "another resource" in params["error_description"]
        assert params["resource_metadata"] == "http://localhost:8000/.well-known/oauth-protected-resource/mcp/protected"


# --- with a valid token: the same MCP endpoint as /mcp ----------------------------------------------------------


async def test_handshake_era_session_with_a_token(h: Harness) -> None:
    token = (await h.login())["access_token"]
    h.http.headers.update(bearer(token))
    session = await initialize(h.http, PROTECTED)
    assert session
    response, reply, _ = await post(
        h.http,
        PROTECTED,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        session,
        **{"mcp-protocol-version": "2025-11-25"},
    )
    assert response.status_code == 200
    names = {tool["name"] for tool in reply["result"]["tools"]}
    assert {"echo", "long_running"} <= names
    # the session belongs to /mcp/protected only
    elsewhere, _, _ = await post(
        h.http, "/mcp", {"jsonrpc": "2.0", "id": 3, "method": "ping"}, session, **{"mcp-protocol-version": "2025-11-25"}
    )
    assert elsewhere.status_code == 404
    # and every later request still needs the token
    del h.http.headers["authorization"]
    bare = await h.http.post(
        PROTECTED,
        json={"jsonrpc": "2.0", "id": 4, "method": "ping"},
        headers={"mcp-session-id": session, "accept": "application/json, text/event-stream"},
    )
    assert bare.status_code == 401


async def test_modern_era_with_a_token_and_cors(h: Harness) -> None:
    token = (await h.login())["access_token"]
    response = await call(h, ECHO_CALL, token, origin=PAGE)
    assert response.status_code == 200
    assert '"hi"' in response.text
    assert response.headers["access-control-allow-origin"] == PAGE


async def test_get_with_a_token_reaches_the_endpoint(h: Harness) -> None:
    token = (await h.login())["access_token"]
    response = await h.http.get(PROTECTED, headers={"accept": "text/event-stream", **bearer(token)})
    assert response.status_code == 400  # the endpoint's own answer: no Mcp-Session-Id
    assert "www-authenticate" not in response.headers


# --- step-up -----------------------------------------------------------------------------------------------------


async def test_admin_tool_needs_the_admin_scope(h: Harness) -> None:
    token = (await h.login())["access_token"]
    assert (await call(h, ECHO_CALL, token)).status_code == 200
    response = await call(h, ADMIN_CALL, token, origin=PAGE)
    assert response.status_code == 403
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "mcp:tools mcp:admin"
    assert params["resource_metadata"] == METADATA
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]
    assert response.json()["error"] == "insufficient_scope"
    # step up: a new token with both scopes
    admin = (await h.login(scope="mcp:tools mcp:admin"))["access_token"]
    stepped = await call(h, ADMIN_CALL, admin)
    assert stepped.status_code == 200
    assert "completed 1 steps" in stepped.text


async def test_admin_tool_step_up_in_the_handshake_era(h: Harness) -> None:
    token = (await h.login())["access_token"]
    h.http.headers.update(bearer(token))
    session = await initialize(h.http, PROTECTED)
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "long_running", "arguments": {}}}
    response = await h.http.post(
        PROTECTED,
        json=body,
        headers={"mcp-session-id": session or "", "accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_admin_scope_alone_is_not_enough(h: Harness) -> None:
    token = (await h.login(scope="mcp:admin"))["access_token"]
    response = await call(h, ECHO_CALL, token)
    assert response.status_code == 403
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "mcp:tools"


async def test_tool_scopes_are_configurable() -> None:
    async with harness_for(tool_scopes={"echo": "mcp:admin"}) as h:
        token = (await h.login())["access_token"]
        assert (await call(h, ECHO_CALL, token)).status_code == 403
        assert (await call(h, ADMIN_CALL, token)).status_code == 200
    with pytest.raises(ValueError, match="scopes_supported"):
        OAuthConfig(tool_scopes={"echo": "mcp:root"})


async def test_a_body_over_the_limit_is_413_with_cors() -> None:
    async with harness_for(app_config=AppConfig(protected=stateful_sse(max_body_bytes=1024))) as h:
        token = (await h.login())["access_token"]
        big = modern_body(9, "tools/call", {"name": "echo", "arguments": {"message": "x" * 2000}})
        response = await call(h, big, token, origin=PAGE)
        assert response.status_code == 413
        assert response.headers["access-control-allow-origin"] == PAGE


async def test_a_malformed_body_is_the_endpoints_error(h: Harness) -> None:
    token = (await h.login())["access_token"]
    response = await h.http.post(
        PROTECTED,
        content=b"{not json",
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream", **bearer(token)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


# --- wiring, CLI, pure helpers --------------------------------------------------------------------------------------


async def test_no_oauth_serves_neither_the_server_nor_the_protected_endpoint() -> None:
    app = create_app(build_demo_server(), AppConfig(oauth=None))
    assert app.state.oauth is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        assert (await http.post(PROTECTED, json=INIT)).status_code == 404
        assert (await http.get("/.well-known/oauth-authorization-server/oauth")).status_code == 404
        assert (await http.post("/oauth/token", data={})).status_code == 404
    for endpoint in app.state.endpoints.values():
        await endpoint.close()


def test_cli_flags() -> None:
    args = parse_args([])
    assert args.no_oauth is False and args.token_lifetime == 3600
    args = parse_args(["--no-oauth", "--token-lifetime", "60"])
    assert args.no_oauth is True and args.token_lifetime == 60
    for bad in ("0", "-5", "soon"):
        with pytest.raises(SystemExit):
            parse_args(["--token-lifetime", bad])


def test_bearer_challenge_format() -> None:
    assert bearer_challenge("M", "a b") == 'Bearer resource_metadata="M", scope="a b"'
    assert bearer_challenge("M", None, "invalid_token", 'say "hi"') == (
        'Bearer error="invalid_token", error_description="say ?hi?", resource_metadata="M"'
    )
    assert bearer_challenge("M", "s", None, "ignored without an error") == 'Bearer resource_metadata="M", scope="s"'


def test_scopes_needed() -> None:
    rules = {"long_running": "mcp:admin"}
    assert scopes_needed(b'{"method": "tools/call", "params": {"name": "long_running"}}', rules) == ["mcp:admin"]
    assert scopes_needed(b'{"method": "tools/call", "params": {"name": "echo"}}', rules) == []
    assert scopes_needed(b'{"method": "tools/list"}', rules) == []
    batch = b'[{"method": "tools/call", "params": {"name": "long_running"}}, 3]'
    assert scopes_needed(batch, rules) == ["mcp:admin"]
    assert scopes_needed(b"{oops", rules) == []
    assert scopes_needed(b'{"method": "tools/call", "params": []}', rules) == []
    assert scopes_needed(b'{"method": "tools/call", "params": {"name": "long_running"}}', {}) == []


def test_access_log_redacts_codes_and_tokens() -> None:
    from server_demo.__main__ import _RedactSecrets

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:1", "GET", "/oauth/callback.html?code=abc123&state=s&ACCESS_TOKEN=t", "1.1", 200)
    assert _RedactSecrets().filter(record)
    message = record.getMessage()
    assert "abc123" not in message and "=t " not in message
    assert "code=***&state=s&ACCESS_TOKEN=***" in message
