"""The sans-I/O OAuth core, driven by hand: responses fed in, actions drained, no network, no clock, no randomness."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from pyodide_transport.errors import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationResponseError,
    ChallengeNotExposedError,
    CORSError,
    DiscoveryCORSError,
    DiscoveryError,
    IssuerMismatchError,
    LocalProtocolError,
    MetadataError,
    NetworkError,
    RegistrationError,
    ResourceMismatchError,
    TokenError,
)
from pyodide_transport.oauth_core import (
    FLOW_TRANSITIONS,
    FORM,
    Action,
    AuthorizationFlow,
    Authorized,
    Challenge,
    ClientRegistration,
    ClientSettings,
    HTTPAction,
    OpenAuthorization,
    PendingAuthorization,
    ResourceMetadata,
    ServerMetadata,
    Tokens,
    authorization_server_urls,
    bearer_challenge,
    canonical_resource,
    parse_www_authenticate,
    pkce_challenge,
    protected_resource_urls,
    refresh_action,
    registration_of,
    revocation_action,
    token_response,
)

RS = "https://rs.test/mcp"
AS = "https://as.test"
PRM_URL = "https://rs.test/.well-known/oauth-protected-resource/mcp"
PRM_ROOT = "https://rs.test/.well-known/oauth-protected-resource"
HEADER_PRM = "https://rs.test/custom/prm.json"
ASM_URL = "https://as.test/.well-known/oauth-authorization-server"
OIDC_URL = "https://as.test/.well-known/openid-configuration"
REDIRECT = "http://127.0.0.1:9/callback"
NOW = 1_000.0

Responses = dict[str, tuple[int, Any]]


# --- helpers ---------------------------------------------------------------------------------------


def prm(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"resource": RS, "authorization_servers": [AS]}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def asm(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": AS,
        "authorization_endpoint": f"{AS}/authorize",
        "token_endpoint": f"{AS}/token",
        "registration_endpoint": f"{AS}/register",
        "revocation_endpoint": f"{AS}/revoke",
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
    }
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def token_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1"}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def fake_random() -> Callable[[int], bytes]:
    """Deterministic, but a different value on every call (verifier and state must differ)."""
    counter = itertools.count()
    return lambda n: hashlib.sha256(str(next(counter)).encode()).digest()[:n]


def settings(**over: Any) -> ClientSettings:
    return ClientSettings(**{"redirect_uri": REDIRECT, **over})


def new_flow(
    client: ClientSettings | None = None,
    *,
    challenge: str | None = None,
    status: int = 401,
    previous: Tokens | None = None,
    registrations: Callable[[str], ClientRegistration | None] | None = None,
) -> AuthorizationFlow:
    return AuthorizationFlow(
        client or settings(),
        RS,
        challenge=bearer_challenge(challenge) if challenge is not None else None,
        status=status,
        previous=previous,
        registrations=registrations,
        now=NOW,
        random=fake_random(),
    )


def default_responses(**over: Any) -> Responses:
    responses: Responses = {
        PRM_URL: (200, prm()),
        ASM_URL: (200, asm()),
        f"{AS}/register": (201, {"client_id": "dyn-1", "token_endpoint_auth_method": "none"}),
        f"{AS}/token": (200, token_doc()),
    }
    for url, value in over.items():
        responses[url] = value
    return responses


def drive(flow: AuthorizationFlow, responses: Mapping[str, tuple[int, Any]], action: Action | None = None) -> Action:
    """Answer HTTP actions from ``responses`` (404 for any other URL) until the flow asks for more than HTTP."""
    current = flow.start() if action is None else action
    while isinstance(current, HTTPAction):
        status, body = responses.get(current.url, (404, b"not found"))
        current = flow.receive_response(status, {}, encode(body))
    return current


def drive_log(
    flow: AuthorizationFlow, responses: Mapping[str, tuple[int, Any]], action: Action | None = None
) -> tuple[Action, list[HTTPAction]]:
    """``drive``, also returning every HTTP action in order."""
    log: list[HTTPAction] = []
    current = flow.start() if action is None else action
    while isinstance(current, HTTPAction):
        log.append(current)
        status, body = responses.get(current.url, (404, b"not found"))
        current = flow.receive_response(status, {}, encode(body))
    return current, log


def to_authorization(flow: AuthorizationFlow, responses: Responses | None = None) -> OpenAuthorization:
    action = drive(flow, responses if responses is not None else default_responses())
    assert isinstance(action, OpenAuthorization)
    return action


def query(url: str) -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    assert len(pairs) == len(dict(pairs)), f"repeated parameters in {url}"
    return dict(pairs)


def form(action: HTTPAction) -> dict[str, str]:
    assert action.body is not None
    assert action.headers["Content-Type"] == FORM
    return {k: v[0] for k, v in parse_qs(action.body.decode(), keep_blank_values=True).items()}


def redirect(prompt: OpenAuthorization, base: str = REDIRECT, **params: str | None) -> str:
    values: dict[str, str | None] = {"code": "the-code", "state": prompt.pending.state, **params}
    return base + "?" + urlencode({k: v for k, v in values.items() if v is not None})


def tokens(**over: Any) -> Tokens:
    base = Tokens(
        access_token="old-at",
        token_type="Bearer",
        resource=RS,
        issuer=AS,
        token_endpoint=f"{AS}/token",
        client_id="dyn-1",
        expires_at=NOW - 10,
        refresh_token="old-rt",
        scope="mcp:read",
        revocation_endpoint=f"{AS}/revoke",
    )
    return replace(base, **over)


def stored(**over: Any) -> Callable[[str], ClientRegistration | None]:
    registration = ClientRegistration(AS, "dyn-1", None, "none", REDIRECT, "dynamic")
    registration = replace(registration, **over)
    return lambda issuer: registration if issuer == registration.issuer else None


def full_flow(flow: AuthorizationFlow, responses: Responses | None = None, **redirect_params: str) -> Authorized:
    answers = responses if responses is not None else default_responses()
    prompt = to_authorization(flow, answers)
    done = drive(flow, answers, flow.receive_redirect(redirect(prompt, **redirect_params)))
    assert isinstance(done, Authorized)
    return done


# --- WWW-Authenticate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Bearer realm="mcp"', [("Bearer", {"realm": "mcp"})]),
        ("Bearer realm=mcp", [("Bearer", {"realm": "mcp"})]),
        (
            'Bearer resource_metadata="https://rs.test/prm", scope="a b"',
            [("Bearer", {"resource_metadata": "https://rs.test/prm", "scope": "a b"})],
        ),
        ('Bearer error="invalid_token" , scope=x', [("Bearer", {"error": "invalid_token", "scope": "x"})]),
        ('Bearer realm = "spaced"', [("Bearer", {"realm": "spaced"})]),
        (
            'Bearer scope="a, b", error="insufficient_scope"',
            [("Bearer", {"scope": "a, b", "error": "insufficient_scope"})],
        ),
        (r'Bearer realm="say \"hi\", ok"', [("Bearer", {"realm": 'say "hi", ok'})]),
        (r'Bearer realm="back\\slash"', [("Bearer", {"realm": "back\\slash"})]),
        ('Bearer SCOPE="x", Error=invalid_token', [("Bearer", {"scope": "x", "error": "invalid_token"})]),
        ('Bearer scope="first", scope="second"', [("Bearer", {"scope": "first"})]),
        ('Bearer scope=""', [("Bearer", {"scope": ""})]),
        (
            'Basic realm="legacy", Bearer scope="mcp"',
            [("Basic", {"realm": "legacy"}), ("Bearer", {"scope": "mcp"})],
        ),
        (
            'Basic realm="a", charset="UTF-8", Bearer realm="b", DPoP algs="ES256"',
            [("Basic", {"realm": "a", "charset": "UTF-8"}), ("Bearer", {"realm": "b"}), ("DPoP", {"algs": "ES256"})],
        ),
        ("Negotiate YIIB9wYGKwYBBQUCoIIB6zCC==, Bearer scope=x", [("Negotiate", {}), ("Bearer", {"scope": "x"})]),
        ("Negotiate abc123", [("Negotiate", {})]),
        ("Bearer", [("Bearer", {})]),
        ("Bearer, scope=x", [("Bearer", {"scope": "x"})]),
        ('Bearer scope="unterminated', [("Bearer", {"scope": "unterminated"})]),
        ("", []),
        (",,, ,", []),
        ('=== "', []),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    parsed = parse_www_authenticate(header)
    assert [(c.scheme, dict(c.params)) for c in parsed] == expected


@pytest.mark.parametrize(
    "header",
    ['Bearer scope="a', "Bearer scope=a b", "\x00\x01 Bearer", '"""', "Bearer =x", 'Bearer realm="a\\', "=,=,=", "é ü"],
)
def test_garbage_challenges_are_skipped_never_raised(header: str) -> None:
    for challenge in parse_www_authenticate(header):
        assert isinstance(challenge, Challenge)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in challenge.params.items())


