"""The server core's dispatcher: what a request means, decided without I/O.

:class:`~server_demo.core.ServerSession` hands each incoming request and a
snapshot of its session (:class:`SessionState`) to :func:`route_request`,
which answers with a :data:`Route`:

* :class:`Reply`: answer with this result now (``ping`` before the handshake);
* :class:`Initialize`: accept the handshake at the negotiated version;
* :class:`Call`: run the handler for this parsed request, in this era and version.

The session runs the handler (handlers are async and reach the registry and
the connection) and gives its result back to :func:`finish_result`, which
serializes it for the request's version. Every refusal is a
:class:`~server_demo.errors.RequestError`; :func:`error_for` turns any failure
into the JSON-RPC error to send. Nothing here awaits, so every rule is
testable with plain function calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeAlias

import mcp_types as mt
from mcp_types import methods
from mcp_types.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import BaseModel, ValidationError

from pyodide_transport.messages import JSONRPCError, JSONRPCRequest, RequestId, error_response
from pyodide_transport.wire import validation_message

from .errors import RequestError
from .modern import is_modern_request, parse_envelope

__all__ = [
    "RESOURCE_NOT_FOUND",
    "Call",
    "Era",
    "Initialize",
    "Reply",
    "Route",
    "SessionState",
    "TextToolResult",
    "check_tool_arguments",
    "duplicate_request_error",
    "error_for",
    "finish_result",
    "missing_capability_error",
    "parse_request",
    "resource_not_found_error",
    "route_request",
    "serialize_result",
    "text_tool_result",
]

Era: TypeAlias = Literal["handshake", "modern"]
"""Which protocol era a request speaks: the ``initialize`` handshake or the 2026-07-28 envelope."""

RESOURCE_NOT_FOUND = -32002
"""The handshake era's error code for an unknown resource URI (2026-07-28 uses -32602)."""


@dataclass(frozen=True)
class SessionState:
    """What the dispatcher needs to know about the session a request arrives on.

    Attributes:
        protocol_version: The negotiated version; ``None`` before the handshake.
        client_capabilities: What the client declared in ``initialize``.
        log_level: The level set with ``logging/setLevel`` (``None``: no log messages).
    """

    protocol_version: str | None
    client_capabilities: mt.ClientCapabilities
    log_level: str | None


@dataclass(frozen=True)
class Reply:
    """Answer the request with ``result`` at once; no handler runs."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Initialize:
    """Accept the handshake: the session adopts these values and answers with its ``InitializeResult``."""

    protocol_version: str
    client_capabilities: mt.ClientCapabilities
    client_info: mt.Implementation


@dataclass(frozen=True)
class Call:
    """Run the handler for ``request``; the other fields are what its context needs.

    Attributes:
        method: The JSON-RPC method (which result type to serialize).
        request: The request parsed for ``protocol_version``.
        era: The protocol era of the request.
        protocol_version: The version the request is served at.
        client_capabilities: The session's (handshake) or the request's (modern) capabilities.
        progress_token: The request's progress token, if any.
        log_level: Which log messages the client wants.
        input_responses: A 2026-07-28 retry's answers to earlier input requests.
        request_state: The opaque state a 2026-07-28 retry echoes from the previous round.
    """

    method: str
    request: mt.Request[Any, Any]
    era: Era
    protocol_version: str
    client_capabilities: mt.ClientCapabilities
    progress_token: mt.ProgressToken | None
    log_level: str | None
    input_responses: Mapping[str, Any] | None = None
    request_state: str | None = None


def _input_responses(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A retry's ``inputResponses`` (an object of answers by key), or None."""
    value = (params or {}).get("inputResponses")
    return value if isinstance(value, Mapping) else None


def _request_state(params: Mapping[str, Any] | None) -> str | None:
    """A retry's echoed ``requestState`` (a string), or None."""
    value = (params or {}).get("requestState")
    return value if isinstance(value, str) else None


