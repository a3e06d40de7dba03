"""Redaction of secrets in what a log shows, pure.

What counts as secret:

* values under keys that name a credential, at any depth (``_meta`` and params included):
  keys ending in ``token``, ``secret``, ``password``/``passwd``/``passphrase``,
  ``authorization``, ``api_key``/``apiKey``, ``cookie``, ``credential(s)``, ``private_key``,
  ``bearer``, or exactly ``auth``. ``progressToken`` is the request's own id, not a secret, and
  plural counters (``maxTokens``, ``outputTokens``) do not match;
* string values that look like credentials wherever they are: ``Bearer …`` / ``Basic …``
  header values and JSON Web Tokens;
* session ids (keys ending in ``session_id`` / ``sessionId`` and :func:`short_id` for the
  transport's own): only an 8-character prefix is kept, enough to tell sessions apart.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["REDACTED", "SECRET_KEY", "SESSION_KEY", "is_secret_key", "redact", "short_id"]

REDACTED: Final = "[redacted]"

SECRET_KEY: Final = re.compile(
    r"(token|secret|password|passwd|passphrase|authorization|api[-_]?key|cookie|credentials?|private[-_]?key|bearer)$"
    r"|^auth$",
    re.IGNORECASE,
)
"""Keys whose values are never shown."""

SESSION_KEY: Final = re.compile(r"session[-_]?id$", re.IGNORECASE)
"""Keys whose values are shown as a short prefix only."""

NOT_SECRET: Final = frozenset({"progressToken"})
"""Keys that match :data:`SECRET_KEY` but are not secrets."""

_SECRET_VALUE: Final = re.compile(
    r"^\s*(bearer|basic)\s+[\w.~+/=-]+\s*$|^eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*$",
    re.IGNORECASE,
)
_PREFIX: Final = 8


def is_secret_key(key: str) -> bool:
    """Whether the value under ``key`` must not be shown."""
    return key not in NOT_SECRET and SECRET_KEY.search(key) is not None


def short_id(value: object) -> str | None:
    """A session id cut to its first 8 characters (plus ``…`` when longer); ``None`` stays ``None``."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= _PREFIX else text[:_PREFIX] + "…"


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every secret replaced (see the module docstring)."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_secret_key(name):
                out[key] = REDACTED
            elif SESSION_KEY.search(name) and isinstance(item, str | int):
                out[key] = short_id(item)
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return REDACTED
    return value