def test_a_param_value_with_unquoted_whitespace_is_dropped_not_misread() -> None:
    (challenge,) = parse_www_authenticate("Bearer scope=a b")
    assert challenge.scope is None


@pytest.mark.parametrize(
    ("header", "scope"),
    [
        ('Basic realm="x", Bearer scope="wanted"', "wanted"),
        ('bEaReR scope="wanted"', "wanted"),
        ('Bearer scope="wanted", Basic realm="x", Bearer scope="second"', "wanted"),
    ],
)
def test_bearer_challenge_picks_the_first_bearer_case_insensitively(header: str, scope: str) -> None:
    challenge = bearer_challenge(header)
    assert challenge is not None and challenge.scope == scope


@pytest.mark.parametrize("header", [None, "", 'Basic realm="x"', "Negotiate abc==", "garbage"])
def test_bearer_challenge_absent(header: str | None) -> None:
    assert bearer_challenge(header) is None


def test_challenge_properties_treat_empty_values_as_absent() -> None:
    challenge = Challenge("Bearer", {"resource_metadata": "", "scope": "", "error": ""})
    assert (challenge.resource_metadata, challenge.scope, challenge.error) == (None, None, None)
    full = bearer_challenge('Bearer error="insufficient_scope", scope="a b", resource_metadata="https://rs.test/m"')
    assert full is not None
    assert (full.error, full.scope, full.resource_metadata) == ("insufficient_scope", "a b", "https://rs.test/m")


# --- discovery URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "header", "expected"),
    [
        (RS, None, [PRM_URL, PRM_ROOT]),
        (RS, HEADER_PRM, [HEADER_PRM, PRM_URL, PRM_ROOT]),
        ("https://rs.test/a/b/mcp/", None, [PRM_ROOT + "/a/b/mcp", PRM_ROOT]),
        ("https://rs.test/mcp?tenant=1#frag", None, [PRM_URL, PRM_ROOT]),
        ("https://rs.test", None, [PRM_ROOT]),
        ("https://rs.test/", None, [PRM_ROOT]),
        (
            "http://127.0.0.1:8080/mcp",
            None,
            [
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource",
            ],
        ),
        (RS, PRM_URL, [PRM_URL, PRM_ROOT]),  # the header names a well-known URL: asked once
    ],
)
def test_protected_resource_urls_in_spec_order(server: str, header: str | None, expected: list[str]) -> None:
    challenge = Challenge("Bearer", {"resource_metadata": header}) if header else None
    assert protected_resource_urls(server, challenge) == expected


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        (AS, [ASM_URL, OIDC_URL]),
        (AS + "/", [ASM_URL, OIDC_URL]),
        (
            "https://as.test/tenant/1",
            [
                "https://as.test/.well-known/oauth-authorization-server/tenant/1",
                "https://as.test/.well-known/openid-configuration/tenant/1",
                "https://as.test/tenant/1/.well-known/openid-configuration",
            ],
        ),
        (
            "https://as.test/tenant/",
            [
                "https://as.test/.well-known/oauth-authorization-server/tenant",
                "https://as.test/.well-known/openid-configuration/tenant",
                "https://as.test/tenant/.well-known/openid-configuration",
            ],
        ),
        (
            "http://localhost:3000",
            [
                "http://localhost:3000/.well-known/oauth-authorization-server",
                "http://localhost:3000/.well-known/openid-configuration",
            ],
        ),
    ],
)
def test_authorization_server_urls_in_spec_order(issuer: str, expected: list[str]) -> None:
    assert authorization_server_urls(issuer) == expected


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://RS.Test/MCP", "https://rs.test/MCP"),
        ("https://rs.test/mcp?x=1#f", "https://rs.test/mcp"),
        ("https://rs.test:8443/mcp", "https://rs.test:8443/mcp"),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp"),
        ("https://rs.test", "https://rs.test"),
    ],
)
def test_canonical_resource(url: str, canonical: str) -> None:
    assert canonical_resource(url) == canonical


def test_discovery_walks_every_candidate_in_order() -> None:
    flow = new_flow(challenge=f'Bearer resource_metadata="{HEADER_PRM}"')
    issuer = "https://as.test/tenant"
    meta = asm(issuer=issuer)
    responses = default_responses(
        **{
            PRM_URL: (404, b""),
            ASM_URL: (404, b""),
            PRM_ROOT: (200, prm(authorization_servers=[issuer, "https://other-as.test"])),
            f"{issuer}/.well-known/openid-configuration": (200, meta),
        }
    )
    action, log = drive_log(flow, responses)
    assert [(a.method, a.url) for a in log] == [
        ("GET", HEADER_PRM),
        ("GET", PRM_URL),
        ("GET", PRM_ROOT),
        ("GET", "https://as.test/.well-known/oauth-authorization-server/tenant"),
        ("GET", "https://as.test/.well-known/openid-configuration/tenant"),
        ("GET", f"{issuer}/.well-known/openid-configuration"),
        ("POST", f"{AS}/register"),
    ]
    assert all(a.headers["Accept"] == "application/json" and a.body is None for a in log[:6])
    assert [a.purpose for a in log[:4]] == ["resource metadata"] * 3 + ["authorization server metadata"]
    assert isinstance(action, OpenAuthorization)
    assert flow.server_metadata is not None and flow.server_metadata.issuer == issuer
    assert flow.attempts[:3] == [(HEADER_PRM, "HTTP 404"), (PRM_URL, "HTTP 404"), (PRM_ROOT, "found")]


def test_the_header_url_is_used_first_and_the_well_known_ones_not_at_all() -> None:
    flow = new_flow(challenge=f'Bearer resource_metadata="{HEADER_PRM}"')
    _, log = drive_log(flow, default_responses(**{HEADER_PRM: (200, prm())}))
    assert [a.url for a in log[:2]] == [HEADER_PRM, ASM_URL]


def test_openid_configuration_is_the_fallback_for_a_root_issuer() -> None:
    flow = new_flow()
    _, log = drive_log(flow, default_responses(**{ASM_URL: (404, b""), OIDC_URL: (200, asm())}))
    assert [a.url for a in log[:3]] == [PRM_URL, ASM_URL, OIDC_URL]
    assert flow.server_metadata is not None and flow.server_metadata.url == OIDC_URL


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b"<html>not json</html>", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b"\xff\xfe", "not a JSON object"),
        (b"null", "not a JSON object"),
    ],
)
def test_a_candidate_that_is_not_a_json_object_is_skipped(body: bytes, outcome: str) -> None:
    flow = new_flow()
    _, log = drive_log(flow, default_responses(**{PRM_URL: (200, body), PRM_ROOT: (200, prm())}))
    assert [a.url for a in log[:3]] == [PRM_URL, PRM_ROOT, ASM_URL]
    assert flow.attempts[0] == (PRM_URL, outcome)


def test_a_network_error_on_a_candidate_moves_on() -> None:
    flow = new_flow()
    first = flow.start()
    assert isinstance(first, HTTPAction) and first.url == PRM_URL
    second = flow.receive_network_error(NetworkError("connection reset"))
    assert isinstance(second, HTTPAction) and second.url == PRM_ROOT
    assert flow.attempts == [(PRM_URL, "no response (connection reset)")]


def test_no_resource_metadata_anywhere_names_every_url_tried() -> None:
    flow = new_flow(challenge='Bearer scope="x"')
    with pytest.raises(DiscoveryError, match="RFC 9728") as caught:
        drive(flow, {})
    assert not isinstance(caught.value, ChallengeNotExposedError | DiscoveryCORSError)
    assert caught.value.attempts == ((PRM_URL, "HTTP 404"), (PRM_ROOT, "HTTP 404"))
    assert PRM_URL in str(caught.value) and PRM_ROOT in str(caught.value)
    assert flow.state == "failed"


