"""Ping latency in the header and the era selector (owner: protocol helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["StatusFeature"]


class StatusFeature(Feature):
    """Ping latency in the header and the era selector (owner: protocol helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
