"""The command palette's model: commands, fuzzy matching and ranking, keyboard movement (pure).

:mod:`ptsite.palette` builds the :class:`Command` list from the explorer's state each time the
palette opens and shows :func:`rank` of it for what the user typed. :func:`fuzzy_score` is a
subsequence match (the letters of the query in order, gaps allowed) that prefers whole
substrings, word starts and runs of consecutive letters, like editors' palettes do.
:func:`tab_move` is the tab bar's arrow-key rule (WAI-ARIA tabs pattern).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SHORTCUTS", "Command", "fuzzy_score", "rank", "tab_move"]


@dataclass(frozen=True)
class Command:
    """One action of the palette.

    Attributes:
        key: Stable identifier (also the option's ``data-key``), e.g. ``tab:resources``, ``tool:echo``.
        title: What the option says.
        section: The group it is listed under (``Connection``, ``Go to``, ``Tools``...).
        keywords: More words it matches (weaker than the title).
        hint: A shortcut or detail shown beside the title.
    """

    key: str
    title: str
    section: str = ""
    keywords: tuple[str, ...] = ()
    hint: str = ""


SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Ctrl+K / ⌘K", "Open the command palette"),
    ("?", "Show these shortcuts (outside text fields)"),
    ("↑ / ↓", "Move through the palette's commands"),
    ("Enter", "Run the highlighted command"),
    ("Escape", "Close the palette (focus goes back where it was)"),
    ("← / → , Home / End", "On the tab bar: previous, next, first, last tab"),
    ("Tab / Shift+Tab", "Move between controls, e.g. into a server's request form"),
)
"""The keys the explorer answers, as the palette's help lists them."""


def _is_word_start(text: str, index: int) -> bool:
    if index == 0:
        return True
    before, here = text[index - 1], text[index]
    return not before.isalnum() or (before.islower() and here.isupper())


def fuzzy_score(query: str, text: str) -> int | None:
    """How well ``query`` matches ``text`` (higher is better), ``None`` when it does not match.

    Case-insensitive; blanks in the query are ignored. An empty query matches everything with 0.
    """
    phrase = " ".join(query.lower().split())
    needle = phrase.replace(" ", "")
    if not needle:
        return 0
    hay = " ".join(text.lower().split())
    substring = hay.find(phrase)
    if substring >= 0:  # a contiguous match beats any scattered one
        bonus = 60 if substring == 0 else 40 if _is_word_start(hay, substring) else 20
        return 1000 + bonus + len(phrase) * 10 - len(hay)
    text = " ".join(text.split())
    score, position, run = 0, 0, 0
    for char in needle:
        found = hay.find(char, position)
        if found < 0:
            return None
        if found == position and position > 0:
            run += 1
            score += 5 * run
        else:
            run = 0
            score -= min(found - position, 10)
        if _is_word_start(text, found):
            score += 8
        score += 1
        position = found + 1
    return score


def rank(commands: Sequence[Command], query: str, limit: int = 60) -> list[Command]:
    """The commands matching ``query``, best first (ties keep the given order); all of them for ``""``."""
    if not query.strip():
        return list(commands[:limit])
    scored: list[tuple[int, int, Command]] = []
    for index, command in enumerate(commands):
        candidates: list[int] = []
        title = fuzzy_score(query, command.title)
        if title is not None:
            candidates.append(title)
        for word in (*command.keywords, command.section):
            extra = fuzzy_score(query, word) if word else None
            if extra is not None:
                candidates.append(extra // 2)  # a keyword match counts, below a title match
        if candidates:
            scored.append((-max(candidates), index, command))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [command for _, _, command in scored[:limit]]


def tab_move(current: int, count: int, key: str) -> int | None:
    """The tab to move to from ``current`` of ``count`` for ``key`` (wrapping), ``None`` for other keys."""
    if count <= 0:
        return None
    if key in ("ArrowRight", "Right"):
        return (current + 1) % count
    if key in ("ArrowLeft", "Left"):
        return (current - 1) % count
    if key == "Home":
        return 0
    if key == "End":
        return count - 1
    return None
