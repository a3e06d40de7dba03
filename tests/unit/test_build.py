"""build.py: the offline site build and its lock file."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "site" / "dist"


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_script", ROOT / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build()
needs_dist = pytest.mark.skipif(not (DIST / "pyodide" / "pyodide-lock.json").exists(), reason="site not built")


@needs_dist
def test_lock_lists_exactly_the_wheels_with_their_hashes() -> None:
    runtime = DIST / "pyodide"
    lock = json.loads((runtime / "pyodide-lock.json").read_text())
    wheels = {p.name for p in runtime.glob("*.whl")}
    assert {e["file_name"] for e in lock["packages"].values()} == wheels
    for entry in lock["packages"].values():
        assert hashlib.sha256((runtime / entry["file_name"]).read_bytes()).hexdigest() == entry["sha256"]
        assert set(entry["depends"]) <= set(lock["packages"]), entry["name"]
    assert lock["info"]["python"].startswith("3.14")
    assert lock["packages"]["pydantic-core"]["file_name"].endswith("_wasm32.whl")


@needs_dist
def test_our_wheel_is_pure_and_typed() -> None:
    (wheel,) = (DIST / "pyodide").glob("pyodide_transport-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyodide_transport/py.typed" in names
    package = Path(build.ROOT) / "pyodide_transport"  # every module of the source tree ships, subpackages too
    sources = {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= set(names), sorted(sources - set(names))
    assert not any(n.startswith(("tests/", "server_demo/")) for n in names)
    entry = build.wheel_entry(wheel)
    assert entry["depends"] == ["mcp-types", "pydantic"]
    assert entry["imports"] == ["pyodide_transport"]


@needs_dist
def test_the_server_wheel_carries_the_demo_core_for_the_worker() -> None:
    (wheel,) = (DIST / "pyodide").glob("server_demo-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    core = {f"server_demo/{m}.py" for m in ("core", "demo", "dispatch", "modern", "errors", "worker", "__init__")}
    assert core <= names, sorted(core - names)
    entry = build.wheel_entry(wheel)
    assert entry["name"] == "server-demo" and entry["imports"] == ["server_demo"]
    assert sorted(entry["depends"]) == ["mcp-types", "pydantic", "pyodide-transport"]  # no Starlette, no uvicorn
    assert (DIST / "server-worker.js").is_file()


@needs_dist
def test_pages_load_nothing_from_a_cdn() -> None:
    for page in DIST.glob("*.html"):
        text = page.read_text()
        assert "https://" not in text.replace("https://modelcontextprotocol.io", ""), page.name


def test_tarball_with_wrong_integrity_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "CACHE", tmp_path)
    (tmp_path / "npm").mkdir()
    tarball = tmp_path / "npm" / "pkg-1.0.0.tgz"
    tarball.write_bytes(b"not the real tarball")
    good = "sha512-" + base64.b64encode(hashlib.sha512(b"not the real tarball").digest()).decode()
    assert build.npm_tarball("pkg", "1.0.0", good) == tarball
    with pytest.raises(SystemExit, match="integrity mismatch"):
        build.npm_tarball("pkg", "1.0.0", "sha512-AAAA")
    assert not tarball.exists()


@needs_dist
@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux", reason="needs unshare")
def test_second_build_needs_no_network(tmp_path: Path) -> None:
    """With the caches warm, the site builds inside a network namespace that has no network at all."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace here")
    out = tmp_path / "dist"
    subprocess.run(
        ["unshare", "-n", sys.executable, str(ROOT / "build.py"), "site", "--out", str(out)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    built = json.loads((out / "pyodide" / "pyodide-lock.json").read_text())
    current = json.loads((DIST / "pyodide" / "pyodide-lock.json").read_text())
    assert set(built["packages"]) == set(current["packages"])
    assert (out / "pyodide" / "pyodide.asm.wasm").stat().st_size > 1_000_000


@needs_dist
def test_wheels_carry_unchecked_bytecode_listed_in_record() -> None:
    """Every .py in the served wheels has Pyodide-compiled bytecode (imports skip compiling at page load)."""
    for wheel in (DIST / "pyodide").glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            sources = [n for n in names if n.endswith(".py")]
            compiled = [n for n in names if n.endswith(".cpython-314.pyc")]
            assert len(compiled) >= len(sources) - 2, wheel.name  # files that do not compile are skipped
            record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
            record = {row.split(",")[0]: row.split(",")[1] for row in zf.read(record_name).decode().splitlines()}
            for name in compiled[:20]:
                data = zf.read(name)
                assert int.from_bytes(data[4:8], "little") == 0b01, name  # hash-based, unchecked
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert record[name] == f"sha256={digest}", name
