from __future__ import annotations

import base64

import pytest
from ptsite.views import (
    MAX_MEDIA_BYTES,
    capability_summary,
    content_block,
    data_url,
    log_view,
    prompt_views,
    resource_contents_blocks,
    result_view,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
XSS = "<img src=x onerror=alert(1)> <script>alert(1)</script>"


def test_text_image_audio_link_and_embedded_blocks() -> None:
    view = result_view(
        {
            "content": [
                {"type": "text", "text": XSS},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "audio", "data": PNG, "mimeType": "audio/wav"},
                {"type": "resource_link", "uri": "demo://readme", "name": "readme", "description": "The readme"},
                {"type": "resource", "resource": {"uri": "demo://r", "mimeType": "text/markdown", "text": "# hi"}},
                {
                    "type": "resource",
                    "resource": {"uri": "demo://j", "mimeType": "application/json", "text": '{"a":1}'},
                },
            ],
            "structuredContent": {"result": 3},
        }
    )
    assert not view.is_error
    kinds = [b.kind for b in view.blocks]
    assert kinds == ["text", "image", "audio", "resource_link", "resource", "json"]
    assert view.blocks[0].text == XSS  # kept verbatim: the DOM layer shows it as text
    assert view.blocks[1].src == f"data:image/png;base64,{PNG}"
    assert view.blocks[2].src.startswith("data:audio/wav;base64,")
    assert view.blocks[3].uri == "demo://readme" and view.blocks[3].description == "The readme"
    assert view.blocks[4].text == "# hi" and view.blocks[4].uri == "demo://r"
    assert view.blocks[5].text == '{\n  "a": 1\n}'
    assert view.structured == '{\n  "result": 3\n}'


def test_is_error_is_reported() -> None:
    view = result_view({"content": [{"type": "text", "text": "boom"}], "isError": True})
    assert view.is_error and view.blocks[0].text == "boom"


@pytest.mark.parametrize(
    ("mime", "data", "problem"),
    [
        ("text/html", PNG, "not an image type"),
        ("image/png;x=1,<script>", PNG, "not an image type"),
        ("audio/wav", PNG, "not an image type"),
        ("image/png", "not base64!!", "not valid base64"),
        ("image/png", None, "no base64 data"),
        (None, PNG, "not an image type"),
    ],
)
def test_media_is_withheld_unless_it_is_base64_of_an_image_type(mime: object, data: object, problem: str) -> None:
    url, why, _ = data_url(mime, data, "image")
    assert url == "" and problem in why
    block = content_block({"type": "image", "mimeType": mime, "data": data})
    assert block.kind == "notice" and block.src == ""


def test_oversized_media_is_withheld() -> None:
    big = base64.b64encode(b"\0" * (MAX_MEDIA_BYTES + 1)).decode()
    url, why, size = data_url("image/png", big, "image")
    assert url == "" and "limit" in why and size == MAX_MEDIA_BYTES + 1


def test_mime_types_are_normalised_and_newlines_in_base64_are_dropped() -> None:
    url, why, size = data_url("IMAGE/PNG", PNG[:8] + "\n" + PNG[8:], "image")
    assert why == "" and url == f"data:image/png;base64,{PNG}" and size > 0


def test_resource_contents() -> None:
    blocks = resource_contents_blocks(
        [
            {"uri": "test://t", "mimeType": "text/plain", "text": "hello"},
            {"uri": "test://b", "mimeType": "image/png", "blob": PNG},
            {"uri": "test://z", "mimeType": "application/zip", "blob": base64.b64encode(b"abc").decode()},
            {"uri": "test://x", "mimeType": "image/svg+xml", "blob": "%%%"},
            {"uri": "test://?"},
            "junk",
        ]
    )
    assert [b.kind for b in blocks] == ["resource", "image", "binary", "notice", "notice", "notice"]
    assert blocks[2].text == "binary content, 3 bytes" and blocks[2].size == 3


def test_unknown_content_is_shown_as_json_text() -> None:
    block = content_block({"type": "hologram", "x": "<b>"})
    assert block.kind == "notice" and "hologram" in block.text and "<b>" in block.text
    assert content_block("junk").kind == "notice"


def test_prompt_messages() -> None:
    views = prompt_views(
        {
            "messages": [
                {"role": "user", "content": {"type": "text", "text": "Review this"}},
                {"role": "assistant", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
                "junk",
            ]
        }
    )
    assert [(v.role, v.block.kind) for v in views] == [("user", "text"), ("assistant", "image")]
    assert prompt_views({}) == []


def test_log_entries_and_capabilities() -> None:
    assert log_view({"level": "warning", "logger": "demo", "data": "careful"}).text == "careful"
    assert log_view({"level": "info", "data": {"a": 1}}).text == '{\n  "a": 1\n}'
    assert capability_summary({"tools": {"listChanged": True}, "logging": {}, "resources": {"subscribe": True}}) == [
        "tools (listChanged)",
        "logging",
        "resources (subscribe)",
    ]
    assert capability_summary(None) == []
