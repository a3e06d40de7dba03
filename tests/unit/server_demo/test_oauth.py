"""The demo's OAuth authorization server, over ASGI: metadata, code flow with PKCE, DCR, CIMD, refresh, revoke.

The helpers here (:class:`Harness`, :func:`harness_for`) are shared with ``test_oauth_resource.py``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devtools.servers import FakeClock
from server_demo.app import AppConfig, create_app
from server_demo.demo import build_demo_server
from server_demo.oauth import EXPLORER_CLIENT, EXPLORER_CLIENT_ID, OAuthConfig, PreRegisteredClient

ORIGIN = "http://127.0.0.1:8000"
ISSUER = f"{ORIGIN}/oauth"
RESOURCE = f"{ORIGIN}/mcp/protected"
CALLBACK = f"{ORIGIN}/oauth/callback.html"
APP_CALLBACK = "http://127.0.0.1:9999/cb"
PAGE = "http://localhost:5173"
CIMD_URL = f"{ORIGIN}/oauth/client-metadata.json"
BASIC_CLIENT = PreRegisteredClient(
    client_id="fixed-basic", redirect_uris=(APP_CALLBACK,), client_secret="fixed-secret", client_name="Fixed"
)
NOW = 1_800_000_000.0


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    """The single-valued query parameters of a redirect."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def cimd_document(**overrides: Any) -> dict[str, Any]:
    return {
        "client_id": CIMD_URL,
        "client_name": "Explorer (metadata document)",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **overrides,
    }


