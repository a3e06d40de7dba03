"""messages.py: decoding dispatches on keys, errors are RemoteProtocolError, encoding is wire-exact."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyodide_transport.errors import RemoteProtocolError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    decode_message,
    decode_messages,
    encode_message,
    error_response,
    make_notification,
    make_request,
    make_response,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"jsonrpc":"2.0","id":1,"method":"ping"}', JSONRPCRequest),
        ('{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}', JSONRPCRequest),
        ('{"jsonrpc":"2.0","method":"notifications/initialized"}', JSONRPCNotification),
        ('{"jsonrpc":"2.0","id":1,"result":{}}', JSONRPCResponse),
        ('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}', JSONRPCError),
    ],
)
def test_decode_picks_the_model_by_keys(text: str, kind: type) -> None:
    assert type(decode_message(text)) is kind
    assert type(decode_message(text.encode())) is kind


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        ("[1]", "must be an object"),
        ('"x"', "must be an object"),
        ('{"id":1,"method":"ping"}', '"jsonrpc": "2.0"'),
        ('{"jsonrpc":"1.0","id":1,"method":"ping"}', '"jsonrpc": "2.0"'),
        ('{"jsonrpc":"2.0","id":1}', "none of method, result, error"),
        ('{"jsonrpc":"2.0","id":1.5,"method":"ping"}', "JSONRPCRequest: id"),
        ('{"jsonrpc":"2.0","id":true,"method":"ping"}', "JSONRPCRequest: id"),
        ('{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', "JSONRPCRequest: params"),
        ('{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}', "JSONRPCError: error.code"),
        ('{"jsonrpc":"2.0","id":1,"result":3}', "JSONRPCResponse: result"),
    ],
)
def test_invalid_input_is_a_remote_protocol_error(text: str | bytes, needle: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_message(text)
    assert needle in str(info.value)


def test_batches_decode_and_empty_batch_is_refused() -> None:
    both = decode_messages('[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":2,"result":{}}]')
    assert [type(m) for m in both] == [JSONRPCNotification, JSONRPCResponse]
    with pytest.raises(RemoteProtocolError, match="empty JSON-RPC batch"):
        decode_messages("[]")
    with pytest.raises(RemoteProtocolError, match="must be an object"):
        decode_message('[{"jsonrpc":"2.0","method":"a"}]')


def test_encode_is_compact_keeps_meta_alias_and_null_error_id() -> None:
    request = make_request(7, "tools/call", {"name": "echo", "_meta": {"progressToken": 7}})
    assert encode_message(request) == (
        '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":7}}}'
    )
    assert encode_message(make_notification("notifications/initialized")) == (
        '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    )
    assert json.loads(encode_message(make_response("x", {}))) == {"jsonrpc": "2.0", "id": "x", "result": {}}
    error = json.loads(encode_message(error_response(None, -32700, "parse error")))
    assert error == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
    assert "data" in json.loads(encode_message(error_response(1, -32602, "bad", {"field": "x"})))["error"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(
    request_id=st.integers(min_value=-(2**53), max_value=2**53) | st.text(),
    method=st.text(min_size=1),
    params=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)
def test_request_round_trips(request_id: int | str, method: str, params: dict[str, object]) -> None:
    message = make_request(request_id, method, params)
    again = decode_message(encode_message(message))
    assert again == message


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_decoding_never_raises_anything_but_remote_protocol_error(data: bytes | str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode_messages(data)
