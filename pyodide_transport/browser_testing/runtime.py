"""The offline Pyodide runtime: the pinned Pyodide, its wheels and ours, in one folder, fetched once.

:func:`ensure_runtime` assembles a folder Pyodide boots from with no network: ``pyodide.mjs``,
the WebAssembly runtime, the standard library, every pinned wheel (``pins.toml`` next to this
module), a wheel of the *installed* ``pyodide_transport`` and a ``pyodide-lock.json`` listing
them all. The first call downloads the Pyodide npm tarball (``npm pack``, then its pinned
``sha512`` integrity is checked) and the wheels (``pip download`` for Pyodide's platform); both
stay in the cache, so every later call, and every later build of a changed runtime, is offline.

The cache is ``$PYODIDE_TRANSPORT_CACHE``, else ``$XDG_CACHE_HOME/pyodide-transport``, else
``~/.cache/pyodide-transport``. ``$PYODIDE_TRANSPORT_RUNTIME`` names a ready folder instead
(``site/dist/pyodide`` from ``python build.py site`` is one); it is used as it is.

This module needs only the standard library: the site build (``build.py``) loads it on its own,
before anything is installed, and uses the same downloads, integrity checks and lock writing.
Failures raise :class:`RuntimeSetupError` (a
:class:`~pyodide_transport.errors.TransportError` when the package is importable).
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "PINS_FILE",
    "RUNTIMES",
    "RUNTIME_FILES",
    "RuntimeName",
    "RuntimeSetupError",
    "browser_wheels",
    "cache_root",
    "canonical",
    "ensure_runtime",
    "extract",
    "installed_wheel",
    "npm_tarball",
    "pins",
    "wheel_entry",
    "write_lock",
]

try:  # inside the package: part of its one error tree; build.py loads this file before any install
    from ..errors import TransportError as _Root
except ImportError:
    _Root = Exception  # type: ignore[misc,assignment]


class RuntimeSetupError(_Root):
    """The runtime could not be fetched or assembled: a download failed, an integrity check, a missing tool."""


RuntimeName = Literal["chromium", "node"]
RUNTIMES: tuple[RuntimeName, ...] = ("chromium", "node")
"""Where browser tests run: a headless Chromium page, or Pyodide in Node."""

PINS_FILE = Path(__file__).with_name("pins.toml")
"""The browser-side pins (Pyodide, PyScript, the wheels): the one place they live."""

RUNTIME_FILES = ("pyodide.mjs", "pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
"""What of the Pyodide npm package a page or Node needs (with ``pyodide-lock.json``)."""

_PACKAGE = "pyodide-transport"
_STAMP = ".complete"
_KEEP_RUNTIMES = 3

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"[pyodide-transport] {message}", file=sys.stderr, flush=True)


def pins() -> dict[str, Any]:
    """The browser-side pins from :data:`PINS_FILE`."""
    with PINS_FILE.open("rb") as f:
        return tomllib.load(f)


def cache_root() -> Path:
    """Where downloads and assembled runtimes are kept (see the module docstring)."""
    configured = os.environ.get("PYODIDE_TRANSPORT_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA") if os.name == "nt" else None)
    return (Path(base) if base else Path.home() / ".cache") / "pyodide-transport"


def _run(cmd: list[str], log: Log, cwd: Path | None = None) -> None:
    log("$ " + " ".join(cmd))
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeSetupError(f"could not run {cmd[0]}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise RuntimeSetupError(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode}): {tail}")


def canonical(name: str) -> str:
    """PEP 503 normalized name, as the Pyodide lock file keys packages."""
    return re.sub(r"[-_.]+", "-", name).lower()


def npm_tarball(name: str, version: str, integrity: str, dest: Path, log: Log = _stderr) -> Path:
    """Fetch (once, with ``npm pack``) and verify an npm package tarball against its pinned integrity.

    Raises:
        RuntimeSetupError: No npm to fetch it with, the fetch failed, or the integrity differs
            (the bad file is deleted).
    """
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if not path.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeSetupError(f"fetching {name}@{version} needs npm on PATH (once; it is cached in {dest})")
        _run([npm, "pack", f"{name}@{version}", "--pack-destination", str(dest), "--silent"], log, cwd=dest)
    algo, _, want = integrity.partition("-")
    got = base64.b64encode(hashlib.new(algo, path.read_bytes()).digest()).decode()
    if got != want:
        path.unlink()
        raise RuntimeSetupError(f"integrity mismatch for {name}@{version}: expected {integrity}, got {algo}-{got}")
    return path


def extract(tarball: Path, prefix: str, dest: Path, names: Iterable[str] | None = None) -> None:
    """Extract the files under ``prefix`` of an npm tarball into ``dest`` (all, or only ``names``)."""
    wanted = None if names is None else set(names)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix) :]
            if (wanted is not None and rel not in wanted) or ".." in Path(rel).parts:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            target.write_bytes(src.read())


def browser_wheels(spec: dict[str, Any], dest: Path, log: Log = _stderr, python: str = sys.executable) -> list[Path]:
    """Download (once) the pinned browser wheels: pure ones for any platform, compiled ones for Pyodide's.

    Raises:
        RuntimeSetupError: ``pip download`` failed, or did not leave exactly one wheel per pin.
    """
    dest.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for req in spec["wheels"]:
        name, _, version = req.partition("==")
        stem = f"{canonical(name).replace('-', '_')}-{version}-"
        have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(stem)]
        if not have:
            cmd = [python, "-m", "pip", "--disable-pip-version-check", "download", "-q", "--no-deps"]
            cmd += ["--only-binary=:all:", "--python-version", spec["python"], "--platform", spec["platform"]]
            _run([*cmd, "-d", str(dest), req], log)
            have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(stem)]
        if len(have) != 1:
            raise RuntimeSetupError(f"expected one wheel for {req} in {dest}, found {[p.name for p in have]}")
        found.append(have[0])
    return found


def wheel_entry(wheel: Path) -> dict[str, Any]:
    """A ``pyodide-lock.json`` package entry for one wheel, read from its METADATA and file list."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.HeaderParser().parsestr(zf.read(meta_name).decode())
        tops = {n.split("/")[0] for n in zf.namelist()}
    imports = sorted(t.removesuffix(".py") for t in tops if not t.endswith((".dist-info", ".data")))
    depends = []
    for req in meta.get_all("Requires-Dist") or []:
        if "extra ==" in req:
            continue
        marker = req.partition(";")[2]
        if "sys_platform" in marker and "emscripten" not in marker:
            continue
        depends.append(canonical(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]))
    return {
        "name": canonical(meta["Name"]),
        "version": meta["Version"],
        "file_name": wheel.name,
        "install_dir": "site",
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "package_type": "package",
        "imports": imports,
        "depends": sorted(set(depends)),
        "unvendored_tests": False,
        "shared_library": False,
    }


