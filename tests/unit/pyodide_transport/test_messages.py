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
    decode_or_error,
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


@pytest.mark.parametrize(
    ("data", "allow_batch", "code", "error_id", "needle"),
    [
        (b'{"jsonrpc": "2.0", "id": 1,', True, -32700, None, "Parse error: the body is not valid JSON"),
        (b"\xff\xfe hello", True, -32700, None, "Parse error"),
        (b"", False, -32700, None, "Parse error"),
        ("[" * 100_000 + "]" * 100_000, True, -32700, None, "Parse error"),  # deeper than the recursion limit
        ("[]", True, -32600, None, "Invalid Request: empty batch"),
        ("[]", False, -32600, None, "must be an object, got list"),
        ('[{"jsonrpc":"2.0","method":"a"}]', False, -32600, None, "must be an object, got list"),
        ("42", True, -32600, None, "must be an object, got int"),
        ('{"jsonrpc":"1.0","id":5,"method":"ping"}', False, -32600, 5, '"jsonrpc": "2.0"'),
        ('{"jsonrpc":"2.0","id":"a","result":null,"method":3}', False, -32600, "a", "Invalid Request: "),
        ('{"jsonrpc":"1.0","id":true,"method":"ping"}', False, -32600, None, "Invalid Request: "),
        ('{"jsonrpc":"1.0","id":1.5,"method":"ping"}', False, -32600, None, "Invalid Request: "),
        ('[{"jsonrpc":"1.0","id":5,"method":"ping"}]', True, -32600, None, "Invalid Request: "),  # batch: id null
    ],
)
def test_decode_or_error_answers_bad_input_with_the_json_rpc_error(
    data: str | bytes, allow_batch: bool, code: int, error_id: object, needle: str
) -> None:
    error = decode_or_error(data, allow_batch=allow_batch, what="body")
    assert isinstance(error, JSONRPCError)
    assert (error.error.code, error.id) == (code, error_id)
    assert needle in error.error.message


def test_decode_or_error_decodes_one_message_or_a_batch() -> None:
    one = '{"jsonrpc":"2.0","id":1,"method":"ping"}'
    assert decode_or_error(one, allow_batch=False) == ([make_request(1, "ping")], False)
    assert decode_or_error(one.encode(), allow_batch=True) == ([make_request(1, "ping")], False)
    both = f'[{one},{{"jsonrpc":"2.0","method":"n"}}]'
    assert decode_or_error(both, allow_batch=True) == ([make_request(1, "ping"), make_notification("n")], True)
    error = decode_or_error("nope", allow_batch=False)
    assert isinstance(error, JSONRPCError) and error.error.message == "Parse error: the message is not valid JSON"


@given(st.binary(max_size=64) | st.text(max_size=64), st.booleans())
def test_decode_or_error_never_raises(data: bytes | str, allow_batch: bool) -> None:
    decoded = decode_or_error(data, allow_batch=allow_batch)
    if not isinstance(decoded, JSONRPCError):
        messages, batch = decoded
        assert messages and (allow_batch or not batch)
