"""History and saved requests of the explorer: the model, its storage format, export and import.

Pure Python (no ``js``): :mod:`ptsite.history_view` keeps one :class:`ServerHistory` per server
URL in the browser's ``localStorage`` (key :func:`storage_key`), as :func:`dump_store` writes it.

* History: every call the explorer made (:class:`~ptsite.features.CallRecord`), newest first, at
  most :data:`MAX_ENTRIES` per server; a result longer than :data:`MAX_RESULT_CHARS` characters of
  JSON is kept as its first characters (``truncated``) and the entry says so.
* Saved requests: named calls (kind, target, arguments), at most :data:`MAX_SAVED` per server;
  names are unique per server.

Export file (version 1), one server's history and saved requests::

    {"format": "pyodide-transport-history", "version": 1, "server": "http://127.0.0.1:8000/mcp",
     "history": [{"id": "...", "kind": "tool", "name": "echo", "arguments": {...}, "server": "...",
                  "protocolVersion": "2026-07-28", "era": "modern", "started": 1790000000.5,
                  "duration": 0.012, "outcome": "ok", "result": {...} | null, "error": null,
                  "origin": "explorer", "truncated": false, "resultPreview": null}],
     "saved": [{"name": "echo hi", "kind": "tool", "target": "echo", "arguments": {...}, "created": 1790000000.0}]}

:func:`parse_export` checks every field and raises :class:`HistoryImportError` naming the first bad
one (``history[2].outcome``); nothing is merged then. :func:`merge` adds what is new: a history
entry with a known ``id`` and a saved request equal to a kept one of the same name (or of the name
an earlier import gave it) are duplicates; a saved request whose name is taken by a different one
gets `` (imported)`` appended.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, get_args

from .features import CallKind, CallOutcome

if TYPE_CHECKING:
    from .features import CallRecord

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "MAX_ENTRIES",
    "MAX_IMPORT_BYTES",
    "MAX_RESULT_CHARS",
    "MAX_SAVED",
    "HistoryEntry",
    "HistoryImportError",
    "SavedRequest",
    "ServerHistory",
    "dump_export",
    "dump_store",
    "entry_from_record",
    "format_duration",
    "load_store",
    "matches",
    "merge",
    "parse_export",
    "storage_key",
]

EXPORT_FORMAT: Final = "pyodide-transport-history"
EXPORT_VERSION: Final = 1
MAX_ENTRIES: Final = 200
"""History entries kept per server (the oldest go first)."""
MAX_SAVED: Final = 200
"""Saved requests per server."""
MAX_RESULT_CHARS: Final = 20_000
"""A result whose JSON is longer is kept as its first this many characters (``truncated``)."""
MAX_IMPORT_BYTES: Final = 5_000_000
"""An import file larger than this is refused."""
MAX_NAME: Final = 200

_KINDS: Final = get_args(CallKind)
_OUTCOMES: Final = get_args(CallOutcome)
_STORAGE_PREFIX: Final = "ptsite.history:"


class HistoryImportError(ValueError):
    """An import file (or stored data) that cannot be used; the message names the field at fault."""


@dataclass(frozen=True)
class HistoryEntry:
    """One call as history keeps it (see :class:`~ptsite.features.CallRecord`).

    ``result`` is None when the call was not answered or its result was too long; then, if
    ``truncated``, ``result_preview`` holds the first :data:`MAX_RESULT_CHARS` characters of its JSON.
    """

    id: str
    kind: CallKind
    name: str
    arguments: dict[str, Any]
    server: str
    protocol_version: str
    era: str
    started: float
    duration: float
    outcome: CallOutcome
    result: dict[str, Any] | None = None
    error: str | None = None
    origin: str = "explorer"
    truncated: bool = False
    result_preview: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as the storage and export formats write it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "arguments": self.arguments,
            "server": self.server,
            "protocolVersion": self.protocol_version,
            "era": self.era,
            "started": self.started,
            "duration": self.duration,
            "outcome": self.outcome,
            "result": self.result,
            "error": self.error,
            "origin": self.origin,
            "truncated": self.truncated,
            "resultPreview": self.result_preview,
        }


@dataclass(frozen=True)
class SavedRequest:
    """A named request: what to call (``kind``, ``target``: tool or prompt name, or resource URI) and with what."""

    name: str
    kind: CallKind
    target: str
    arguments: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The request as the storage and export formats write it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "arguments": self.arguments,
            "created": self.created,
        }

    def same_call(self, other: SavedRequest) -> bool:
        """Whether both call the same thing with the same arguments (names aside)."""
        return (self.kind, self.target, _canonical(self.arguments)) == (
            other.kind,
            other.target,
            _canonical(other.arguments),
        )


@dataclass(frozen=True)
class ServerHistory:
    """One server's history (newest first) and saved requests."""

    history: tuple[HistoryEntry, ...] = ()
    saved: tuple[SavedRequest, ...] = ()

    def add(self, entry: HistoryEntry, limit: int = MAX_ENTRIES) -> ServerHistory:
        """With ``entry`` first, at most ``limit`` entries (a known ``id`` is not added twice)."""
        if any(e.id == entry.id for e in self.history):
            return self
        return replace(self, history=(entry, *self.history)[:limit])

    def cleared(self) -> ServerHistory:
        """Without history (saved requests stay)."""
        return replace(self, history=())

    def trimmed(self, keep: int) -> ServerHistory:
        """Only the ``keep`` newest history entries (to fit the storage quota)."""
        return replace(self, history=self.history[: max(0, keep)])

    def entry(self, entry_id: str) -> HistoryEntry | None:
        """The history entry with ``entry_id``."""
        return next((e for e in self.history if e.id == entry_id), None)

    def save(self, request: SavedRequest) -> ServerHistory:
        """With ``request`` saved.

        Raises:
            ValueError: The name is empty, too long or taken, or the list is full.
        """
        name = _check_name(request.name)
        if any(s.name == name for s in self.saved):
            raise ValueError(f"a saved request named {name!r} exists already: choose another name")
        if len(self.saved) >= MAX_SAVED:
            raise ValueError(f"at most {MAX_SAVED} saved requests per server: delete some first")
        return replace(self, saved=(*self.saved, replace(request, name=name)))

    def rename(self, old: str, new: str) -> ServerHistory:
        """With the saved request ``old`` called ``new``.

        Raises:
            ValueError: No request is called ``old``, or ``new`` is empty, too long or taken.
        """
        name = _check_name(new)
        if not any(s.name == old for s in self.saved):
            raise ValueError(f"no saved request is named {old!r}")
        if name != old and any(s.name == name for s in self.saved):
            raise ValueError(f"a saved request named {name!r} exists already: choose another name")
        return replace(self, saved=tuple(replace(s, name=name) if s.name == old else s for s in self.saved))

    def delete(self, name: str) -> ServerHistory:
        """Without the saved request ``name``."""
        return replace(self, saved=tuple(s for s in self.saved if s.name != name))


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("a saved request needs a name")
    if len(name) > MAX_NAME:
        raise ValueError(f"a name is at most {MAX_NAME} characters")
    return name


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same_name(kept: str, incoming: str) -> bool:
    """``kept`` is ``incoming``, or what an earlier import renamed it to (``NAME (imported)``)."""
    return kept == incoming or kept.startswith(f"{incoming} (imported")


