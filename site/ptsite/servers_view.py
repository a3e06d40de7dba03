"""Server list, mcpServers import, copy as config (owner: history helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["ServersFeature"]


class ServersFeature(Feature):
    """Server list, mcpServers import, copy as config (owner: history helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
