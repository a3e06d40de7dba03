"""Protocol view (trace grouped per request) and network view (owner: protocol helper)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .features import Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["ProtocolFeature"]


class ProtocolFeature(Feature):
    """Protocol view (trace grouped per request) and network view (owner: protocol helper)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
