"""Accessibility: axe-core finds no serious or critical issue on the pages users visit.

axe-core is vendored from npm (``package.json``, installed by ``build.py``'s ``npm ci``) and put into every
document of the page as an init script: the pages' Content-Security-Policy forbids inline scripts, so a
``<script>`` tag with axe's source would be refused, while an init script is not subject to it. Each page is
walked through the states a user sees (every tab pane, a tool's form and its result, a resource, a prompt, the
sampling and elicitation dialogs, the sign-in panel; the docs pages before and after a snippet ran), axe runs on
the whole document in each state, and the summary of each page goes to ``test-artifacts/a11y/<page>.json``. The
test fails on any violation of impact ``serious`` or ``critical``, listing each rule with the failing nodes'
selectors and HTML so the failure says what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ARTIFACTS, AXE, BOOT, CALL, expect_connected, open_explorer, with_axe
from playwright.sync_api import Page, expect

from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e

OUT = ARTIFACTS / "a11y"
BLOCKING = ("critical", "serious")
IMPACTS = ("critical", "serious", "moderate", "minor")

RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations", "incomplete"]});
  return {
    violations: results.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
    })),
    incomplete: results.incomplete.map(v => ({
      id: v.id, impact: v.impact,
      nodes: v.nodes.map(n => ({target: n.target, why: (n.any[0] || n.all[0] || {}).message || ""})),
    })),
  };
}"""
"""Runs axe on the whole document (and its frames) and keeps what a reviewer needs of the answer."""


class Audit:
    """The axe results of one page across the states it was walked through."""

    def __init__(self, page: Page, name: str) -> None:
        self.page = page
        self.name = name
        self.states: dict[str, dict[str, Any]] = {}

    def check(self, state: str) -> None:
        """Run axe in the page as it is now and keep the result under ``state``."""
        self.page.wait_for_timeout(100)  # let a just-opened pane finish its transition (colours are measured)
        self.states[state] = self.page.evaluate(RUN_AXE)

    def blocking(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Serious and critical violations, one per (rule, node), with the states they were seen in."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for state, result in self.states.items():
            for violation in result["violations"]:
                if violation["impact"] not in BLOCKING:
                    continue
                for node in violation["nodes"]:
                    key = (violation["id"], json.dumps(node["target"]))
                    entry = found.setdefault(key, {"violation": violation, "node": node, "states": []})
                    entry["states"].append(state)
        return found

    def summary(self) -> dict[str, Any]:
        """Counts of violating nodes by impact, per state, with the violations themselves."""
        states = {}
        for state, result in self.states.items():
            counts = dict.fromkeys(IMPACTS, 0)
            for violation in result["violations"]:
                counts[violation["impact"] or "minor"] += len(violation["nodes"])
            review = {  # what axe could not decide (text over scrolled-away parts of lists, mostly): for reading
                f"{v['id']} ({v['impact']})": {
                    "nodes": len(v["nodes"]),
                    "why": sorted({n["why"] for n in v["nodes"]}),
                }
                for v in result["incomplete"]
            }
            states[state] = {"counts": counts, "violations": result["violations"], "needs_review": review}
        version = json.loads((AXE.parent / "package.json").read_text())["version"]
        return {"page": self.name, "axe": version, "states": states}

    def write(self) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}.json"
        path.write_text(json.dumps(self.summary(), indent=2) + "\n")
        return path

    def report(self) -> str:
        lines = []
        for (rule, _target), entry in sorted(self.blocking().items()):
            violation, node = entry["violation"], entry["node"]
            lines.append(f"[{violation['impact']}] {rule}: {violation['help']} ({violation['helpUrl']})")
            lines.append(f"    target: {' '.join(node['target'])}   states: {', '.join(entry['states'])}")
            lines.append(f"    html:   {node['html'][:300]}")
            for line in (node["summary"] or "").splitlines():
                lines.append(f"      {line}")
        return "\n".join(lines)


# ------------------------------------------------------------------ the explorer


def every_tab(page: Page, audit: Audit, prefix: str) -> None:
    """Show each tab found in the page (however many there are by now) and check it."""
    names = [str(n) for n in page.eval_on_selector_all("[data-tab]", "tabs => tabs.map(t => t.dataset.tab)")]
    assert names, "no [data-tab] button in the explorer"
    for name in names:
        page.locator(f'[data-tab="{name}"]').click()
        expect(page.locator(f'[data-pane="{name}"]')).to_be_visible()
        audit.check(f"{prefix}tab-{name}")
    page.locator('[data-tab="tools"]').click()


def explorer_disconnected(page: Page, server: DemoServer, audit: Audit) -> None:
    open_explorer(page, f"{server.url}/?autoconnect=0")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "disconnected")
    audit.check("disconnected")
    page.get_by_test_id("advanced-toggle").click()
    expect(page.get_by_test_id("protocol-select")).to_be_visible()
    audit.check("advanced-open")
    every_tab(page, audit, "disconnected-")
    page.get_by_test_id("server-url").fill("127.0.0.1:1")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-error")).to_be_visible(timeout=CALL)
    audit.check("connection-error")


