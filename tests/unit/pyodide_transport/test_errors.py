"""errors.py: one tree, errors that say what to do."""

from __future__ import annotations

import pyodide_transport
from pyodide_transport import errors


def test_every_public_error_derives_from_transport_error() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.TransportError), name
            assert getattr(pyodide_transport, name) is value, f"{name} is not exported from the package"


def test_errors_carry_their_details() -> None:
    status = errors.HTTPStatusError(503, body="busy " * 100)
    assert status.status == 503 and "busy" in str(status) and len(str(status)) < 300
    closed = errors.ConnectionClosedError("gone", code=1009, reason="too big")
    assert (closed.code, closed.reason) == (1009, "too big")
    mcp = errors.MCPError(-32602, "bad params", {"field": "a"})
    assert (mcp.code, mcp.error_message, mcp.data) == (-32602, "bad params", {"field": "a"})
    version = errors.UnsupportedProtocolVersionError(-32022, "no", supported=("2025-11-25",))
    assert isinstance(version, errors.MCPError) and version.supported == ("2025-11-25",)
    assert isinstance(errors.RequestTimeoutError(), TimeoutError)


def test_cors_error_names_the_cause_and_the_fix() -> None:
    text = str(errors.CORSError("http://127.0.0.1:9/mcp", "Failed to fetch"))
    assert "CORS" in text and "http://127.0.0.1:9/mcp" in text and "Failed to fetch" in text
    for header in ("Access-Control-Allow-Origin", "mcp-session-id", "Access-Control-Expose-Headers"):
        assert header in text
    assert isinstance(errors.CORSError("u"), errors.NetworkError)
    assert issubclass(errors.MessageTooLargeError, errors.RemoteProtocolError)
    assert issubclass(errors.LocalProtocolError, errors.ProtocolError)
