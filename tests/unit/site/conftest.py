"""Make the site's pure-Python package (site/ptsite) importable in CPython."""

from __future__ import annotations

import sys
from pathlib import Path

SITE = Path(__file__).resolve().parents[3] / "site"
if str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))