def test_no_challenge_and_no_metadata_says_the_header_was_not_exposed() -> None:
    flow = new_flow(challenge=None)
    with pytest.raises(ChallengeNotExposedError, match="Access-Control-Expose-Headers"):
        drive(flow, {})


def test_every_candidate_blocked_by_cors_is_a_cors_error() -> None:
    flow = new_flow()
    action = flow.start()
    with pytest.raises(DiscoveryCORSError, match="Access-Control-Allow-Origin") as caught:
        while isinstance(action, HTTPAction):
            action = flow.receive_network_error(CORSError(action.url))
    assert [outcome for _, outcome in caught.value.attempts] == ["blocked (CORS)", "blocked (CORS)"]


def test_authorization_server_metadata_missing_everywhere() -> None:
    flow = new_flow()
    with pytest.raises(
        DiscoveryError, match=re.escape("no metadata for the authorization server https://as.test")
    ) as caught:
        drive(flow, {PRM_URL: (200, prm())})
    assert [url for url, _ in caught.value.attempts] == [PRM_URL, ASM_URL, OIDC_URL]
    assert flow.state == "failed"


def test_authorization_server_metadata_blocked_by_cors() -> None:
    flow = new_flow()
    action = flow.start()
    assert isinstance(action, HTTPAction)
    action = flow.receive_response(200, {}, encode(prm()))
    with pytest.raises(DiscoveryCORSError, match="CORS"):
        while isinstance(action, HTTPAction):
            action = flow.receive_network_error(CORSError(action.url))


# --- malformed metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (prm(resource=None), "has no 'resource'"),
        (prm(resource=""), "has no 'resource'"),
        (prm(resource=42), "has no 'resource'"),
        (prm(authorization_servers=None), "lists no 'authorization_servers'"),
        (prm(authorization_servers=[]), "lists no 'authorization_servers'"),
        (prm(authorization_servers=AS), "lists no 'authorization_servers'"),
        (prm(authorization_servers=[1, None]), "lists no 'authorization_servers'"),
    ],
)
def test_malformed_resource_metadata_is_refused(doc: dict[str, Any], message: str) -> None:
    flow = new_flow()
    with pytest.raises(MetadataError, match=message):
        drive(flow, {PRM_URL: (200, doc)})
    assert flow.state == "failed"


@pytest.mark.parametrize(
    "resource",
    [
        "https://other.test/mcp",
        "https://rs.test:8443/mcp",
        "http://rs.test/mcp",
        "https://rs.test/mc",
        "https://rs.test/mcp/deeper",
        "https://rs.test/other",
        "https://rs.test.evil.test/mcp",
    ],
)
def test_resource_mismatch_is_refused(resource: str) -> None:
    flow = new_flow()
    with pytest.raises(ResourceMismatchError, match="RFC 9728") as caught:
        drive(flow, {PRM_URL: (200, prm(resource=resource))})
    assert resource in str(caught.value) and RS in str(caught.value)
    assert flow.state == "failed"


@pytest.mark.parametrize(
    "resource",
    [RS, RS + "/", "https://rs.test", "https://rs.test/", "HTTPS://RS.TEST/mcp", "https://rs.test:443/mcp", RS + "#x"],
)
def test_resource_may_be_the_server_or_a_parent_on_its_origin(resource: str) -> None:
    meta = ResourceMetadata.parse(PRM_URL, prm(resource=resource), RS)
    assert meta.resource == resource
    prompt = to_authorization(new_flow(), default_responses(**{PRM_URL: (200, prm(resource=resource))}))
    assert query(prompt.url)["resource"] == resource  # RFC 8707: as the metadata names it


def test_resource_metadata_scopes_supported() -> None:
    assert ResourceMetadata.parse(PRM_URL, prm(scopes_supported=["a", 3, "b"]), RS).scopes_supported == ("a", "b")
    assert ResourceMetadata.parse(PRM_URL, prm(scopes_supported="a b"), RS).scopes_supported is None
    assert ResourceMetadata.parse(PRM_URL, prm(), RS).scopes_supported is None


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        (asm(issuer="https://evil.test"), IssuerMismatchError, "names issuer 'https://evil.test'"),
        (asm(issuer=AS + "/"), IssuerMismatchError, "RFC 8414"),
        (asm(issuer=None), IssuerMismatchError, "names issuer None"),
        (asm(issuer="HTTPS://AS.TEST"), IssuerMismatchError, "must publish its own issuer"),
        (asm(code_challenge_methods_supported=None), MetadataError, "S256.*absent"),
        (asm(code_challenge_methods_supported=[]), MetadataError, "S256"),
        (asm(code_challenge_methods_supported=["plain"]), MetadataError, r"S256.*\['plain'\]"),
        (asm(code_challenge_methods_supported="S256"), MetadataError, "S256"),
        (asm(code_challenge_methods_supported=["s256"]), MetadataError, "S256"),
        (asm(authorization_endpoint=None), MetadataError, "authorization_endpoint is missing"),
        (asm(token_endpoint=None), MetadataError, "token_endpoint is missing"),
        (asm(token_endpoint=123), MetadataError, "token_endpoint is missing or not a string"),
        (asm(authorization_endpoint=["https://as.test/a"]), MetadataError, "authorization_endpoint"),
        (asm(authorization_endpoint="/authorize"), MetadataError, "not an absolute http"),
        (asm(authorization_endpoint="javascript:alert(1)"), MetadataError, "not an absolute http"),
        (asm(token_endpoint="ftp://as.test/token"), MetadataError, "not an absolute http"),
        (asm(token_endpoint="https://as.test/token#frag"), MetadataError, "fragment"),
        (asm(authorization_endpoint="http://as.test/authorize"), MetadataError, "plain http"),
        (asm(token_endpoint="http://10.0.0.1/token"), MetadataError, "plain http"),
        (asm(registration_endpoint="http://as.test/register"), MetadataError, "registration_endpoint.*plain http"),
        (asm(revocation_endpoint="http://as.test/revoke"), MetadataError, "revocation_endpoint.*plain http"),
        (asm(registration_endpoint=7), MetadataError, "registration_endpoint is missing or not a string"),
    ],
)
def test_malformed_server_metadata_is_refused(doc: dict[str, Any], error: type[Exception], message: str) -> None:
    flow = new_flow()
    with pytest.raises(error, match=message):
        drive(flow, {PRM_URL: (200, prm()), ASM_URL: (200, doc)})
    assert flow.state == "failed"


@pytest.mark.parametrize(
    "endpoint",
    ["http://localhost:3000/token", "http://127.0.0.1/token", "http://[::1]:9/token", "http://auth.localhost/token"],
)
def test_plain_http_endpoints_are_allowed_on_loopback(endpoint: str) -> None:
    meta = ServerMetadata.parse(ASM_URL, asm(token_endpoint=endpoint), AS)
    assert meta.token_endpoint == endpoint


@pytest.mark.parametrize("issuer", ["http://as.test", "http://10.1.2.3"])
def test_a_plain_http_issuer_off_loopback_is_refused_before_fetching_its_metadata(issuer: str) -> None:
    flow = new_flow()
    action = flow.start()
    with pytest.raises(MetadataError, match="plain http"):
        flow.receive_response(200, {}, encode(prm(authorization_servers=[issuer])))
    assert isinstance(action, HTTPAction)
    assert flow.state == "failed"


def test_server_metadata_defaults() -> None:
    doc = asm(
        token_endpoint_auth_methods_supported=None,
        registration_endpoint=None,
        revocation_endpoint=None,
        scopes_supported=["a", None, "b"],
    )
    meta = ServerMetadata.parse(ASM_URL, doc, AS)
    assert meta.token_endpoint_auth_methods == ("client_secret_basic",)  # RFC 8414 §2
    assert (meta.registration_endpoint, meta.revocation_endpoint) == (None, None)
    assert meta.scopes_supported == ("a", "b")
    assert meta.client_id_metadata_document_supported is False
    assert meta.iss_parameter_supported is False
    truthy = ServerMetadata.parse(
        ASM_URL,
        asm(client_id_metadata_document_supported="true", authorization_response_iss_parameter_supported=1),
        AS,
    )
    assert truthy.client_id_metadata_document_supported is False and truthy.iss_parameter_supported is False


