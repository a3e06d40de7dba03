"""MCP Apps host pane (owner: apps helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["AppsFeature"]


class AppsFeature(Feature):
    """MCP Apps host pane (owner: apps helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
