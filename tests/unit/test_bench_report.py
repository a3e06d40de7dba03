"""The benchmark report writer (benchmarks/report.py) on fake results: tables, ratios, targets, README block."""

# ruff: noqa: RUF001  (the report prints the multiplication sign)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.common import percentile, summarize


def client_row(impl: str, endpoint: str, conc: int, rate: float) -> dict[str, Any]:
    return {"impl": impl, "endpoint": endpoint, "concurrency": conc, "calls_per_s": rate, "p50_ms": 1.0, "p99_ms": 2.0}


def fake_results() -> dict[str, Any]:
    rows = []
    for ep in ("http-sse", "websocket"):
        for conc in (1, 16):
            rows += [
                client_row("raw", ep, conc, 1000),
                client_row("sdk", ep, conc, 800),
                client_row("sdk2", ep, conc, 900),
                client_row("ours", ep, conc, 850),
                client_row("ours-modern", ep, conc, 700),
            ]
    server = [
        {
            "server": s,
            "mode": m,
            "concurrency": c,
            "calls_per_s": rate,
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "server_cpu_ms_per_call": cpu,
        }
        for m in ("stateless", "stateful")
        for c in (1, 16)
        for s, rate, cpu in (("server_demo", 900.0, 0.2), ("python-sdk", 300.0, 0.8))
    ]
    marks = {"runtime": 2000.0, "wheels": 2300.0, "imports": 2900.0, "handshake": 2950.0, "call": 2960.0}
    cold = {
        "bare": {
            k: {"marks_ms": {"runtime": 2000.0, "done": 2010.0}, "total_ms": 2010.0, "fetched": {}}
            for k in ("cold", "warm")
        },
        "minimal": {
            k: {"marks_ms": marks, "total_ms": 2960.0, "fetched": {"pyodide-core": 10, "wheel:mcp_types": 5}}
            for k in ("cold", "warm")
        },
    }
    return {
        "date": "2026-01-01 00:00",
        "machine": {"nproc": 2, "cpu": "Test CPU", "memory_gib": 4.0},
        "config": {"calls": 100, "rounds": 2},
        "client": {
            "rows": rows,
            "split_us": {"session_us": 150.0, "encode_us": 8.0, "decode_us": 4.0},
            "sdk2_negotiation": {
                "http-sse": {"default": {"version": "2025-11-25"}, "auto": {"version": "2026-07-28"}},
                "websocket": {"default": {"version": "2025-11-25"}, "auto": {"error": "Error: probe failed"}},
            },
        },
        "cold_start": cold,
        "server": {
            "throughput": server,
            "memory": [
                {
                    "server": "server_demo",
                    "sessions": 1000,
                    "errors": 0,
                    "rss_before_kib": 1000,
                    "rss_after_kib": 7000,
                    "kib_per_session": 6.0,
                }
            ],
        },
        "payload": {"pyodide core": {"files": 5, "bytes": 13_000_000, "gzip_bytes": 6_000_000}},
    }


def test_markdown_has_every_part_with_ratios_and_targets() -> None:
    text = report.markdown(fake_results())
    for heading in ("### 1. Browser client", "### 2. Cold start", "### 3. Server", "### 4. Payload", "### Targets"):
        assert heading in text
    header = "| transport | calls | raw JS | TS SDK 1.32 | TS client 2.4 | ours | ours/1.32 | ours/2.4 | ours/raw |"
    assert header + " ours 2026-07-28 |" in text
    # raw, 1.32, 2.4, ours; ours over 1.32, 2.4 and raw; ours at 2026-07-28
    assert "| 1000 (1.0 / 2.0) | 800 (1.0 / 2.0) | 900 (1.0 / 2.0) | 850 (1.0 / 2.0) |" in text
    assert "| 1.06× | 0.94× | 0.85× | 700 (1.0 / 2.0) |" in text
    assert "| ours ≥ 1.0× TS SDK 1.32 (HTTP) | worst 1.06× (http-sse, seq) | yes |" in text
    assert "| ours ≥ 1.0× TS client 2.4 (WebSocket) | worst 0.94× (websocket, seq) | **no** |" in text
    assert "| ours ≥ 0.8× raw JS floor (WebSocket) | worst 0.85× (websocket, seq) | yes |" in text
    assert "negotiates 2025-11-25 (its `versionNegotiation` defaults to `legacy`" in text
    assert "it negotiates 2026-07-28 on `/mcp`; an error (Error: probe failed) on `/ws`." in text
    assert "calls/s worst 3.00×; CPU per call worst 4.00× | yes |" in text
    assert "+0.95 s vs bare; +0.96 s after its own boot | **no** |" in text  # 2960 - 2010 ms; 2960 - 2000 ms
    assert "**6.0 KiB**" in text


def test_cold_table_splits_cumulative_marks_into_stages() -> None:
    line = next(row for row in report.cold_table(fake_results()).splitlines() if row.startswith("| minimal page"))
    assert line.split(" | ")[1:6] == ["2000", "300", "600", "50", "10"]


def test_chart_is_svg_html() -> None:
    page = report.chart_html(fake_results())
    assert page.count("<svg") == 4 and "server_demo" in page


def test_update_readme_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Performance\n\nintro\n\n{report.README_BEGIN}\nold\n{report.README_END}\n\n## Next\n")
    report.update_readme(readme, "new table")
    assert readme.read_text() == (
        f"# x\n\n## Performance\n\nintro\n\n{report.README_BEGIN}\nnew table\n{report.README_END}\n\n## Next\n"
    )
    (tmp_path / "other.md").write_text("no block")
    with pytest.raises(SystemExit):
        report.update_readme(tmp_path / "other.md", "x")


def test_summarize_and_percentile() -> None:
    runs = [
        {"calls": 4, "wall_ms": 100.0, "latencies_ms": [1.0, 2.0, 3.0, 4.0]},
        {"calls": 4, "wall_ms": 200.0, "latencies_ms": [5.0, 6.0, 7.0, 100.0]},
    ]
    out = summarize(runs)
    assert out["calls_per_s"] == 30.0  # median of 40/s and 20/s
    assert out["p50_ms"] == 4.0 and out["p99_ms"] == 100.0
    assert percentile([], 50) != percentile([], 50)  # NaN
