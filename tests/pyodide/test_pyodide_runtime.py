"""Our package, pydantic and mcp_types import and work inside real Pyodide (Node)."""

from __future__ import annotations

from node_runtime import NodePyodide


def test_runtime_is_pyodide(pyodide: NodePyodide) -> None:
    info = pyodide.run_json("import json, sys\njson.dumps([sys.platform, sys.version_info[:2]])")
    assert info == ["emscripten", [3, 14]]


def test_package_comes_from_our_wheel(pyodide: NodePyodide) -> None:
    where = pyodide.run("import pyodide_transport\npyodide_transport.__file__")
    assert where is not None and "site-packages/pyodide_transport/" in where


def test_pydantic_and_mcp_types_validate(pyodide: NodePyodide) -> None:
    code = """
import json
import pydantic, pydantic_core, mcp_types
from mcp_types.version import LATEST_PROTOCOL_VERSION
result = mcp_types.CallToolResult.model_validate(
    {"content": [{"type": "text", "text": "hi"}], "structuredContent": {"n": 1}}
)
json.dumps([pydantic.VERSION, pydantic_core.__version__, result.content[0].text, LATEST_PROTOCOL_VERSION])
"""
    pyd, core, text, latest = pyodide.run_json(code)
    assert (pyd, core, text) == ("2.14.3", "2.50.4", "hi")
    assert latest == "2026-07-28"


def test_messages_round_trip_in_memory(pyodide: NodePyodide) -> None:
    code = """
import json
import pyodide_transport as pt
from pyodide_transport.messages import decode_message, encode_message, make_request

a, b = pt.InMemoryTransport.create_pair()
await a.send(decode_message('{"jsonrpc": "2.0", "id": 7, "method": "tools/list"}'))
got = await b.receive()
await b.close()
try:
    await a.receive()
    closed = False
except pt.ConnectionClosedError:
    closed = True
json.dumps([encode_message(got), closed, a.transport_type])
"""
    wire, closed, kind = pyodide.run_json(code)
    assert wire == '{"jsonrpc":"2.0","id":7,"method":"tools/list"}'
    assert closed is True
    assert kind == "memory"


def test_python_errors_surface_with_traceback(pyodide: NodePyodide) -> None:
    import pytest
    from node_runtime import PyodideError

    with pytest.raises(PyodideError, match="RemoteProtocolError: invalid JSON"):
        pyodide.run("from pyodide_transport.messages import decode_message\ndecode_message('{')")


def test_imports_use_the_shipped_bytecode(pyodide: NodePyodide) -> None:
    code = """
import json
import mcp_types._types as m
with open(m.__cached__, "rb") as f:
    flags = int.from_bytes(f.read(8)[4:8], "little")
json.dumps(flags)
"""
    assert pyodide.run_json(code) == 0b01  # the build's unchecked-hash pyc, not one written at import
