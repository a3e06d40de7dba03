"""The roots the explorer offers a server (``roots/list``): a validated list, kept as JSON.

Pure Python (no ``js``): :mod:`ptsite.roots_view` renders it and saves :meth:`RootsList.to_json`
in ``localStorage``. The MCP specification says a root's URI *must* be a ``file://`` URI for
now, so that is the only scheme accepted (the server would otherwise see a URI the client
itself refuses to send: ``mcp_types.Root`` rejects other schemes too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["MAX_NAME", "MAX_ROOTS", "Root", "RootsList", "normalize_uri", "validate_name"]

MAX_ROOTS = 100
"""More roots than any server needs; a bound keeps a corrupt store from growing the page."""

MAX_NAME = 200


@dataclass(frozen=True)
class Root:
    """One root: a ``file://`` URI and an optional display name."""

    uri: str
    name: str = ""

    def to_wire(self) -> dict[str, str]:
        """The root as ``roots/list`` sends it (no ``name`` when there is none)."""
        return {"uri": self.uri, "name": self.name} if self.name else {"uri": self.uri}


def normalize_uri(text: str) -> str:
    """The URI ``text`` as a root may carry it, or :class:`ValueError` saying what is wrong.

    Surrounding blanks are dropped and the scheme is lower-cased; nothing else is rewritten.
    """
    uri = text.strip()
    if not uri:
        raise ValueError("Enter a URI, e.g. file:///home/me/project")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        raise ValueError("A URI cannot contain spaces or control characters: write a space as %20")
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != "file":
        raise ValueError("A root must be a file:// URI (the MCP specification allows no other scheme yet)")
    uri = "file:" + rest
    if not rest.startswith("//"):
        raise ValueError("A file URI starts with file:// (e.g. file:///home/me/project)")
    parts = urlsplit(uri)
    if not parts.path and not parts.netloc:
        raise ValueError("The URI names no path: add one after file:// (e.g. file:///home/me)")
    if parts.query or parts.fragment:
        raise ValueError("A root URI has no query (?) or fragment (#)")
    return uri


def validate_name(text: str) -> str:
    """A root's name, trimmed; :class:`ValueError` when it is too long or has control characters."""
    name = text.strip()
    if len(name) > MAX_NAME:
        raise ValueError(f"A name has at most {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError("A name cannot contain control characters")
    return name


def _dedup_key(uri: str) -> str:
    """Two URIs naming the same place (``file:///a`` and ``file:///a/``) are the same root."""
    scheme, _, rest = uri.partition(":")
    rest = rest.rstrip("/") or "/"
    return f"{scheme.lower()}:{rest}"


@dataclass(frozen=True)
class RootsList:
    """The ordered roots; every change returns a new list (and raises :class:`ValueError` on bad input)."""

    roots: tuple[Root, ...] = ()

    def __len__(self) -> int:
        return len(self.roots)

    def find(self, uri: str) -> Root | None:
        """The root naming the same place as ``uri``, if any."""
        key = _dedup_key(uri.strip())
        return next((r for r in self.roots if _dedup_key(r.uri) == key), None)

    def add(self, uri: str, name: str = "") -> RootsList:
        """The list with a new root at the end; a duplicate or invalid one is refused."""
        clean = normalize_uri(uri)
        label = validate_name(name)
        if self.find(clean) is not None:
            raise ValueError(f"{clean} is already a root")
        if len(self.roots) >= MAX_ROOTS:
            raise ValueError(f"At most {MAX_ROOTS} roots")
        return RootsList((*self.roots, Root(clean, label)))

    def remove(self, uri: str) -> RootsList:
        """The list without the root ``uri`` (unchanged when there is none)."""
        key = _dedup_key(uri)
        return RootsList(tuple(r for r in self.roots if _dedup_key(r.uri) != key))

    def to_wire(self) -> list[dict[str, str]]:
        """The ``roots`` of a ``ListRootsResult``."""
        return [r.to_wire() for r in self.roots]

    def to_json(self) -> str:
        """The list as stored (a JSON array of ``{"uri", "name"}``)."""
        return json.dumps([{"uri": r.uri, "name": r.name} for r in self.roots])

    @classmethod
    def from_json(cls, text: str | None) -> tuple[RootsList, list[str]]:
        """Read a stored list: ``(roots, problems)``; bad entries are skipped and named, never fatal."""
        if not text:
            return cls(), []
        try:
            raw: Any = json.loads(text)
        except ValueError:
            return cls(), ["The saved roots were not valid JSON: starting from an empty list"]
        if not isinstance(raw, list):
            return cls(), ["The saved roots were not a list: starting from an empty list"]
        result, problems = cls(), []
        for index, item in enumerate(raw):
            if isinstance(item, str):
                item = {"uri": item}
            if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
                problems.append(f"saved root {index + 1}: not a {{uri, name}} object, skipped")
                continue
            name = item.get("name")
            try:
                result = result.add(item["uri"], name if isinstance(name, str) else "")
            except ValueError as exc:
                problems.append(f"saved root {index + 1}: {exc}, skipped")
        return result, problems
