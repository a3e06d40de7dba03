"""Run an editable docs snippet: Python with top-level ``await``, output captured as it is printed.

Pure Python: ``compile`` with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` gives a code
object whose evaluation returns a coroutine when the snippet awaits, in
CPython and in Pyodide alike. Output goes to a callback as it is written,
so a long snippet shows its progress.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RunResult", "StreamWriter", "run_snippet"]


class StreamWriter(io.TextIOBase):
    """A text stream that hands each write to a callback."""

    def __init__(self, on_text: Callable[[str], None]) -> None:
        super().__init__()
        self._on_text = on_text

    def writable(self) -> bool:
        """Always writable."""
        return True

    def write(self, text: str) -> int:
        """Pass ``text`` to the callback."""
        if text:
            self._on_text(text)
        return len(text)


@dataclass
class RunResult:
    """How a snippet run ended: ``ok``, or the error text (a short traceback)."""

    ok: bool
    error: str = ""


_lock = asyncio.Lock()


def _short_traceback(exc: BaseException) -> str:
    """The traceback frames from the snippet only (not this runner's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<snippet>"]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


async def run_snippet(source: str, namespace: dict[str, Any], on_text: Callable[[str], None]) -> RunResult:
    """Compile and run ``source`` in ``namespace``; ``print`` output goes to ``on_text``.

    Runs one snippet at a time (stdout is process-wide). Syntax errors and
    exceptions come back as :class:`RunResult` with ``ok=False``.
    """
    try:
        code = compile(source, "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as exc:
        return RunResult(False, "".join(traceback.format_exception_only(type(exc), exc)).rstrip())
    async with _lock:
        writer = StreamWriter(on_text)
        try:
            with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
                outcome = eval(code, namespace)  # the reader's own snippet, run in their own page
                if asyncio.iscoroutine(outcome):
                    await outcome
        except Exception as exc:
            return RunResult(False, _short_traceback(exc))
    return RunResult(True)