# --- PKCE and the authorization request -------------------------------------------------------------


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorization_url_carries_pkce_state_resource_and_redirect() -> None:
    flow = new_flow(settings(client_id="pre-1"))
    prompt = to_authorization(flow)
    parts = urlsplit(prompt.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{AS}/authorize"
    params = query(prompt.url)
    pending = prompt.pending
    assert params == {
        "response_type": "code",
        "client_id": "pre-1",
        "redirect_uri": REDIRECT,
        "code_challenge": pkce_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
        "state": pending.state,
        "resource": RS,
    }
    assert 43 <= len(pending.code_verifier) <= 128  # RFC 7636 §4.1
    assert set(pending.code_verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert len(pending.state) >= 16 and pending.state != pending.code_verifier
    assert (pending.server_url, pending.resource, pending.redirect_uri) == (RS, RS, REDIRECT)
    assert pending.metadata_url == ASM_URL and pending.server_metadata["issuer"] == AS
    assert prompt.reason == "sign-in" and prompt.scope is None
    assert flow.state == "authorize"


def test_authorization_endpoint_query_is_kept() -> None:
    responses = default_responses(**{ASM_URL: (200, asm(authorization_endpoint=f"{AS}/authorize?tenant=t1"))})
    prompt = to_authorization(new_flow(settings(client_id="pre-1")), responses)
    assert query(prompt.url)["tenant"] == "t1"
    assert urlsplit(prompt.url).path == "/authorize"


def test_each_flow_draws_fresh_state_and_verifier() -> None:
    counter = itertools.count()

    def random(n: int) -> bytes:
        return hashlib.sha256(b"r" + str(next(counter)).encode()).digest()[:n]

    prompts = []
    for _ in range(2):
        flow = AuthorizationFlow(settings(client_id="c"), RS, challenge=None, now=NOW, random=random)
        prompts.append(to_authorization(flow))
    a, b = (p.pending for p in prompts)
    assert a.state != b.state and a.code_verifier != b.code_verifier


def test_the_token_request_after_the_redirect() -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    action = flow.receive_redirect(redirect(prompt))
    assert isinstance(action, HTTPAction)
    assert (action.method, action.url, action.purpose) == ("POST", f"{AS}/token", "token")
    assert action.headers["Accept"] == "application/json"
    assert "Authorization" not in action.headers
    assert form(action) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT,
        "code_verifier": prompt.pending.code_verifier,
        "resource": RS,
        "client_id": "dyn-1",
    }
    assert flow.state == "token"
    done = flow.receive_response(200, {}, encode(token_doc(scope="granted")))
    assert isinstance(done, Authorized)
    assert done.tokens == Tokens(
        access_token="at-1",
        token_type="Bearer",
        resource=RS,
        issuer=AS,
        token_endpoint=f"{AS}/token",
        client_id="dyn-1",
        expires_at=NOW + 3600,
        lifetime=3600,
        refresh_token="rt-1",
        scope="granted",
        revocation_endpoint=f"{AS}/revoke",
    )
    assert done.tokens.authorization == "Bearer at-1"
    assert done.registration == ClientRegistration(AS, "dyn-1", None, "none", REDIRECT, "dynamic")
    assert flow.state == "done"


def test_every_state_change_is_a_declared_transition() -> None:
    flow = new_flow()
    seen = [flow.state]
    action = flow.start()
    responses = default_responses()
    while not isinstance(action, Authorized):
        if isinstance(action, OpenAuthorization):
            action = flow.receive_redirect(redirect(action))
        else:
            status, body = responses[action.url]
            action = flow.receive_response(status, {}, encode(body))
        if flow.state != seen[-1]:
            seen.append(flow.state)
    assert seen == ["resource_metadata", "server_metadata", "register", "authorize", "token", "done"]
    assert all(pair in FLOW_TRANSITIONS for pair in itertools.pairwise(seen))


# --- hostile redirects --------------------------------------------------------------------------------


def _wrong_state(p: OpenAuthorization) -> str:
    return redirect(p, state="forged")


def _no_state(p: OpenAuthorization) -> str:
    return redirect(p, state=None)


def _no_code(p: OpenAuthorization) -> str:
    return redirect(p, code=None)


def _empty_code(p: OpenAuthorization) -> str:
    return redirect(p, code="")


def _foreign_host(p: OpenAuthorization) -> str:
    return redirect(p, base="https://evil.test/callback")


def _other_port(p: OpenAuthorization) -> str:
    return redirect(p, base="http://127.0.0.1:10/callback")


def _other_path(p: OpenAuthorization) -> str:
    return redirect(p, base="http://127.0.0.1:9/callback/../admin")


def _other_scheme(p: OpenAuthorization) -> str:
    return redirect(p, base="https://127.0.0.1:9/callback")


def _userinfo(p: OpenAuthorization) -> str:
    return redirect(p, base="http://127.0.0.1:9@evil.test/callback")


def _prefix_path(p: OpenAuthorization) -> str:
    return redirect(p, base="http://127.0.0.1:9/callbackx")


def _duplicate(name: str) -> Callable[[OpenAuthorization], str]:
    def build(p: OpenAuthorization) -> str:
        value = {"code": "the-code", "state": p.pending.state, "iss": AS, "error": "access_denied"}[name]
        once = urlencode({name: value})
        return redirect(p) + (f"&{once}" if name in ("code", "state") else f"&{once}&{once}")

    return build


def _code_in_fragment(p: OpenAuthorization) -> str:
    return f"{REDIRECT}?state={p.pending.state}#code=the-code"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_wrong_state, "state does not match"),
        (_no_state, "state does not match"),
        (_no_code, "neither a code nor an error"),
        (_empty_code, "neither a code nor an error"),
        (_code_in_fragment, "neither a code nor an error"),
        (_foreign_host, "not to this client's redirect URI"),
        (_other_port, "not to this client's redirect URI"),
        (_other_path, "not to this client's redirect URI"),
        (_other_scheme, "not to this client's redirect URI"),
        (_userinfo, "not to this client's redirect URI"),
        (_prefix_path, "not to this client's redirect URI"),
        (_duplicate("code"), "repeats a parameter"),
        (_duplicate("state"), "repeats a parameter"),
        (_duplicate("iss"), "repeats a parameter"),
        (_duplicate("error"), "repeats a parameter"),
    ],
)
def test_hostile_redirects_are_refused(build: Callable[[OpenAuthorization], str], message: str) -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    with pytest.raises(AuthorizationResponseError, match=message):
        flow.receive_redirect(build(prompt))
    assert flow.state == "failed"
    with pytest.raises(LocalProtocolError):
        flow.receive_redirect(redirect(prompt))  # no second chance with the same flow


def test_the_redirect_uri_comparison_ignores_scheme_and_host_case() -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    action = flow.receive_redirect(redirect(prompt, base="HTTP://127.0.0.1:9/callback"))
    assert isinstance(action, HTTPAction) and form(action)["code"] == "the-code"


def test_a_foreign_redirect_error_message_does_not_echo_its_query() -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    with pytest.raises(AuthorizationResponseError) as caught:
        flow.receive_redirect(redirect(prompt, base="https://evil.test/cb"))
    assert "https://evil.test/cb" in str(caught.value)
    assert "the-code" not in str(caught.value) and prompt.pending.state not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "description", "message"),
    [
        ("access_denied", "", "the sign-in was refused"),
        ("access_denied", "user clicked no", "the sign-in was refused: user clicked no"),
        ("server_error", "try later", "the authorization server said 'server_error': try later"),
        ("invalid_scope", "", "the authorization server said 'invalid_scope'"),
    ],
)
def test_an_error_redirect_is_a_denial(error: str, description: str, message: str) -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    with pytest.raises(AuthorizationDeniedError) as caught:
        flow.receive_redirect(redirect(prompt, code=None, error=error, error_description=description or None))
    assert (caught.value.error, caught.value.description) == (error, description)
    assert str(caught.value) == message
    assert flow.state == "failed"


def test_a_forged_error_with_the_wrong_state_is_not_believed() -> None:
    flow = new_flow()
    prompt = to_authorization(flow)
    with pytest.raises(AuthorizationResponseError, match="state"):
        flow.receive_redirect(redirect(prompt, code=None, error="access_denied", state="forged"))


