"""A real Pyodide interpreter in a Node process, driven from pytest.

``NodePyodide.run(code)`` ships Python source to ``runner.mjs`` and returns the
value of its last expression as text; a Python exception inside Pyodide becomes
:class:`PyodideError` carrying the Pyodide traceback. The interpreter boots once
per test session; each snippet gets fresh globals.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "site" / "dist"


class PyodideError(AssertionError):
    """Python code raised inside Pyodide (the message holds its traceback)."""


class NodePyodide:
    """One Node process running Pyodide, fed code over stdin."""

    def __init__(self, boot_timeout: float = 120.0) -> None:
        if not (DIST / "pyodide" / "pyodide-lock.json").exists():
            raise RuntimeError("site/dist is not built: run `python build.py site` first")
        node = os.environ.get("PT_NODE") or shutil.which("node") or "node"
        runner = Path(__file__).with_name("runner.mjs")
        self._proc = subprocess.Popen(
            [node, "--experimental-websocket", str(runner), str(DIST), str(ROOT / "tests")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._sel = selectors.DefaultSelector()
        assert self._proc.stdout is not None
        self._sel.register(self._proc.stdout, selectors.EVENT_READ)
        self._next_id = 0
        self.info = self._read(boot_timeout)
        if not self.info.get("ready"):
            raise RuntimeError(f"Pyodide did not boot: {self.info}")

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise TimeoutError(f"Pyodide did not answer within {timeout:.0f} s")
            if not self._sel.select(remaining):
                continue
            line = self._proc.stdout.readline()
            if not line:
                err = self._proc.stderr.read() if self._proc.stderr else ""
                raise RuntimeError(f"the Node/Pyodide process exited: {err[-2000:]}")
            if line.startswith("{"):
                msg: dict[str, Any] = json.loads(line)
                return msg

    def run(self, code: str, timeout: float = 120.0) -> str | None:
        """Run ``code`` (top-level await allowed) and return its last expression as text."""
        assert self._proc.stdin is not None
        self._next_id += 1
        self._proc.stdin.write(json.dumps({"id": self._next_id, "code": code}) + "\n")
        self._proc.stdin.flush()
        reply = self._read(timeout)
        if not reply.get("ok"):
            raise PyodideError(f"{reply.get('error')}\n--- output ---\n{reply.get('output', '')}")
        result: str | None = reply.get("result")
        return result

    def run_json(self, code: str, timeout: float = 120.0) -> Any:
        """Run ``code`` whose last expression is a JSON string, and decode it."""
        text = self.run(code, timeout)
        return None if text is None else json.loads(text)

    def close(self) -> None:
        """Stop the Node process."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=10)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
