"""The command palette's model: fuzzy matching, ranking and the tab bar's arrow keys."""

from __future__ import annotations

import pytest
from ptsite.commands import SHORTCUTS, Command, fuzzy_score, rank, tab_move

COMMANDS = [
    Command("connect", "Connect", "Connection"),
    Command("tab:tools", "Go to Tools", "Go to"),
    Command("tab:resources", "Go to Resources", "Go to", keywords=("files", "read")),
    Command("tab:prompts", "Go to Prompts", "Go to"),
    Command("refresh:resources", "Refresh resources", "Lists"),
    Command("tool:get_resource_link", "Open tool get_resource_link", "Tools"),
    Command("tool:echo", "Open tool echo", "Tools"),
]


def keys(found: list[Command]) -> list[str]:
    return [c.key for c in found]


def test_empty_query_keeps_every_command_in_order() -> None:
    assert keys(rank(COMMANDS, "")) == keys(COMMANDS)
    assert keys(rank(COMMANDS, "  ", limit=2)) == ["connect", "tab:tools"]


def test_substring_beats_scattered_and_prefix_beats_middle() -> None:
    assert fuzzy_score("res", "Go to Resources") is not None
    contiguous = fuzzy_score("echo", "Open tool echo")
    scattered = fuzzy_score("echo", "each other")
    assert contiguous is not None and scattered is not None and contiguous > scattered
    start = fuzzy_score("refresh", "Refresh resources")
    middle = fuzzy_score("refresh", "Please refresh")
    assert start is not None and middle is not None and start > middle


def test_fuzzy_is_a_subsequence_and_case_insensitive() -> None:
    assert fuzzy_score("gtr", "Go to Resources") is not None
    assert fuzzy_score("GTR", "go to resources") is not None
    assert fuzzy_score("rg", "Go to Resources") is None  # order matters
    assert fuzzy_score("z", "Connect") is None
    assert fuzzy_score("", "anything") == 0


def test_a_phrase_with_blanks_matches_as_a_phrase() -> None:
    phrase = fuzzy_score("tool echo", "Open tool echo")
    scattered = fuzzy_score("toolecho", "Open tool echo")
    assert phrase is not None and scattered is not None and phrase > scattered
    assert fuzzy_score("  tool   echo ", "Open  tool echo") == phrase


def test_word_starts_score_higher() -> None:
    initials = fuzzy_score("gtp", "Go to Prompts")
    inside = fuzzy_score("otp", "Go to Prompts")
    assert initials is not None and inside is not None and initials > inside


def test_rank_puts_the_best_title_first_and_drops_misses() -> None:
    found = rank(COMMANDS, "resources")
    assert found[0].key == "tab:resources"  # shorter title, same substring bonus: first
    assert set(keys(found)) >= {"tab:resources", "refresh:resources"}
    assert "connect" not in keys(found)
    assert keys(rank(COMMANDS, "echo"))[0] == "tool:echo"
    assert rank(COMMANDS, "qqq") == []


def test_keywords_and_sections_match_below_titles() -> None:
    assert keys(rank(COMMANDS, "files")) == ["tab:resources"]
    assert "tool:echo" in keys(rank(COMMANDS, "tools"))
    assert keys(rank(COMMANDS, "tools"))[0] == "tab:tools"  # the title match ranks above section matches


def test_ties_keep_the_given_order() -> None:
    twins = [Command("a", "Open x"), Command("b", "Open x")]
    assert keys(rank(twins, "open")) == ["a", "b"]


@pytest.mark.parametrize(
    ("current", "key", "expected"),
    [
        (0, "ArrowRight", 1),
        (3, "ArrowRight", 0),
        (0, "ArrowLeft", 3),
        (2, "Home", 0),
        (1, "End", 3),
        (1, "a", None),
        (1, "Enter", None),
    ],
)
def test_tab_move_wraps_like_the_aria_tabs_pattern(current: int, key: str, expected: int | None) -> None:
    assert tab_move(current, 4, key) == expected


def test_tab_move_without_tabs() -> None:
    assert tab_move(0, 0, "ArrowRight") is None


def test_shortcuts_name_the_palette_and_escape() -> None:
    listed = " ".join(k for k, _ in SHORTCUTS)
    assert "Ctrl+K" in listed and "Escape" in listed and "?" in listed