def _iss_flow(advertised: bool) -> tuple[AuthorizationFlow, OpenAuthorization]:
    doc = asm(authorization_response_iss_parameter_supported=True) if advertised else asm()
    flow = new_flow()
    return flow, to_authorization(flow, default_responses(**{ASM_URL: (200, doc)}))


@pytest.mark.parametrize(
    ("advertised", "iss", "outcome"),
    [
        (True, AS, None),
        (False, None, None),
        (False, AS, None),  # sent though not advertised: still checked, and right
        (True, None, "advertises authorization_response_iss_parameter_supported"),
        (True, "https://evil.test", "mix-up"),
        (False, "https://evil.test", "mix-up"),
        (True, AS + "/", "mix-up"),  # compared exactly (RFC 9207 §2.4)
        (True, "", "mix-up"),
    ],
)
def test_iss_in_the_authorization_response(advertised: bool, iss: str | None, outcome: str | None) -> None:
    flow, prompt = _iss_flow(advertised)
    url = redirect(prompt) + ("" if iss is None else "&" + urlencode({"iss": iss}))
    if outcome is None:
        action = flow.receive_redirect(url)
        assert isinstance(action, HTTPAction) and action.url == f"{AS}/token"
    else:
        with pytest.raises(IssuerMismatchError, match=outcome):
            flow.receive_redirect(url)
        assert flow.state == "failed"


def test_an_error_redirect_from_an_iss_server_without_iss_is_an_issuer_error() -> None:
    flow, prompt = _iss_flow(True)
    with pytest.raises(IssuerMismatchError):
        flow.receive_redirect(redirect(prompt, code=None, error="access_denied"))
    flow, prompt = _iss_flow(True)
    with pytest.raises(AuthorizationDeniedError):
        flow.receive_redirect(redirect(prompt, code=None, error="access_denied", iss=AS))


# --- registration --------------------------------------------------------------------------------------


def test_pre_registered_wins_over_metadata_document_and_dynamic_registration() -> None:
    client = settings(client_id="pre-1", client_metadata_url="https://app.test/client.json")
    responses = default_responses(**{ASM_URL: (200, asm(client_id_metadata_document_supported=True))})
    flow = new_flow(client)
    action, log = drive_log(flow, responses)
    assert isinstance(action, OpenAuthorization)
    assert [a.url for a in log] == [PRM_URL, ASM_URL]  # no registration request
    assert query(action.url)["client_id"] == "pre-1"
    assert flow.registration == ClientRegistration(AS, "pre-1", None, "none", REDIRECT, "pre-registered")


def test_stored_registration_wins_over_pre_registration() -> None:
    looked_up: list[str] = []
    registration = ClientRegistration(AS, "stored-1", "sec", "client_secret_post", REDIRECT, "dynamic")

    def lookup(issuer: str) -> ClientRegistration | None:
        looked_up.append(issuer)
        return registration

    flow = new_flow(settings(client_id="pre-1"), registrations=lookup)
    done = full_flow(flow)
    assert looked_up == [AS]
    assert done.registration is registration
    assert done.tokens.client_id == "stored-1"


def test_client_id_metadata_document_when_the_server_supports_it() -> None:
    url = "https://app.test/oauth/client.json"
    responses = default_responses(**{ASM_URL: (200, asm(client_id_metadata_document_supported=True))})
    flow = new_flow(settings(client_metadata_url=url))
    action, log = drive_log(flow, responses)
    assert isinstance(action, OpenAuthorization)
    assert [a.method for a in log] == ["GET", "GET"]
    assert query(action.url)["client_id"] == url
    assert flow.registration == ClientRegistration(AS, url, None, "none", REDIRECT, "metadata document")
    token = flow.receive_redirect(redirect(action))
    assert isinstance(token, HTTPAction) and form(token)["client_id"] == url and "Authorization" not in token.headers


def test_a_metadata_document_url_is_not_used_where_unsupported() -> None:
    flow = new_flow(settings(client_metadata_url="https://app.test/client.json"))
    _, log = drive_log(flow, default_responses())
    assert log[-1].url == f"{AS}/register"
    assert flow.registration is not None and flow.registration.client_id == "dyn-1"


@pytest.mark.parametrize("application_type", ["web", "native"])
def test_dynamic_registration_request(application_type: str) -> None:
    client = settings(client_name="My Client", application_type=application_type)
    responses = default_responses(**{PRM_URL: (200, prm(scopes_supported=["mcp:read"]))})
    flow = new_flow(client)
    _, log = drive_log(flow, responses)
    register = log[-1]
    assert (register.method, register.url, register.purpose) == ("POST", f"{AS}/register", "client registration")
    assert register.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert register.body is not None
    assert json.loads(register.body) == {
        "client_name": "My Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": application_type,
        "scope": "mcp:read",
    }


@pytest.mark.parametrize(
    ("offered", "method"),
    [
        (["none", "client_secret_basic"], "none"),
        (["client_secret_post"], "client_secret_post"),
        (["client_secret_post", "client_secret_basic"], "client_secret_basic"),
        (None, "client_secret_basic"),
    ],
)
def test_dynamic_registration_asks_for_the_best_method_offered(offered: list[str] | None, method: str) -> None:
    doc = asm(token_endpoint_auth_methods_supported=offered)
    flow = new_flow()
    _, log = drive_log(flow, default_responses(**{ASM_URL: (200, doc)}))
    assert log[-1].body is not None and json.loads(log[-1].body)["token_endpoint_auth_method"] == method


def test_dynamic_registration_without_scope_sends_none() -> None:
    flow = new_flow()
    _, log = drive_log(flow, default_responses())
    assert log[-1].body is not None and "scope" not in json.loads(log[-1].body)


@pytest.mark.parametrize(
    ("answer", "registration"),
    [
        ({"client_id": "c1"}, ClientRegistration(AS, "c1", None, "none", REDIRECT, "dynamic")),
        (
            {"client_id": "c1", "client_secret": "s1", "token_endpoint_auth_method": "client_secret_post"},
            ClientRegistration(AS, "c1", "s1", "client_secret_post", REDIRECT, "dynamic"),
        ),
        (
            {"client_id": "c1", "client_secret": "s1"},
            ClientRegistration(AS, "c1", "s1", "client_secret_basic", REDIRECT),
        ),
        ({"client_id": "c1", "client_secret": ""}, ClientRegistration(AS, "c1", None, "none", REDIRECT)),
    ],
)
def test_dynamic_registration_answer(answer: dict[str, Any], registration: ClientRegistration) -> None:
    flow = new_flow()
    to_authorization(flow, default_responses(**{f"{AS}/register": (201, answer)}))
    assert flow.registration == registration


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            {"error": "invalid_redirect_uri", "error_description": "no loopback"},
            "HTTP 400, 'invalid_redirect_uri'.*no loopback",
        ),
        (200, {"client_secret": "x"}, "no client_id in the answer"),
        (201, {"client_id": ""}, "no client_id"),
        (201, {"client_id": 5}, "no client_id"),
        (500, b"<html>oops</html>", "HTTP 500.*oops"),
        (201, b"not json", "HTTP 201"),
        (403, {}, "HTTP 403"),
    ],
)
def test_dynamic_registration_failure(status: int, body: Any, message: str) -> None:
    flow = new_flow()
    with pytest.raises(RegistrationError, match=message):
        drive(flow, default_responses(**{f"{AS}/register": (status, body)}))
    assert flow.state == "failed"


def test_no_usable_registration_names_what_must_change() -> None:
    flow = new_flow()
    with pytest.raises(RegistrationError) as caught:
        drive(flow, default_responses(**{ASM_URL: (200, asm(registration_endpoint=None))}))
    message = str(caught.value)
    assert "no way to register with https://as.test" in message
    assert "no registration_endpoint" in message  # what the server would have to offer
    assert "pass client_id=" in message  # or what the client can do instead
    assert flow.state == "failed"


def test_no_usable_registration_points_to_the_metadata_document_it_supports() -> None:
    doc = asm(registration_endpoint=None, client_id_metadata_document_supported=True)
    with pytest.raises(RegistrationError, match="Client ID Metadata Document: pass client_metadata_url="):
        drive(new_flow(), default_responses(**{ASM_URL: (200, doc)}))


# --- token endpoint authentication --------------------------------------------------------------------


