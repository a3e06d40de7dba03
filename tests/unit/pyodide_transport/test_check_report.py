"""The check's report formats (pyodide_transport.check_report): text, JSON and JUnit XML from the same checks."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from pyodide_transport.check_report import EXIT_BLOCKING, EXIT_OK, EXIT_USAGE, Check, render

URL = "http://127.0.0.1:8000/mcp"
CHECKS = [
    Check("CORS preflight for POST", "pass", "allowed"),
    Check("Mcp-Session-Id exposed", "fail", "add it to Access-Control-Expose-Headers"),
    Check("GET stream", "warn", "405: no server-initiated messages"),
    Check("FetchTransport end to end", "skip", "needs a sign-in"),
    Check("protocol versions", "info", "2026-07-28, 2025-11-25"),
]


def test_exit_codes_are_distinct() -> None:
    assert (EXIT_OK, EXIT_BLOCKING, EXIT_USAGE) == (0, 1, 2)


def test_text() -> None:
    text = render(URL, CHECKS)
    assert text.startswith(f"Browser compatibility of {URL}")
    assert "  [FAIL] Mcp-Session-Id exposed: add it to Access-Control-Expose-Headers" in text
    assert "  [SKIP] FetchTransport end to end: needs a sign-in" in text
    assert text.endswith("1 blocking problem(s).")
    assert render(URL, CHECKS[:1]).endswith("A browser client can fully use this server.")


def test_json_keeps_the_shape_of_the_json_flag() -> None:
    assert json.loads(render(URL, CHECKS, "json")) == [
        {"name": c.name, "status": c.status, "detail": c.detail} for c in CHECKS
    ]


def test_junit() -> None:
    root = ElementTree.fromstring(render(URL, CHECKS, "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [c.name for c in CHECKS]
    failure = cases["Mcp-Session-Id exposed"].find("failure")
    assert failure is not None and failure.text == "add it to Access-Control-Expose-Headers"
    assert cases["FetchTransport end to end"].find("skipped") is not None
    out = cases["GET stream"].find("system-out")
    assert out is not None and out.text == "WARN: 405: no server-initiated messages"
    assert cases["CORS preflight for POST"].find("failure") is None


def test_junit_escapes_what_a_server_sent() -> None:
    hostile = [Check('<script>"&', "fail", "]]></failure><x>")]
    root = ElementTree.fromstring(render(URL, hostile, "junit"))  # still well-formed XML
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == '<script>"&'
    failure = case.find("failure")
    assert failure is not None and failure.text == "]]></failure><x>"
