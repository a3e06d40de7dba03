"""The thin DOM layer shared by the explorer and the docs pages (Pyodide only).

Safety rule of the whole site: text from a server only ever reaches the page
through ``textContent`` or an attribute value, never ``innerHTML``; the only
URLs set from server data are the ``data:`` URLs that :mod:`ptsite.views`
validated. :func:`el` is the one way elements are made.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import js
from pyodide.ffi import create_proxy

from .forms import Field, Form, coerce, initial_raw, raw_for
from .views import Block

__all__ = ["FormView", "Scope", "block_node", "by_testid", "el", "import_chosen_file", "report_error", "set_text"]

_T = TypeVar("_T")

document = js.document

_error_sink: list[Callable[[str], None]] = []


def report_error(exc: BaseException) -> None:
    """Show an unexpected error (handlers' failures) and log it to the console."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    js.console.error(text)
    for sink in _error_sink:
        sink(f"{type(exc).__name__}: {exc}")


def set_error_sink(sink: Callable[[str], None]) -> None:
    """Where :func:`report_error` shows errors on the page."""
    _error_sink[:] = [sink]


def by_testid(testid: str, root: Any = None) -> Any:
    """The element with ``data-testid=testid`` (under ``root``, default the document)."""
    return (root or document).querySelector(f'[data-testid="{testid}"]')


def el(
    tag: str,
    text: str | None = None,
    *,
    cls: str = "",
    testid: str = "",
    children: Iterable[Any] = (),
    **attrs: str | int | float | bool,
) -> Any:
    """Make an element; ``text`` goes to ``textContent``, attributes via ``setAttribute``.

    Attribute names are written ``data_kind`` -> ``data-kind``; ``True`` sets
    a boolean attribute, ``False`` omits it.
    """
    node = document.createElement(tag)
    if cls:
        node.className = cls
    if testid:
        node.setAttribute("data-testid", testid)
    if text is not None:
        node.textContent = text
    for key, value in attrs.items():
        name = key.rstrip("_").replace("_", "-")
        if value is True:
            node.setAttribute(name, "")
        elif value is not False:
            node.setAttribute(name, str(value))
    for child in children:
        node.appendChild(child)
    return node


def set_text(node: Any, text: str) -> None:
    """Set an element's text (never markup)."""
    node.textContent = text


def clear(node: Any) -> None:
    """Remove all children."""
    node.replaceChildren()


Handler = Callable[[Any], Awaitable[None] | None]


def _done(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        assert exc is not None
        report_error(exc)


def spawn(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run a coroutine in the background; its failure is reported on the page."""
    task = asyncio.ensure_future(awaitable)
    task.add_done_callback(_done)
    return task


async def import_chosen_file(
    field: Any, parse: Callable[[str], _T], refused: type[Exception], say: Callable[[str, bool], None]
) -> tuple[str, _T] | None:
    """The name and ``parse``d text of the file chosen in the ``<input type=file>`` ``field``.

    A ``refused`` error (the file is not acceptable) or any other failure is said once, and gives
    ``None``: the caller changes nothing. The field is cleared either way, so the same file can be
    chosen again.
    """
    files = field.files
    if files is None or files.length == 0:
        return None
    name = str(files.item(0).name)
    try:
        return name, parse(str(await files.item(0).text()))
    except refused as exc:
        say(f"Import of {name} refused, nothing changed: {exc}.", True)
    except Exception as exc:
        say(f"Import of {name} failed, nothing changed: {exc}.", True)
    finally:
        field.value = ""
    return None


class Scope:
    """Owns the event listeners of one part of the page, so they can be removed together.

    Each listener is a ``create_proxy``; :meth:`clear` removes and destroys
    them, so re-rendering a panel does not leak proxies.
    """

    def __init__(self) -> None:
        self._listeners: list[tuple[Any, str, Any]] = []

    def on(self, node: Any, event: str, handler: Handler) -> None:
        """Call ``handler(event)`` on ``event``; async handlers run as tasks."""

        def fire(evt: Any) -> None:
            try:
                outcome = handler(evt)
            except Exception as exc:
                report_error(exc)
                return
            if inspect.isawaitable(outcome):
                spawn(outcome)

        proxy = create_proxy(fire)
        node.addEventListener(event, proxy)
        self._listeners.append((node, event, proxy))

    def clear(self) -> None:
        """Remove every listener of this scope."""
        for node, event, proxy in self._listeners:
            node.removeEventListener(event, proxy)
            proxy.destroy()
        self._listeners.clear()


# ------------------------------------------------------------------ blocks


def block_node(
    block: Block, testid: str = "result-block", on_link: Callable[[str], Any] | None = None, scope: Scope | None = None
) -> Any:
    """Render one content block. Only ``textContent`` and validated ``data:`` URLs are used."""
    if block.kind in ("image", "audio") and block.src.startswith(f"data:{block.kind}/"):
        media = (
            el("img", alt=f"{block.mime} image, {block.size} bytes")
            if block.kind == "image"
            else el("audio", controls=True)
        )
        media.src = block.src
        meta = el("div", f"{block.mime} · {block.size} bytes" + (f" · {block.uri}" if block.uri else ""), cls="meta")
        return el("div", cls=f"block {block.kind}", testid=testid, data_kind=block.kind, children=[meta, media])
    if block.kind == "resource_link":
        children = [
            el("div", f"resource link · {block.mime or 'unknown type'}", cls="meta"),
            el("strong", block.name or block.uri),
            el("div", block.uri, cls="meta"),
        ]
        if block.description:
            children.append(el("div", block.description, cls="muted small"))
        if on_link is not None and scope is not None:
            button = el("button", "Read this resource", cls="small-btn", testid="resource-link-read", type="button")
            uri = block.uri
            scope.on(button, "click", lambda _e: on_link(uri))
            children.append(button)
        return el("div", cls="block card", testid=testid, data_kind=block.kind, children=children)
    if block.kind in ("resource", "json") and block.uri:
        meta = el("div", f"{block.uri}" + (f" · {block.mime}" if block.mime else ""), cls="meta")
        return el("div", cls="block", testid=testid, data_kind=block.kind, children=[meta, el("pre", block.text)])
    kind_cls = "notice" if block.kind in ("notice", "binary") else block.kind
    return el("pre", block.text, cls=f"block {kind_cls}", testid=testid, data_kind=block.kind)


# ------------------------------------------------------------------- forms

RawGetter = Callable[[], Any]


def _labelable(widget: Any) -> bool:
    """Whether ``widget`` is a form control a ``<label for>`` can name (the others are groups)."""
    return str(widget.tagName).lower() in ("input", "select", "textarea")


class FormView:
    """Renders a :class:`~ptsite.forms.Form` and reads its values back.

    Widgets get ``data-testid="{prefix}-{path}"`` (``field-a``,
    ``field-address.city``, ``field-tags[0]``); array add buttons
    ``{prefix}-{path}-add``; errors ``{prefix}-error-{path}``.

    Every widget has an accessible name: its ``<label for>`` (a group's label
    through ``aria-labelledby``; an array item, which has no label of its own,
    an ``aria-label`` naming its path), and its description and error through
    ``aria-describedby``. Element ids come from one page-wide counter, so two
    forms on the page (a tool's and an elicitation's) never share one.
    """

    _ids = itertools.count(1)

    def __init__(self, form: Form, scope: Scope, prefix: str = "field") -> None:
        self.form = form
        self.scope = scope
        self.prefix = prefix
        self._getters: dict[str, RawGetter] = {}
        self._errors: dict[str, Any] = {}
        self._wrappers: dict[str, Any] = {}
        self._widgets: dict[str, Any] = {}
        self.summary = el("ul", cls="form-errors", testid=f"{prefix}-errors", hidden=True)
        self.node = self._render()

    def _render(self) -> Any:
        raw = initial_raw(self.form)
        root = el("div", cls="form", testid=f"{self.prefix}-form")
        if not self.form.fields:
            root.appendChild(el("p", "This tool takes no arguments.", cls="muted small"))
        for f in self.form.fields:
            node, getter = self._field(f, f.name, raw.get(f.name))
            self._getters[f.name] = getter
            root.appendChild(node)
        root.appendChild(self.summary)
        return root

    def raw(self) -> dict[str, Any]:
        """The raw widget values (see :mod:`ptsite.forms`)."""
        return {name: get() for name, get in self._getters.items()}

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """``(arguments, errors)``, with the errors shown next to their fields."""
        args, errors = coerce(self.form, self.raw())
        self.show_errors(errors)
        return args, errors

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show field errors in place and list them all in the summary."""
        for path, node in self._errors.items():
            node.textContent = errors.get(path, "")
            self._wrappers[path].classList.toggle("invalid", path in errors)
            widget = self._widgets.get(path)
            if widget is not None:
                if path in errors:
                    widget.setAttribute("aria-invalid", "true")
                else:
                    widget.removeAttribute("aria-invalid")
        clear(self.summary)
        for path, message in errors.items():
            self.summary.appendChild(el("li", f"{path}: {message}"))
        self.summary.hidden = not errors

    def _new_id(self) -> str:
        return f"{self.prefix}-w{next(self._ids)}"

    def _label(self, f: Field, path: str, type_text: str, widget: Any) -> Any:
        """The field's label: a ``<label for>`` its widget if that is a form control, else names its group."""
        label_id = self._new_id()
        labelable = _labelable(widget)
        if labelable:
            label = el("label", cls="label", id=label_id, for_=str(widget.id))
        else:
            label = el("div", cls="label", id=label_id)
            widget.setAttribute("aria-labelledby", label_id)
        label.appendChild(el("span", f.label or path or "item"))
        if f.required and f.name:
            label.appendChild(el("span", "*", cls="req", title="required", aria_hidden="true"))
            if labelable:
                widget.setAttribute("aria-required", "true")
        label.appendChild(el("span", type_text, cls="type"))
        return label

    def _wrap(self, f: Field, path: str, widget: Any, type_text: str) -> Any:
        wrapper = el("div", cls="field", data_path=path)
        if not widget.id:
            widget.id = self._new_id()
        if not _labelable(widget) and str(widget.tagName).lower() != "fieldset":
            widget.setAttribute("role", "group")  # checkboxes or a list's items: named as one group
        if f.name:
            wrapper.appendChild(self._label(f, path, type_text, widget))
        else:  # an array item: no label of its own
            widget.setAttribute("aria-label", f.label or path or "item")
        described: list[str] = []
        if f.description:
            desc = el("div", f.description, cls="desc", id=self._new_id())
            described.append(str(desc.id))
            wrapper.appendChild(desc)
        wrapper.appendChild(widget)
        if f.bounds_hint:
            wrapper.appendChild(el("div", f.bounds_hint, cls="bounds"))
        if f.header:
            wrapper.appendChild(el("div", f"also sent as the {f.header} header", cls="bounds", testid="field-header"))
        if f.kind == "json" and f.reason:
            wrapper.appendChild(el("div", f"JSON value ({f.reason})", cls="bounds"))
        error = el("div", cls="field-error", testid=f"{self.prefix}-error-{path}", id=self._new_id())
        described.append(str(error.id))
        widget.setAttribute("aria-describedby", " ".join(described))
        wrapper.appendChild(error)
        self._errors[path] = error
        self._wrappers[path] = wrapper
        if _labelable(widget):
            self._widgets[path] = widget
        return wrapper

    def _field(self, f: Field, path: str, raw: Any) -> tuple[Any, RawGetter]:
        testid = f"{self.prefix}-{path}"
        if f.kind in ("string", "number", "integer", "json"):
            if f.kind == "json" or f.multiline:
                widget = el(
                    "textarea", testid=testid, cls="code" if f.kind == "json" else "", rows=3, spellcheck="false"
                )
            elif f.kind == "string":
                widget = el("input", testid=testid, type="text", spellcheck="false")
            else:
                widget = el("input", testid=testid, type="number", step="1" if f.kind == "integer" else "any")
                for attr, value in (("min", f.minimum), ("max", f.maximum)):
                    if value is not None:
                        widget.setAttribute(attr, str(value))
            if f.has_default and f.default is not None:
                widget.setAttribute("placeholder", f"default: {f.default}")
            widget.value = raw or ""
            return self._wrap(f, path, widget, f.kind), lambda: str(widget.value)
        if f.kind in ("boolean", "enum"):
            widget = el("select", testid=testid)
            widget.appendChild(el("option", "— unset —" if not f.required else "— choose —", value=""))
            choices = (
                [("true", "true"), ("false", "false")] if f.kind == "boolean" else [(o.key, o.label) for o in f.options]
            )
            for key, label in choices:
                widget.appendChild(el("option", label, value=key))
            widget.value = raw or ""
            return self._wrap(f, path, widget, f.kind), lambda: str(widget.value)
        if f.kind == "multi":
            box = el("div", cls="multi", testid=testid)
            checks: list[tuple[str, Any]] = []
            for o in f.options:
                check = el("input", type="checkbox", testid=f"{testid}-{o.key}")
                check.checked = o.key in (raw or [])
                checks.append((o.key, check))
                box.appendChild(el("label", children=[check, el("span", o.label)]))
            return self._wrap(f, path, box, "choose any"), lambda: [k for k, c in checks if c.checked]
        if f.kind == "array":
            return self._array(f, path, raw if isinstance(raw, list) else [])
        # object
        box = el("fieldset", testid=testid)
        getters: dict[str, RawGetter] = {}
        given = raw if isinstance(raw, dict) else {}
        for child in f.children:
            node, getter = self._field(child, f"{path}.{child.name}", given.get(child.name))
            getters[child.name] = getter
            box.appendChild(node)
        return self._wrap(f, path, box, "object"), lambda: {k: g() for k, g in getters.items()}

    def _array(self, f: Field, path: str, raw: list[Any]) -> tuple[Any, RawGetter]:
        assert f.item is not None
        item_field = f.item
        testid = f"{self.prefix}-{path}"
        items = el("div", cls="array-items", testid=testid)
        entries: list[tuple[Any, RawGetter]] = []
        counter = [0]

        def add(item_raw: Any) -> None:
            index = counter[0]
            counter[0] += 1
            node, getter = self._field(item_field, f"{path}[{index}]", item_raw)
            remove = el(
                "button", "✕", cls="small-btn", type="button", title="remove item", testid=f"{testid}-remove-{index}"
            )
            row = el("div", cls="array-item", children=[node, remove])
            entry = (row, getter)
            entries.append(entry)
            items.appendChild(row)

            def drop(_evt: Any) -> None:
                entries.remove(entry)
                row.remove()

            self.scope.on(remove, "click", drop)

        for item_raw in raw:
            add(item_raw)
        add_button = el("button", "+ Add item", cls="small-btn", type="button", testid=f"{testid}-add")
        self.scope.on(add_button, "click", lambda _e: add(raw_for(item_field, None)))
        box = el("div", children=[items, add_button])
        return self._wrap(f, path, box, f"list of {item_field.kind}"), lambda: [g() for _, g in entries]