def _token_action(client: ClientSettings, doc: dict[str, Any] | None = None) -> HTTPAction:
    flow = new_flow(client)
    prompt = to_authorization(flow, default_responses(**{ASM_URL: (200, doc or asm())}))
    action = flow.receive_redirect(redirect(prompt))
    assert isinstance(action, HTTPAction)
    return action


def test_token_endpoint_auth_none() -> None:
    action = _token_action(settings(client_id="pub-1"))
    assert "Authorization" not in action.headers
    body = form(action)
    assert body["client_id"] == "pub-1" and "client_secret" not in body


def test_token_endpoint_auth_post() -> None:
    doc = asm(token_endpoint_auth_methods_supported=["client_secret_post"])
    action = _token_action(settings(client_id="conf-1", client_secret="s3cret"), doc)
    assert "Authorization" not in action.headers
    body = form(action)
    assert (body["client_id"], body["client_secret"]) == ("conf-1", "s3cret")


def test_token_endpoint_auth_basic_form_encodes_then_base64s() -> None:
    doc = asm(token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"])
    action = _token_action(settings(client_id="my client:1", client_secret="s:e/c r%t"), doc)
    scheme, _, encoded = action.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "my%20client%3A1:s%3Ae%2Fc%20r%25t"  # RFC 6749 §2.3.1
    body = form(action)
    assert "client_id" not in body and "client_secret" not in body
    assert body["grant_type"] == "authorization_code"


@pytest.mark.parametrize(
    ("offered", "explicit", "method"),
    [
        (None, None, "client_secret_basic"),  # absent: basic (RFC 8414 §2)
        (["client_secret_basic", "client_secret_post"], None, "client_secret_basic"),
        (["client_secret_post"], None, "client_secret_post"),
        (["none"], None, "client_secret_post"),
        (["client_secret_basic"], "client_secret_post", "client_secret_post"),
    ],
)
def test_pre_registered_confidential_client_method(
    offered: list[str] | None, explicit: str | None, method: str
) -> None:
    client = settings(client_id="c", client_secret="s", token_endpoint_auth_method=explicit)
    flow = new_flow(client)
    to_authorization(flow, default_responses(**{ASM_URL: (200, asm(token_endpoint_auth_methods_supported=offered))}))
    assert flow.registration is not None and flow.registration.auth_method == method


def test_the_method_dynamic_registration_returned_is_used() -> None:
    answer = {"client_id": "dyn-2", "client_secret": "dsec", "token_endpoint_auth_method": "client_secret_basic"}
    flow = new_flow()
    prompt = to_authorization(flow, default_responses(**{f"{AS}/register": (201, answer)}))
    action = flow.receive_redirect(redirect(prompt))
    assert isinstance(action, HTTPAction)
    assert base64.b64decode(action.headers["Authorization"].split(" ")[1]) == b"dyn-2:dsec"


# --- scope --------------------------------------------------------------------------------------------


def _scope_of(
    *,
    challenge: str | None = None,
    prm_scopes: list[str] | None = None,
    as_scopes: list[str] | None = None,
    previous: Tokens | None = None,
    status: int = 401,
    **client: Any,
) -> tuple[str | None, OpenAuthorization]:
    responses = default_responses(
        **{PRM_URL: (200, prm(scopes_supported=prm_scopes)), ASM_URL: (200, asm(scopes_supported=as_scopes))}
    )
    flow = new_flow(settings(client_id="c", **client), challenge=challenge, status=status, previous=previous)
    prompt = to_authorization(flow, responses)
    assert prompt.scope == prompt.pending.scope == flow.scope
    return query(prompt.url).get("scope"), prompt


@pytest.mark.parametrize(
    ("kwargs", "scope"),
    [
        ({"challenge": 'Bearer scope="mcp:tools mcp:read"', "prm_scopes": ["other"]}, "mcp:tools mcp:read"),
        ({"challenge": 'Bearer error="invalid_token"', "prm_scopes": ["a", "b"]}, "a b"),
        ({"prm_scopes": ["a", "b"]}, "a b"),
        ({"challenge": 'Bearer scope=""', "prm_scopes": ["a"]}, "a"),
        ({}, None),
        ({"prm_scopes": []}, None),
        ({"challenge": 'Bearer realm="x"'}, None),
        ({"challenge": 'Bearer scope="a  b  a"'}, "a b"),
        ({"challenge": 'Bearer scope="a"', "scope": "exact"}, "exact"),
        ({"challenge": 'Bearer scope="a"', "scope": ""}, None),
    ],
)
def test_scope_selection(kwargs: dict[str, Any], scope: str | None) -> None:
    assert _scope_of(**kwargs)[0] == scope


def test_scope_omitted_when_undefined_leaves_no_scope_anywhere() -> None:
    flow = new_flow()
    _, log = drive_log(flow, default_responses())
    assert log[-1].body is not None and "scope" not in json.loads(log[-1].body)
    prompt = to_authorization(new_flow())
    assert "scope" not in query(prompt.url)


@pytest.mark.parametrize(
    ("kwargs", "scope"),
    [
        ({"prm_scopes": ["a"], "as_scopes": ["a", "offline_access"]}, "a offline_access"),
        ({"challenge": 'Bearer scope="a"', "as_scopes": ["offline_access"]}, "a offline_access"),
        ({"prm_scopes": ["a"], "as_scopes": ["a"]}, "a"),
        ({"prm_scopes": ["a"], "as_scopes": None}, "a"),
        ({"prm_scopes": ["a"], "as_scopes": ["offline_access"], "offline_access": False}, "a"),
        ({"prm_scopes": ["a", "offline_access"], "as_scopes": ["offline_access"]}, "a offline_access"),
        ({"as_scopes": ["offline_access"]}, None),  # nothing asked for: nothing added
        ({"prm_scopes": ["offline_access"], "as_scopes": []}, "offline_access"),  # the resource asked for it
    ],
)
def test_offline_access_only_where_the_authorization_server_lists_it(kwargs: dict[str, Any], scope: str | None) -> None:
    assert _scope_of(**kwargs)[0] == scope


def test_step_up_asks_for_the_union_with_what_was_granted() -> None:
    previous = tokens(scope="mcp:read mcp:list", refresh_token=None, expires_at=None)
    scope, prompt = _scope_of(
        challenge='Bearer error="insufficient_scope", scope="mcp:write mcp:read"', previous=previous, status=403
    )
    assert scope == "mcp:read mcp:list mcp:write"
    assert prompt.reason == "step-up"


def test_step_up_never_refreshes_even_with_a_refresh_token() -> None:
    previous = tokens(scope="a")
    flow = new_flow(
        settings(client_id="c"), challenge='Bearer error="insufficient_scope", scope="b"', status=403, previous=previous
    )
    action, log = drive_log(flow, default_responses())
    assert isinstance(action, OpenAuthorization) and action.reason == "step-up"
    assert [a.method for a in log] == ["GET", "GET"]
    assert query(action.url)["scope"] == "a b"


def test_the_granted_scope_is_the_servers_else_the_requested_one() -> None:
    done = full_flow(new_flow(settings(client_id="c"), challenge='Bearer scope="a b"'))
    assert done.tokens.scope == "a b"
    responses = default_responses(**{f"{AS}/token": (200, token_doc(scope="a"))})
    done = full_flow(new_flow(settings(client_id="c"), challenge='Bearer scope="a b"'), responses)
    assert done.tokens.scope == "a"


# --- refresh ---------------------------------------------------------------------------------------------


def test_a_401_with_a_refresh_token_refreshes() -> None:
    flow = new_flow(previous=tokens(), registrations=stored(), challenge='Bearer error="invalid_token"')
    action, log = drive_log(flow, default_responses(**{f"{AS}/token": (200, token_doc(access_token="new-at"))}))
    refresh = log[-1]
    assert (refresh.method, refresh.url, refresh.purpose) == ("POST", f"{AS}/token", "token refresh")
    assert form(refresh) == {
        "grant_type": "refresh_token",
        "refresh_token": "old-rt",
        "resource": RS,
        "client_id": "dyn-1",
    }
    assert isinstance(action, Authorized)
    assert action.tokens.access_token == "new-at" and action.tokens.refresh_token == "rt-1"  # rotated
    assert action.tokens.expires_at == NOW + 3600
    assert action.tokens.scope == "mcp:read"  # the server did not say: what was held
    assert flow.state == "done"


def test_a_refresh_that_does_not_rotate_keeps_the_refresh_token() -> None:
    flow = new_flow(previous=tokens(), registrations=stored())
    action = drive(flow, default_responses(**{f"{AS}/token": (200, token_doc(refresh_token=None))}))
    assert isinstance(action, Authorized) and action.tokens.refresh_token == "old-rt"


def test_refresh_uses_the_token_endpoint_just_discovered() -> None:
    previous = tokens(token_endpoint="https://as.test/old-token")
    flow = new_flow(previous=previous, registrations=stored())
    _, log = drive_log(flow, default_responses())
    assert log[-1].url == f"{AS}/token"


def test_refresh_with_a_pre_registered_confidential_client() -> None:
    client = settings(client_id="conf", client_secret="sec")
    flow = new_flow(client, previous=tokens(client_id="conf"))
    _, log = drive_log(flow, default_responses())
    assert log[-1].purpose == "token refresh"
    assert base64.b64decode(log[-1].headers["Authorization"].split(" ")[1]) == b"conf:sec"


@pytest.mark.parametrize("error", ["invalid_grant", "unauthorized_client", ""])
def test_a_refused_refresh_falls_back_to_a_new_authorization(error: str) -> None:
    flow = new_flow(previous=tokens(), registrations=stored())
    answer: Any = {"error": error} if error else b"gateway timeout"
    action, log = drive_log(flow, default_responses(**{f"{AS}/token": (400 if error else 504, answer)}))
    assert isinstance(action, OpenAuthorization)
    assert action.reason == "expired"
    assert query(action.url)["client_id"] == "dyn-1"  # the same registration
    assert [a.purpose for a in log][-1] == "token refresh"
    assert flow.state == "authorize"
    done = drive(flow, default_responses(), flow.receive_redirect(redirect(action)))
    assert isinstance(done, Authorized) and done.tokens.access_token == "at-1"


def test_a_refresh_refused_as_invalid_client_registers_again() -> None:
    flow = new_flow(previous=tokens(), registrations=stored())
    responses = default_responses(**{f"{AS}/token": (401, {"error": "invalid_client"})})
    responses[f"{AS}/register"] = (201, {"client_id": "dyn-2"})
    action, log = drive_log(flow, responses)
    assert [a.purpose for a in log][-2:] == ["token refresh", "client registration"]
    assert isinstance(action, OpenAuthorization) and query(action.url)["client_id"] == "dyn-2"


@pytest.mark.parametrize(
    "previous",
    [
        tokens(refresh_token=None),
        tokens(issuer="https://other-as.test"),  # credentials never cross authorization servers
        tokens(client_id="someone-else"),  # no registration known for it
    ],
)
def test_no_refresh_without_a_usable_refresh_token(previous: Tokens) -> None:
    flow = new_flow(previous=previous, registrations=stored())
    action, log = drive_log(flow, default_responses())
    assert "token refresh" not in [a.purpose for a in log]
    assert isinstance(action, OpenAuthorization) and action.reason == "expired"


def test_a_network_error_on_the_refresh_fails_the_flow() -> None:
    flow = new_flow(previous=tokens(), registrations=stored())
    action = flow.start()
    while isinstance(action, HTTPAction) and action.purpose != "token refresh":
        action = flow.receive_response(200, {}, encode(default_responses()[action.url][1]))
    with pytest.raises(AuthorizationError, match=re.escape("token refresh request to https://as.test/token failed")):
        flow.receive_network_error(NetworkError("reset"))
    assert flow.state == "failed"


def test_refresh_action_and_registration_of() -> None:
    registration = ClientRegistration(AS, "dyn-1", "s", "client_secret_post", REDIRECT)
    action = refresh_action(tokens(), registration)
    assert form(action) == {
        "grant_type": "refresh_token",
        "refresh_token": "old-rt",
        "resource": RS,
        "client_id": "dyn-1",
        "client_secret": "s",
    }
    with pytest.raises(LocalProtocolError, match="no refresh token"):
        refresh_action(tokens(refresh_token=None), registration)
    client = settings(client_id="pre", client_metadata_url="https://app.test/c.json")
    assert registration_of(tokens(client_id="dyn-1"), client, registration) is registration
    assert registration_of(tokens(client_id="dyn-1", issuer="https://x.test"), client, registration) is None
    pre = registration_of(tokens(client_id="pre"), client, None)
    assert pre == ClientRegistration(AS, "pre", None, "none", REDIRECT, "pre-registered")
    cimd = registration_of(tokens(client_id="https://app.test/c.json"), client, None)
    assert cimd == ClientRegistration(AS, "https://app.test/c.json", None, "none", REDIRECT, "metadata document")
    assert registration_of(tokens(client_id="unknown"), client, None) is None


# --- token responses ------------------------------------------------------------------------------------


def _token_error(status: int, body: Any) -> TokenError:
    flow = new_flow(settings(client_id="c"))
    prompt = to_authorization(flow)
    flow.receive_redirect(redirect(prompt))
    with pytest.raises(TokenError) as caught:
        flow.receive_response(status, {}, encode(body))
    assert flow.state == "failed"
    return caught.value


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "code used"},
            "invalid_grant",
            "HTTP 400 'invalid_grant': code used",
        ),
        (401, {"error": "invalid_client"}, "invalid_client", "HTTP 401 'invalid_client'"),
        (400, {"error": 5, "error_description": ["x"]}, "", "HTTP 400"),
        (500, b"<h1>Internal</h1>", "", "HTTP 500: <h1>Internal</h1>"),
        (200, b"not json", "", "HTTP 200"),
        (200, b"[]", "", "HTTP 200"),
        (200, {"token_type": "Bearer"}, "", "no access_token"),
        (200, {"access_token": "", "token_type": "Bearer"}, "", "no access_token"),
        (200, {"access_token": 12, "token_type": "Bearer"}, "", "no access_token"),
        (200, {"access_token": "a"}, "", "token_type None is not Bearer"),
        (200, {"access_token": "a", "token_type": "DPoP"}, "", "token_type 'DPoP' is not Bearer"),
        (200, {"access_token": "a", "token_type": "mac"}, "", "not Bearer"),
        (201, token_doc(), "", "HTTP 201"),
    ],
)
def test_token_errors(status: int, body: Any, error: str, message: str) -> None:
    exc = _token_error(status, body)
    assert exc.status == status and exc.error == error
    assert message in str(exc)


