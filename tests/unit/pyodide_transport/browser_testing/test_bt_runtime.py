"""The offline runtime cache: our wheel from the installed package, integrity, reuse with no network."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from devtools import ROOT
from pyodide_transport.browser_testing import runtime
from pyodide_transport.errors import TransportError

PACKAGE = ROOT / "pyodide_transport"


def test_pins_live_in_the_package_and_the_build_reads_them() -> None:
    import build

    assert build.pins() == runtime.pins()
    assert {p["name"] for p in runtime.pins()["npm"]} == {"pyodide", "@pyscript/core"}
    assert "[tool.pyodide-transport.browser]" not in (ROOT / "pyproject.toml").read_text()


def test_errors_belong_to_the_tree() -> None:
    assert issubclass(runtime.RuntimeSetupError, TransportError)


def test_installed_wheel_carries_every_package_file_and_is_built_once(tmp_path: Path) -> None:
    wheel = runtime.installed_wheel(tmp_path)
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = [line.split(",") for line in zf.read(record).decode().splitlines()]
        for name, digest, size in rows:
            if name == record:
                continue
            data = zf.read(name)
            want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (want, len(data)), name
    sources = {
        f"pyodide_transport/{p.relative_to(PACKAGE).as_posix()}"
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sources <= names
    assert "pyodide_transport/browser_testing/harness.html" in names
    entry = runtime.wheel_entry(wheel)
    assert entry["name"] == "pyodide-transport" and "pydantic" in entry["depends"]
    assert runtime.installed_wheel(tmp_path) == wheel  # same content: the same file, not rebuilt
    assert len(list(tmp_path.glob("*/*.whl"))) == 1


def test_a_tarball_with_the_wrong_integrity_is_refused_and_deleted(tmp_path: Path) -> None:
    tarball = tmp_path / "pkg-1.0.0.tgz"
    tarball.write_bytes(b"payload")
    good = "sha512-" + base64.b64encode(hashlib.sha512(b"payload").digest()).decode()
    assert runtime.npm_tarball("pkg", "1.0.0", good, tmp_path) == tarball
    with pytest.raises(runtime.RuntimeSetupError, match=r"integrity mismatch for pkg@1\.0\.0"):
        runtime.npm_tarball("pkg", "1.0.0", "sha512-AAAA", tmp_path)
    assert not tarball.exists()


def test_no_npm_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(runtime.RuntimeSetupError, match="needs npm on PATH"):
        runtime.npm_tarball("pyodide", "1.0.0", "sha512-AAAA", tmp_path)


def test_a_ready_folder_can_be_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(tmp_path))
    with pytest.raises(runtime.RuntimeSetupError, match=r"holds no pyodide\.mjs"):
        runtime.ensure_runtime()
    (tmp_path / "pyodide.mjs").write_text("")
    (tmp_path / "pyodide-lock.json").write_text("{}")
    assert runtime.ensure_runtime() == tmp_path


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYODIDE_TRANSPORT_CACHE", str(tmp_path / "c"))
    assert runtime.cache_root() == tmp_path / "c"
    monkeypatch.delenv("PYODIDE_TRANSPORT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert runtime.cache_root() == tmp_path / "x" / "pyodide-transport"


def test_with_the_downloads_cached_the_runtime_is_assembled_with_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The site build's downloads (.cache/) seed a cache; any command run (npm, pip) would fail the test."""
    monkeypatch.delenv("PYODIDE_TRANSPORT_RUNTIME", raising=False)
    seeded = ROOT / ".cache"
    if not (seeded / "npm").is_dir():
        pytest.skip("run `python build.py site` first")
    shutil.copytree(seeded / "npm", tmp_path / "npm")
    shutil.copytree(seeded / "wheels", tmp_path / "wheels")

    def no_network(cmd: list[str], log: object, cwd: object = None) -> None:
        raise AssertionError(f"ran {cmd}")

    monkeypatch.setattr(runtime, "_run", no_network)
    folder = runtime.ensure_runtime(tmp_path, log=lambda m: None)
    lock = json.loads((folder / "pyodide-lock.json").read_text())
    assert set(lock["packages"]) == {runtime.canonical(w.split("==")[0]) for w in runtime.pins()["wheels"]} | {
        "pyodide-transport"
    }
    for entry in lock["packages"].values():
        assert hashlib.sha256((folder / entry["file_name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert all((folder / name).is_file() for name in runtime.RUNTIME_FILES)
    assert runtime.ensure_runtime(tmp_path, log=lambda m: None) == folder  # reused as it is