Route: TypeAlias = Reply | Initialize | Call
"""What :func:`route_request` decides for one request."""


def route_request(request: JSONRPCRequest, state: SessionState) -> Route:
    """Decide how to serve ``request`` on a session in ``state``.

    Raises:
        RequestError: The request cannot be served: a malformed envelope, an unsupported version,
            a request before or a second ``initialize``, an unknown method or invalid params.
    """
    params = request.params
    if is_modern_request(request.method, params):
        envelope = parse_envelope(params)
        meta: Mapping[str, Any] = (params or {}).get("_meta") or {}
        return Call(
            method=request.method,
            request=parse_request(request, envelope.protocol_version),
            era="modern",
            protocol_version=envelope.protocol_version,
            client_capabilities=envelope.client_capabilities,
            progress_token=meta.get("progressToken"),
            log_level=envelope.log_level,
            input_responses=_input_responses(params),
            request_state=_request_state(params),
        )
    if request.method == "initialize":
        return _initialize(request, initialized=state.protocol_version is not None)
    if state.protocol_version is None:
        if request.method != "ping":
            raise RequestError(INVALID_REQUEST, "the session is not initialized: send initialize first")
        return Reply({})
    version = state.protocol_version or LATEST_HANDSHAKE_VERSION
    model = parse_request(request, version)
    request_meta = getattr(model.params, "meta", None) if model.params is not None else None
    return Call(
        method=request.method,
        request=model,
        era="handshake",
        protocol_version=version,
        client_capabilities=state.client_capabilities,
        progress_token=request_meta.get("progress_token") if request_meta else None,
        log_level=state.log_level,
    )


def _initialize(request: JSONRPCRequest, *, initialized: bool) -> Initialize:
    """Negotiate the handshake: the client's version if we speak it, else our latest."""
    if initialized:
        raise RequestError(INVALID_REQUEST, "the session is already initialized")
    requested = (request.params or {}).get("protocolVersion")
    version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    model = parse_request(request, version)
    assert isinstance(model, mt.InitializeRequest)
    return Initialize(
        protocol_version=version,
        client_capabilities=model.params.capabilities,
        client_info=model.params.client_info,
    )


def parse_request(request: JSONRPCRequest, version: str) -> mt.Request[Any, Any]:
    """Parse a request's params as the method defines them at ``version``.

    Raises:
        RequestError: -32601 for a method unknown at that version, -32602 for invalid params.
    """
    try:
        return methods.parse_client_request(request.method, version, request.params)
    except KeyError:
        raise RequestError(METHOD_NOT_FOUND, f"method not found: {request.method}") from None
    except ValidationError as exc:
        raise RequestError(INVALID_PARAMS, validation_message(exc, f"invalid params for {request.method}")) from None


def serialize_result(method: str, version: str, result: BaseModel) -> dict[str, Any]:
    """The wire form of a handler's result: the method's result type at ``version``, camelCase, no nulls."""
    data: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    try:
        return methods.serialize_server_result(method, version, data)
    except KeyError:
        return data


@dataclass(frozen=True, slots=True)
class TextToolResult:
    """A ``tools/call`` result of one text block (a tool that returned a ``str``), not built as a model yet.

    :func:`finish_result` lays it out from :func:`text_tool_result`'s per-version template: the same
    wire form as ``CallToolResult(content=[TextContent(text=...)])`` without four pydantic passes over
    an object the server made itself.
    """

    text: str


_PROBE = "\x00probe\x00"


@cache
def _text_result_template(version: str) -> dict[str, Any] | None:
    """The wire form of a one-text-block ``tools/call`` result at ``version``, with :data:`_PROBE` as text.

    None when that form is not the plain shape the fast path can fill in (then the model path runs).
    """
    model = mt.CallToolResult(content=[mt.TextContent(text=_PROBE)])
    try:
        data = serialize_result("tools/call", version, model)
    except (ValueError, ValidationError):  # pragma: no cover - an unknown version is refused earlier
        return None
    content = data.get("content")
    if not (isinstance(content, list) and len(content) == 1 and content[0] == {"type": "text", "text": _PROBE}):
        return None  # pragma: no cover - mcp-types lays the block out differently
    others = [v for k, v in data.items() if k != "content"]
    if "_meta" in data or not all(v is None or isinstance(v, bool | int | float | str) for v in others):
        return None  # pragma: no cover - nested values would be shared between results
    return data


