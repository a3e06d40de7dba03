"""Load tests: servers from the reliability helpers (``devtools.reliability``)."""
