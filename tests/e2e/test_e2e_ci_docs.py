"""The "Test your server from a browser in CI" docs page: its workflow job, its live snippet, its accessibility.

The page is opened from the demo server like the other docs pages. Its GitHub Actions job must be complete
(checked as parsed YAML when PyYAML is installed, else line by line) and be the very job the README shows; its
one live snippet runs the transport half of ``pyodide-transport check`` inside Pyodide in the page, against
the demo server, and every check of it passes; axe-core finds no serious or critical issue before and after.
"""

from __future__ import annotations

import html
import importlib.util
import re
from typing import Any

import pytest
from e2e_support import BOOT, CALL, assert_axe_clean, screenshot, with_axe
from playwright.sync_api import Page, expect

from devtools import ROOT
from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e

PAGE = "testing-in-ci.html"
DOCS_PAGES = ["index.html", "getting-started.html", "transports.html", "custom-transports.html"]
"""The other pages with the site's nav: each links to this one."""

TRANSPORT_CHECKS = [
    "connect with FetchTransport",
    "tools listed",
    "SSE streaming",
    "GET stream",
    "DELETE ends the session",
]
"""What ``transport_checks`` reports against the demo server's ``/mcp``; all must pass."""

KEY_LINES = [
    "uses: actions/checkout@",
    "uses: actions/setup-python@",
    "uses: actions/setup-node@",
    "uses: actions/cache@",
    "uses: actions/upload-artifact@",
    'pip install "pyodide-transport[browser-testing]"',
    "python -m playwright install --with-deps chromium",
    "run: pyodide-transport runtime",
    "path: ~/.cache/pyodide-transport",
    "pyodide-transport check http://127.0.0.1:8000/mcp --format junit --output reports/browser-check.xml",
    "pytest tests/browser --mcp-url http://127.0.0.1:8000/mcp --junitxml reports/browser-tests.xml",
    "if: always()",
]
"""Lines the job must hold, whether or not it can be parsed here."""

ORDER = [
    "actions/checkout",
    "setup-python",
    "setup-node",
    "pip install",
    "actions/cache",
    "runtime",
    "server",
    "check",
    "pytest",
    "upload",
]
"""The steps in the order the job must run them (each found by what its ``uses`` or ``run`` holds)."""


def step_kind(step: dict[str, Any]) -> str:
    """Which of :data:`ORDER` a parsed workflow step is."""
    uses, run = str(step.get("uses", "")), str(step.get("run", ""))
    for kind, found in [
        ("actions/checkout", "actions/checkout@" in uses),
        ("setup-python", "actions/setup-python@" in uses),
        ("setup-node", "actions/setup-node@" in uses),
        ("actions/cache", "actions/cache@" in uses),
        ("upload", "actions/upload-artifact@" in uses),
        ("pip install", "pip install" in run),
        ("runtime", run.strip() == "pyodide-transport runtime"),
        ("check", "pyodide-transport check " in run),
        ("pytest", run.startswith("pytest ")),
        ("server", "&\n" in run and "until curl" in run),
    ]:
        if found:
            return kind
    return "other"


def check_parsed(text: str) -> None:
    """The job, parsed: every step there, in order, with what makes it work."""
    import yaml

    workflow = yaml.safe_load(text)
    assert workflow["name"] and workflow.get("on", workflow.get(True))  # PyYAML reads a bare `on` as True
    (job,) = workflow["jobs"].values()
    assert job["runs-on"]
    steps = job["steps"]
    kinds = [step_kind(s) for s in steps]
    assert [k for k in kinds if k != "other"] == ORDER, kinds
    by_kind = dict(zip(kinds, steps, strict=True))
    assert int(str(by_kind["setup-node"]["with"]["node-version"])) >= 20  # the first runtime fetch needs Node >= 20
    cache = by_kind["actions/cache"]["with"]
    assert cache["path"] == "~/.cache/pyodide-transport" and "steps.install.outputs.version" in cache["key"]
    assert by_kind["pip install"]["id"] == "install" and "GITHUB_OUTPUT" in by_kind["pip install"]["run"]
    server = by_kind["server"]["run"]
    assert "--host 127.0.0.1 --port 8000" in server and "timeout 60" in server
    check = by_kind["check"]["run"]
    assert "mkdir -p reports" in check and "--format junit --output reports/" in check
    assert "--mcp-url http://127.0.0.1:8000/mcp" in by_kind["pytest"]["run"]
    upload = by_kind["upload"]
    assert upload["if"] == "always()" and "reports/*.xml" in upload["with"]["path"]


