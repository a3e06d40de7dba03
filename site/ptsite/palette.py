"""Command palette and keyboard access (owner: input helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["PaletteFeature"]


class PaletteFeature(Feature):
    """Command palette and keyboard access (owner: input helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
