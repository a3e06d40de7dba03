"""Security tests: servers from the reliability helpers (``devtools.reliability``)."""
