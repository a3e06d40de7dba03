"""History and saved requests pane (owner: history helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["HistoryFeature"]


class HistoryFeature(Feature):
    """History and saved requests pane (owner: history helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