def explorer_connected(page: Page, server: DemoServer, audit: Audit) -> None:
    open_explorer(page, f"{server.url}/")
    expect_connected(page)
    audit.check("connected")

    page.get_by_test_id("tool-item-calculate").click()
    expect(page.get_by_test_id("field-form")).to_be_visible()
    audit.check("tool-form")
    page.get_by_test_id("field-b").fill("7")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("field-error-a")).to_be_visible()
    audit.check("tool-form-error")
    page.get_by_test_id("field-a").fill("6")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    audit.check("tool-result")
    page.get_by_test_id("tool-item-json_schema_2020_12_tool").click()
    expect(page.get_by_test_id("schema-notes")).to_be_visible()
    audit.check("tool-form-nested")
    page.get_by_test_id("form-mode-toggle").click()
    expect(page.get_by_test_id("json-editor")).to_be_visible()
    audit.check("tool-json-editor")
    page.get_by_test_id("tool-item-test_multiple_content_types").click()
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result").get_by_test_id("result-block")).to_have_count(3, timeout=CALL)
    audit.check("tool-result-content-types")
    page.get_by_test_id("tool-item-test_error_handling").click()
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "error", timeout=CALL)
    audit.check("tool-result-error")

    page.get_by_test_id("tab-resources").click()
    page.get_by_test_id("resource-item-demo://readme").click()
    expect(page.get_by_test_id("resource-content")).to_contain_text("demo server", timeout=CALL)
    audit.check("resource")
    page.get_by_test_id("template-item-greeting").click()
    page.get_by_test_id("template-var-name").fill("Ada")
    expect(page.get_by_test_id("template-preview")).to_have_text("demo://greeting/Ada")
    audit.check("template")

    page.get_by_test_id("tab-prompts").click()
    page.get_by_test_id("prompt-item-code_review").click()
    expect(page.get_by_test_id("prompt-get")).to_be_visible()
    audit.check("prompt")
    page.get_by_test_id("prompt-arg-code").fill("print('hi')")
    page.get_by_test_id("prompt-arg-language").fill("python")
    page.get_by_test_id("prompt-get").click()
    expect(page.get_by_test_id("prompt-message")).to_contain_text("print('hi')", timeout=CALL)
    audit.check("prompt-messages")

    page.get_by_test_id("tab-log").click()
    page.get_by_test_id("log-level").select_option("debug")
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("tool-item-log_messages").click()
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("sent 4 log messages", timeout=CALL)
    page.get_by_test_id("tab-log").click()
    expect(page.locator('[data-testid="log-entry"][data-level="debug"]')).not_to_have_count(0, timeout=CALL)
    audit.check("log-every-level")

    page.get_by_test_id("tab-trace").click()
    page.get_by_test_id("trace-entry").first.locator("summary").click()
    expect(page.get_by_test_id("trace-entry").first.get_by_test_id("trace-body")).to_be_visible()
    audit.check("trace-expanded")
    every_tab(page, audit, "connected-")


def explorer_asks(page: Page, server: DemoServer, audit: Audit) -> None:
    open_explorer(page, f"{server.url}/")
    expect_connected(page)
    page.get_by_test_id("tool-item-ask_user").click()
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("input-request")).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("elicitation-message")).to_be_visible()
    audit.check("elicitation")
    page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("elicit-error-name")).to_be_visible()
    audit.check("elicitation-error")
    page.get_by_test_id("elicit-decline").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("decline", timeout=CALL)

    page.get_by_test_id("tool-item-ask_llm").click()
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("sampling-message")).to_be_visible(timeout=CALL)
    audit.check("sampling")
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-send").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("42", timeout=CALL)


def explorer_sign_in(page: Page, server: DemoServer, audit: Audit) -> None:
    open_explorer(page, f"{server.url}/index.html?server={server.url}/mcp/protected&transport=http-oauth&autoconnect=1")
    expect(page.get_by_test_id("auth-panel")).to_be_visible(timeout=CALL)
    audit.check("sign-in-panel")


# ------------------------------------------------------------------ the docs


def docs_page(name: str) -> Callable[[Page, DemoServer, Audit], None]:
    """A docs page once Python is up and its snippets can run, then after its first snippet ran."""

    def walk(page: Page, server: DemoServer, audit: Audit) -> None:
        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto(f"{server.url}/{name}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
        expect(page.get_by_test_id("snippet-run").first).to_be_enabled()
        audit.check("ready")
        snippet = page.get_by_test_id("snippet-1")
        snippet.get_by_test_id("snippet-run").click()
        expect(snippet).to_have_attribute("data-state", "done", timeout=CALL * 2)
        audit.check("snippet-ran")
        snippet.get_by_test_id("snippet-code").fill("raise ValueError('shown in red')")
        snippet.get_by_test_id("snippet-run").click()
        expect(snippet).to_have_attribute("data-state", "failed", timeout=CALL * 2)
        audit.check("snippet-failed")

    return walk


def oauth_callback(page: Page, server: DemoServer, audit: Audit) -> None:
    page.goto(f"{server.url}/oauth/callback.html?code=x&state=nobody-asked")
    expect(page.get_by_test_id("callback-status")).not_to_have_text(re.compile(r"^Handing"))
    audit.check("no-opener")


PAGES: dict[str, Callable[[Page, DemoServer, Audit], None]] = {
    "explorer-disconnected": explorer_disconnected,
    "explorer-connected": explorer_connected,
    "explorer-asks": explorer_asks,
    "explorer-sign-in": explorer_sign_in,
    "getting-started": docs_page("getting-started.html"),
    "transports": docs_page("transports.html"),
    "custom-transports": docs_page("custom-transports.html"),
    "testing-in-ci": docs_page("testing-in-ci.html"),
    "oauth-callback": oauth_callback,
}
"""Each page users visit (the explorer in several sessions), by the name of its summary file."""


@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_or_critical_accessibility_issue(page: Page, demo_server: DemoServer, name: str) -> None:
    with_axe(page)
    audit = Audit(page, name)
    try:
        PAGES[name](page, demo_server, audit)
    finally:
        if audit.states:
            audit.write()
    assert audit.states
    blocking = audit.blocking()
    assert not blocking, f"axe: {len(blocking)} serious/critical issue(s) on {name}:\n{audit.report()}"
