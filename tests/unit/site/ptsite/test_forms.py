from __future__ import annotations

from typing import Any

import pytest
from ptsite.forms import Field, build_form, coerce, initial_raw, parse_json_arguments

CALC = {
    "type": "object",
    "properties": {
        "a": {"type": "number", "description": "First operand"},
        "b": {"type": "number", "description": "Second operand"},
        "operation": {"type": "string", "enum": ["add", "subtract", "multiply", "divide"]},
    },
    "required": ["a", "b"],
}

RICH = {
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {
        "name": {"type": "string", "title": "Full name", "minLength": 2, "maxLength": 5},
        "age": {"type": "integer", "minimum": 0, "maximum": 150, "default": 30},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "ok": {"type": "boolean", "default": True},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "colours": {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}},
        "level": {"oneOf": [{"const": 1, "title": "Low"}, {"const": 2, "title": "High"}]},
        "address": {"$ref": "#/$defs/address"},
        "points": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "anything": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        "maybe": {"type": ["string", "null"]},
    },
    "required": ["name"],
}


def by_name(fields: list[Field]) -> dict[str, Field]:
    return {f.name: f for f in fields}


def test_calculator_schema_becomes_a_form() -> None:
    form = build_form(CALC)
    assert form.fallback == ""
    fields = by_name(form.fields)
    assert [f.name for f in form.fields] == ["a", "b", "operation"]
    assert fields["a"].kind == "number" and fields["a"].required and fields["a"].description == "First operand"
    assert fields["operation"].kind == "enum" and not fields["operation"].required
    assert [o.label for o in fields["operation"].options] == ["add", "subtract", "multiply", "divide"]


def test_every_supported_kind() -> None:
    fields = by_name(build_form(RICH).fields)
    kinds = {name: f.kind for name, f in fields.items()}
    assert kinds == {
        "name": "string",
        "age": "integer",
        "ratio": "number",
        "ok": "boolean",
        "tags": "array",
        "colours": "multi",
        "level": "enum",
        "address": "object",
        "points": "array",
        "anything": "json",
        "maybe": "string",
    }
    assert fields["name"].label == "Full name"
    assert fields["age"].bounds_hint == "0 ≤ x ≤ 150"
    assert fields["ratio"].bounds_hint == "0 < x < 1"
    assert fields["name"].bounds_hint == "min 2 chars, max 5 chars"
    assert [c.name for c in fields["address"].children] == ["street", "city"]
    assert fields["points"].item is not None and fields["points"].item.kind == "object"
    assert [o.label for o in fields["level"].options] == ["Low", "High"]


def test_initial_values_show_defaults() -> None:
    form = build_form(RICH)
    raw = initial_raw(form)
    assert raw["age"] == "30"
    assert raw["ok"] == "true"
    assert raw["name"] == "" and raw["tags"] == [] and raw["address"] == {"street": "", "city": ""}


def test_coerce_converts_and_omits_blank_optionals() -> None:
    form = build_form(RICH)
    raw: dict[str, Any] = initial_raw(form)
    raw.update(
        name="Ada",
        ratio="0.5",
        tags=["x", "y"],
        colours=["1"],
        level="1",
        address={"street": "", "city": "London"},
        points=[{"x": "3"}],
        anything='{"k": [1]}',
    )
    args, errors = coerce(form, raw)
    assert errors == {}
    assert args == {
        "name": "Ada",
        "age": 30,
        "ratio": 0.5,
        "ok": True,
        "tags": ["x", "y"],
        "colours": ["green"],
        "level": 2,
        "address": {"city": "London"},
        "points": [{"x": 3}],
        "anything": {"k": [1]},
    }


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "A"}, "name", "needs at least 2 characters"),
        ({"age": "1.5"}, "age", "must be a whole number"),
        ({"age": "151"}, "age", "must be ≤ 150"),
        ({"ratio": "1"}, "ratio", "must be < 1"),
        ({"ratio": "abc"}, "ratio", "must be a number"),
        ({"ratio": "nan"}, "ratio", "must be a finite number"),
        ({"tags": ["a", "b", "c"]}, "tags", "at most 2 items"),
        ({"points": [{"x": "q"}]}, "points[0].x", "must be a number"),
        ({"anything": "{"}, "anything", "invalid JSON"),
        ({"level": "7"}, "level", "not one of the choices"),
    ],
)
def test_coerce_reports_each_problem_where_it_is(changes: dict[str, Any], where: str, message: str) -> None:
    form = build_form(RICH)
    raw = {**initial_raw(form), "name": "Ada", **changes}
    _, errors = coerce(form, raw)
    assert where in errors, errors
    assert errors[where].startswith(message)


def test_schemas_without_a_form_fall_back_to_json() -> None:
    assert build_form({"type": "array"}).fallback
    assert build_form("nope").fallback
    assert build_form({"$ref": "#/nowhere"}).fallback
    empty = build_form({"type": "object"})
    assert empty.fields == [] and empty.fallback == ""
    free = by_name(build_form({"properties": {"m": {"type": "object"}, "r": {"$ref": "http://x/y"}}}).fields)
    assert free["m"].kind == "json" and free["m"].reason == "free-form object"
    assert free["r"].kind == "json" and "external" in free["r"].reason


def test_recursive_refs_stop_at_a_depth_limit() -> None:
    schema = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
        "properties": {"root": {"$ref": "#/$defs/node"}},
    }
    field = build_form(schema).fields[0]
    depth = 0
    while field.kind == "object":
        field = field.children[0]
        depth += 1
    assert field.kind == "json" and 3 < depth < 12


def test_legacy_enum_names_and_elicitation_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "legacy": {"type": "string", "enum": ["a", "b"], "enumNames": ["Option A", "Option B"], "default": "b"},
            "verified": {"type": "boolean", "default": False},
            "score": {"type": "number", "default": 95.5},
        },
    }
    form = build_form(schema)
    raw = initial_raw(form)
    assert raw == {"legacy": "1", "verified": "false", "score": "95.5"}
    assert [o.label for o in form.fields[0].options] == ["Option A", "Option B"]
    assert coerce(form, raw) == ({"legacy": "b", "verified": False, "score": 95.5}, {})


def test_json_editor_parsing() -> None:
    assert parse_json_arguments("") == ({}, "")
    assert parse_json_arguments('{"a": 1}') == ({"a": 1}, "")
    value, problem = parse_json_arguments("[1]")
    assert value is None and "object" in problem
    value, problem = parse_json_arguments("{oops")
    assert value is None and problem.startswith("invalid JSON")
