#!/usr/bin/env python3
"""The one entry point: build the site, serve it, run the tests, run the benchmarks.

Runs with the standard library only, on a fresh machine whose only network is
the package registries::

    python build.py serve [--port 8000]   # venv + site + demo server on 127.0.0.1
    python build.py test [pytest args]    # installs test needs, builds, runs every tier
    python build.py site                  # builds site/dist/ (offline after the first run)
    python build.py stress [options]      # long fuzz/load/fault runs (stress/run_stress.py), prints figures
    python build.py bench [--publish]     # benchmarks against peers (benchmarks/), JSON + table + chart

Browser-side pins live in ``pyodide_transport/browser_testing/pins.toml``; the downloads, their integrity
checks and the lock file come from ``pyodide_transport.browser_testing.runtime``, which the installed
browser-testing tooling uses too. Downloads are cached in ``.cache/``; nothing built or downloaded is committed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import venv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
VENV = ROOT / ".venv"
SITE_SRC = ROOT / "site"
DIST = SITE_SRC / "dist"
CHROMIUM_DEBIAN = Path("/usr/bin/chromium")


def _load_runtime() -> Any:
    """``pyodide_transport.browser_testing.runtime`` by file: standard library only, so it loads before any install."""
    spec = importlib.util.spec_from_file_location("_pt_runtime", ROOT / "pyodide_transport/browser_testing/runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from pyodide_transport.browser_testing import runtime as rt
else:
    rt = _load_runtime()

RUNTIME_FILES = rt.RUNTIME_FILES
_T = TypeVar("_T")


def setup_step(step: Callable[..., _T], *args: Any) -> _T:
    """Run one of the runtime module's steps, its failure ending the build with that message."""
    try:
        return step(*args)
    except rt.RuntimeSetupError as exc:
        raise SystemExit(str(exc)) from None


def log(msg: str) -> None:
    """Print a progress line (flushed, so CI logs stay in order)."""
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> None:
    """Run a command, echoing it; raise on failure."""
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kwargs)


def pins() -> dict[str, Any]:
    """The browser-side pins (``pyodide_transport/browser_testing/pins.toml``)."""
    return rt.pins()


