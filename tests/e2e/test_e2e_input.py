"""Server requests answered inline (sampling, elicitation, queue, automatic answers) and roots, in Chromium."""

from __future__ import annotations

import re

import pytest
from e2e_support import (
    CALL,
    assert_axe_clean,
    call_tool,
    expect_connected,
    open_explorer,
    screenshot,
    tool_result,
    with_axe,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

MINE = ("[data-testid=input-root]", "[data-testid=roots-root]")
"""The parts of the page this file tests (other parts have their own audits)."""


def connect_handshake(page: Page) -> None:
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("protocol-select").select_option("2025-11-25")
    page.get_by_test_id("connect-button").click()
    expect_connected(page)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2025-11-25 (handshake era)")


def test_sampling_is_answered_inline_from_any_tab(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    page.get_by_test_id("tool-item-ask_llm").click()
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()

    panel = page.get_by_test_id("input-request")
    expect(panel).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("input-request-dialog")).to_have_attribute("data-kind", "sampling")
    expect(page.get_by_test_id("sampling-reply")).to_be_focused()  # focus went to the request
    expect(page.get_by_test_id("input-announce")).to_contain_text("asks your LLM")
    expect(page.locator(".dialog-backdrop")).to_have_count(0)  # no modal any more
    message = page.locator(".sampling-message")
    expect(message).to_have_attribute("data-content-type", "text")
    expect(message).to_contain_text("message 1 · user · text")
    expect(page.get_by_test_id("sampling-message")).to_have_text("user: What is 6 times 7?")
    expect(page.get_by_test_id("sampling-params")).to_contain_text("Max tokens")
    expect(page.locator('[data-param="Max tokens"]')).to_have_text("200")
    expect(page.get_by_test_id("sampling-model")).to_have_value("human (explorer)")
    expect(page.get_by_test_id("sampling-stop-reason")).to_have_value("endTurn")

    page.get_by_test_id("tab-log").click()  # another tab: the request is still in view
    expect(page.get_by_test_id("pane-log")).to_be_visible()
    expect(page.get_by_test_id("sampling-reply")).to_be_visible()
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-model").fill("grace-1")
    page.get_by_test_id("sampling-send").click()
    expect(panel).to_be_hidden()
    page.get_by_test_id("tab-tools").click()
    expect(tool_result(page)).to_contain_text("LLM (grace-1) says: 42", timeout=CALL)

    page.get_by_test_id("call-button").click()  # a rejection is an error the tool sees
    expect(panel).to_be_visible(timeout=CALL)
    page.get_by_test_id("sampling-reject").focus()  # a real button: Enter answers
    page.keyboard.press("Enter")
    expect(panel).to_be_hidden()
    expect(tool_result(page)).to_contain_text("rejected", timeout=CALL)


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_elicitation_inline_and_automatic_answers(page: Page, demo_server, era: str) -> None:  # type: ignore[no-untyped-def]
    with_axe(page)
    if era == "modern":
        open_explorer(page, f"{demo_server.url}/")
        expect_connected(page)
        expect(page.get_by_test_id("protocol-version")).to_contain_text("modern era")
    else:
        open_explorer(page, f"{demo_server.url}/?autoconnect=0")
        connect_handshake(page)
    panel = page.get_by_test_id("input-request")

    call_tool(page, "ask_user")
    expect(panel).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("elicitation-message")).to_have_text("Tell me about yourself")
    expect(page.get_by_test_id("elicit-name")).to_be_focused()
    page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("elicit-error-name")).to_have_text("required")  # nothing sent, nothing lost
    expect(panel).to_be_visible()
    page.get_by_test_id("elicit-name").fill("Grace")
    page.get_by_test_id("elicit-colour").select_option(label="green")
    page.get_by_test_id("auto-respond").check()
    page.get_by_test_id("elicit-accept").click()
    expect(panel).to_be_hidden()
    expect(tool_result(page)).to_contain_text("Hello Grace, you like green.", timeout=CALL)
    rules = page.get_by_test_id("auto-rule")
    expect(rules).to_have_count(1)
    expect(rules).to_contain_text("Tell me about yourself")
    expect(rules).to_contain_text('accept {"colour":"green","name":"Grace"}')

    # the same request again: answered without asking, with a note
    page.get_by_test_id("call-button").click()
    note = page.get_by_test_id("auto-note")
    expect(note).to_have_count(1, timeout=CALL)
    expect(tool_result(page)).to_contain_text("Hello Grace, you like green.", timeout=CALL)
    expect(panel).to_be_hidden()
    expect(note).to_contain_text("Answered automatically")
    expect(rules).to_contain_text("used 1 times")
    if era == "modern":
        assert_axe_clean(page, MINE)  # the note and the rule list

    # a different message is a different request: asked again
    page.get_by_test_id("field-message").fill("Who are you?")
    page.get_by_test_id("call-button").click()
    expect(panel).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("elicitation-message")).to_have_text("Who are you?")
    page.get_by_test_id("elicit-cancel").click()
    expect(tool_result(page)).to_contain_text("The user chose to cancel.", timeout=CALL)

    # stop the automatic answer: the original request asks again
    page.get_by_test_id("field-message").fill("")
    page.get_by_test_id("auto-rule-remove").click()
    expect(page.get_by_test_id("auto-rules")).to_be_hidden()
    page.get_by_test_id("call-button").click()
    expect(panel).to_be_visible(timeout=CALL)
    page.get_by_test_id("elicit-decline").click()
    expect(tool_result(page)).to_contain_text("The user chose to decline.", timeout=CALL)

    # sampling: "any request" rule, stopped from its note
    page.get_by_test_id("tool-item-ask_llm").click()
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()
    expect(panel).to_be_visible(timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("auto-respond").check()
    page.get_by_test_id("sampling-send").click()
    expect(tool_result(page)).to_contain_text("says: 42", timeout=CALL)
    page.get_by_test_id("field-question").fill("And 7 times 8?")
    page.get_by_test_id("call-button").click()
    sampled = page.locator('[data-testid="auto-note"][data-key="sampling"]')
    expect(sampled).to_contain_text("reply '42'", timeout=CALL)
    expect(tool_result(page)).to_contain_text("LLM (human (explorer)) says: 42", timeout=CALL)
    sampled.get_by_test_id("auto-note-stop").click()
    expect(page.get_by_test_id("auto-rule")).to_have_count(0)
    page.get_by_test_id("call-button").click()
    expect(panel).to_be_visible(timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("56")
    page.get_by_test_id("sampling-send").click()
    expect(tool_result(page)).to_contain_text("says: 56", timeout=CALL)


def test_requests_queue_up_and_are_answered_in_turn(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    """One modern round asks for a name, a sampled greeting and the roots at once: two cards wait."""
    with_axe(page)
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    call_tool(page, "test_input_required_result_multiple_inputs")
    cards = page.get_by_test_id("input-request-dialog")
    expect(cards).to_have_count(2, timeout=CALL)
    expect(page.get_by_test_id("input-request-count")).to_have_text("(2)")
    expect(page.get_by_test_id("input-announce")).to_contain_text("2 requests are waiting")
    expect(cards.first).to_have_class(re.compile(r"\bcurrent\b"))
    screenshot(page, "input-inline")
    assert_axe_clean(page, MINE)

    elicitation = page.locator('[data-testid="input-request-dialog"][data-kind="elicitation"]')
    sampling = page.locator('[data-testid="input-request-dialog"][data-kind="sampling"]')
    expect(sampling.get_by_test_id("sampling-message")).to_have_text("user: Generate a greeting")
    expect(elicitation.get_by_test_id("elicitation-message")).to_have_text("What is your name?")
    page.get_by_test_id("tab-log").focus()  # away from the requests: the palette brings focus back to them
    page.keyboard.press("Control+k")
    page.keyboard.type("answer")
    expect(page.locator('[data-testid="palette-option"][aria-selected="true"]')).to_contain_text(
        "Answer the server's request (1 of 2)"
    )
    page.keyboard.press("Enter")
    focused = page.evaluate("() => document.activeElement.closest('[data-testid=input-request-dialog]') !== null")
    assert focused
    first_kind = cards.first.get_attribute("data-kind")
    if first_kind == "elicitation":
        elicitation.get_by_test_id("elicit-name").fill("Ada")
        elicitation.get_by_test_id("elicit-accept").click()
        expect(cards).to_have_count(1)
        expect(page.get_by_test_id("sampling-reply")).to_be_focused()  # focus moves on to the next one
        page.get_by_test_id("sampling-reply").fill("Hi")
        page.get_by_test_id("sampling-send").click()
    else:
        sampling.get_by_test_id("sampling-reply").fill("Hi")
        sampling.get_by_test_id("sampling-send").click()
        expect(cards).to_have_count(1)
        expect(page.get_by_test_id("elicit-name")).to_be_focused()
        page.get_by_test_id("elicit-name").fill("Ada")
        page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("input-request")).to_be_hidden()
    expect(tool_result(page)).to_contain_text("Hi, Ada (0 roots)", timeout=CALL)


def test_roots_are_configured_listed_and_announced(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    with_axe(page)
    open_explorer(page, f"{demo_server.url}/?autoconnect=0")
    page.get_by_test_id("roots-toggle").click()
    expect(page.get_by_test_id("roots-list")).to_contain_text("No roots")
    page.get_by_test_id("root-uri").fill("http://127.0.0.1/nope")
    page.get_by_test_id("root-add").click()
    expect(page.get_by_test_id("roots-error")).to_contain_text("file://")
    expect(page.get_by_test_id("root-uri")).to_have_value("http://127.0.0.1/nope")  # kept to fix
    page.get_by_test_id("root-uri").fill("file:///home/me/project")
    page.get_by_test_id("root-name").fill("project")
    page.get_by_test_id("root-add").click()
    expect(page.get_by_test_id("roots-error")).to_be_hidden()
    page.get_by_test_id("root-uri").fill("file:///tmp")
    page.get_by_test_id("root-uri").press("Enter")
    expect(page.get_by_test_id("root-item")).to_have_count(2)
    page.get_by_test_id("root-uri").fill("file:///tmp/")
    page.get_by_test_id("root-add").click()
    expect(page.get_by_test_id("roots-error")).to_contain_text("already a root")
    expect(page.get_by_test_id("roots-count")).to_have_text("2")
    assert_axe_clean(page, MINE)

    connect_handshake(page)
    call_tool(page, "list_client_roots")
    expect(tool_result(page)).to_contain_text("project file:///home/me/project", timeout=CALL)
    expect(tool_result(page)).to_contain_text("file:///tmp")

    # a change while connected is announced (notifications/roots/list_changed), and served next time
    page.locator('[data-testid="root-item"][data-uri="file:///tmp"]').get_by_test_id("root-remove").click()
    expect(page.get_by_test_id("roots-status")).to_contain_text("The server was told the list changed")
    page.get_by_test_id("tab-trace").click()
    told = page.locator(
        '[data-testid="trace-entry"][data-direction="out"][data-method="notifications/roots/list_changed"]'
    )
    expect(told).to_have_count(1, timeout=CALL)
    call_tool(page, "list_client_roots")
    expect(page.get_by_test_id("roots-status")).to_contain_text("asked for the roots (2 times): sent 1", timeout=CALL)
    expect(tool_result(page)).to_contain_text("project file:///home/me/project", timeout=CALL)
    expect(tool_result(page)).not_to_contain_text("file:///tmp")

    # kept in localStorage: a reload has them, and the modern era gets them through an input request
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    expect(page.get_by_test_id("roots-count")).to_have_text("1")
    call_tool(page, "test_input_required_result_list_roots")
    expect(tool_result(page)).to_contain_text("The client's roots: file:///home/me/project", timeout=CALL)