def test_a_long_error_body_is_cut_in_the_message() -> None:
    exc = _token_error(502, b"x" * 5000)
    assert len(str(exc)) < 400


@pytest.mark.parametrize(
    ("doc", "expires_at", "token_type"),
    [
        (token_doc(expires_in=60), NOW + 60, "Bearer"),
        (token_doc(expires_in=1.5), NOW + 1.5, "Bearer"),
        (token_doc(expires_in=None), None, "Bearer"),
        (token_doc(expires_in="3600"), None, "Bearer"),
        (token_doc(expires_in=True), None, "Bearer"),
        (token_doc(token_type="bearer"), NOW + 3600, "Bearer"),
        (token_doc(token_type="BEARER"), NOW + 3600, "Bearer"),
    ],
)
def test_token_response_fields(doc: dict[str, Any], expires_at: float | None, token_type: str) -> None:
    result = token_response(200, encode(doc), now=NOW, base=tokens(expires_at=None), requested_scope="asked")
    assert (result.expires_at, result.token_type, result.scope) == (expires_at, token_type, "asked")


def test_tokens_expiry_leeway() -> None:
    assert not tokens(expires_at=None).expired(1e12)
    assert tokens(expires_at=100.0).expired(70.0)
    assert not tokens(expires_at=100.0).expired(69.9)
    assert not tokens(expires_at=100.0).expired(99.0, leeway=0)
    short = tokens(expires_at=100.0, lifetime=4.0)  # a 4 s token is refreshed in its last second, not at once
    assert not short.expired(98.9) and short.expired(99.0)
    doc = {"access_token": "at", "token_type": "Bearer", "expires_in": 4}
    assert token_response(200, encode(doc), now=NOW, base=short, requested_scope=None).lifetime == 4


