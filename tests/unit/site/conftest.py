"""The site's pure-Python package (site/ptsite) is importable through pytest's ``pythonpath`` (pyproject.toml)."""
