"""The roots list: file:// URIs only, names, de-duplication, JSON round trip."""

from __future__ import annotations

import json

import mcp_types as mt
import pytest
from ptsite.roots import MAX_NAME, Root, RootsList, normalize_uri, validate_name


@pytest.mark.parametrize(
    "uri",
    [
        "file:///home/me/project",
        "file://server/share",
        "file:///C:/work",
        "FILE:///tmp",
        "  file:///a%20b  ",
        "file:///",
    ],
)
def test_file_uris_are_accepted_and_the_client_can_send_them(uri: str) -> None:
    clean = normalize_uri(uri)
    assert clean.startswith("file://") and clean == clean.strip()
    assert str(mt.Root(uri=clean).uri).startswith("file://")  # the wire model agrees


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("", "Enter a URI"),
        ("   ", "Enter a URI"),
        ("http://127.0.0.1/x", "file://"),
        ("/home/me", "file://"),
        ("file:/home/me", "starts with file://"),
        ("file://", "no path"),
        ("file:///a b", "spaces"),
        ("file:///a\tb", "spaces"),
        ("file:///a?x=1", "query"),
        ("file:///a#top", "fragment"),
    ],
)
def test_bad_uris_are_refused_with_a_reason(uri: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize_uri(uri)


def test_scheme_is_lower_cased_only() -> None:
    assert normalize_uri("File:///Home/Me") == "file:///Home/Me"


def test_names_are_trimmed_and_bounded() -> None:
    assert validate_name("  project  ") == "project"
    assert validate_name("") == ""
    with pytest.raises(ValueError, match="at most"):
        validate_name("x" * (MAX_NAME + 1))
    with pytest.raises(ValueError, match="control"):
        validate_name("a\x00b")


def test_add_remove_and_duplicates() -> None:
    roots = RootsList().add("file:///home/me/project", "project").add("file:///tmp")
    assert roots.to_wire() == [{"uri": "file:///home/me/project", "name": "project"}, {"uri": "file:///tmp"}]
    with pytest.raises(ValueError, match="already a root"):
        roots.add("file:///home/me/project/", "again")  # a trailing slash names the same place
    with pytest.raises(ValueError, match="already a root"):
        roots.add("FILE:///tmp")
    assert roots.find("file:///tmp/") == Root("file:///tmp")
    assert len(roots.remove("file:///tmp")) == 1
    assert roots.remove("file:///nowhere") == roots
    assert len(roots) == 2  # every change is a new list


def test_a_refused_add_leaves_the_list_alone() -> None:
    roots = RootsList().add("file:///a")
    with pytest.raises(ValueError):
        roots.add("http://x")
    assert roots.to_wire() == [{"uri": "file:///a"}]


def test_json_round_trip() -> None:
    roots = RootsList().add("file:///a", "A").add("file:///b")
    again, problems = RootsList.from_json(roots.to_json())
    assert again == roots and problems == []
    assert mt.ListRootsResult.model_validate({"roots": again.to_wire()}).roots[0].name == "A"


@pytest.mark.parametrize("text", [None, "", "[]"])
def test_nothing_stored_is_an_empty_list(text: str | None) -> None:
    assert RootsList.from_json(text) == (RootsList(), [])


def test_corrupt_store_is_reported_not_fatal() -> None:
    roots, problems = RootsList.from_json("{not json")
    assert roots == RootsList() and "not valid JSON" in problems[0]
    roots, problems = RootsList.from_json('{"uri": "file:///a"}')
    assert roots == RootsList() and "not a list" in problems[0]


def test_bad_entries_are_skipped_and_named() -> None:
    stored = json.dumps(
        [
            {"uri": "file:///a", "name": "A"},
            {"uri": "http://x"},
            7,
            "file:///b",
            {"uri": "file:///a/"},
            {"uri": "file:///c", "name": 3},
        ]
    )
    roots, problems = RootsList.from_json(stored)
    assert roots.to_wire() == [{"uri": "file:///a", "name": "A"}, {"uri": "file:///b"}, {"uri": "file:///c"}]
    assert len(problems) == 3
    assert "saved root 2" in problems[0] and "file://" in problems[0]
    assert "saved root 3" in problems[1]
    assert "already a root" in problems[2]
