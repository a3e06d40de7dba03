from __future__ import annotations

import asyncio
from typing import Any

from ptsite.snippets import run_snippet


async def test_runs_top_level_await_and_streams_output() -> None:
    chunks: list[str] = []
    ns: dict[str, Any] = {"GREETING": "hi"}
    result = await run_snippet(
        "import asyncio\nprint(GREETING)\nawait asyncio.sleep(0)\nx = 2\nprint(x * 21)", ns, chunks.append
    )
    assert result.ok and result.error == ""
    assert "".join(chunks) == "hi\n42\n"
    assert ns["x"] == 2


async def test_syntax_errors_and_exceptions_are_reported() -> None:
    bad = await run_snippet("def (:", {}, lambda t: None)
    assert not bad.ok and "SyntaxError" in bad.error
    out: list[str] = []
    boom = await run_snippet("print('before')\nraise ValueError('nope')", {}, out.append)
    assert not boom.ok and "ValueError: nope" in boom.error and 'File "<snippet>", line 2' in boom.error
    assert out == ["before", "\n"]


async def test_runs_one_snippet_at_a_time() -> None:
    out: list[str] = []
    src = "import asyncio\nprint('start', N)\nawait asyncio.sleep(0.01)\nprint('end', N)"
    await asyncio.gather(run_snippet(src, {"N": 1}, out.append), run_snippet(src, {"N": 2}, out.append))
    text = "".join(out)
    assert text in ("start 1\nend 1\nstart 2\nend 2\n", "start 2\nend 2\nstart 1\nend 1\n")
