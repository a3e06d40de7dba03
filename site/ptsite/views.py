"""View models for what a server sends: tool results, resource contents, prompts, logs, status.

Pure Python (no ``js``). Every field of a view is plain text that the DOM
layer puts into ``textContent``; the only URLs a view ever carries are
``data:`` URLs built here from validated base64 and an ``image/*`` or
``audio/*`` MIME type, so nothing a server sends can become markup or a
request to somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "MAX_MEDIA_BYTES",
    "Block",
    "BlockKind",
    "LogView",
    "PromptMessageView",
    "ResultView",
    "capability_summary",
    "content_block",
    "data_url",
    "log_view",
    "prompt_views",
    "resource_contents_blocks",
    "result_view",
]

MAX_MEDIA_BYTES = 8 * 1024 * 1024
"""Images and audio larger than this (decoded) are not shown."""

BlockKind: TypeAlias = Literal["text", "json", "image", "audio", "resource_link", "resource", "binary", "notice"]

_MIME = re.compile(r"^(image|audio)/[a-z0-9][a-z0-9.+-]{0,63}$")


@dataclass
class Block:
    """One piece of content, ready to render as text (or a validated data: URL).

    Attributes:
        kind: How to render it. ``notice`` is our own remark (e.g. media withheld).
        text: The text to show (content text, pretty JSON, a notice).
        mime: The MIME type, when known.
        src: A ``data:`` URL for ``image`` and ``audio`` blocks, else ``""``.
        uri: The resource URI (resource links and embedded resources).
        name: The resource name or title.
        description: The resource description.
        size: Decoded byte count of binary content.
    """

    kind: BlockKind
    text: str = ""
    mime: str = ""
    src: str = ""
    uri: str = ""
    name: str = ""
    description: str = ""
    size: int | None = None


@dataclass
class ResultView:
    """A ``tools/call`` result: its blocks, structured content, and whether the tool failed."""

    is_error: bool
    blocks: list[Block] = field(default_factory=list)
    structured: str | None = None


@dataclass
class PromptMessageView:
    """One message of a ``prompts/get`` result."""

    role: str
    block: Block


@dataclass
class LogView:
    """One ``notifications/message`` entry."""

    level: str
    logger: str
    text: str


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def data_url(mime: Any, data: Any, family: Literal["image", "audio"]) -> tuple[str, str, int]:
    """Build a ``data:`` URL for base64 ``data`` of MIME type ``mime``.

    Returns:
        ``(url, problem, size)``: ``url`` is ``""`` and ``problem`` says why
        when the MIME type is not ``family/*``, the data is not valid base64,
        or the media is too large.
    """
    kind = _str(mime).strip().lower()
    if not _MIME.match(kind) or not kind.startswith(family + "/"):
        return "", f"{family} withheld: MIME type {_str(mime)!r} is not an {family} type", 0
    if not isinstance(data, str):
        return "", f"{family} withheld: no base64 data", 0
    compact = "".join(data.split())
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return "", f"{family} withheld: data is not valid base64", 0
    if len(raw) > MAX_MEDIA_BYTES:
        return "", f"{family} withheld: {len(raw)} bytes is over the {MAX_MEDIA_BYTES} byte limit", len(raw)
    return f"data:{kind};base64,{compact}", "", len(raw)


def _text_block(text: str, mime: str = "") -> Block:
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return Block("json", _pretty(json.loads(text)), mime=mime)
        except ValueError:
            pass
    return Block("text", text, mime=mime)


def resource_contents_blocks(contents: Any) -> list[Block]:
    """Blocks for ``resources/read`` contents (or one embedded resource's ``resource``)."""
    items = contents if isinstance(contents, list) else [contents]
    blocks: list[Block] = []
    for item in items:
        if not isinstance(item, Mapping):
            blocks.append(Block("notice", f"unrecognised resource contents: {_pretty(item)}"))
            continue
        uri, mime = _str(item.get("uri")), _str(item.get("mimeType"))
        if "text" in item:
            block = _text_block(_str(item.get("text")), mime)
            block.kind = "json" if block.kind == "json" else "resource"
            block.uri, block.mime = uri, mime
            blocks.append(block)
        elif "blob" in item:
            family: Literal["image", "audio"] = "audio" if mime.lower().startswith("audio/") else "image"
            if mime.lower().startswith(("image/", "audio/")):
                src, problem, size = data_url(mime, item.get("blob"), family)
                if src:
                    blocks.append(Block(family, "", mime=mime, src=src, uri=uri, size=size))
                    continue
                blocks.append(Block("notice", problem, mime=mime, uri=uri))
                continue
            try:
                size = len(base64.b64decode(_str(item.get("blob")), validate=True))
                text = f"binary content, {size} bytes"
            except (binascii.Error, ValueError):
                size, text = 0, "binary content that is not valid base64"
            blocks.append(Block("binary", text, mime=mime, uri=uri, size=size))
        else:
            blocks.append(Block("notice", f"resource contents with neither text nor blob: {_pretty(item)}", uri=uri))
    return blocks


def content_block(content: Any) -> Block:
    """A block for one content item of a tool result or prompt message."""
    if not isinstance(content, Mapping):
        return Block("notice", f"unrecognised content: {_pretty(content)}")
    kind = content.get("type")
    if kind == "text":
        return Block("text", _str(content.get("text")))
    if kind in ("image", "audio"):
        family: Literal["image", "audio"] = "image" if kind == "image" else "audio"
        src, problem, size = data_url(content.get("mimeType"), content.get("data"), family)
        if not src:
            return Block("notice", problem, mime=_str(content.get("mimeType")))
        return Block(family, "", mime=_str(content.get("mimeType")).lower(), src=src, size=size)
    if kind == "resource_link":
        return Block(
            "resource_link",
            "",
            mime=_str(content.get("mimeType")),
            uri=_str(content.get("uri")),
            name=_str(content.get("title")) or _str(content.get("name")),
            description=_str(content.get("description")),
        )
    if kind == "resource":
        blocks = resource_contents_blocks(content.get("resource"))
        return blocks[0] if blocks else Block("notice", "empty embedded resource")
    return Block("notice", f"content of type {kind!r}:\n{_pretty(dict(content))}")


def result_view(result: Mapping[str, Any]) -> ResultView:
    """The view of a ``tools/call`` result (the wire dict: camelCase keys)."""
    content = result.get("content")
    blocks = [content_block(c) for c in content] if isinstance(content, list) else []
    structured = result.get("structuredContent")
    return ResultView(
        is_error=result.get("isError") is True,
        blocks=blocks,
        structured=_pretty(structured) if structured is not None else None,
    )


def prompt_views(result: Mapping[str, Any]) -> list[PromptMessageView]:
    """The messages of a ``prompts/get`` result."""
    messages = result.get("messages")
    if not isinstance(messages, list):
        return []
    out: list[PromptMessageView] = []
    for message in messages:
        if isinstance(message, Mapping):
            out.append(PromptMessageView(_str(message.get("role")) or "?", content_block(message.get("content"))))
    return out


def log_view(params: Mapping[str, Any]) -> LogView:
    """A ``notifications/message`` entry: data strings as they are, anything else as JSON."""
    data = params.get("data")
    return LogView(
        level=_str(params.get("level")) or "info",
        logger=_str(params.get("logger")),
        text=data if isinstance(data, str) else _pretty(data),
    )


def capability_summary(capabilities: Mapping[str, Any] | None) -> list[str]:
    """Server capabilities as short labels: ``tools (listChanged)``, ``resources (subscribe)``..."""
    if not capabilities:
        return []
    out: list[str] = []
    for name, value in capabilities.items():
        flags = [k for k, v in value.items() if v is True] if isinstance(value, Mapping) else []
        out.append(f"{name} ({', '.join(flags)})" if flags else name)
    return out