def text_tool_result(version: str, text: str) -> dict[str, Any]:
    """The wire form of ``CallToolResult(content=[TextContent(text=text)])`` at ``version``."""
    template = _text_result_template(version)
    if template is None or type(text) is not str:
        return serialize_result("tools/call", version, mt.CallToolResult(content=[mt.TextContent(text=text)]))
    block = template["content"][0]
    return {**template, "content": [{**block, "text": text}]}


def finish_result(
    call: Call,
    result: BaseModel | TextToolResult,
    server_info: mt.Implementation | Callable[[], mt.Implementation],
) -> dict[str, Any]:
    """Serialize a handler's result for ``call``; a 2026-07-28 result names the server in ``_meta``.

    ``server_info`` may be a function making it: it is only needed in the 2026-07-28 era.
    """
    if isinstance(result, TextToolResult):
        data = text_tool_result(call.protocol_version, result.text)
    else:
        data = serialize_result(call.method, call.protocol_version, result)
    if call.era == "modern":
        info = server_info if isinstance(server_info, mt.Implementation) else server_info()
        data.setdefault("_meta", {})[mt.SERVER_INFO_META_KEY] = info.model_dump(by_alias=True, exclude_none=True)
    return data


def error_for(request_id: RequestId, exc: Exception) -> JSONRPCError:
    """The error response for a failed request: a :class:`RequestError` as raised, anything else -32603."""
    if isinstance(exc, RequestError):
        return error_response(request_id, exc.code, exc.message, exc.data)
    return error_response(request_id, INTERNAL_ERROR, "internal server error")


def duplicate_request_error(request_id: RequestId) -> JSONRPCError:
    """The refusal of a request whose id is still in flight on the same connection."""
    return error_response(request_id, INVALID_REQUEST, f"request id {request_id!r} is already in use")


def missing_capability_error(era: Era, name: str) -> RequestError:
    """The error for a handler that needs a client capability the client did not declare."""
    if era == "modern":
        return RequestError(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            f"this request needs the client capability {name!r}",
            {"requiredCapabilities": {name: {}}},
        )
    return RequestError(INVALID_REQUEST, f"the client did not declare the {name!r} capability")


def resource_not_found_error(era: Era, uri: str) -> RequestError:
    """The error for a ``resources/read`` of a URI no resource or template serves."""
    code = INVALID_PARAMS if era == "modern" else RESOURCE_NOT_FOUND
    return RequestError(code, f"resource not found: {uri}", {"uri": uri})


_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def check_tool_arguments(schema: Mapping[str, Any], args: Mapping[str, Any]) -> str | None:
    """A minimal JSON Schema check of tool arguments (required keys, top-level types, enums).

    Returns:
        What is wrong, in one phrase, or ``None`` when the arguments fit.
    """
    for key in schema.get("required", []):
        if key not in args:
            return f"missing required argument {key!r}"
    props: Mapping[str, Any] = schema.get("properties", {})
    for key, value in args.items():
        spec = props.get(key)
        if spec is None:
            if schema.get("additionalProperties") is False:
                return f"unexpected argument {key!r}"
            continue
        expected = _JSON_TYPES.get(spec.get("type", ""))
        bad_bool = isinstance(value, bool) and spec.get("type") in ("number", "integer")
        if expected is not None and (not isinstance(value, expected) or bad_bool):
            return f"argument {key!r} must be of type {spec['type']}"
        if "enum" in spec and value not in spec["enum"]:
            return f"argument {key!r} must be one of {spec['enum']}"
    return None
