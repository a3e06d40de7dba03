// Pyodide in Node, driven over stdin/stdout by pyodide_transport.check.NodePyodide.
//
//   node [--experimental-websocket] _node_runner.mjs PYODIDE_DIR [NAME=HOST_DIR ...]
//
// PYODIDE_DIR holds pyodide.mjs and a pyodide-lock.json that lists pyodide-transport (python build.py
// site builds one: site/dist/pyodide). Packages load only from that lock, never from a CDN. Each
// NAME=HOST_DIR is mounted at site-packages/NAME, so `import NAME.module` works with no sys.path edits.
// The first line out is {"ready": true, ...} or {"ready": false, "error": ...}; then each input line
// {"id": n, "code": "..."} is answered with {"id": n, "ok": bool, "result"|"error": str, "output": str}.
// Each snippet runs with top-level await in fresh globals; its last expression is the result.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [pyodideDir, ...mounts] = process.argv.slice(2);
const indexURL = path.resolve(pyodideDir) + path.sep;
const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
let output = [];

let py;
try {
  const { loadPyodide } = await import(pathToFileURL(path.join(indexURL, "pyodide.mjs")).href);
  const started = performance.now();
  py = await loadPyodide({ indexURL, stdout: (s) => output.push(s), stderr: (s) => output.push(s) });
  const booted = performance.now();
  await py.loadPackage(["pyodide-transport"], { messageCallback: () => {}, errorCallback: (s) => output.push(s) });
  const loaded = performance.now();
  const sitePackages = py.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
  for (const spec of mounts) {
    const at = spec.indexOf("=");
    const name = spec.slice(0, at);
    const root = path.resolve(spec.slice(at + 1));
    const target = `${sitePackages}/${name}`;
    py.FS.mkdirTree(target);
    py.FS.mount(py.FS.filesystems.NODEFS, { root }, target);
  }
  py.runPython("import importlib, pyodide_transport; importlib.invalidate_caches()");
  send({
    ready: true,
    python: py.runPython("import sys; sys.version.split()[0]"),
    boot_ms: Math.round(booted - started),
    packages_ms: Math.round(loaded - booted),
    output: output.join("\n"),
  });
} catch (err) {
  send({ ready: false, error: String(err && err.message ? err.message : err), output: output.join("\n") });
  process.exit(1);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  const { id, code } = JSON.parse(line);
  output = [];
  const globals = py.globals.get("dict")();
  try {
    const result = await py.runPythonAsync(code, { globals });
    const text = result === undefined || result === null ? null : String(result);
    if (result && typeof result.destroy === "function") result.destroy();
    send({ id, ok: true, result: text, output: output.join("\n") });
  } catch (err) {
    send({ id, ok: false, error: String(err && err.message ? err.message : err), output: output.join("\n") });
  } finally {
    globals.destroy();
  }
}