def venv_python() -> Path:
    """The project virtualenv's interpreter."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


EXTRAS = {"server": {"server"}, "dev": {"dev", "server"}}  # what each extra brings in


def ensure_venv(extra: str) -> Path:
    """Create or refresh .venv with the project installed (editable) with one extra.

    Reinstalls only when pyproject.toml changed since the last install or the
    extra is not yet in, so a second run needs no network.
    """
    py = venv_python()
    if not py.exists():
        log(f"creating virtualenv {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".installed.json"
    state = json.loads(stamp.read_text()) if stamp.exists() else {}
    if state.get("pyproject") == digest and extra in state.get("extras", []):
        return py
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "-q", "--upgrade", "pip", "setuptools>=77", "wheel"])
    run([*pip, "install", "-q", "-e", f".[{extra}]"], cwd=ROOT)
    stamp.write_text(json.dumps({"pyproject": digest, "extras": sorted(EXTRAS[extra])}))
    return py


def ensure_npm() -> None:
    """Install the npm packages the tests use (Node 22, conformance suite) when package-lock changed."""
    lock = ROOT / "package-lock.json"
    stamp = ROOT / "node_modules" / ".installed-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT)
    stamp.write_text(digest)


def find_chromium(py: Path) -> str:
    """Find a Chromium for Playwright, installing one if there is none.

    Order: Playwright's own browser if installed; Debian's /usr/bin/chromium;
    on Debian as root ``apt-get install chromium``; else ``playwright install``.
    Returns the executable path, or "" to let Playwright use its own.
    """
    probe = (
        "from playwright.sync_api import sync_playwright\n"
        "with sync_playwright() as p: print(p.chromium.executable_path)"
    )
    try:
        own = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        if own and Path(own).exists():
            return ""
    except subprocess.CalledProcessError:
        pass
    if CHROMIUM_DEBIAN.exists():
        return str(CHROMIUM_DEBIAN)
    if Path("/etc/debian_version").exists() and hasattr(os, "geteuid") and os.geteuid() == 0:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "chromium"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if CHROMIUM_DEBIAN.exists():
            return str(CHROMIUM_DEBIAN)
    run([str(py), "-m", "playwright", "install", "chromium"])
    return ""


DEBIAN_SERVICES = {"redis-server": "redis-server", "haproxy": "haproxy", "wrk": "wrk"}
"""Programs the tests and benchmarks start (program -> Debian package)."""


def ensure_services() -> None:
    """Install Redis, HAProxy and wrk from Debian's apt when they are missing (as root on Debian).

    Elsewhere a missing program is reported; the tests that need it then fail with that name.
    """
    missing = [
        pkg for prog, pkg in DEBIAN_SERVICES.items() if not (shutil.which(prog) or Path("/usr/sbin", prog).exists())
    ]
    if not missing:
        return
    if Path("/etc/debian_version").exists() and hasattr(os, "geteuid") and os.geteuid() == 0:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    else:
        log(f"missing programs (install them): {', '.join(missing)}")


# --- site -------------------------------------------------------------------------------------


def npm_tarball(name: str, version: str, integrity: str) -> Path:
    """Fetch (once) and verify an npm package tarball against its pinned integrity."""
    return setup_step(rt.npm_tarball, name, version, integrity, CACHE / "npm", log)


extract = rt.extract
canonical = rt.canonical
wheel_entry = rt.wheel_entry


def browser_wheels(spec: dict[str, Any]) -> list[Path]:
    """Download (once) the pinned browser wheels; pure ones any-platform, compiled ones wasm32."""
    return setup_step(rt.browser_wheels, spec, CACHE / "wheels", log)


def own_wheel(py: Path) -> Path:
    """Build our py3-none-any wheel from source (no build isolation: no network needed)."""
    out = CACHE / "own-wheel"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "-w", str(out), str(ROOT)])
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = out.glob("*.whl")
    if not wheel.name.endswith("-py3-none-any.whl"):
        raise SystemExit(f"our wheel must be pure (py3-none-any), got {wheel.name}")
    return wheel


SERVER_WHEEL_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "server-demo"
version = "{version}"
description = "The pyodide-transport demo MCP server core, for a Web Worker (its HTTP adapters need Starlette)."
requires-python = ">=3.11"
dependencies = ["pyodide-transport", "pydantic>=2.12", "mcp-types>=2.3,<2.4"]

[tool.setuptools]
packages = ["server_demo", "server_demo.sse"]
"""


def server_wheel(py: Path) -> Path:
    """Build ``server-demo``, a py3-none-any wheel of ``server_demo`` for the in-browser server (site/server-worker.js).

    Only its core runs there (core, demo, dispatch, modern, errors, worker): the HTTP and WebSocket
    adapters import Starlette, which the browser never loads, so the wheel declares no server extras.
    """
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    src = CACHE / "server-wheel-src"
    out = CACHE / "server-wheel"
    for folder in (src, out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    shutil.copytree(ROOT / "server_demo", src / "server_demo", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "pyproject.toml").write_text(SERVER_WHEEL_PYPROJECT.format(version=version.group(1)))
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "-w", str(out), str(src)])
    (wheel,) = out.glob("*.whl")
    if not wheel.name.endswith("-py3-none-any.whl"):
        raise SystemExit(f"the server wheel must be pure (py3-none-any), got {wheel.name}")
    return wheel


