"""JSON-RPC envelopes on the wire: decode, encode and build.

The envelope models come from ``mcp_types.jsonrpc`` (the official pydantic
models). Decoding dispatches on the keys present instead of trying each model
of the union in turn, which is both faster and gives a precise error. This
module is pure: no I/O, no browser code.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias, TypeVar

from mcp_types.jsonrpc import (
    INVALID_REQUEST,
    JSONRPC_VERSION,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from pydantic import BaseModel, ValidationError

from .errors import RemoteProtocolError
from .wire import validation_message

__all__ = [
    "ErrorData",
    "JSONRPCError",
    "JSONRPCNotification",
    "JSONRPCRequest",
    "JSONRPCResponse",
    "RequestId",
    "TransportMessage",
    "decode_message",
    "decode_messages",
    "decode_or_error",
    "encode_message",
    "error_response",
    "make_notification",
    "make_request",
    "make_response",
    "message_from_obj",
    "message_to_obj",
]

TransportMessage: TypeAlias = JSONRPCRequest | JSONRPCNotification | JSONRPCResponse | JSONRPCError
"""Any JSON-RPC message a transport carries: request, notification, result or error response."""

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""``json.dumps`` with these options builds a new encoder on every call; one made once does the same."""
_DECODER = json.JSONDecoder()
"""What ``json.loads`` uses for text (its default decoder)."""


def _loads(data: str | bytes) -> Any:
    """``json.loads(data)``, minus its encoding detection when ``data`` is bytes that can only be UTF-8.

    ``json.loads`` reads bytes as UTF-8 unless they start with a BOM or have a NUL in the first two
    bytes (UTF-16/32): bytes starting with ``{`` or ``[`` and no NUL next are UTF-8 for it too.
    Anything else, and ``str``, takes ``json.loads`` itself.
    """
    if type(data) is bytes and data[:1] in (b"{", b"[") and len(data) > 1 and data[1]:
        return _DECODER.decode(data.decode("utf-8", "surrogatepass"))
    return json.loads(data)


def message_from_obj(obj: object) -> TransportMessage:
    """Validate one decoded JSON value as a JSON-RPC message.

    The common shapes (the envelope's fields of the right types) are checked by hand and built
    without a second validation pass; anything else goes through the pydantic model, which
    gives the precise error. Unknown envelope members are ignored either way, as the models do.

    Raises:
        RemoteProtocolError: The value is not a valid JSON-RPC 2.0 message.
    """
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"JSON-RPC message must be an object, got {type(obj).__name__}")
    if obj.get("jsonrpc") != JSONRPC_VERSION:
        raise RemoteProtocolError(f'JSON-RPC message needs "jsonrpc": "2.0", got {obj.get("jsonrpc")!r}')
    model: type[TransportMessage]
    if "method" in obj:
        method, params = obj["method"], obj.get("params")
        well_formed = isinstance(method, str) and (params is None or type(params) is dict)
        if "id" in obj:
            model = JSONRPCRequest
            request_id = obj["id"]
            if well_formed and _is_id(request_id):
                return make_request(request_id, method, params)
        else:
            model = JSONRPCNotification
            if well_formed:
                return make_notification(method, params)
    elif "result" in obj:
        model = JSONRPCResponse
        if type(obj["result"]) is dict and _is_id(obj.get("id")):
            return make_response(obj["id"], obj["result"])
    elif "error" in obj:
        model = JSONRPCError
    else:
        raise RemoteProtocolError("JSON-RPC message has none of method, result, error")
    try:  # anything unusual takes the full validation, and its precise error
        return model.model_validate(obj)
    except ValidationError as exc:
        raise RemoteProtocolError(validation_message(exc, f"invalid JSON-RPC {model.__name__}")) from None


def _is_id(value: object) -> bool:
    """Whether ``value`` is a valid JSON-RPC id of a request or response (a string or an integer)."""
    return type(value) is int or type(value) is str


def decode_messages(data: str | bytes) -> list[TransportMessage]:
    """Decode a JSON text holding one message or a batch (protocol 2025-03-26).

    Raises:
        RemoteProtocolError: The text is not JSON or holds an invalid message.
    """
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    if isinstance(obj, list):
        if not obj:
            raise RemoteProtocolError("empty JSON-RPC batch")
        return [message_from_obj(item) for item in obj]
    return [message_from_obj(obj)]


def decode_message(data: str | bytes) -> TransportMessage:
    """Decode a JSON text holding exactly one message.

    Raises:
        RemoteProtocolError: The text is not JSON, is a batch, or is not a valid message.
    """
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    return message_from_obj(obj)