@dataclass
class Harness:
    """The demo app with a hand-moved clock, and an httpx client on its origin."""

    app: Starlette
    http: httpx.AsyncClient
    clock: FakeClock
    cimd: dict[str, Any]

    async def consent(
        self,
        *,
        client_id: str = EXPLORER_CLIENT_ID,
        redirect_uri: str | None = CALLBACK,
        scope: str | None = "mcp:tools",
        state: str = "st-1",
        challenge: str | None = None,
        method: str | None = "S256",
        resource: str | None = RESOURCE,
        **extra: str,
    ) -> httpx.Response:
        """GET the authorization endpoint (None leaves a parameter out)."""
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge if challenge is not None else pkce()[1],
            "code_challenge_method": method,
            "resource": resource,
            **extra,
        }
        return await self.http.get("/oauth/authorize", params={k: v for k, v in params.items() if v is not None})

    async def decide(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        """Answer a consent page."""
        assert page.status_code == 200, page.text
        found = re.search(r'name="transaction" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return await self.http.post("/oauth/authorize", data={"transaction": found[1], "decision": decision})

    async def code(self, verifier_challenge: tuple[str, str] | None = None, **consent: Any) -> tuple[str, str]:
        """Run the authorization request and allow it: the code and its PKCE verifier."""
        verifier, challenge = verifier_challenge or pkce()
        answer = await self.decide(await self.consent(challenge=challenge, **consent))
        assert answer.status_code == 303, answer.text
        query = query_of(answer.headers["location"])
        assert "code" in query, query
        return query["code"], verifier

    async def token(self, auth: tuple[str, str] | None = None, **form: str) -> httpx.Response:
        """POST the token endpoint."""
        return await self.http.post("/oauth/token", data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)

    async def login(
        self,
        scope: str = "mcp:tools",
        client_id: str = EXPLORER_CLIENT_ID,
        redirect_uri: str = CALLBACK,
        secret: str | None = None,
        basic: bool = False,
    ) -> dict[str, Any]:
        """The whole code flow: the token response."""
        code, verifier = await self.code(client_id=client_id, redirect_uri=redirect_uri, scope=scope)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "resource": RESOURCE,
            "client_id": client_id,
        }
        auth = None
        if secret is not None and basic:
            auth = (client_id, secret)
            del form["client_id"]
        elif secret is not None:
            form["client_secret"] = secret
        response = await self.token(auth, **form)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def register(self, **metadata: Any) -> httpx.Response:
        """POST the registration endpoint."""
        return await self.http.post("/oauth/register", json=metadata)


@contextlib.asynccontextmanager
async def harness_for(
    *, base_url: str = ORIGIN, app_config: AppConfig | None = None, **oauth: Any
) -> AsyncIterator[Harness]:
    """A :class:`Harness`; ``oauth`` overrides :class:`OAuthConfig` fields."""
    clock = FakeClock(NOW)
    cimd: dict[str, Any] = {"status": 200, "body": cimd_document()}

    async def document(request: Any) -> Response:
        if isinstance(cimd["body"], bytes):
            return Response(cimd["body"], status_code=cimd["status"], media_type="application/json")
        return JSONResponse(cimd["body"], status_code=cimd["status"])

    fetched = Starlette(routes=[Route("/oauth/client-metadata.json", document)])
    settings: dict[str, Any] = {
        "clock": clock,
        "pre_registered": (EXPLORER_CLIENT, BASIC_CLIENT),
        "metadata_transport": httpx.ASGITransport(app=fetched),
        **oauth,
    }
    config = app_config or AppConfig()
    config.oauth = OAuthConfig(**settings)
    app = create_app(build_demo_server(counter_interval=0.02, step_delay=0.001), config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http:
        try:
            yield Harness(app, http, clock, cimd)
        finally:
            for endpoint in app.state.endpoints.values():
                await endpoint.close()


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness_for() as harness:
        yield harness


# --- metadata ---------------------------------------------------------------------------------------------


async def test_authorization_server_metadata(h: Harness) -> None:
    response = await h.http.get("/.well-known/oauth-authorization-server/oauth", headers={"origin": PAGE})
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert meta["token_endpoint"] == f"{ISSUER}/token"
    assert meta["registration_endpoint"] == f"{ISSUER}/register"
    assert meta["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_post", "client_secret_basic"}
    assert {"mcp:tools", "mcp:admin"} <= set(meta["scopes_supported"])
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


async def test_protected_resource_metadata(h: Harness) -> None:
    response = await h.http.get("/.well-known/oauth-protected-resource/mcp/protected", headers={"origin": PAGE})
    assert response.status_code == 200
    meta = response.json()
    assert meta["resource"] == RESOURCE
    assert meta["authorization_servers"] == [ISSUER]
    assert meta["scopes_supported"] == ["mcp:tools", "mcp:admin"]
    assert meta["bearer_methods_supported"] == ["header"]
    assert response.headers["access-control-allow-origin"] == PAGE


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server/oauth", "/oauth/token", "/oauth/register", "/oauth/revoke"]
)
async def test_preflight_of_oauth_endpoints(h: Harness, path: str) -> None:
    response = await h.http.options(
        path,
        headers={
            "origin": PAGE,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "content-type" in response.headers["access-control-allow-headers"]


async def test_metadata_follows_the_host_and_refuses_foreign_hosts_and_origins() -> None:
    async with harness_for(base_url="http://localhost:8123") as h:
        meta = (await h.http.get("/.well-known/oauth-authorization-server/oauth")).json()
        assert meta["issuer"] == "http://localhost:8123/oauth"
        resource = (await h.http.get("/.well-known/oauth-protected-resource/mcp/protected")).json()
        assert resource["resource"] == "http://localhost:8123/mcp/protected"
        foreign_host = await h.http.get("/.well-known/oauth-authorization-server/oauth", headers={"host": "evil.test"})
        assert foreign_host.status_code == 403
        foreign_origin = await h.http.post(
            "/oauth/token", data={"grant_type": "x"}, headers={"origin": "https://evil.test"}
        )
        assert foreign_origin.status_code == 403
        assert "access-control-allow-origin" not in foreign_origin.headers


async def test_wrong_method_is_405_not_500(h: Harness) -> None:
    assert (await h.http.get("/oauth/token")).status_code == 405
    assert (await h.http.put("/oauth/authorize")).status_code == 405
    assert (await h.http.delete("/.well-known/oauth-authorization-server/oauth")).status_code == 405


# --- the code flow ----------------------------------------------------------------------------------------


async def test_full_code_flow_with_pkce_for_the_explorer(h: Harness) -> None:
    verifier, challenge = pkce()
    page = await h.consent(challenge=challenge, state="xyz", scope="mcp:tools offline_access")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "pyodide-transport explorer" in page.text
    assert RESOURCE in page.text
    assert "pre-registered" in page.text
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    answer = await h.decide(page)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = query_of(location)
    assert query["state"] == "xyz"
    assert query["iss"] == ISSUER
    response = await h.token(
        grant_type="authorization_code",
        code=query["code"],
        code_verifier=verifier,
        redirect_uri=CALLBACK,
        resource=RESOURCE,
        client_id=EXPLORER_CLIENT_ID,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "mcp:tools offline_access"
    assert token["access_token"] and token["refresh_token"]
    # the code is single use
    again = await h.token(
        grant_type="authorization_code",
        code=query["code"],
        code_verifier=verifier,
        redirect_uri=CALLBACK,
        resource=RESOURCE,
        client_id=EXPLORER_CLIENT_ID,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_no_scope_gets_the_required_scope(h: Harness) -> None:
    token = await h.login(scope="")
    assert token["scope"] == "mcp:tools"


async def test_deny_redirects_with_access_denied_state_and_iss(h: Harness) -> None:
    answer = await h.decide(await h.consent(state="s-deny"), "deny")
    assert answer.status_code == 303
    query = query_of(answer.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "s-deny"
    assert query["iss"] == ISSUER
    assert "code" not in query


async def test_consent_transaction_is_single_use_and_expires(h: Harness) -> None:
    page = await h.consent()
    assert (await h.decide(page)).status_code == 303
    replay = await h.decide(page)
    assert replay.status_code == 400
    assert "expired or already answered" in replay.text
    page = await h.consent()
    h.clock.now += 601
    late = await h.decide(page)
    assert late.status_code == 400
    assert "location" not in late.headers


async def test_cross_site_consent_post_is_refused(h: Harness) -> None:
    page = await h.consent()
    found = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert found is not None
    response = await h.http.post(
        "/oauth/authorize", data={"transaction": found[1], "decision": "allow"}, headers={"origin": PAGE}
    )
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_wrong_verifier_is_rejected(h: Harness) -> None:
    code, _ = await h.code()
    response = await h.token(
        grant_type="authorization_code",
        code=code,
        code_verifier=pkce()[0],
        redirect_uri=CALLBACK,
        resource=RESOURCE,
        client_id=EXPLORER_CLIENT_ID,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    missing = await h.token(
        grant_type="authorization_code",
        code=code,
        redirect_uri=CALLBACK,
        resource=RESOURCE,
        client_id=EXPLORER_CLIENT_ID,
    )
    assert missing.status_code == 400


@pytest.mark.parametrize(("challenge", "method"), [("", None), (None, "plain"), ("x" * 43, "plain"), (None, None)])
async def test_plain_or_absent_pkce_is_rejected(h: Harness, challenge: str | None, method: str | None) -> None:
    if challenge == "":
        response = await h.http.get(
            "/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": EXPLORER_CLIENT_ID,
                "redirect_uri": CALLBACK,
                "state": "p",
                "resource": RESOURCE,
            },
        )
    else:
        response = await h.consent(challenge=challenge, method=method, state="p")
    assert response.status_code == 302  # the redirect URI is verified, so the client hears about it
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert query["state"] == "p"
    assert query["iss"] == ISSUER


async def test_resource_must_be_this_servers(h: Harness) -> None:
    for resource in ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:9/mcp/protected", None):
        response = await h.consent(resource=resource)
        assert response.status_code == 302
        query = query_of(response.headers["location"])
        assert query["error"] == "invalid_target", resource
        assert query["iss"] == ISSUER
    # trailing slash and case of the host are the same resource
    assert (await h.consent(resource="http://127.0.0.1:8000/mcp/protected/")).status_code == 200


async def test_token_request_resource_must_match_the_code(h: Harness) -> None:
    code, verifier = await h.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": CALLBACK,
        "client_id": EXPLORER_CLIENT_ID,
    }
    other = await h.token(**form, resource=f"{ORIGIN}/mcp")
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_target"
    absent = await h.token(**form)
    assert absent.status_code == 400
    assert absent.json()["error"] == "invalid_target"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.test/cb",
        "http://localhost:8000/oauth/callback.html",  # the explorer's path, but another origin than the request's
        "http://127.0.0.1:9999/oauth/callback.html",
        f"{ORIGIN}/oauth/callback.html?x=1",
        f"{ORIGIN}/oauth/other.html",
        None,  # no default: the explorer has no single registered URI
    ],
)
async def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    h: Harness, redirect_uri: str | None
) -> None:
    response = await h.consent(redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-testid="oauth-error-title"' in response.text


async def test_unknown_client_gets_an_error_page(h: Harness) -> None:
    response = await h.consent(client_id="nobody")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Unknown client" in response.text


async def test_explorer_callback_is_accepted_on_whatever_loopback_origin_serves_it() -> None:
    async with harness_for(base_url="http://localhost:8123") as h:
        callback = "http://localhost:8123/oauth/callback.html"
        page = await h.consent(redirect_uri=callback, resource="http://localhost:8123/mcp/protected")
        assert page.status_code == 200, page.text
        answer = await h.decide(page)
        assert answer.headers["location"].startswith(callback + "?")
        assert query_of(answer.headers["location"])["iss"] == "http://localhost:8123/oauth"


async def test_code_expires(h: Harness) -> None:
    code, verifier = await h.code()
    h.clock.now += 601
    response = await h.token(
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=CALLBACK,
        resource=RESOURCE,
        client_id=EXPLORER_CLIENT_ID,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# --- client authentication ----------------------------------------------------------------------------------


async def test_pre_registered_client_secret_basic(h: Harness) -> None:
    token = await h.login(client_id="fixed-basic", redirect_uri=APP_CALLBACK, secret="fixed-secret", basic=True)
    assert token["access_token"]
    code, verifier = await h.code(client_id="fixed-basic", redirect_uri=APP_CALLBACK)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": APP_CALLBACK,
        "resource": RESOURCE,
    }
    wrong = await h.token(("fixed-basic", "nope"), **form)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    as_post = await h.token(**form, client_id="fixed-basic", client_secret="fixed-secret")  # not its method
    assert as_post.status_code == 401
    assert as_post.json()["error"] == "invalid_client"


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
async def test_registered_confidential_clients(h: Harness, method: str) -> None:
    response = await h.register(
        client_name="Confidential",
        redirect_uris=[APP_CALLBACK],
        token_endpoint_auth_method=method,
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["token_endpoint_auth_method"] == method
    assert info["client_secret"]
    basic = method == "client_secret_basic"
    token = await h.login(
        client_id=info["client_id"], redirect_uri=APP_CALLBACK, secret=info["client_secret"], basic=basic
    )
    assert token["refresh_token"]
    # a public-style request (no secret) is refused
    code, verifier = await h.code(client_id=info["client_id"], redirect_uri=APP_CALLBACK)
    bare = await h.token(
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=APP_CALLBACK,
        resource=RESOURCE,
        client_id=info["client_id"],
    )
    assert bare.status_code == 401
    assert bare.json()["error"] == "invalid_client"


# --- dynamic client registration ----------------------------------------------------------------------------


async def test_register_a_public_web_client(h: Harness) -> None:
    response = await h.register(
        client_name="My page",
        redirect_uris=["http://localhost:5173/callback"],
        token_endpoint_auth_method="none",
        application_type="web",
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    info = response.json()
    assert "client_secret" not in info
    assert info["application_type"] == "web"
    assert info["grant_types"] == ["authorization_code"]
    assert info["redirect_uris"] == ["http://localhost:5173/callback"]
    page = await h.consent(client_id=info["client_id"], redirect_uri="http://localhost:5173/callback")
    assert page.status_code == 200
    assert "registered itself dynamically" in page.text
    token = await h.login(client_id=info["client_id"], redirect_uri="http://localhost:5173/callback")
    assert "refresh_token" not in token  # it did not register the refresh_token grant
    # a web client's loopback redirect URI is matched exactly, port included
    other_port = await h.consent(client_id=info["client_id"], redirect_uri="http://localhost:5174/callback")
    assert other_port.status_code == 400


async def test_register_a_native_client_with_a_loopback_redirect(h: Harness) -> None:
    response = await h.register(
        redirect_uris=["http://127.0.0.1/callback"], token_endpoint_auth_method="none", application_type="native"
    )
    assert response.status_code == 201, response.text
    client_id = response.json()["client_id"]
    assert response.json()["application_type"] == "native"
    page = await h.consent(client_id=client_id, redirect_uri="http://127.0.0.1:53117/callback")  # RFC 8252: any port
    assert page.status_code == 200
    other_path = await h.consent(client_id=client_id, redirect_uri="http://127.0.0.1:53117/other")
    assert other_path.status_code == 400


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": [APP_CALLBACK], "application_type": "desktop"}, "invalid_client_metadata"),
        ({"redirect_uris": APP_CALLBACK}, "invalid_client_metadata"),
        ({"redirect_uris": [APP_CALLBACK], "client_name": 7}, "invalid_client_metadata"),
        ({"redirect_uris": [APP_CALLBACK], "grant_types": ["refresh_token"]}, "invalid_client_metadata"),
        ({"redirect_uris": [APP_CALLBACK], "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"redirect_uris": [APP_CALLBACK], "scope": "mcp:tools root"}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://evil.test/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.test/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({}, "invalid_client_metadata"),
    ],
)
async def test_bad_registration_metadata_is_400(h: Harness, metadata: dict[str, Any], error: str) -> None:
    response = await h.register(**metadata)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"[1, 2]", "application/json"),
        (b"{nope", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"redirect_uris=x", "application/x-www-form-urlencoded"),
        (b"{}" + b" " * 70_000, "application/json"),
    ],
)
async def test_unreadable_registration_bodies_are_400(h: Harness, content: bytes, content_type: str) -> None:
    response = await h.http.post("/oauth/register", content=content, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


# --- client ID metadata documents ----------------------------------------------------------------------------


async def test_client_id_metadata_document_on_the_loopback_origin(h: Harness) -> None:
    page = await h.consent(client_id=CIMD_URL, scope="mcp:tools offline_access")
    assert page.status_code == 200, page.text
    assert "Explorer (metadata document)" in page.text
    assert "described by its client metadata document" in page.text
    token = await h.login(client_id=CIMD_URL, scope="mcp:tools offline_access")
    assert token["refresh_token"]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, cimd_document(client_id="http://127.0.0.1:8000/other.json"), "not the URL"),
        (200, cimd_document(client_secret="x"), "secret"),
        (200, cimd_document(redirect_uris=["http://evil.test/cb"]), "redirect_uris"),
        (200, cimd_document(token_endpoint_auth_method="client_secret_basic"), "none"),
        (404, {"error": "nope"}, "HTTP 404"),
        (200, b"not json", "not valid JSON"),
        (200, b"[1]", "not a JSON object"),
        (200, b" " * 70_000, "larger than"),
    ],
)
async def test_bad_client_metadata_documents_are_refused(h: Harness, status: int, body: Any, reason: str) -> None:
    h.cimd.update(status=status, body=body)
    page = await h.consent(client_id=CIMD_URL)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert reason in page.text
    token = await h.token(grant_type="authorization_code", code="x", client_id=CIMD_URL)
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_client"


