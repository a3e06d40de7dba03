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
        for s, rate, cpu in (("server_demo", 900.0, 0.2), ("python-sdk", 300.0, 0.8), ("bare-asgi", 2000.0, 0.1))
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
    assert "| server_demo ≥ 3× Python SDK server | calls/s worst 3.00× (stateless, c1) | yes |" in text
    assert "| server_demo ≥ 0.5× bare-ASGI floor | calls/s worst 0.45× (stateless, c1) | **no** |" in text
    # floor, demo, SDK; demo over the floor and over the SDK; CPU per call of each
    row = "| stateless JSON | 16 | 2000 (1.0 / 2.0) | 900 (1.0 / 2.0) | 300 (1.0 / 2.0) | 0.45× | 3.00× |"
    assert row + " 0.100 / 0.200 / 0.800 |" in text
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


def test_scaling_table_compares_each_setup_with_the_in_memory_default() -> None:
    results = fake_results()
    results["server"]["scaling"] = {
        "configs": {"memory": "1 replica, in memory", "redis": "1 replica, Redis"},
        "rows": [
            {
                "config": c,
                "mode": m,
                "calls_per_s": rate,
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "server_cpu_ms_per_call": cpu,
                "redis_cpu_ms_per_call": 0.05,
            }
            for m in ("stateless", "stateful")
            for c, rate, cpu in (("memory", 1000.0, 0.3), ("redis", 500.0, 0.6))
        ],
    }
    text = report.markdown(results)
    row = "| 1 replica, Redis | 500 (1.0 / 2.0) | 500 (1.0 / 2.0) | 0.50× / 0.50× | 0.600 / 0.600 | 0.050 / 0.050 |"
    assert row in text and "| 1 replica, in memory | 1000 (1.0 / 2.0) |" in text
    assert report.scaling_table(fake_results()) == ""  # no scaling run: no table


def test_a_server_target_names_the_16_connection_worst_when_1_connection_is_worse() -> None:
    results = fake_results()
    for row in results["server"]["throughput"]:
        if row["server"] == "server_demo":
            row["calls_per_s"] = 800.0 if row["concurrency"] == 1 else 1200.0
    text = report.markdown(results)
    assert "| calls/s worst 0.40× (stateless, c1); at 16 connections worst 0.60× (stateless) | **no** |" in text


def test_merge_block_replaces_only_the_measured_parts() -> None:
    full = report.markdown(fake_results())
    server_only = {k: v for k, v in fake_results().items() if k not in ("client", "cold_start", "payload")}
    server_only["date"] = "2026-02-02 00:00"
    for row in server_only["server"]["throughput"]:
        row["calls_per_s"] *= 2 if row["server"] == "server_demo" else 1
    merged = report.merge_block(full, report.markdown(server_only))
    head, sections = report._sections(merged)
    assert head.startswith("Measured 2026-01-01 00:00")  # the untouched parts keep their date
    assert [t.split()[1] for t in sections] == ["1.", "2.", "3.", "4.", "Targets"]
    assert sections["### 1. Browser client: `echo` calls/s (p50 / p99 ms)"] in full  # kept as it was
    server = next(text for title, text in sections.items() if title.startswith("### 3."))
    assert "This part measured 2026-02-02 00:00" in server and "| 1800 (1.0 / 2.0) |" in server
    targets = sections["### Targets"]
    assert "| ours ≥ 1.0× TS SDK 1.32 (HTTP) | worst 1.06× (http-sse, seq) | yes |" in targets  # part 1's row kept
    assert "calls/s worst 6.00× (stateless, c1)" in targets and "worst 3.00×" not in targets  # part 3's replaced
    assert targets.count("idle stateful session") == 1


def test_summarize_and_percentile() -> None:
    runs = [
        {"calls": 4, "wall_ms": 100.0, "latencies_ms": [1.0, 2.0, 3.0, 4.0]},
        {"calls": 4, "wall_ms": 200.0, "latencies_ms": [5.0, 6.0, 7.0, 100.0]},
    ]
    out = summarize(runs)
    assert out["calls_per_s"] == 30.0  # median of 40/s and 20/s
    assert out["p50_ms"] == 4.0 and out["p99_ms"] == 100.0
    assert percentile([], 50) != percentile([], 50)  # NaN