def message_to_obj(message: TransportMessage) -> dict[str, Any]:
    """Turn a message into the JSON-ready dict sent on the wire (``_meta`` aliases, no nulls)."""
    obj = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(message, JSONRPCError):
        obj["id"] = message.id  # JSON-RPC requires "id": null when the id is unknown
    return obj


def encode_message(message: TransportMessage) -> str:
    """Serialize a message to compact JSON text.

    The envelope is laid out by hand and its plain-JSON params or result go to the standard
    ``json`` encoder, which is a few times quicker than the model serializer in Pyodide; anything
    else in them (a model, NaN) takes the model serializer, which turns NaN into ``null``.
    """
    if isinstance(message, JSONRPCError):
        obj: dict[str, Any] = message_to_obj(message)
    elif isinstance(message, JSONRPCResponse):
        obj = {"jsonrpc": JSONRPC_VERSION, "id": message.id, "result": message.result}
    else:
        obj = {"jsonrpc": JSONRPC_VERSION}
        if isinstance(message, JSONRPCRequest):
            obj["id"] = message.id
        obj["method"] = message.method
        if message.params is not None:
            obj["params"] = message.params
    try:
        return _ENCODER.encode(obj)
    except (TypeError, ValueError):
        return message.model_dump_json(by_alias=True, exclude_none=True)


# The builders below skip validation (``model_construct``): the envelope's four fields are ours and
# checked here, and validating every outgoing message again was a noticeable part of a call in Pyodide.


def _check_id(request_id: object) -> None:
    if not _is_id(request_id) and (not isinstance(request_id, int | str) or isinstance(request_id, bool)):
        raise TypeError(f"a JSON-RPC id is a string or an integer, got {request_id!r}")


_M = TypeVar("_M", bound=BaseModel)


def _built(model: type[_M], fields: dict[str, Any]) -> _M:
    """A model from fields checked already: ``model_construct`` minus its generality (half the time)."""
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", fields)
    object.__setattr__(instance, "__pydantic_fields_set__", set(fields))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


def make_request(request_id: RequestId, method: str, params: dict[str, Any] | None = None) -> JSONRPCRequest:
    """Build a request envelope."""
    _check_id(request_id)
    return _built(JSONRPCRequest, {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method, "params": params})


def make_notification(method: str, params: dict[str, Any] | None = None) -> JSONRPCNotification:
    """Build a notification envelope."""
    return _built(JSONRPCNotification, {"jsonrpc": JSONRPC_VERSION, "method": method, "params": params})


def make_response(request_id: RequestId, result: dict[str, Any]) -> JSONRPCResponse:
    """Build a result response envelope."""
    _check_id(request_id)
    return _built(JSONRPCResponse, {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result})


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> JSONRPCError:
    """Build an error response envelope."""
    return JSONRPCError(jsonrpc=JSONRPC_VERSION, id=request_id, error=ErrorData(code=code, message=message, data=data))


# -- decoding for a server: a message, or the error to answer with ----------------------------------


def decode_or_error(
    data: str | bytes, *, allow_batch: bool, what: str = "message"
) -> tuple[list[TransportMessage], bool] | JSONRPCError:
    """Decode an incoming JSON text, or build the JSON-RPC error a server answers it with.

    The one place where a server's HTTP body, stdio line or WebSocket frame becomes
    messages, so every transport refuses bad input with the same codes: -32700 for
    text that is not JSON, -32600 for JSON that is not a JSON-RPC message or batch.
    The -32600 error carries the message's id when it has a valid one (JSON-RPC 2.0
    asks for null only when the id cannot be detected).

    Args:
        data: The received text (bytes are decoded as JSON does: UTF-8, -16 or -32).
        allow_batch: Whether a JSON array is a batch (protocol 2025-03-26 over HTTP);
            otherwise an array is an invalid message.
        what: What ``data`` is called in the parse error (``"body"``, ``"line"``, ``"frame"``).

    Returns:
        ``(messages, was_batch)``, with at least one message; or the error response to send.
    """
    try:
        obj = _loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        return error_response(None, PARSE_ERROR, f"Parse error: the {what} is not valid JSON")
    batch = allow_batch and isinstance(obj, list)
    items: list[object] = obj if batch else [obj]
    if not items:
        return error_response(None, INVALID_REQUEST, "Invalid Request: empty batch")
    try:
        return [message_from_obj(item) for item in items], batch
    except RemoteProtocolError as exc:
        return error_response(None if batch else _detected_id(obj), INVALID_REQUEST, f"Invalid Request: {exc}")


def _detected_id(obj: object) -> RequestId | None:
    """The ``id`` of an invalid message when it is a valid JSON-RPC id (string or integer), else None."""
    request_id = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        return request_id
    return None
