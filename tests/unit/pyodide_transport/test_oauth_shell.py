"""The asyncio OAuth shell (pyodide_transport.oauth) over a fake HTTP client and a fake sign-in: no sockets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import pyodide_transport.oauth as oauth_module
from pyodide_transport.errors import (
    AuthorizationCancelledError,
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationRequiredError,
    AuthorizationResponseError,
    InsufficientScopeError,
    LocalProtocolError,
    NetworkError,
)
from pyodide_transport.fetch import FetchTransport, HTTPClient
from pyodide_transport.messages import make_request
from pyodide_transport.oauth import MemoryTokenStore, OAuth, OAuthRequest, headless_redirect_handler
from pyodide_transport.oauth_core import OpenAuthorization, Tokens

RS = "https://rs.test/mcp"
AS = "https://as.test"
PRM_URL = "https://rs.test/.well-known/oauth-protected-resource/mcp"
REDIRECT = "http://127.0.0.1:9/callback"
PREFIX = "pyodide-transport.oauth."
TOKENS_KEY = f"{PREFIX}tokens:{RS}"
CLIENT_KEY = f"{PREFIX}client:{AS}"
CHALLENGE = f'Bearer resource_metadata="{PRM_URL}", scope="mcp:read"'
JSON = {"content-type": "application/json"}


# --- a fake network: the MCP server's metadata, and an authorization server that checks PKCE ---------------


class FakeResponse:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(0)
        if self.body:
            yield self.body

    async def aclose(self) -> None:
        self.closed = True


def respond(status: int, doc: Any = None, headers: Mapping[str, str] | None = None) -> FakeResponse:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode() if doc is not None else b""
    return FakeResponse(status, {**JSON, **(headers or {})}, body)


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    @property
    def form(self) -> dict[str, str]:
        assert self.body is not None
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class FakeNetwork:
    """Serves the resource metadata, the authorization server and (optionally) the MCP endpoint."""

    prm: dict[str, Any] = field(default_factory=lambda: {"resource": RS, "authorization_servers": [AS]})
    asm: dict[str, Any] = field(
        default_factory=lambda: {
            "issuer": AS,
            "authorization_endpoint": f"{AS}/authorize",
            "token_endpoint": f"{AS}/token",
            "registration_endpoint": f"{AS}/register",
            "revocation_endpoint": f"{AS}/revoke",
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_response_iss_parameter_supported": True,
        }
    )
    lifetime: int = 3600
    refuse_refresh: bool = False
    mcp: Callable[[Sent], FakeResponse] | None = None
    gate: asyncio.Event | None = None  # the user takes their time while this is unset
    sent: list[Sent] = field(default_factory=list)
    prompts: list[OpenAuthorization] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # access token -> scope
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> scope
    revoked: list[dict[str, str]] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)  # path -> raised by request()
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # HTTPClient
    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> FakeResponse:
        sent = Sent(method, url, dict(headers), body)
        self.sent.append(sent)
        await asyncio.sleep(0)
        if sent.path in self.fail:
            raise self.fail[sent.path]
        if url == PRM_URL:
            return respond(200, self.prm)
        if url == f"{AS}/.well-known/oauth-authorization-server":
            return respond(200, self.asm)
        if url == f"{AS}/register":
            return respond(201, {"client_id": f"dyn-{next(self.counter)}", "token_endpoint_auth_method": "none"})
        if url == f"{AS}/token":
            return self._token(sent.form)
        if url == f"{AS}/revoke":
            self.revoked.append(sent.form)
            return respond(200, {})
        if url.split("?")[0] == RS and self.mcp is not None:
            return self.mcp(sent)
        return respond(404, b"not found")

    async def aclose(self) -> None:
        pass

    # the user at the authorization endpoint
    async def sign_in(self, prompt: OpenAuthorization) -> str:
        self.prompts.append(prompt)
        params = {k: v[0] for k, v in parse_qs(urlsplit(prompt.url).query).items()}
        assert "access_token" not in prompt.url
        if self.gate is not None:
            await self.gate.wait()
        code = f"code-{next(self.counter)}"
        self.codes[code] = params
        return f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state'], 'iss': AS})}"

    def _token(self, form: dict[str, str]) -> FakeResponse:
        if form["grant_type"] == "authorization_code":
            asked = self.codes.pop(form["code"], None)
            if asked is None:
                return respond(400, {"error": "invalid_grant", "error_description": "unknown code"})
            verifier = form["code_verifier"].encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            assert challenge == asked["code_challenge"], "PKCE verifier does not match"
            assert (form["redirect_uri"], form["resource"], form["client_id"]) == (
                asked["redirect_uri"],
                asked["resource"],
                asked["client_id"],
            )
            scope = asked.get("scope", "")
        elif form["grant_type"] == "refresh_token":
            if self.refuse_refresh or form["refresh_token"] not in self.refresh_tokens:
                return respond(400, {"error": "invalid_grant", "error_description": "refresh token revoked"})
            assert form["resource"] == RS
            scope = self.refresh_tokens[form["refresh_token"]]
        else:
            return respond(400, {"error": "unsupported_grant_type"})
        n = next(self.counter)
        access, refresh = f"at-{n}", f"rt-{n}"
        self.access[access] = scope
        self.refresh_tokens[refresh] = scope
        doc = {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime, "refresh_token": refresh}
        if scope:
            doc["scope"] = scope
        return respond(200, doc)

    def purposes(self) -> list[str]:
        names = {
            PRM_URL: "prm",
            f"{AS}/.well-known/oauth-authorization-server": "asm",
            f"{AS}/register": "register",
            f"{AS}/token": "token",
            f"{AS}/revoke": "revoke",
        }
        return [names.get(s.url, s.method + " " + s.path) for s in self.sent]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_auth(net: FakeNetwork, store: MemoryTokenStore | None = None, **kwargs: Any) -> OAuth:
    counter = itertools.count()
    options: dict[str, Any] = {
        "redirect_uri": REDIRECT,
        "redirect_handler": net.sign_in,
        "store": store if store is not None else MemoryTokenStore(),
        "random": lambda n: hashlib.sha256(str(next(counter)).encode()).digest()[:n],
    }
    options.update(kwargs)
    return OAuth(**options)


async def sign_in(auth: OAuth, net: FakeNetwork) -> Tokens:
    await auth.handle(RS, 401, CHALLENGE, None, net, 1)
    tokens = auth.tokens(RS)
    assert tokens is not None
    return tokens


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never came true")


def test_the_fake_network_is_an_http_client() -> None:
    assert isinstance(FakeNetwork(), HTTPClient)


# --- the flow ------------------------------------------------------------------------------------------


async def test_full_flow_to_tokens() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    reports: list[OAuthRequest] = []
    auth = make_auth(net, store, on_request=reports.append, clock=Clock())
    assert auth.tokens(RS) is None and auth.authorization(RS) is None
    tokens = await sign_in(auth, net)
    assert net.purposes() == ["prm", "asm", "register", "token"]
    assert tokens.access_token in net.access and tokens.scope == "mcp:read"
    assert auth.authorization(RS) == f"Bearer {tokens.access_token}"
    assert tokens.expires_at == 1_000_000.0 + 3600
    (prompt,) = net.prompts
    assert prompt.reason == "sign-in" and prompt.scope == "mcp:read"
    register = json.loads(net.sent[2].body or b"")
    assert register["application_type"] == "native" and register["redirect_uris"] == [REDIRECT]
    assert [(r.purpose, r.method, r.status, r.outcome) for r in reports] == [
        ("resource metadata", "GET", 200, "ok"),
        ("authorization server metadata", "GET", 200, "ok"),
        ("client registration", "POST", 201, "ok"),
        ("token", "POST", 200, "ok"),
    ]


async def test_tokens_and_registration_are_stored_under_their_keys() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    auth = make_auth(net, store)
    tokens = await sign_in(auth, net)
    assert set(store._data) == {TOKENS_KEY, CLIENT_KEY}  # no pending sign-in left behind
    assert Tokens.from_json(json.loads(store._data[TOKENS_KEY])) == tokens
    client = json.loads(store._data[CLIENT_KEY])
    assert (client["issuer"], client["client_id"], client["how"]) == (AS, tokens.client_id, "dynamic")
    # the key is the canonical server URL: the same tokens for a differently spelled URL
    assert auth.authorization("HTTPS://RS.TEST/mcp#x") == tokens.authorization


async def test_pre_registered_and_metadata_document_clients_are_not_stored() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    await sign_in(make_auth(net, store, client_id="pre-1"), net)
    assert set(store._data) == {TOKENS_KEY}
    assert "register" not in net.purposes()
    assert net.prompts[0].pending.registration["client_id"] == "pre-1"


async def test_tokens_are_read_from_the_store_once_then_cached() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    await sign_in(make_auth(net, store), net)

    reads: list[str] = []

    class CountingStore(MemoryTokenStore):
        def get(self, key: str) -> str | None:
            reads.append(key)
            return super().get(key)

    counting = CountingStore()
    counting._data = dict(store._data)
    fresh = make_auth(net, counting)  # a new page load: the same store
    header = fresh.authorization(RS)
    assert header is not None and header.startswith("Bearer at-")
    for _ in range(5):
        assert fresh.authorization(RS) == header
        assert not fresh.needs_refresh(RS)
    assert reads == [TOKENS_KEY]


async def test_a_stored_registration_is_reused_with_the_same_issuer() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    first = await sign_in(make_auth(net, store), net)
    store.delete(TOKENS_KEY)
    net.sent.clear()
    second = await sign_in(make_auth(net, store), net)
    assert net.purposes() == ["prm", "asm", "token"]  # no second registration
    assert second.client_id == first.client_id and second.access_token != first.access_token


async def test_a_damaged_store_entry_is_ignored() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    damaged = {"access_token": None, "token_type": "Bearer", "resource": RS, "issuer": AS}
    damaged |= {"token_endpoint": f"{AS}/token", "client_id": "c"}
    store.set(TOKENS_KEY, json.dumps(damaged))
    store.set(CLIENT_KEY, "not json")
    auth = make_auth(net, store)
    assert auth.tokens(RS) is None and auth.authorization(RS) is None  # never "Bearer None"
    tokens = await sign_in(auth, net)
    assert "register" in net.purposes() and tokens.access_token.startswith("at-")


async def test_concurrent_401s_on_the_same_server_sign_in_once() -> None:
    net = FakeNetwork(gate=asyncio.Event())
    auth = make_auth(net)
    calls = [asyncio.ensure_future(auth.handle(RS, 401, CHALLENGE, None, net, 1)) for _ in range(5)]
    await until(lambda: len(net.prompts) == 1)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(net.prompts) == 1  # the others wait on the lock
    assert net.gate is not None
    net.gate.set()
    await asyncio.gather(*calls)
    assert len(net.prompts) == 1
    assert net.purposes().count("token") == 1 and net.purposes().count("register") == 1
    assert auth.tokens(RS) is not None


async def test_a_401_for_a_token_already_replaced_returns_at_once() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    await sign_in(auth, net)
    net.sent.clear()
    await auth.handle(RS, 401, CHALLENGE, "Bearer an-older-token", net, 1)
    assert net.sent == [] and len(net.prompts) == 1


async def test_the_sign_in_limit_raises_before_any_request() -> None:
    net = FakeNetwork()
    auth = make_auth(net, max_authorizations=2)
    with pytest.raises(InsufficientScopeError, match="still refuses after 2 sign-ins"):
        await auth.handle(RS, 403, 'Bearer error="insufficient_scope", scope="x"', None, net, 3)
    assert net.sent == [] and net.prompts == []


async def test_a_step_up_for_a_scope_already_held_fails_at_once() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    tokens = await sign_in(auth, net)
    net.sent.clear()
    with pytest.raises(InsufficientScopeError, match="already holds"):
        await auth.handle(RS, 403, 'Bearer error="insufficient_scope", scope="mcp:read"', tokens.authorization, net, 1)
    assert net.sent == [] and len(net.prompts) == 1


async def test_a_401_with_a_refresh_token_refreshes_without_the_user() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    first = await sign_in(auth, net)
    net.sent.clear()
    await auth.handle(RS, 401, 'Bearer error="invalid_token"', first.authorization, net, 1)
    assert net.purposes() == ["prm", "asm", "token"]
    assert net.sent[-1].form["grant_type"] == "refresh_token"
    assert len(net.prompts) == 1
    refreshed = auth.tokens(RS)
    assert refreshed is not None and refreshed.access_token != first.access_token


async def test_a_refused_refresh_on_401_falls_back_to_a_sign_in() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    first = await sign_in(auth, net)
    net.refuse_refresh = True
    await auth.handle(RS, 401, CHALLENGE, first.authorization, net, 2)
    assert len(net.prompts) == 2 and net.prompts[1].reason == "expired"
    tokens = auth.tokens(RS)
    assert tokens is not None and tokens.access_token != first.access_token


async def test_the_user_refusing_is_a_denial_and_leaves_nothing_behind() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()

    async def refuse(prompt: OpenAuthorization) -> str:
        state = prompt.pending.state
        assert store.get(f"{PREFIX}pending:{state}") is not None  # kept while the user is away
        return f"{REDIRECT}?{urlencode({'error': 'access_denied', 'state': state, 'iss': AS})}"

    auth = make_auth(net, store, redirect_handler=refuse)
    with pytest.raises(AuthorizationDeniedError, match="refused") as caught:
        await auth.handle(RS, 401, CHALLENGE, None, net, 1)
    assert caught.value.error == "access_denied"
    assert auth.tokens(RS) is None
    assert not [k for k in store._data if k.startswith(PREFIX + "pending:")]


async def test_no_redirect_handler_says_what_to_pass() -> None:
    net = FakeNetwork()
    auth = OAuth(redirect_uri=REDIRECT, store=MemoryTokenStore())
    with pytest.raises(AuthorizationCancelledError, match="redirect_handler"):
        await auth.handle(RS, 401, CHALLENGE, None, net, 1)


async def test_no_redirect_uri_outside_a_page_is_a_local_error() -> None:
    net = FakeNetwork()
    auth = OAuth(redirect_handler=net.sign_in, store=MemoryTokenStore(), client_id="c")
    with pytest.raises(LocalProtocolError, match="redirect_uri"):
        await auth.handle(RS, 401, CHALLENGE, None, net, 1)
    assert net.prompts == []


async def test_an_oversized_metadata_document_is_refused() -> None:
    net = FakeNetwork()
    net.prm = {**net.prm, "padding": "x" * 300_000}
    reports: list[OAuthRequest] = []
    auth = make_auth(net, on_request=reports.append)
    with pytest.raises(AuthorizationError, match="over 262144 bytes"):
        await auth.handle(RS, 401, CHALLENGE, None, net, 1)
    assert reports[-1].outcome == "AuthorizationError"


async def test_a_hanging_discovery_request_times_out_and_moves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oauth_module, "_TIMEOUT", 0.05)
    net = FakeNetwork()
    hanging = "https://rs.test/slow-prm"
    original = net.request

    async def request(method: str, url: str, headers: Mapping[str, str], body: bytes | None = None) -> FakeResponse:
        if url == hanging:
            await asyncio.Event().wait()
        return await original(method, url, headers, body)

    net.request = request  # type: ignore[method-assign]
    reports: list[OAuthRequest] = []
    auth = make_auth(net, on_request=reports.append)
    await auth.handle(RS, 401, f'Bearer resource_metadata="{hanging}"', None, net, 1)
    assert (reports[0].url, reports[0].status, reports[0].outcome) == (hanging, None, "timed out")
    assert reports[1].url == PRM_URL
    assert auth.tokens(RS) is not None


# --- refresh ----------------------------------------------------------------------------------------------


async def test_refresh_when_needed() -> None:
    net = FakeNetwork(lifetime=60)
    clock = Clock()
    store = MemoryTokenStore()
    auth = make_auth(net, store, clock=clock)
    first = await sign_in(auth, net)
    assert not auth.needs_refresh(RS)
    net.sent.clear()
    assert await auth.refresh(RS, net) is True  # not expired: nothing to do
    assert net.sent == []
    clock.now += 45  # within the 30 s leeway of expiry
    assert auth.needs_refresh(RS)
    assert await auth.refresh(RS, net) is True
    (sent,) = net.sent
    assert (sent.method, sent.url) == ("POST", f"{AS}/token")
    assert "Authorization" not in sent.headers
    assert sent.form == {
        "grant_type": "refresh_token",
        "refresh_token": first.refresh_token,
        "resource": RS,
        "client_id": first.client_id,
    }
    fresh = auth.tokens(RS)
    assert fresh is not None and fresh.access_token != first.access_token
    assert fresh.expires_at == clock.now + 60 and fresh.scope == "mcp:read"
    assert json.loads(store._data[TOKENS_KEY])["access_token"] == fresh.access_token
    assert not auth.needs_refresh(RS)


async def test_a_refused_refresh_drops_the_tokens() -> None:
    net = FakeNetwork(lifetime=10, refuse_refresh=True)
    clock = Clock()
    store = MemoryTokenStore()
    auth = make_auth(net, store, clock=clock)
    await sign_in(auth, net)
    clock.now += 100
    assert await auth.refresh(RS, net) is False
    assert auth.tokens(RS) is None and TOKENS_KEY not in store._data


async def test_a_refresh_that_gets_no_response_drops_the_tokens() -> None:
    net = FakeNetwork(lifetime=10)
    clock = Clock()
    auth = make_auth(net, clock=clock)
    await sign_in(auth, net)
    clock.now += 100
    net.fail["/token"] = NetworkError("reset")
    assert await auth.refresh(RS, net) is False
    assert auth.tokens(RS) is None


async def test_refresh_without_a_known_registration_drops_the_tokens() -> None:
    net = FakeNetwork(lifetime=10)
    clock = Clock()
    store = MemoryTokenStore()
    auth = make_auth(net, store, clock=clock)
    await sign_in(auth, net)
    store.delete(CLIENT_KEY)
    clock.now += 100
    net.sent.clear()
    assert await auth.refresh(RS, net) is False
    assert net.sent == [] and auth.tokens(RS) is None


# --- sign-out --------------------------------------------------------------------------------------------


async def test_sign_out_revokes_and_clears() -> None:
    net = FakeNetwork()
    store = MemoryTokenStore()
    auth = make_auth(net, store)
    tokens = await sign_in(auth, net)
    await auth.sign_out(RS, net)
    assert net.revoked == [
        {"token": tokens.refresh_token or "", "token_type_hint": "refresh_token", "client_id": tokens.client_id}
    ]
    assert auth.tokens(RS) is None and auth.authorization(RS) is None
    assert TOKENS_KEY not in store._data
    assert make_auth(net, store).tokens(RS) is None  # gone from the store too


async def test_sign_out_without_http_only_forgets() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    await sign_in(auth, net)
    net.sent.clear()
    await auth.sign_out(RS)
    assert net.sent == [] and auth.tokens(RS) is None
    await auth.sign_out(RS, net)  # nothing held: nothing to revoke
    assert net.sent == []


async def test_a_failed_revocation_still_signs_out() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    await sign_in(auth, net)
    net.fail["/revoke"] = NetworkError("unreachable")
    await auth.sign_out(RS, net)
    assert auth.tokens(RS) is None


async def test_sign_out_without_a_revocation_endpoint_sends_nothing() -> None:
    net = FakeNetwork()
    del net.asm["revocation_endpoint"]
    auth = make_auth(net)
    await sign_in(auth, net)
    net.sent.clear()
    await auth.sign_out(RS, net)
    assert net.sent == [] and auth.tokens(RS) is None


# --- the full-page redirect: complete(callback_url) ----------------------------------------------------------


async def _leave_the_page(net: FakeNetwork) -> tuple[MemoryTokenStore, str]:
    """Sign in until the page navigates away; return the store as the next page load finds it, and the callback."""
    store = MemoryTokenStore()
    left: dict[str, Any] = {}

    async def navigate(prompt: OpenAuthorization) -> str:
        left["store"] = dict(store._data)
        left["callback"] = await net.sign_in(prompt)
        raise AuthorizationCancelledError("the page unloaded")

    with pytest.raises(AuthorizationCancelledError):
        await make_auth(net, store, redirect_handler=navigate).handle(RS, 401, CHALLENGE, None, net, 1)
    after = MemoryTokenStore()
    after._data = left["store"]
    return after, left["callback"]


async def test_complete_finishes_a_sign_in_after_a_page_load() -> None:
    net = FakeNetwork()
    store, callback = await _leave_the_page(net)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    assert f"{PREFIX}pending:{state}" in store._data
    auth = make_auth(net, store, redirect_handler=None)
    assert auth.pending_server(callback) == RS
    net.sent.clear()
    tokens = await auth.complete(callback, net)
    assert net.purposes() == ["token"]
    assert tokens == auth.tokens(RS) and tokens.access_token in net.access
    assert tokens.scope == "mcp:read" and tokens.resource == RS
    assert f"{PREFIX}pending:{state}" not in store._data  # used once
    assert auth.pending_server(callback) is None
    with pytest.raises(AuthorizationResponseError, match="no sign-in is waiting"):
        await auth.complete(callback, net)  # a replayed callback


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("state=", "state=x"),
        lambda url: url.split("?")[0] + "?code=c",
        lambda url: url.split("?")[0],
    ],
)
async def test_complete_refuses_an_unknown_state(tamper: Callable[[str], str]) -> None:
    net = FakeNetwork()
    store, callback = await _leave_the_page(net)
    auth = make_auth(net, store)
    net.sent.clear()
    with pytest.raises(AuthorizationResponseError, match="stale or forged"):
        await auth.complete(tamper(callback), net)
    assert net.sent == [] and auth.tokens(RS) is None


async def test_complete_still_checks_iss() -> None:
    net = FakeNetwork()
    store, callback = await _leave_the_page(net)
    auth = make_auth(net, store)
    with pytest.raises(AuthorizationError, match="RFC 9207"):
        await auth.complete(callback.replace("iss=", "iss=x"), net)
    assert auth.tokens(RS) is None


async def test_complete_with_a_damaged_pending_entry_is_refused() -> None:
    net = FakeNetwork()
    store, callback = await _leave_the_page(net)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    for damaged in ('"a string"', "[1, 2]", "{broken", '{"state": 1}'):
        store.set(f"{PREFIX}pending:{state}", damaged)
        auth = make_auth(net, store)
        assert auth.pending_server(callback) is None
        with pytest.raises(AuthorizationResponseError):
            await auth.complete(callback, net)


# --- the headless handler ----------------------------------------------------------------------------------


async def test_headless_redirect_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyodide_transport.cpython as cpython

    prompt = await _a_prompt()
    followed: list[str] = []

    async def follow(url: str) -> str:
        followed.append(url)
        return f"{REDIRECT}?code=c&state=s"

    monkeypatch.setattr(cpython, "follow_redirect", follow)
    assert await headless_redirect_handler(prompt) == f"{REDIRECT}?code=c&state=s"
    assert followed == [prompt.url]

    async def no_redirect(url: str) -> str:
        return ""

    monkeypatch.setattr(cpython, "follow_redirect", no_redirect)
    with pytest.raises(AuthorizationCancelledError, match="did not redirect back"):
        await headless_redirect_handler(prompt)


async def _a_prompt() -> OpenAuthorization:
    net = FakeNetwork()
    captured: list[OpenAuthorization] = []

    async def capture(prompt: OpenAuthorization) -> str:
        captured.append(prompt)
        raise AuthorizationCancelledError("enough")

    with pytest.raises(AuthorizationCancelledError):
        await make_auth(net, redirect_handler=capture).handle(RS, 401, CHALLENGE, None, net, 1)
    return captured[0]


# --- through FetchTransport ------------------------------------------------------------------------------------


def mcp_server(net: FakeNetwork, needs: Callable[[dict[str, Any]], str] = lambda msg: "mcp:read") -> None:
    """An MCP endpoint that answers 401 without a valid token, 403 insufficient_scope without the scope."""

    def handle(sent: Sent) -> FakeResponse:
        message = json.loads(sent.body or b"{}")
        header = sent.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        wanted = needs(message)
        if token is None or token not in net.access:
            return respond(401, {"error": "unauthorized"}, {"www-authenticate": CHALLENGE})
        if not set(wanted.split()) <= set(net.access[token].split()):
            challenge = f'Bearer error="insufficient_scope", scope="{wanted}", resource_metadata="{PRM_URL}"'
            return respond(403, {"error": "forbidden"}, {"www-authenticate": challenge})
        return respond(200, {"jsonrpc": "2.0", "id": message["id"], "result": {"ok": True}})

    net.mcp = handle


def mcp_requests(net: FakeNetwork) -> list[Sent]:
    return [s for s in net.sent if s.url.split("?")[0] == RS]


async def test_fetch_transport_signs_in_on_401_and_resends_with_the_bearer_header() -> None:
    net = FakeNetwork()
    mcp_server(net)
    auth = make_auth(net)
    transport = FetchTransport(RS, fetch=net, auth=auth, open_get_stream=False)
    await transport.send(make_request(1, "ping"))
    reply = await transport.receive()
    assert reply.model_dump()["result"] == {"ok": True}
    first, second = mcp_requests(net)
    assert "Authorization" not in first.headers
    tokens = auth.tokens(RS)
    assert tokens is not None
    assert second.headers["Authorization"] == f"Bearer {tokens.access_token}"
    assert net.purposes() == ["POST /mcp", "prm", "asm", "register", "token", "POST /mcp"]
    # the token travels in the Authorization header only: never in a URL, never in an MCP body
    for sent in net.sent:
        assert tokens.access_token not in sent.url
    for sent in mcp_requests(net):
        assert tokens.access_token.encode() not in (sent.body or b"")
    await transport.send(make_request(2, "ping"))  # the next request carries it at once
    await transport.receive()
    assert mcp_requests(net)[-1].headers["Authorization"] == tokens.authorization
    assert len(mcp_requests(net)) == 3 and len(net.prompts) == 1
    await transport.close()


async def test_fetch_transport_steps_up_with_the_union_of_scopes() -> None:
    net = FakeNetwork()
    mcp_server(net, lambda msg: "mcp:read mcp:write" if msg.get("method") == "tools/call" else "mcp:read")
    auth = make_auth(net)
    transport = FetchTransport(RS, fetch=net, auth=auth, open_get_stream=False)
    await transport.send(make_request(1, "ping"))
    await transport.receive()
    await transport.send(make_request(2, "tools/call", {"name": "write", "arguments": {}}))
    reply = await transport.receive()
    assert reply.model_dump()["id"] == 2
    assert [p.reason for p in net.prompts] == ["sign-in", "step-up"]
    assert net.prompts[1].scope == "mcp:read mcp:write"
    tokens = auth.tokens(RS)
    assert tokens is not None and tokens.scope == "mcp:read mcp:write"
    await transport.close()


async def test_fetch_transport_gives_up_after_max_authorizations() -> None:
    net = FakeNetwork()
    scopes = (f"s{n}" for n in itertools.count())
    mcp_server(net, lambda msg: next(scopes))  # always a scope it does not hold yet
    auth = make_auth(net, max_authorizations=2)
    transport = FetchTransport(RS, fetch=net, auth=auth, open_get_stream=False)
    with pytest.raises(InsufficientScopeError, match="still refuses after 2 sign-ins \\(insufficient_scope\\)"):
        await transport.send(make_request(1, "ping"))
    assert len(net.prompts) == 2
    assert len(mcp_requests(net)) == 3
    await transport.close()


async def test_fetch_transport_refreshes_an_expired_token_before_sending() -> None:
    net = FakeNetwork(lifetime=60)
    mcp_server(net)
    clock = Clock()
    auth = make_auth(net, clock=clock)
    transport = FetchTransport(RS, fetch=net, auth=auth, open_get_stream=False)
    await transport.send(make_request(1, "ping"))
    await transport.receive()
    old = auth.tokens(RS)
    clock.now += 3600
    net.sent.clear()
    await transport.send(make_request(2, "ping"))
    await transport.receive()
    assert net.purposes() == ["token", "POST /mcp"]  # refreshed first: no refused request
    new = auth.tokens(RS)
    assert old is not None and new is not None and new.access_token != old.access_token
    assert mcp_requests(net)[0].headers["Authorization"] == new.authorization
    assert len(net.prompts) == 1
    await transport.close()


async def test_fetch_transport_without_auth_raises_authorization_required() -> None:
    net = FakeNetwork()
    mcp_server(net)
    transport = FetchTransport(RS, fetch=net, open_get_stream=False)
    with pytest.raises(AuthorizationRequiredError) as caught:
        await transport.send(make_request(1, "ping"))
    assert caught.value.status == 401 and caught.value.www_authenticate == CHALLENGE
    await transport.close()


async def test_concurrent_sends_sign_in_once() -> None:
    net = FakeNetwork(gate=asyncio.Event())
    mcp_server(net)
    auth = make_auth(net)
    transport = FetchTransport(RS, fetch=net, auth=auth, open_get_stream=False)
    sends = [asyncio.ensure_future(transport.send(make_request(n, "ping"))) for n in range(1, 5)]
    await until(lambda: len(net.prompts) == 1)
    for _ in range(50):
        await asyncio.sleep(0)
    assert net.gate is not None
    net.gate.set()
    await asyncio.gather(*sends)
    ids = sorted([(await transport.receive()).model_dump()["id"] for _ in range(4)])
    assert ids == [1, 2, 3, 4]
    assert len(net.prompts) == 1 and net.purposes().count("token") == 1
    await transport.close()


async def test_concurrent_step_ups_on_the_same_server_step_up_once() -> None:
    net = FakeNetwork()
    auth = make_auth(net)
    tokens = await sign_in(auth, net)  # holds mcp:read
    net.gate = asyncio.Event()
    challenge = 'Bearer error="insufficient_scope", scope="mcp:read mcp:write"'
    steps = [asyncio.ensure_future(auth.handle(RS, 403, challenge, tokens.authorization, net, 1)) for _ in range(2)]
    await until(lambda: len(net.prompts) == 2)
    net.gate.set()
    await asyncio.gather(*steps)  # the second must return, so that its request retries with the new token
    assert [p.reason for p in net.prompts] == ["sign-in", "step-up"]
