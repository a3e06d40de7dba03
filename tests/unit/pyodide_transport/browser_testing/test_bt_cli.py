"""``pyodide-transport``: subcommands, usage and exit codes (the runs themselves: test_installed_tooling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyodide_transport.browser_testing import cli


def test_usage_and_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: pyodide-transport check URL" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "pyodide-transport runtime" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_runtime_prints_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    (tmp_path / "pyodide.mjs").write_text("")
    (tmp_path / "pyodide-lock.json").write_text("{}")
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(tmp_path))
    assert cli.main(["runtime"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)


def test_a_runtime_that_cannot_be_had_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(tmp_path / "missing"))
    assert cli.main(["runtime"]) == 2
    assert "holds no pyodide.mjs" in capsys.readouterr().err


def test_check_defaults_to_chromium_and_a_missing_runtime_is_exit_2(
    demo_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(tmp_path / "missing"))
    assert cli.main(["check", demo_server.url + "/mcp"]) == 2
    assert "cannot run the check in chromium" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        cli.main(["check", "--help"])
    assert done.value.code == 0
    assert "default: chromium" in capsys.readouterr().out
