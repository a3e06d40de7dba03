"""JSON Schema to form model, and form values back to tool arguments.

Pure Python (no ``js``): the explorer's DOM layer renders a :class:`Form` and
hands back the raw widget values, which :func:`coerce` turns into the
arguments of a ``tools/call`` (or the content of an elicitation answer).
What a form cannot express (``anyOf`` without constants, tuples, free-form
maps, ...) becomes a ``json`` field edited as JSON text; a schema that is not
an object at all gets no form, only the JSON editor (:attr:`Form.fallback`).

Raw values, as the DOM layer produces them:

* ``string``/``number``/``integer``/``json``: the input's text.
* ``boolean`` and ``enum``: the selected option key (``""`` for none); see
  :attr:`Field.options` (enum) and ``"true"``/``"false"`` (boolean).
* ``multi``: the list of selected option keys.
* ``array``: a list of the items' raw values.
* ``object``: a dict of the children's raw values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "Field",
    "FieldKind",
    "Form",
    "Option",
    "build_form",
    "coerce",
    "initial_raw",
    "parse_json_arguments",
]

FieldKind: TypeAlias = Literal["string", "number", "integer", "boolean", "enum", "multi", "array", "object", "json"]

_MAX_DEPTH = 8
"""Nesting (and ``$ref`` chain) depth after which a subschema is edited as JSON."""

_MISSING: Any = object()

_MULTILINE_NAMES = frozenset({"code", "text", "body", "content", "prompt", "source", "query"})


@dataclass(frozen=True)
class Option:
    """One choice of an enum: the value sent, and the label shown."""

    key: str
    value: Any
    label: str


@dataclass
class Field:
    """One input of a generated form.

    Attributes:
        name: Property name (``""`` for an array item).
        kind: Which widget renders it.
        label: Title to show (the schema's ``title`` or the name).
        description: Help text from the schema.
        required: Whether the parent object lists it as required.
        default: The schema's default, or None (see ``has_default``).
        has_default: Whether the schema gave a default (which may be null).
        minimum, maximum: Inclusive numeric bounds (exclusive ones are in ``exclusive_*``).
        exclusive_minimum, exclusive_maximum: Exclusive numeric bounds.
        min_length, max_length: String length bounds, or item count bounds for arrays.
        pattern: A regular expression the string must match (checked by the server; shown as a hint).
        format: The string format hint (``email``, ``uri``, ``date-time``...).
        multiline: Whether a string input should be a textarea.
        options: The choices of an ``enum`` or ``multi`` field.
        children: The properties of an ``object`` field.
        item: The item field of an ``array`` field.
        reason: Why a ``json`` field could not get a form.
    """

    name: str
    kind: FieldKind
    label: str = ""
    description: str = ""
    required: bool = False
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    multiline: bool = False
    options: list[Option] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    item: Field | None = None
    reason: str = ""
    header: str = ""
    """``Mcp-Param-*`` header the value is also sent in (the property's ``x-mcp-header``, SEP-2243)."""

    @property
    def bounds_hint(self) -> str:
        """A short human text for the numeric or length bounds ("0 ≤ x ≤ 10", "max 5 items")."""
        parts: list[str] = []
        if self.kind in ("number", "integer"):
            low = _num(self.minimum, "≤") or _num(self.exclusive_minimum, "<")
            high = _num(self.maximum, "≤", after=True) or _num(self.exclusive_maximum, "<", after=True)
            if low or high:
                parts.append(f"{low}x{high}")
        elif self.kind in ("string", "array", "multi"):
            unit = "chars" if self.kind == "string" else "items"
            if self.min_length is not None:
                parts.append(f"min {self.min_length} {unit}")
            if self.max_length is not None:
                parts.append(f"max {self.max_length} {unit}")
        if self.format:
            parts.append(self.format)
        if self.pattern:
            parts.append(f"pattern {self.pattern}")
        return ", ".join(parts)


@dataclass
class Form:
    """A whole form: the fields of a top-level object schema.

    ``fallback`` is non-empty when the schema cannot become a form at all;
    then only the JSON editor is offered.
    """

    fields: list[Field]
    fallback: str = ""
    notes: list[str] = field(default_factory=list)
    """What the schema also says that the form does not enforce (``allOf``, ``if``/``then``/``else``...):
    shown as is, checked by the server. The schema itself is never altered."""


def _num(value: float | None, op: str, *, after: bool = False) -> str:
    if value is None:
        return ""
    text = _fmt_number(value)
    return f" {op} {text}" if after else f"{text} {op} "


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------- schema -> form


class _Resolver:
    """Follows local ``$ref`` pointers (``#/$defs/...``, ``#/definitions/...``) of one root schema."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, schema: Any, depth: int) -> tuple[dict[str, Any] | None, str]:
        """The schema with ``$ref`` chains followed; ``(None, reason)`` when that fails."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            seen += 1
            if seen + depth > _MAX_DEPTH:
                return None, "reference chain too deep"
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                return None, f"external reference {ref!r}"
            target: Any = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    return None, f"unresolvable reference {ref!r}"
                target = target[part]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if isinstance(target, dict) else target
        if schema is True or schema == {}:
            return {}, ""
        if not isinstance(schema, dict):
            return None, "not a schema object"
        return schema, ""


def _schema_type(schema: dict[str, Any]) -> tuple[str | None, bool]:
    """The schema's single type (nullable types collapsed) and whether null is allowed."""
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        nullable = len(types) != len(kind)
        return (types[0] if len(types) == 1 and isinstance(types[0], str) else None), nullable
    if isinstance(kind, str):
        return kind, False
    if "properties" in schema:
        return "object", False
    if "enum" in schema or "const" in schema:
        return "enum", False
    return None, False


def _const_options(choices: Any) -> list[Option] | None:
    """Options from a ``oneOf``/``anyOf`` list of ``{"const": v, "title": t}``, or None."""
    if not isinstance(choices, list) or not choices:
        return None
    options: list[Option] = []
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict) or "const" not in choice:
            return None
        title = choice.get("title")
        label = title if isinstance(title, str) else _label_of(choice["const"])
        options.append(Option(str(i), choice["const"], label))
    return options


def _label_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _enum_options(schema: dict[str, Any]) -> list[Option] | None:
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        names = schema.get("enumNames")
        labels = names if isinstance(names, list) and len(names) == len(schema["enum"]) else None
        return [
            Option(str(i), v, labels[i] if labels and isinstance(labels[i], str) else _label_of(v))
            for i, v in enumerate(schema["enum"])
        ]
    if "const" in schema:
        return [Option("0", schema["const"], _label_of(schema["const"]))]
    return _const_options(schema.get("oneOf")) or _const_options(schema.get("anyOf"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _field(resolver: _Resolver, name: str, raw_schema: Any, required: bool, depth: int) -> Field:
    """Build the field for one property schema."""
    schema, problem = resolver.resolve(raw_schema, depth)
    if schema is None:
        return Field(name, "json", label=name, required=required, reason=problem)
    title = schema.get("title")
    description = schema.get("description")
    base = Field(
        name,
        "json",
        label=title if isinstance(title, str) and title else name,
        description=description if isinstance(description, str) else "",
        required=required,
    )
    if "default" in schema:
        base.default, base.has_default = schema["default"], True
    if depth > _MAX_DEPTH:
        base.reason = "nested too deeply"
        return base

    kind, _nullable = _schema_type(schema)
    options = _enum_options(schema)
    if options is not None and kind in (None, "enum", "string", "number", "integer", "boolean"):
        base.kind, base.options = "enum", options
        return base
    if kind == "string":
        base.kind = "string"
        base.min_length, base.max_length = _count(schema.get("minLength")), _count(schema.get("maxLength"))
        pattern, fmt = schema.get("pattern"), schema.get("format")
        base.pattern = pattern if isinstance(pattern, str) else None
        base.format = fmt if isinstance(fmt, str) else None
        base.multiline = name.lower() in _MULTILINE_NAMES or (base.max_length or 0) > 200
        return base
    if kind in ("number", "integer"):
        base.kind = "integer" if kind == "integer" else "number"
        base.minimum, base.maximum = _number(schema.get("minimum")), _number(schema.get("maximum"))
        base.exclusive_minimum = _number(schema.get("exclusiveMinimum"))
        base.exclusive_maximum = _number(schema.get("exclusiveMaximum"))
        return base
    if kind == "boolean":
        base.kind = "boolean"
        return base
    if kind == "array":
        base.min_length, base.max_length = _count(schema.get("minItems")), _count(schema.get("maxItems"))
        items, item_problem = resolver.resolve(schema.get("items", {}), depth + 1)
        if items is None or isinstance(schema.get("prefixItems"), list):
            base.reason = item_problem or "tuple arrays"
            return base
        item_options = _enum_options(items)
        if item_options is not None:
            base.kind, base.options = "multi", item_options
            return base
        item = _field(resolver, "", items, True, depth + 1)
        if item.kind == "json":
            base.reason = f"array items: {item.reason or 'free-form'}"
            return base
        base.kind, base.item = "array", item
        return base
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            base.reason = "free-form object"
            return base
        needed = schema.get("required")
        needed_set = {r for r in needed if isinstance(r, str)} if isinstance(needed, list) else set()
        base.kind = "object"
        base.children = [_field(resolver, key, sub, key in needed_set, depth + 1) for key, sub in props.items()]
        return base
    base.reason = "no single type" if kind is None else f"type {kind!r}"
    if kind is None and not any(k in schema for k in ("anyOf", "oneOf", "allOf", "not")) and not problem:
        base.reason = "any JSON value"
    return base


def build_form(schema: Any) -> Form:
    """Turn a tool's ``inputSchema`` (or an elicitation's ``requestedSchema``) into a form."""
    if not isinstance(schema, dict):
        return Form([], fallback="the schema is not an object")
    resolver = _Resolver(schema)
    root, problem = resolver.resolve(schema, 0)
    if root is None:
        return Form([], fallback=problem)
    kind, _ = _schema_type(root)
    if kind not in ("object", None):
        return Form([], fallback=f"the arguments are a {kind}, not an object")
    props = root.get("properties", {})
    if not isinstance(props, dict):
        return Form([], fallback="properties is not an object")
    needed = root.get("required")
    needed_set = {r for r in needed if isinstance(r, str)} if isinstance(needed, list) else set()
    fields = [_field(resolver, key, sub, key in needed_set, 1) for key, sub in props.items()]
    for f, sub in zip(fields, props.values(), strict=True):
        header = sub.get("x-mcp-header") if isinstance(sub, dict) else None
        if isinstance(header, str) and header:
            f.header = f"Mcp-Param-{header}"
    return Form(fields, notes=_schema_notes(root))


_NOTED_KEYWORDS = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")
_NOTE_LIMIT = 160


def _schema_notes(root: dict[str, Any]) -> list[str]:
    """One line per top-level keyword of ``root`` that constrains the arguments beyond the fields."""
    notes = []
    for keyword in _NOTED_KEYWORDS:
        if keyword in root:
            text = json.dumps(root[keyword], separators=(",", ":"), ensure_ascii=False)
            notes.append(f"{keyword}: {text if len(text) <= _NOTE_LIMIT else text[: _NOTE_LIMIT - 1] + '…'}")
    return notes


# ------------------------------------------------------------- initial values


def _raw_default(f: Field, value: Any) -> Any:
    """The raw widget value showing ``value`` in field ``f``."""
    if f.kind in ("string", "number", "integer"):
        if value is None or isinstance(value, bool):
            return ""
        return value if isinstance(value, str) else _fmt_number(value) if isinstance(value, int | float) else ""
    if f.kind == "boolean":
        return "true" if value is True else "false" if value is False else ""
    if f.kind == "enum":
        return next((o.key for o in f.options if o.value == value), "")
    if f.kind == "multi":
        chosen = value if isinstance(value, list) else []
        return [o.key for o in f.options if o.value in chosen]
    if f.kind == "array":
        assert f.item is not None
        return [_raw_default(f.item, v) for v in value] if isinstance(value, list) else []
    if f.kind == "object":
        given = value if isinstance(value, dict) else {}
        return {c.name: _raw_default(c, given.get(c.name, c.default if c.has_default else None)) for c in f.children}
    return "" if not f.has_default and value is None else json.dumps(value, indent=2)


def initial_raw(form: Form) -> dict[str, Any]:
    """The raw values a fresh form shows: each field's default, else empty."""
    return {f.name: _raw_default(f, f.default if f.has_default else None) for f in form.fields}


def raw_for(f: Field, value: Any) -> Any:
    """The raw widget value that shows ``value`` (for the DOM layer's array items)."""
    return _raw_default(f, value)


# ------------------------------------------------------------- form -> values


def _is_blank(f: Field, raw: Any) -> bool:
    if f.kind in ("array", "multi"):
        return not raw
    if f.kind == "object":
        return isinstance(raw, dict) and all(_is_blank(c, raw.get(c.name)) for c in f.children)
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def _check_number(f: Field, value: float, where: str, errors: dict[str, str]) -> None:
    if f.minimum is not None and value < f.minimum:
        errors[where] = f"must be ≥ {_fmt_number(f.minimum)}"
    elif f.maximum is not None and value > f.maximum:
        errors[where] = f"must be ≤ {_fmt_number(f.maximum)}"
    elif f.exclusive_minimum is not None and value <= f.exclusive_minimum:
        errors[where] = f"must be > {_fmt_number(f.exclusive_minimum)}"
    elif f.exclusive_maximum is not None and value >= f.exclusive_maximum:
        errors[where] = f"must be < {_fmt_number(f.exclusive_maximum)}"


def _value(f: Field, raw: Any, where: str, errors: dict[str, str]) -> Any:
    """Convert one raw value; record problems under ``where``; ``_MISSING`` means omit."""
    if _is_blank(f, raw):
        if f.required and f.kind not in ("array", "multi", "object"):
            errors[where] = "required"
        if f.kind == "object" and f.required:
            return _object(f.children, raw if isinstance(raw, dict) else {}, where, errors)
        if f.kind in ("array", "multi") and f.required:
            if f.min_length:
                errors[where] = f"needs at least {f.min_length} items"
            return []
        return _MISSING
    if f.kind == "string":
        text = str(raw)
        if f.min_length is not None and len(text) < f.min_length:
            errors[where] = f"needs at least {f.min_length} characters"
        elif f.max_length is not None and len(text) > f.max_length:
            errors[where] = f"at most {f.max_length} characters"
        return text
    if f.kind in ("number", "integer"):
        text = str(raw).strip()
        number: int | float
        try:
            number = int(text)
        except ValueError:
            if f.kind == "integer":
                errors[where] = "must be a whole number"
                return _MISSING
            try:
                number = float(text)
            except ValueError:
                errors[where] = "must be a number"
                return _MISSING
            if not math.isfinite(number):
                errors[where] = "must be a finite number"
                return _MISSING
        _check_number(f, number, where, errors)
        return number
    if f.kind == "boolean":
        if raw not in ("true", "false", True, False):
            errors[where] = "must be true or false"
            return _MISSING
        return raw in ("true", True)
    if f.kind == "enum":
        chosen = next((o for o in f.options if o.key == raw), None)
        if chosen is None:
            errors[where] = "not one of the choices"
            return _MISSING
        return chosen.value
    if f.kind == "multi":
        keys = raw if isinstance(raw, list) else [raw]
        values = [o.value for o in f.options if o.key in keys]
        _check_count(f, len(values), where, errors)
        return values
    if f.kind == "array":
        assert f.item is not None
        items = raw if isinstance(raw, list) else []
        out = []
        for i, item_raw in enumerate(items):
            value = _value(f.item, item_raw, f"{where}[{i}]", errors)
            if value is not _MISSING:
                out.append(value)
        _check_count(f, len(out), where, errors)
        return out
    if f.kind == "object":
        return _object(f.children, raw if isinstance(raw, dict) else {}, where, errors)
    # json
    try:
        return json.loads(str(raw))
    except ValueError as exc:
        errors[where] = f"invalid JSON: {exc}"
        return _MISSING


def _check_count(f: Field, count: int, where: str, errors: dict[str, str]) -> None:
    if f.min_length is not None and count < f.min_length:
        errors[where] = f"needs at least {f.min_length} items"
    elif f.max_length is not None and count > f.max_length:
        errors[where] = f"at most {f.max_length} items"


def _object(fields: list[Field], raw: dict[str, Any], prefix: str, errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        where = f"{prefix}.{f.name}" if prefix else f.name
        value = _value(f, raw.get(f.name), where, errors)
        if value is not _MISSING:
            out[f.name] = value
    return out


def coerce(form: Form, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn raw widget values into arguments.

    Returns:
        ``(arguments, errors)``: ``errors`` maps a field path (``a.b[2]``) to a
        message; the arguments are only meant to be sent when it is empty.
        Blank optional fields are left out, so the server applies its defaults.
    """
    errors: dict[str, str] = {}
    return _object(form.fields, raw, "", errors), errors


def parse_json_arguments(text: str) -> tuple[dict[str, Any] | None, str]:
    """Parse the JSON editor's text: an object (blank means ``{}``), or an error message."""
    if not text.strip():
        return {}, ""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, not {type(value).__name__}"
    return value, ""
