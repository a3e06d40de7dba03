"""MCP Apps helpers (pyodide_transport.apps): the extension capability and the CSP built from ``_meta.ui.csp``."""

from __future__ import annotations

from typing import Any

import pytest

from pyodide_transport.apps import DEFAULT_CSP, build_csp, ui_extension_capability, validate_csp
from pyodide_transport.errors import RemoteProtocolError


def test_the_extension_capability() -> None:
    assert ui_extension_capability() == {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_the_restrictive_default() -> None:
    assert build_csp(None) == DEFAULT_CSP
    got = directives(DEFAULT_CSP)
    assert got["default-src"] == ["'none'"] and got["connect-src"] == ["'none'"]
    assert got["script-src"] == ["'self'", "'unsafe-inline'"] and got["img-src"] == ["'self'", "data:"]
    assert got["frame-src"] == ["'none'"] and got["object-src"] == ["'none'"] and got["base-uri"] == ["'self'"]


def test_the_construction_from_metadata() -> None:
    csp = validate_csp(
        {
            "connectDomains": ["https://api.example.test", "wss://live.example.test:8443"],
            "resourceDomains": ["https://*.cdn.example.test"],
            "frameDomains": ["https://player.example.test/"],
            "baseUriDomains": ["https://base.example.test"],
            "futureKey": ["ignored"],
        }
    )
    got = directives(build_csp(csp))
    assert got["connect-src"] == ["'self'", "https://api.example.test", "wss://live.example.test:8443"]
    for name in ("script-src", "style-src", "img-src", "font-src", "media-src"):
        assert got[name][-1] == "https://*.cdn.example.test", name
    assert got["frame-src"] == ["https://player.example.test"], "trailing slash dropped"
    assert got["base-uri"] == ["https://base.example.test"] and got["object-src"] == ["'none'"]
    assert got["default-src"] == ["'none'"]
    empty = directives(build_csp(validate_csp({"connectDomains": []})))
    assert empty["connect-src"] == ["'self'"] and empty["frame-src"] == ["'none'"] and empty["base-uri"] == ["'self'"]


@pytest.mark.parametrize(
    "csp",
    [
        {"connectDomains": {"a": 1}},
        {"connectDomains": ["x; script-src *"]},
        {"connectDomains": ["*"]},
        {"connectDomains": ["https:"]},
        {"resourceDomains": ["ftp://files.example.test"]},
        {"resourceDomains": ["https://cdn.example.test/path"]},
        {"resourceDomains": ["'unsafe-eval'"]},
        {"frameDomains": ["https://a.example.test:99999"]},
        {"baseUriDomains": [7]},
        {"connectDomains": ["https://a.example.test"] * 33},
        ["https://a.example.test"],
    ],
)
def test_bad_csp_is_refused(csp: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        validate_csp(csp)