# Runs inside Pyodide (Node) to add bytecode to wheels: Python 3.14's compiler is only there.
_PRECOMPILE_PY = r"""
import base64, hashlib, importlib.util, os, sys, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

tag = sys.implementation.cache_tag
for name in sorted(os.listdir("/job/in")):
    out = zipfile.ZipFile("/job/out/" + name, "w", zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile("/job/in/" + name) as src, out as dst:
        record = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in src.infolist():
            if info.filename == record or info.is_dir():
                continue
            data = src.read(info)
            dst.writestr(info.filename, data)
            rows.append(f"{info.filename},{digest(data)},{len(data)}")
            if not info.filename.endswith(".py"):
                continue
            try:
                code = compile(data, info.filename, "exec", dont_inherit=True)
            except SyntaxError:
                continue
            pyc = _code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)
            folder, base = os.path.split(info.filename)
            pyc_name = "/".join(filter(None, [folder, "__pycache__", base[:-3] + "." + tag + ".pyc"]))
            dst.writestr(pyc_name, pyc)
            rows.append(f"{pyc_name},{digest(pyc)},{len(pyc)}")
        rows.append(f"{record},,")
        dst.writestr(record, "\n".join(rows) + "\n")
"""

_PRECOMPILE_JS = """
import { pathToFileURL } from "node:url";
const [runtime, job, code] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(runtime + "/pyodide.mjs").href);
const py = await loadPyodide({ indexURL: runtime + "/" });
py.FS.mkdirTree("/job");
py.FS.mount(py.FS.filesystems.NODEFS, { root: job }, "/job");
py.runPython(code);
"""


def precompile(runtime: Path, wheels: list[Path], version: str) -> list[Path]:
    """Add Python 3.14 bytecode to each wheel, compiled by Pyodide itself (cached by wheel hash).

    Importing from ``.pyc`` skips compiling at every page load: ~0.2 s off the ~0.55 s the
    imports cost in Pyodide. The ``.pyc`` files are unchecked-hash ones, so they stay valid
    whatever mtime the wheel's files get when installed; the sources stay for tracebacks.
    """
    done: list[Path] = []
    todo: dict[Path, Path] = {}
    for wheel in wheels:
        key = hashlib.sha256(wheel.read_bytes() + version.encode()).hexdigest()[:20]
        target = CACHE / "pyc-wheels" / key / wheel.name
        done.append(target)
        if not target.exists():
            todo[wheel] = target
    if todo:
        job = CACHE / "pyc-job"
        shutil.rmtree(job, ignore_errors=True)
        (job / "in").mkdir(parents=True)
        (job / "out").mkdir()
        for wheel in todo:
            shutil.copy2(wheel, job / "in" / wheel.name)
        script = job / "precompile.mjs"
        script.write_text(_PRECOMPILE_JS)
        log(f"precompiling {len(todo)} wheel(s) to bytecode in Pyodide")
        subprocess.run(["node", str(script), str(runtime), str(job), _PRECOMPILE_PY], check=True)
        for wheel, target in todo.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(job / "out" / wheel.name), target)
        shutil.rmtree(job, ignore_errors=True)
    return done


def build_site(py: Path, dist: Path = DIST) -> None:
    """Assemble ``dist``: page sources, the Pyodide runtime, PyScript, every wheel and a lock file."""
    spec = pins()
    npm = {p["name"]: p for p in spec["npm"]}
    pyo, pys = npm["pyodide"], npm["@pyscript/core"]
    pyodide_tgz = npm_tarball(pyo["name"], pyo["version"], pyo["integrity"])
    pyscript_tgz = npm_tarball(pys["name"], pys["version"], pys["integrity"])

    final, dist = dist, dist.with_name(dist.name + ".partial")  # build aside, then swap in
    runtime = dist / "pyodide"  # the runtime, every wheel and the lock file: one folder
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    for src in SITE_SRC.iterdir():
        if src.name.startswith(("dist", ".")):
            continue
        if src.is_dir():
            shutil.copytree(src, dist / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dist / src.name)
    extract(pyodide_tgz, "package/", runtime, (*RUNTIME_FILES, "pyodide-lock.json"))
    extract(pyscript_tgz, "package/dist/", dist / "pyscript")

    wheels = precompile(runtime, [*browser_wheels(spec), own_wheel(py), server_wheel(py)], pyo["version"])
    lock = setup_step(rt.write_lock, runtime, wheels)
    info, packages = lock["info"], lock["packages"]
    build_info = {
        "pyodide": pyo["version"],
        "pyscript": pys["version"],
        "python": info["python"],
        "wheels": {name: e["file_name"] for name, e in packages.items()},
    }
    (dist / "build-info.json").write_text(json.dumps(build_info, indent=1, sort_keys=True))
    size = sum(f.stat().st_size for f in dist.rglob("*") if f.is_file())
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    dist.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    log(f"site built in {final}: {len(packages)} wheels, {size / 1e6:.1f} MB")


