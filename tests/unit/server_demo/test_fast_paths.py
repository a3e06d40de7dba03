"""The server's fast paths give what the slow paths they skip would: results, JSON decoding, cached checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as mt
import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from pyodide_transport.messages import _loads
from server_demo.dispatch import serialize_result, text_tool_result
from server_demo.http_rules import accepted_types, host_allowed, origin_allowed

VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("text", ["hello", "", 'quote " and \\ backslash', "é ✓ \x00", "lone \ud800"])
def test_a_text_tool_result_is_the_model_path_byte_for_byte(version: str, text: str) -> None:
    slow = serialize_result("tools/call", version, mt.CallToolResult(content=[mt.TextContent(text=text)]))
    fast = text_tool_result(version, text)
    assert fast == slow and list(fast) == list(slow) and list(fast["content"][0]) == list(slow["content"][0])
    fast["content"][0]["text"] = "changed"  # results share nothing with the template or each other
    assert text_tool_result(version, text) == slow


JSON_CASES: list[str | bytes] = [
    *(b"{}", b"[1, 2]", b'{"a":"\xc3\xa9"}', b'{"a":"\\ud800"}', b"{\x00}\x00", b'{"a":1} x', b'{"a":\xff}'),
    *(b"{", b"[", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"  {}", b"1", '{"a": 1}'),
]


@pytest.mark.parametrize("data", JSON_CASES)
def test_json_decoding_is_json_loads(data: str | bytes) -> None:
    def outcome(decode: Callable[[str | bytes], Any]) -> tuple[str, Any]:
        try:
            return "ok", decode(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return type(exc).__name__, str(exc)

    assert outcome(_loads) == outcome(json.loads)


def test_cached_checks_answer_as_before() -> None:
    for _ in range(2):  # the second round is answered from the cache
        assert host_allowed("127.0.0.1:8000", ["127.0.0.1:*"]) and not host_allowed("evil.example", ["127.0.0.1:*"])
        assert origin_allowed("http://localhost:3000", ("http://localhost:*",))
        assert not origin_allowed("http://evil.example", ("http://localhost:*",))
        assert accepted_types("application/json, text/event-stream") == (True, True)
        assert accepted_types("application/json;q=0") == (False, False)