def storage_key(server: str) -> str:
    """The ``localStorage`` key of ``server``'s history."""
    return _STORAGE_PREFIX + server


def entry_from_record(record: CallRecord, max_result_chars: int = MAX_RESULT_CHARS) -> HistoryEntry:
    """A history entry for ``record``; a result over ``max_result_chars`` characters of JSON is truncated."""
    digest = hashlib.sha256(
        _canonical([record.server, record.kind, record.name, record.arguments, record.started]).encode()
    ).hexdigest()[:16]
    result, preview, truncated = record.result, None, False
    if result is not None:
        text = json.dumps(result, ensure_ascii=False)
        if len(text) > max_result_chars:
            result, preview, truncated = None, text[:max_result_chars], True
    return HistoryEntry(
        id=digest,
        kind=record.kind,
        name=record.name,
        arguments=dict(record.arguments),
        server=record.server,
        protocol_version=record.protocol_version,
        era=record.era,
        started=record.started,
        duration=record.duration,
        outcome=record.outcome,
        result=result,
        error=record.error,
        origin=record.origin,
        truncated=truncated,
        result_preview=preview,
    )


def format_duration(seconds: float) -> str:
    """``12.3 ms`` under a second, ``1.25 s`` above."""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def matches(entry: HistoryEntry, query: str) -> bool:
    """Whether every word of ``query`` occurs (any case) in the entry's kind, name, outcome, era or arguments."""
    words = query.lower().split()
    if not words:
        return True
    haystack = " ".join(
        (
            entry.kind,
            entry.name,
            entry.outcome,
            entry.era,
            entry.protocol_version,
            entry.origin,
            _canonical(entry.arguments),
        )
    ).lower()
    return all(word in haystack for word in words)