# --- commands ---------------------------------------------------------------------------------


def cmd_site(args: argparse.Namespace) -> None:
    """Build site/dist (or ``--out DIR``)."""
    build_site(ensure_venv("server"), Path(args.out).resolve())


def cmd_serve(args: argparse.Namespace) -> None:
    """Build the site and serve it with the demo server."""
    py = ensure_venv("server")
    build_site(py)
    log(f"serving http://{args.host}:{args.port}/")
    cmd = [str(py), "-m", "server_demo", "--host", args.host, "--port", str(args.port), "--site", str(DIST)]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, check=True, cwd=ROOT)


def cmd_test(args: argparse.Namespace) -> None:
    """Install what the tests need, build the site, and run every test tier."""
    py = ensure_venv("dev")
    ensure_npm()
    chromium = find_chromium(py)
    ensure_services()
    build_site(py)
    env = {**os.environ, "PT_CHROMIUM": chromium, "PYTHONUNBUFFERED": "1"}
    log(f"python {platform.python_version()}, chromium: {chromium or 'Playwright bundled'}")
    result = subprocess.run([str(py), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)
    raise SystemExit(result.returncode)


def cmd_bench(args: argparse.Namespace) -> None:
    """Install what the benchmarks need, build the site, run every benchmark (see benchmarks/)."""
    py = ensure_venv("dev")
    ensure_npm()  # the TypeScript SDK and esbuild, bundled for the bench page by the benchmarks
    chromium = find_chromium(py)
    ensure_services()
    build_site(py)
    env = {**os.environ, "PT_CHROMIUM": chromium, "PYTHONUNBUFFERED": "1"}
    opts = [f"--{k.replace('_', '-')}" for k in ("publish", "quick") if getattr(args, k)]
    for key in ("parts", "rounds", "calls", "cold_reps", "server_calls"):
        if getattr(args, key) is not None:
            opts += [f"--{key.replace('_', '-')}", getattr(args, key)]
    result = subprocess.run([str(py), "-m", "benchmarks", *opts], cwd=ROOT, env=env)
    raise SystemExit(result.returncode)


def cmd_stress(args: argparse.Namespace) -> None:
    """Run the long fuzz, load and fault runs (stress/run_stress.py) and print their figures."""
    py = ensure_venv("dev")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([str(py), str(ROOT / "stress" / "run_stress.py"), *args.stress_args], cwd=ROOT, env=env)
    raise SystemExit(result.returncode)


def main() -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="build the site and serve it with the demo server")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)
    site = sub.add_parser("site", help="build site/dist")
    site.add_argument("--out", default=str(DIST), help="where to build (default: site/dist)")
    site.set_defaults(func=cmd_site)
    test = sub.add_parser("test", help="install test needs, build, run every test tier; extra args go to pytest")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    stress = sub.add_parser("stress", help="long fuzz (10,000 examples each) and full-size load runs, with figures")
    stress.add_argument("stress_args", nargs=argparse.REMAINDER)
    stress.set_defaults(func=cmd_stress)
    bench = sub.add_parser("bench", help="run the benchmarks (results in benchmarks/results/)")
    bench.add_argument("--publish", action="store_true", help="also update README.md and benchmarks/latest.png")
    bench.add_argument("--quick", action="store_true", help="tiny counts: check the harness, not the numbers")
    for name in ("--parts", "--rounds", "--calls", "--cold-reps", "--server-calls"):
        bench.add_argument(name, help="see python -m benchmarks --help")
    bench.set_defaults(func=cmd_bench)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