def write_lock(runtime: Path, wheels: Iterable[Path]) -> dict[str, Any]:
    """Copy ``wheels`` into ``runtime`` and rewrite its ``pyodide-lock.json`` to list exactly them.

    Returns:
        The lock's ``info`` (Pyodide's own: its Python version, platform) and ``packages``.

    Raises:
        RuntimeSetupError: A wheel depends on a package none of them provides.
    """
    packages: dict[str, Any] = {}
    for wheel in wheels:
        if wheel.parent != runtime:
            shutil.copy2(wheel, runtime / wheel.name)
        entry = wheel_entry(wheel)
        packages[entry["name"]] = entry
    missing = {d for e in packages.values() for d in e["depends"]} - set(packages)
    if missing:
        raise RuntimeSetupError(f"the browser lock lacks dependencies {sorted(missing)}: pin them in {PINS_FILE.name}")
    lock_path = runtime / "pyodide-lock.json"
    info = json.loads(lock_path.read_text())["info"]
    lock_path.write_text(json.dumps({"info": info, "packages": packages}, indent=1, sort_keys=True))
    return {"info": info, "packages": packages}


# --- our own wheel, from the installed package --------------------------------------------------------


def _package_files() -> list[tuple[str, Path]]:
    """``(archive name, file)`` for every file of the installed ``pyodide_transport`` package."""
    root = Path(__file__).resolve().parent.parent
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((f"{root.name}/{path.relative_to(root).as_posix()}", path))
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def installed_wheel(dest: Path) -> Path:
    """A py3-none-any wheel of the installed ``pyodide_transport`` (its files and metadata), built once per content.

    Pyodide installs packages from wheels, so the runtime carries the very code this machine runs,
    whether it was installed from a wheel, a source tree or in editable mode.

    Raises:
        RuntimeSetupError: ``pyodide-transport`` has no installed metadata (not installed at all).
    """
    try:
        dist = importlib.metadata.distribution(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeSetupError(f"{_PACKAGE} is not installed: pip install {_PACKAGE}") from None
    metadata = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not metadata:
        raise RuntimeSetupError(f"the installed {_PACKAGE} has no METADATA")
    files = _package_files()
    digest = hashlib.sha256(metadata.encode())
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = dest / digest.hexdigest()[:20]
    wheel = folder / f"pyodide_transport-{dist.version}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    info = f"pyodide_transport-{dist.version}.dist-info"
    extra = {
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pyodide-transport\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    partial = wheel.with_suffix(".partial")
    rows = []
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = [(name, path.read_bytes()) for name, path in files] + list(extra.items())
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
            rows.append(f"{name},{_record_hash(data)},{len(data)}")
        rows.append(f"{info}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(rows) + "\n")
    partial.replace(wheel)
    return wheel


# --- the assembled folder -----------------------------------------------------------------------------


def ensure_runtime(cache: Path | None = None, *, log: Log = _stderr) -> Path:
    """The offline Pyodide folder for this installation: assembled on first use, then reused as it is.

    ``$PYODIDE_TRANSPORT_RUNTIME``, when set, is returned instead (it must hold ``pyodide.mjs`` and a
    ``pyodide-lock.json``). Otherwise the folder lives in ``cache`` (default :func:`cache_root`)
    under a key of the pins and of the installed package's contents: a new version of either gets
    a new folder, built from the cached downloads.

    Raises:
        RuntimeSetupError: A download, an integrity check or the assembly failed.
    """
    configured = os.environ.get("PYODIDE_TRANSPORT_RUNTIME")
    if configured:
        folder = Path(configured).expanduser()
        if not ((folder / "pyodide.mjs").is_file() and (folder / "pyodide-lock.json").is_file()):
            raise RuntimeSetupError(f"PYODIDE_TRANSPORT_RUNTIME={folder} holds no pyodide.mjs and pyodide-lock.json")
        return folder
    cache = cache or cache_root()
    spec = pins()
    own = installed_wheel(cache / "own-wheel")
    key = hashlib.sha256(PINS_FILE.read_bytes() + own.read_bytes()).hexdigest()[:20]
    folder = cache / "runtime" / key
    if (folder / _STAMP).is_file():
        return folder
    pyodide = next(p for p in spec["npm"] if p["name"] == "pyodide")
    tarball = npm_tarball(pyodide["name"], pyodide["version"], pyodide["integrity"], cache / "npm", log)
    wheels = browser_wheels(spec, cache / "wheels", log)
    partial = folder.with_name(key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    extract(tarball, "package/", partial, (*RUNTIME_FILES, "pyodide-lock.json"))
    write_lock(partial, [*wheels, own])
    (partial / _STAMP).write_text(json.dumps({"pyodide": pyodide["version"], "wheel": own.name}))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    log(f"Pyodide {pyodide['version']} runtime ready in {folder}")
    _prune(folder.parent, keep=folder)
    return folder


def _prune(parent: Path, keep: Path) -> None:
    """Drop all but the newest few assembled runtimes (each is ~15 MB; downloads stay)."""
    done = sorted(
        (p for p in parent.iterdir() if p != keep and (p / _STAMP).is_file()),
        key=lambda p: (p / _STAMP).stat().st_mtime,
        reverse=True,
    )
    for old in done[_KEEP_RUNTIMES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