# ---------------------------------------------------------------- validation


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise HistoryImportError(f"{where}: must be {what}, got a boolean")
    if not isinstance(value, kind):
        raise HistoryImportError(f"{where}: must be {what}, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _one_of(value: Any, choices: tuple[str, ...], where: str) -> Any:
    if value not in choices:
        raise HistoryImportError(f"{where}: must be one of {', '.join(choices)}, got {json.dumps(value)[:60]}")
    return value


def _optional(value: Any, kind: type, where: str, what: str) -> Any:
    return None if value is None else _expect(value, kind, where, what)


def _parse_entry(raw: Any, where: str) -> HistoryEntry:
    _expect(raw, dict, where, "an object")
    known = {
        "id",
        "kind",
        "name",
        "arguments",
        "server",
        "protocolVersion",
        "era",
        "started",
        "duration",
        "outcome",
        "result",
        "error",
        "origin",
        "truncated",
        "resultPreview",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise HistoryImportError(f"{where}.{unknown[0]}: unknown field")
    for key in ("id", "kind", "name", "started", "outcome"):
        if key not in raw:
            raise HistoryImportError(f"{where}.{key}: missing")
    entry_id = _expect(raw["id"], str, f"{where}.id", "a string")
    if not entry_id or len(entry_id) > 100:
        raise HistoryImportError(f"{where}.id: must be 1 to 100 characters")
    started = _expect(raw["started"], (int, float), f"{where}.started", "a number (seconds since the epoch)")
    duration = _expect(raw.get("duration", 0.0), (int, float), f"{where}.duration", "a number (seconds)")
    if started < 0 or duration < 0:
        raise HistoryImportError(f"{where}.{'started' if started < 0 else 'duration'}: must not be negative")
    result = _optional(raw.get("result"), dict, f"{where}.result", "an object or null")
    preview = _optional(raw.get("resultPreview"), str, f"{where}.resultPreview", "a string or null")
    if result is not None and len(json.dumps(result)) > MAX_RESULT_CHARS * 2:
        raise HistoryImportError(f"{where}.result: longer than this page keeps ({MAX_RESULT_CHARS} characters)")
    return HistoryEntry(
        id=entry_id,
        kind=_one_of(raw["kind"], _KINDS, f"{where}.kind"),
        name=_expect(raw["name"], str, f"{where}.name", "a string"),
        arguments=_expect(raw.get("arguments", {}), dict, f"{where}.arguments", "an object"),
        server=_expect(raw.get("server", ""), str, f"{where}.server", "a string"),
        protocol_version=_expect(raw.get("protocolVersion", ""), str, f"{where}.protocolVersion", "a string"),
        era=_expect(raw.get("era", ""), str, f"{where}.era", "a string"),
        started=float(started),
        duration=float(duration),
        outcome=_one_of(raw["outcome"], _OUTCOMES, f"{where}.outcome"),
        result=result,
        error=_optional(raw.get("error"), str, f"{where}.error", "a string or null"),
        origin=_expect(raw.get("origin", "explorer"), str, f"{where}.origin", "a string"),
        truncated=_expect(raw.get("truncated", False), bool, f"{where}.truncated", "true or false"),
        result_preview=None if preview is None else preview[:MAX_RESULT_CHARS],
    )


def _parse_saved(raw: Any, where: str) -> SavedRequest:
    _expect(raw, dict, where, "an object")
    unknown = sorted(set(raw) - {"name", "kind", "target", "arguments", "created"})
    if unknown:
        raise HistoryImportError(f"{where}.{unknown[0]}: unknown field")
    for key in ("name", "kind", "target"):
        if key not in raw:
            raise HistoryImportError(f"{where}.{key}: missing")
    name = _expect(raw["name"], str, f"{where}.name", "a string")
    try:
        name = _check_name(name)
    except ValueError as exc:
        raise HistoryImportError(f"{where}.name: {exc}") from None
    created = _expect(raw.get("created", 0.0), (int, float), f"{where}.created", "a number")
    return SavedRequest(
        name=name,
        kind=_one_of(raw["kind"], _KINDS, f"{where}.kind"),
        target=_expect(raw["target"], str, f"{where}.target", "a string"),
        arguments=_expect(raw.get("arguments", {}), dict, f"{where}.arguments", "an object"),
        created=float(created),
    )


def _parse_lists(data: dict[str, Any], prefix: str = "") -> ServerHistory:
    history_raw = _expect(data.get("history", []), list, f"{prefix}history", "a list")
    saved_raw = _expect(data.get("saved", []), list, f"{prefix}saved", "a list")
    if len(history_raw) > MAX_ENTRIES * 5:
        raise HistoryImportError(f"{prefix}history: more than {MAX_ENTRIES * 5} entries")
    if len(saved_raw) > MAX_SAVED:
        raise HistoryImportError(f"{prefix}saved: more than {MAX_SAVED} saved requests")
    history = tuple(_parse_entry(item, f"{prefix}history[{i}]") for i, item in enumerate(history_raw))
    saved = tuple(_parse_saved(item, f"{prefix}saved[{i}]") for i, item in enumerate(saved_raw))
    names = [s.name for s in saved]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise HistoryImportError(f"{prefix}saved[{i}].name: {name!r} is used twice")
    return ServerHistory(history=history, saved=saved)


# ------------------------------------------------------------ storage, export


def dump_store(store: ServerHistory) -> str:
    """What ``localStorage`` holds for one server."""
    return json.dumps(
        {
            "version": EXPORT_VERSION,
            "history": [e.to_json() for e in store.history],
            "saved": [s.to_json() for s in store.saved],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def load_store(text: str | None) -> tuple[ServerHistory, str]:
    """``(store, problem)`` from what :func:`dump_store` wrote: unreadable data is an empty store and a problem text."""
    if not text:
        return ServerHistory(), ""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != EXPORT_VERSION:
            raise HistoryImportError("not a version 1 history")
        store = _parse_lists(data)
    except (ValueError, RecursionError) as exc:
        return ServerHistory(), f"The stored history of this server could not be read ({exc}); it starts empty."
    return ServerHistory(history=store.history[:MAX_ENTRIES], saved=store.saved), ""


def dump_export(server: str, store: ServerHistory) -> str:
    """The export file of ``server``'s history and saved requests (see the module docstring)."""
    return json.dumps(
        {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "server": server,
            "history": [e.to_json() for e in store.history],
            "saved": [s.to_json() for s in store.saved],
        },
        ensure_ascii=False,
        indent=2,
    )


def parse_export(text: str) -> tuple[str, ServerHistory]:
    """``(server, contents)`` of an export file.

    Raises:
        HistoryImportError: It is not JSON, not an export of this page (``format``), of an unknown
            ``version``, or a field is wrong; the message names it.
    """
    if len(text) > MAX_IMPORT_BYTES:
        raise HistoryImportError(f"the file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise HistoryImportError(f"the file is not JSON ({exc})") from None
    _expect(data, dict, "(top level)", "an object")
    if data.get("format") != EXPORT_FORMAT:
        raise HistoryImportError(
            f"format: must be {EXPORT_FORMAT!r} (a file exported from this page's History tab), "
            f"got {json.dumps(data.get('format'))[:60]}"
        )
    if data.get("version") != EXPORT_VERSION:
        raise HistoryImportError(
            f"version: this page reads version {EXPORT_VERSION}, got {json.dumps(data.get('version'))}"
        )
    unknown = sorted(set(data) - {"format", "version", "server", "history", "saved"})
    if unknown:
        raise HistoryImportError(f"{unknown[0]}: unknown field")
    server = _expect(data.get("server", ""), str, "server", "a string")
    return server, _parse_lists(data)


Added = tuple[int, int]


def merge(store: ServerHistory, incoming: ServerHistory, limit: int = MAX_ENTRIES) -> tuple[ServerHistory, Added]:
    """``store`` with what ``incoming`` adds, and ``(history entries added, saved requests added)``.

    History stays newest first (by ``started``) and within ``limit``; duplicates (same ``id``, or a
    saved request equal to a kept one) are dropped; a taken name gets `` (imported)``.
    """
    known = {e.id for e in store.history}
    new_entries = [e for e in incoming.history if e.id not in known]
    new_ids = {e.id for e in new_entries}
    history = sorted((*store.history, *new_entries), key=lambda e: e.started, reverse=True)
    history = list(dict((e.id, e) for e in history).values())[:limit]
    added_history = sum(1 for e in history if e.id in new_ids)
    saved = list(store.saved)
    added_saved = 0
    for request in incoming.saved:
        if any(s.same_call(request) and _same_name(s.name, request.name) for s in saved):
            continue
        name, n = request.name, 1
        while any(s.name == name for s in saved):
            name = f"{request.name} (imported{'' if n == 1 else f' {n}'})"
            n += 1
        if len(saved) >= MAX_SAVED:
            break
        saved.append(replace(request, name=name))
        added_saved += 1
    return ServerHistory(history=tuple(history), saved=tuple(saved)), (added_history, added_saved)
