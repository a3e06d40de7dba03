"""Fuzz tests (hypothesis): see fuzz_profile.py for the quick and stress profiles."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
