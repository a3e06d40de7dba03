from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from ptsite.features import CallRecord
from ptsite.history import (
    EXPORT_FORMAT,
    MAX_ENTRIES,
    HistoryEntry,
    HistoryImportError,
    SavedRequest,
    ServerHistory,
    dump_export,
    dump_store,
    entry_from_record,
    format_duration,
    load_store,
    matches,
    merge,
    parse_export,
    storage_key,
)

SERVER = "http://127.0.0.1:8000/mcp"


def record(name: str = "echo", started: float = 1_790_000_000.0, **extra: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "kind": "tool",
        "name": name,
        "arguments": {"message": "hi"},
        "server": SERVER,
        "protocol_version": "2026-07-28",
        "era": "modern",
        "started": started,
        "duration": 0.0123,
        "outcome": "ok",
        "result": {"content": [{"type": "text", "text": "hi"}]},
    }
    fields.update(extra)
    return CallRecord(**fields)


def test_entry_from_record_keeps_everything_and_a_stable_id() -> None:
    entry = entry_from_record(record())
    assert (entry.kind, entry.name, entry.arguments, entry.era, entry.protocol_version) == (
        "tool",
        "echo",
        {"message": "hi"},
        "modern",
        "2026-07-28",
    )
    assert entry.result == {"content": [{"type": "text", "text": "hi"}]} and not entry.truncated
    assert entry.id == entry_from_record(record()).id
    assert entry.id != entry_from_record(record(started=1_790_000_001.0)).id
    assert entry.id != entry_from_record(record(arguments={"message": "other"})).id


def test_a_long_result_is_truncated_and_says_so() -> None:
    big = {"content": [{"type": "text", "text": "x" * 500}]}
    entry = entry_from_record(record(result=big), max_result_chars=100)
    assert entry.result is None and entry.truncated
    assert entry.result_preview == json.dumps(big)[:100]
    assert entry_from_record(record(result=big), max_result_chars=10_000).result == big


def test_errors_and_cancellations_are_kept() -> None:
    failed = entry_from_record(record(outcome="error", result=None, error="The server refused the call: nope"))
    assert failed.outcome == "error" and failed.error == "The server refused the call: nope" and failed.result is None


def test_history_is_newest_first_bounded_and_without_duplicates() -> None:
    store = ServerHistory()
    for i in range(MAX_ENTRIES + 5):
        store = store.add(entry_from_record(record(started=1000.0 + i)))
    assert len(store.history) == MAX_ENTRIES
    assert store.history[0].started == 1000.0 + MAX_ENTRIES + 4
    assert store.add(store.history[3]) is store
    assert store.cleared().history == () and store.trimmed(3).history == store.history[:3]
    assert store.entry(store.history[1].id) == store.history[1] and store.entry("nope") is None


def test_saved_requests_are_named_renamed_and_deleted() -> None:
    store = ServerHistory().save(SavedRequest("  greet ", "tool", "echo", {"message": "hi"}))
    assert [s.name for s in store.saved] == ["greet"]
    with pytest.raises(ValueError, match="exists already"):
        store.save(SavedRequest("greet", "tool", "echo"))
    with pytest.raises(ValueError, match="needs a name"):
        store.save(SavedRequest("  ", "tool", "echo"))
    renamed = store.rename("greet", "hello")
    assert [s.name for s in renamed.saved] == ["hello"]
    with pytest.raises(ValueError, match="no saved request"):
        store.rename("nope", "x")
    two = renamed.save(SavedRequest("other", "prompt", "p"))
    with pytest.raises(ValueError, match="exists already"):
        two.rename("other", "hello")
    assert [s.name for s in two.delete("hello").saved] == ["other"]


def test_storage_round_trip_and_unreadable_storage() -> None:
    store = ServerHistory().add(entry_from_record(record())).save(SavedRequest("greet", "tool", "echo", {"a": 1}, 5.0))
    loaded, problem = load_store(dump_store(store))
    assert loaded == store and problem == ""
    assert load_store(None) == (ServerHistory(), "")
    for bad in ("{nope", "[]", '{"version": 9}', '{"version": 1, "history": [{"id": 1}]}'):
        empty, problem = load_store(bad)
        assert empty == ServerHistory() and "could not be read" in problem
    assert storage_key(SERVER) == "ptsite.history:" + SERVER