async def test_client_metadata_documents_can_be_switched_off() -> None:
    async with harness_for(client_metadata_documents=False) as h:
        meta = (await h.http.get("/.well-known/oauth-authorization-server/oauth")).json()
        assert meta["client_id_metadata_document_supported"] is False
        page = await h.consent(client_id=CIMD_URL)
        assert page.status_code == 400
        assert "does not accept client metadata documents" in page.text


async def test_a_non_loopback_http_document_url_is_not_fetched(h: Harness) -> None:
    page = await h.consent(client_id="http://evil.test/client.json")
    assert page.status_code == 400
    assert "https" in page.text


# --- refresh and revocation ------------------------------------------------------------------------------------


async def test_refresh_tokens_rotate(h: Harness) -> None:
    first = await h.login()
    refresh = {"grant_type": "refresh_token", "client_id": EXPLORER_CLIENT_ID}
    second = await h.token(**refresh, refresh_token=first["refresh_token"], resource=RESOURCE)
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert rotated["scope"] == "mcp:tools"
    reused = await h.token(**refresh, refresh_token=first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    other_resource = await h.token(**refresh, refresh_token=rotated["refresh_token"], resource=f"{ORIGIN}/mcp")
    assert other_resource.status_code == 400
    assert other_resource.json()["error"] == "invalid_target"
    third = await h.token(**refresh, refresh_token=rotated["refresh_token"])  # resource may be left out
    assert third.status_code == 200, third.text


async def test_refresh_tokens_expire(h: Harness) -> None:
    token = await h.login()
    h.clock.now += 30 * 24 * 3600 + 1
    response = await h.token(
        grant_type="refresh_token", client_id=EXPLORER_CLIENT_ID, refresh_token=token["refresh_token"]
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_revoking_a_refresh_token_ends_it_and_its_access_token(h: Harness) -> None:
    token = await h.login()
    response = await h.http.post(
        "/oauth/revoke",
        data={"token": token["refresh_token"], "token_type_hint": "refresh_token", "client_id": EXPLORER_CLIENT_ID},
    )
    assert response.status_code == 200, response.text
    again = await h.token(
        grant_type="refresh_token", client_id=EXPLORER_CLIENT_ID, refresh_token=token["refresh_token"]
    )
    assert again.status_code == 400
    record = h.app.state.oauth.store.access_token(token["access_token"])
    assert record.is_revoked()


async def test_revoke_needs_the_owning_client(h: Harness) -> None:
    token = await h.login()
    response = await h.http.post(
        "/oauth/revoke", data={"token": token["access_token"]}, auth=("fixed-basic", "fixed-secret")
    )
    assert response.status_code == 400  # RFC 7009: the token was not issued to this client
    assert not h.app.state.oauth.store.access_token(token["access_token"]).is_revoked()
    unknown = await h.http.post("/oauth/revoke", data={"token": "no-such-token", "client_id": EXPLORER_CLIENT_ID})
    assert unknown.status_code == 200  # RFC 7009 §2.2: unknown tokens are not an error


# --- malformed input: a clear 400, never a 500 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "needle"),
    [
        (b"grant_type=authorization_code&code=" + b"a" * 70_000, "application/x-www-form-urlencoded", "larger than"),
        (b"grant_type=\xff\xfe", "application/x-www-form-urlencoded", "UTF-8"),
        (b"&".join(b"a%d=1" % i for i in range(200)), "application/x-www-form-urlencoded", "too many fields"),
        (b'{"grant_type": "authorization_code"}', "application/json", "Content-Type"),
        (b"code=x", "application/x-www-form-urlencoded", "grant_type"),
        (b"grant_type=password&username=a&password=b", "application/x-www-form-urlencoded", ""),
        (b"grant_type=authorization_code&client_id=a&client_id=b", "application/x-www-form-urlencoded", ""),
        (b"grant_type=authorization_code&client_id=%00", "application/x-www-form-urlencoded", ""),
    ],
)
async def test_malformed_token_requests_are_400(h: Harness, content: bytes, content_type: str, needle: str) -> None:
    response = await h.http.post("/oauth/token", content=content, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["error"]
    assert needle in body.get("error_description", "")


@pytest.mark.parametrize(
    "form",
    [
        {"transaction": "nope", "decision": "allow"},
        {"decision": "maybe"},
        {},
    ],
)
async def test_malformed_consent_posts_are_400_pages(h: Harness, form: dict[str, str]) -> None:
    response = await h.http.post("/oauth/authorize", data=form)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


async def test_oversized_or_non_form_consent_posts_are_400(h: Harness) -> None:
    big = await h.http.post(
        "/oauth/authorize",
        content=b"decision=allow&transaction=" + b"a" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 400
    assert "too large" in big.text
    as_json = await h.http.post("/oauth/authorize", json={"decision": "allow"})
    assert as_json.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"response_type": "token", "client_id": EXPLORER_CLIENT_ID, "redirect_uri": CALLBACK},
        {"client_id": [EXPLORER_CLIENT_ID, "other"]},
        {"client_id": "\x00"},
        {"client_id": "http://127.0.0.1:8000/../x"},
        {"client_id": EXPLORER_CLIENT_ID, "redirect_uri": "javascript:alert(1)"},
        {"client_id": EXPLORER_CLIENT_ID, "redirect_uri": CALLBACK, "resource": [RESOURCE, RESOURCE]},
        {"client_id": EXPLORER_CLIENT_ID, "redirect_uri": CALLBACK, "scope": "root"},
    ],
)
async def test_malformed_authorization_requests_never_500(h: Harness, params: dict[str, Any]) -> None:
    base = {"response_type": "code", "code_challenge": pkce()[1], "code_challenge_method": "S256", "state": "m"}
    response = await h.http.get("/oauth/authorize", params={**base, **params})
    assert response.status_code in (302, 400), response.text
    if response.status_code == 302:  # only to the verified redirect URI, with the error and iss
        assert response.headers["location"].startswith(CALLBACK + "?")
        query = query_of(response.headers["location"])
        assert query["error"] and query["iss"] == ISSUER and query["state"] == "m"


async def test_oauth_error_json_is_well_formed(h: Harness) -> None:
    response = await h.http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": "nobody"})
    assert response.status_code in (400, 401)
    body = json.loads(response.text)
    assert body["error"] == "invalid_client"