def check_workflow(text: str) -> None:
    """The GitHub Actions job is complete (parsed when PyYAML is installed)."""
    for line in KEY_LINES:
        assert line in text, f"{line!r} not in the workflow:\n{text}"
    assert "\njobs:\n" in text and "    steps:\n" in text
    if importlib.util.find_spec("yaml") is not None:
        check_parsed(text)


def readme_workflow() -> str:
    """The YAML block of the README's section on this page."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Test your server from a browser in CI\n", 1)[1].split("\n## ", 1)[0]
    assert f"site/{PAGE}" in section
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return block


def page_workflow_source() -> str:
    """The workflow block as the page's source holds it (HTML-unescaped)."""
    source = (ROOT / "site" / PAGE).read_text()
    (block,) = re.findall(r'<pre class="wire" tabindex="0" data-testid="ci-workflow">(.*?)</pre>', source, re.S)
    return html.unescape(block)


def test_the_page_shows_the_ci_job_and_runs_the_transport_checks(page: Page, demo_server: DemoServer) -> None:
    with_axe(page)
    page.add_init_script(
        'window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.blockedURI));'
    )
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{demo_server.url}/{PAGE}")
    expect(page).to_have_title(re.compile(r"^Test your server from a browser in CI"))
    expect(page.locator("h1")).to_have_text("Test your server from a browser in CI")
    expect(page.get_by_test_id("nav-testing-in-ci")).to_have_class(re.compile(r"\bactive\b"))

    workflow = page.get_by_test_id("ci-workflow").inner_text()
    check_workflow(workflow)
    expect(page.get_by_test_id("check-usage")).to_contain_text("--format text|json|junit")
    expect(page.get_by_test_id("exit-codes")).to_contain_text("nothing blocks a browser client")
    for name in ["browser_mcp", "mcp_url", "mcp_client_options", "mcp_runtime", "--mcp-browser-check URL"]:
        expect(page.get_by_test_id("plugin-reference")).to_contain_text(name)
    for name in ["PYODIDE_TRANSPORT_CACHE", "PYODIDE_TRANSPORT_RUNTIME", "PYODIDE_TRANSPORT_CHROMIUM"]:
        expect(page.get_by_test_id("env-vars")).to_contain_text(name)

    expect(page.get_by_test_id("snippet-run")).to_be_disabled()  # until Python is up
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.locator(".snippet")).to_have_count(1)
    assert_axe_clean(page, ["body"])

    snippet = page.get_by_test_id("snippet-1")
    snippet.get_by_test_id("snippet-run").click()
    expect(snippet).to_have_attribute("data-state", "done", timeout=CALL * 2)
    output = snippet.get_by_test_id("snippet-output").inner_text()
    for name in TRANSPORT_CHECKS:
        assert re.search(rf"^pass\s+{re.escape(name)}: ", output, re.M), f"{name!r} did not pass:\n{output}"
    assert not re.search(r"^(fail|warn)\b", output, re.M), output
    assert "(Pyodide, Python 3.14" in output and ", fetch)" in output, output  # it ran in the page, over fetch
    snippet.scroll_into_view_if_needed()
    screenshot(page, "docs-testing-in-ci-run")
    assert_axe_clean(page, ["body"])
    assert page.evaluate("window.__csp") == []


def test_every_page_links_it_and_the_readme_shows_the_same_job(page: Page, demo_server: DemoServer) -> None:
    for name in DOCS_PAGES:
        source = page.request.get(f"{demo_server.url}/{name}").text()
        assert f'href="./{PAGE}" data-testid="nav-testing-in-ci"' in source, name
    served = page.request.get(f"{demo_server.url}/{PAGE}")
    assert served.ok
    assert served.text() == (ROOT / "site" / PAGE).read_text(), "site/dist holds an old copy of the page"
    assert readme_workflow() == page_workflow_source() + "\n"
