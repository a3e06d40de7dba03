"""A protected MCP server whose OAuth setup breaks browsers, for tests of the errors that name why.

Chosen by path, on one threaded ``http.server`` on 127.0.0.1:

* ``/no-cors/mcp``: a proper 401 challenge, but its protected-resource metadata is served
  without CORS headers (a page cannot read it).
* ``/hidden/mcp``: a 401 whose ``WWW-Authenticate`` is not exposed to scripts, and no metadata
  at any well-known URL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["misconfigured_oauth_server"]

_NO_CORS_METADATA = "/.well-known/oauth-protected-resource/no-cors/mcp"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read what the client says, not the access log."""

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "*")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = f"http://{self.headers['Host']}"
        self.send_response(401)
        self._cors()
        if self.path.startswith("/no-cors/"):
            self.send_header("WWW-Authenticate", f'Bearer resource_metadata="{host}{_NO_CORS_METADATA}"')
            self.send_header("Access-Control-Expose-Headers", "WWW-Authenticate")
        else:
            self.send_header("WWW-Authenticate", f'Bearer resource_metadata="{host}/elsewhere"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path != _NO_CORS_METADATA:
            self._empty(404)
            return
        body = json.dumps({"resource": f"http://{self.headers['Host']}/no-cors/mcp", "authorization_servers": []})
        self.send_response(200)  # and no Access-Control-Allow-Origin
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@contextmanager
def misconfigured_oauth_server() -> Iterator[str]:
    """Serve the handler on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
