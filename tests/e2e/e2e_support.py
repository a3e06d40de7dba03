"""Shared pieces of the Chromium tier: screenshots; launch options and the loopback guard come from devtools."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from devtools import ROOT
from devtools.chromium import CHROMIUM_ARGS, LOOPBACK, LoopbackGuard, chromium_executable

__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "LOOPBACK", "LoopbackGuard", "chromium_executable", "screenshot"]

ARTIFACTS = ROOT / "test-artifacts"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