def test_network_errors_after_discovery_fail_the_flow_with_the_request_named() -> None:
    flow = new_flow()
    action = flow.start()
    while isinstance(action, HTTPAction) and action.purpose != "client registration":
        action = flow.receive_response(200, {}, encode(default_responses()[action.url][1]))
    with pytest.raises(AuthorizationError, match="blocked by CORS") as caught:
        flow.receive_network_error(CORSError(f"{AS}/register"))
    assert "client registration request to https://as.test/register" in str(caught.value)
    assert not isinstance(caught.value, DiscoveryError)
    assert flow.state == "failed"


# --- revocation --------------------------------------------------------------------------------------------


def test_revocation_prefers_the_refresh_token() -> None:
    registration = ClientRegistration(AS, "c", "s", "client_secret_basic", REDIRECT)
    action = revocation_action(tokens(), registration)
    assert action is not None
    assert (action.method, action.url, action.purpose) == ("POST", f"{AS}/revoke", "token revocation")
    assert form(action) == {"token": "old-rt", "token_type_hint": "refresh_token"}
    assert action.headers["Authorization"].startswith("Basic ")
    access = revocation_action(tokens(refresh_token=None), ClientRegistration(AS, "c"))
    assert access is not None
    assert form(access) == {"token": "old-at", "token_type_hint": "access_token", "client_id": "c"}
    assert revocation_action(tokens(revocation_endpoint=None), registration) is None


# --- serialization ------------------------------------------------------------------------------------------


def _roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(json.dumps(data))
    return value


def test_pending_authorization_round_trips_through_json() -> None:
    prompt = to_authorization(new_flow(challenge='Bearer scope="a"'))
    pending = prompt.pending
    assert PendingAuthorization.from_json(_roundtrip(pending.to_json())) == pending


@pytest.mark.parametrize(
    "value",
    [
        tokens(),
        tokens(expires_at=None, refresh_token=None, scope=None, revocation_endpoint=None),
        tokens(expires_at=1234.5),
    ],
)
def test_tokens_round_trip_through_json(value: Tokens) -> None:
    assert Tokens.from_json(_roundtrip(value.to_json())) == value


@pytest.mark.parametrize("how", ["dynamic", "pre-registered", "metadata document", "stored"])
def test_client_registration_round_trips_through_json(how: Any) -> None:
    value = ClientRegistration(AS, "c", "s", "client_secret_post", REDIRECT, how)
    assert ClientRegistration.from_json(_roundtrip(value.to_json())) == value


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


_TOKENS = tokens().to_json()


@pytest.mark.parametrize(
    "data",
    [
        {},
        _without(_TOKENS, "access_token"),
        _without(_TOKENS, "issuer"),
        {**_TOKENS, "extra": 1},
        {**_TOKENS, "access_token": None},
        {**_TOKENS, "access_token": 5},
        {**_TOKENS, "access_token": ""},
        {**_TOKENS, "expires_at": "soon"},
        {**_TOKENS, "expires_at": True},
        {**_TOKENS, "refresh_token": ["x"]},
        {**_TOKENS, "scope": 3},
        {**_TOKENS, "resource": {}},
    ],
)
def test_corrupted_tokens_json_is_refused(data: dict[str, Any]) -> None:
    assert Tokens.from_json(data) is None


_REGISTRATION = ClientRegistration(AS, "c", "s", "client_secret_post", REDIRECT).to_json()


@pytest.mark.parametrize(
    "data",
    [
        {},
        _without(_REGISTRATION, "client_id"),
        _without(_REGISTRATION, "issuer"),
        {**_REGISTRATION, "client_id": None},
        {**_REGISTRATION, "client_id": ""},
        {**_REGISTRATION, "client_secret": 5},
        {**_REGISTRATION, "auth_method": None},
        {**_REGISTRATION, "how": "stolen"},
    ],
)
def test_corrupted_registration_json_is_refused(data: dict[str, Any]) -> None:
    assert ClientRegistration.from_json(data) is None


def _pending_json() -> dict[str, Any]:
    return to_authorization(new_flow()).pending.to_json()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {},
        lambda d: _without(d, "state"),
        lambda d: _without(d, "code_verifier"),
        lambda d: {**d, "extra": True},
        lambda d: {**d, "state": None},
        lambda d: {**d, "state": ""},
        lambda d: {**d, "code_verifier": 1},
        lambda d: {**d, "registration": "x"},
        lambda d: {**d, "server_metadata": []},
        lambda d: {**d, "scope": 1},
    ],
)
def test_corrupted_pending_json_is_refused(mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    assert PendingAuthorization.from_json(mutate(_pending_json())) is None


@pytest.mark.parametrize("data", [[], ["ab"], ["abc"], "abc", 5, None])
def test_from_json_of_something_that_is_not_an_object(data: Any) -> None:
    assert Tokens.from_json(data) is None
    assert ClientRegistration.from_json(data) is None
    assert PendingAuthorization.from_json(data) is None


# --- resuming after a full-page redirect --------------------------------------------------------------------


def test_resume_from_the_stored_pending_authorization() -> None:
    flow = new_flow(challenge='Bearer scope="a"')
    prompt = to_authorization(flow)
    pending = PendingAuthorization.from_json(_roundtrip(prompt.pending.to_json()))
    assert pending is not None
    resumed = AuthorizationFlow.resume(settings(), pending, now=NOW + 5, random=fake_random())
    assert resumed.state == "authorize"
    action = resumed.receive_redirect(redirect(prompt))
    assert isinstance(action, HTTPAction)
    assert form(action)["code_verifier"] == prompt.pending.code_verifier
    assert form(action)["resource"] == RS
    done = resumed.receive_response(200, {}, encode(token_doc(scope=None)))
    assert isinstance(done, Authorized)
    assert done.tokens.resource == RS and done.tokens.scope == "a" and done.tokens.expires_at == NOW + 5 + 3600
    assert done.registration.client_id == "dyn-1"


def test_a_resumed_flow_still_checks_state_and_iss() -> None:
    doc = asm(authorization_response_iss_parameter_supported=True)
    prompt = to_authorization(new_flow(), default_responses(**{ASM_URL: (200, doc)}))
    resumed = AuthorizationFlow.resume(settings(), prompt.pending, now=NOW, random=fake_random())
    with pytest.raises(AuthorizationResponseError, match="state"):
        resumed.receive_redirect(redirect(prompt, state="other", iss=AS))
    resumed = AuthorizationFlow.resume(settings(), prompt.pending, now=NOW, random=fake_random())
    with pytest.raises(IssuerMismatchError):
        resumed.receive_redirect(redirect(prompt))


def test_resume_refuses_a_damaged_pending_authorization() -> None:
    pending = to_authorization(new_flow()).pending
    with pytest.raises(AuthorizationResponseError, match="damaged"):
        AuthorizationFlow.resume(settings(), replace(pending, registration={"x": 1}), now=NOW, random=fake_random())
    with pytest.raises(MetadataError):
        broken = dict(pending.server_metadata, code_challenge_methods_supported=[])
        AuthorizationFlow.resume(settings(), replace(pending, server_metadata=broken), now=NOW, random=fake_random())


# --- misuse ---------------------------------------------------------------------------------------------------


def test_answers_the_flow_did_not_ask_for_are_refused() -> None:
    flow = new_flow()
    with pytest.raises(LocalProtocolError, match="not waiting for an HTTP answer"):
        flow.receive_response(200, {}, b"{}")
    first = flow.start()
    assert isinstance(first, HTTPAction)
    flow.receive_response(404, {}, b"")
    flow.receive_response(200, {}, encode(prm()))
    with pytest.raises(LocalProtocolError, match="no authorization is waiting"):
        flow.receive_redirect(REDIRECT + "?code=x&state=y")
    prompt = drive(flow, default_responses(**{PRM_ROOT: (200, prm())}), flow.receive_response(200, {}, encode(asm())))
    assert isinstance(prompt, OpenAuthorization)
    with pytest.raises(LocalProtocolError, match="state authorize"):
        flow.receive_response(200, {}, b"{}")
    with pytest.raises(LocalProtocolError):
        flow.receive_network_error(NetworkError("x"))
    done = drive(flow, default_responses(), flow.receive_redirect(redirect(prompt)))
    assert isinstance(done, Authorized)
    with pytest.raises(LocalProtocolError, match="state done"):
        flow.receive_response(200, {}, b"{}")