def test_export_import_round_trip() -> None:
    store = ServerHistory().add(entry_from_record(record(result=None, outcome="cancelled")))
    store = store.add(entry_from_record(record(started=2.0e9), max_result_chars=5)).save(
        SavedRequest("greet", "resource", "demo://readme")
    )
    text = dump_export(SERVER, store)
    data = json.loads(text)
    assert data["format"] == EXPORT_FORMAT and data["version"] == 1 and data["server"] == SERVER
    assert data["history"][0]["truncated"] is True and data["history"][0]["resultPreview"]
    server, parsed = parse_export(text)
    assert server == SERVER and parsed == store


def _export(**changes: Any) -> dict[str, Any]:
    store = ServerHistory().add(entry_from_record(record())).save(SavedRequest("greet", "tool", "echo"))
    data: dict[str, Any] = json.loads(dump_export(SERVER, store))
    data.update(changes)
    return data


def _with_entry(**fields: Any) -> dict[str, Any]:
    data = _export()
    data["history"][0].update(fields)
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{nope", "not JSON"),
        ([], r"\(top level\): must be an object"),
        ({"history": []}, "format: must be 'pyodide-transport-history'"),
        (_export(version=2), "version: this page reads version 1, got 2"),
        (_export(extra=1), "extra: unknown field"),
        (_export(history={}), "history: must be a list"),
        (_export(saved=[1]), r"saved\[0\]: must be an object"),
        (_with_entry(outcome="maybe"), r"history\[0\].outcome: must be one of ok, tool-error, error, cancelled"),
        (_with_entry(kind="sampling"), r"history\[0\].kind: must be one of tool, prompt, resource"),
        (_with_entry(started="yesterday"), r"history\[0\].started: must be a number"),
        (_with_entry(started=True), r"history\[0\].started: must be a number .*got a boolean"),
        (_with_entry(duration=-1), r"history\[0\].duration: must not be negative"),
        (_with_entry(arguments=[1]), r"history\[0\].arguments: must be an object, got a list"),
        (_with_entry(result="text"), r"history\[0\].result: must be an object or null"),
        (_with_entry(truncated="yes"), r"history\[0\].truncated: must be true or false"),
        (_with_entry(bogus=1), r"history\[0\].bogus: unknown field"),
        (_with_entry(id=""), r"history\[0\].id: must be 1 to 100 characters"),
        (_export(saved=[{"name": "a", "kind": "tool"}]), r"saved\[0\].target: missing"),
        (_export(saved=[{"name": " ", "kind": "tool", "target": "x"}]), r"saved\[0\].name: a saved request needs"),
        (
            _export(saved=[{"name": "a", "kind": "tool", "target": "x"}, {"name": "a", "kind": "tool", "target": "y"}]),
            r"saved\[1\].name: 'a' is used twice",
        ),
    ],
)
def test_bad_import_files_name_the_field(data: Any, problem: str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(HistoryImportError, match=problem):
        parse_export(text)


def test_an_oversized_import_is_refused() -> None:
    with pytest.raises(HistoryImportError, match="larger than"):
        parse_export(" " * 5_000_001)


def test_merge_adds_only_what_is_new() -> None:
    mine = ServerHistory().add(entry_from_record(record(started=10.0))).save(SavedRequest("greet", "tool", "echo"))
    theirs = (
        ServerHistory()
        .add(entry_from_record(record(started=10.0)))
        .add(entry_from_record(record(started=30.0)))
        .add(entry_from_record(record(started=5.0)))
        .save(SavedRequest("greet", "tool", "echo"))  # the same: merged
        .save(SavedRequest("other", "prompt", "p", {"x": "1"}))
    )
    theirs = replace(theirs, saved=(*theirs.saved, SavedRequest("greet", "tool", "calculate")))
    merged, added = merge(mine, theirs)
    assert added == (2, 2)
    assert [e.started for e in merged.history] == [30.0, 10.0, 5.0]
    assert [s.name for s in merged.saved] == ["greet", "other", "greet (imported)"]
    again, added = merge(merged, theirs)
    assert added == (0, 0) and again == merged
    bounded, _ = merge(mine, theirs, limit=2)
    assert [e.started for e in bounded.history] == [30.0, 10.0]


def test_filter_and_duration() -> None:
    entry = entry_from_record(record(name="calculate", arguments={"operation": "multiply"}))
    assert matches(entry, "") and matches(entry, "CALC") and matches(entry, "calc multiply")
    assert matches(entry, "modern") and matches(entry, "ok") and not matches(entry, "echo")
    assert format_duration(0.0123) == "12.3 ms" and format_duration(1.5) == "1.50 s"


def test_entry_json_names() -> None:
    entry = entry_from_record(record())
    assert set(entry.to_json()) >= {"protocolVersion", "resultPreview", "origin", "era"}
    assert isinstance(entry, HistoryEntry)
