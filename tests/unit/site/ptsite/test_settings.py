from __future__ import annotations

import pytest
from ptsite.settings import (
    TRANSPORTS,
    Settings,
    deep_link,
    describe_error,
    endpoint_url,
    expand_uri_template,
    parse_deep_link,
    template_variables,
)

from pyodide_transport.errors import (
    AuthorizationCancelledError,
    AuthorizationDeniedError,
    AuthorizationRequiredError,
    ConnectionClosedError,
    CORSError,
    HTTPStatusError,
    IssuerMismatchError,
    NetworkError,
    UnsupportedProtocolVersionError,
)


@pytest.mark.parametrize(
    ("server", "transport", "url"),
    [
        ("http://127.0.0.1:8000", "http-sse", "http://127.0.0.1:8000/mcp"),
        ("http://127.0.0.1:8000/", "http-json", "http://127.0.0.1:8000/mcp/json"),
        ("http://127.0.0.1:8000", "http-stateless", "http://127.0.0.1:8000/mcp/stateless"),
        ("http://127.0.0.1:8000", "websocket", "ws://127.0.0.1:8000/ws"),
        ("https://example.org", "websocket", "wss://example.org/ws"),
        ("ws://h:1/custom", "http-sse", "http://h:1/custom"),
        (" http://h:1/api/mcp?x=1 ", "http-sse", "http://h:1/api/mcp?x=1"),
    ],
)
def test_endpoint_urls(server: str, transport: str, url: str) -> None:
    assert endpoint_url(server, transport) == url


@pytest.mark.parametrize(
    ("server", "transport"), [("127.0.0.1:8000", "http-sse"), ("ftp://h", "http-sse"), ("http://h", "carrier-pigeon")]
)
def test_bad_endpoint_settings(server: str, transport: str) -> None:
    with pytest.raises(ValueError):
        endpoint_url(server, transport)


def test_deep_links() -> None:
    origin = "http://127.0.0.1:9000"
    assert parse_deep_link("", origin) == Settings(server=origin, autoconnect=True, implied=True)
    assert parse_deep_link("autoconnect=0", origin) == Settings(server=origin)
    assert parse_deep_link(f"server={origin}", origin) == Settings(server=origin)
    s = parse_deep_link(
        "?server=http%3A%2F%2Fh%3A1&transport=ws&autoconnect=1&header=Authorization:%20Bearer%20t", origin
    )
    assert s == Settings("http://h:1", "websocket", "Authorization", "Bearer t", True)
    assert parse_deep_link("transport=bogus&autoconnect=0", origin).transport == "http-sse"
    assert parse_deep_link(deep_link(s).lstrip("?"), origin) == Settings("http://h:1", "websocket", autoconnect=True)
    assert set(TRANSPORTS) == {"http-sse", "http-json", "http-stateless", "http-oauth", "websocket", "in-browser"}
    assert parse_deep_link("transport=worker", origin).transport == "in-browser"
    assert endpoint_url("http://h:1", "in-browser") == "worker:./server-worker.js"  # no server URL: a worker
    auto = parse_deep_link("server=http%3A%2F%2Fh%3A1%2Fmcp&gateway=auto", origin)
    assert auto.gateway_auto and not parse_deep_link("gateway=ask", origin).gateway_auto
    assert parse_deep_link(deep_link(auto).lstrip("?"), origin).gateway_auto


def test_error_descriptions_name_the_cause() -> None:
    assert "CORS" in describe_error(CORSError("http://h/mcp"))
    assert "check the URL" in describe_error(HTTPStatusError(404), "http://h/nope")
    unsupported = UnsupportedProtocolVersionError(-32022, "no", supported=("1999-01-01",))
    assert "1999-01-01" in describe_error(unsupported) and "protocol version" in describe_error(unsupported)
    assert "code 1006" in describe_error(ConnectionClosedError("gone", code=1006))
    assert "Is the server running" in describe_error(NetworkError("refused"))
    assert describe_error(ValueError("x")).startswith("Unexpected ValueError")


def test_sign_in_failures_are_described_before_their_http_status() -> None:
    refused = describe_error(AuthorizationDeniedError("access_denied", "the user said no"), "http://h/mcp")
    assert refused.startswith("Sign-in refused at http://h/mcp: consent was not given (the user said no)")
    assert "invalid_scope" in describe_error(AuthorizationDeniedError("invalid_scope"))
    assert describe_error(AuthorizationCancelledError("the window closed")).startswith("Sign-in cancelled")
    required = AuthorizationRequiredError(401, "sign in", www_authenticate="Bearer")
    assert describe_error(required).startswith("Sign-in required") and "Authorization header" not in describe_error(
        required
    )
    mismatch = describe_error(IssuerMismatchError("wrong issuer"))
    assert mismatch == "Sign-in failed (IssuerMismatchError): wrong issuer"


def test_uri_templates() -> None:
    assert template_variables("demo://greeting/{name}") == ["name"]
    assert template_variables("test://template/{id}/data{?q,page}{id}") == ["id", "q", "page"]
    assert (
        expand_uri_template("demo://greeting/{name}", {"name": "Ada Lovelace/x"})
        == "demo://greeting/Ada%20Lovelace%2Fx"
    )
    assert expand_uri_template("file://{+path}", {"path": "a/b c"}) == "file://a/b%20c"
    assert expand_uri_template("x{?q,page}", {"q": "1", "page": "2"}) == "x?q=1&page=2"
    assert expand_uri_template("x{/a,b}", {"a": "1"}) == "x/1"
    assert expand_uri_template("x{?q}", {}) == "x"
    assert expand_uri_template("unterminated{x", {"x": "1"}) == "unterminated{x"
