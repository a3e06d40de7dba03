// Boots Pyodide in Node from the built site (site/dist/pyodide) and runs Python code sent as
// JSON lines on stdin: {"id": n, "code": "..."} -> {"id": n, "ok": bool, "result"|"error": str, "output": str}.
// Each snippet runs with top-level await in fresh globals. The repository's tests/ folder is
// mounted at /tests so suites written as plain modules can run here unchanged.
// Run with: node --experimental-websocket runner.mjs <site/dist> <tests dir>
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [dist, testsDir] = process.argv.slice(2).map((p) => path.resolve(p));
const indexURL = path.join(dist, "pyodide") + path.sep;
const { loadPyodide } = await import(pathToFileURL(path.join(indexURL, "pyodide.mjs")).href);

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
let output = [];
const started = performance.now();
const py = await loadPyodide({
  indexURL,
  stdout: (s) => output.push(s),
  stderr: (s) => output.push(s),
});
const booted = performance.now();
await py.loadPackage(["pyodide-transport"], { messageCallback: () => {}, errorCallback: (s) => output.push(s) });
const loaded = performance.now();
py.FS.mkdirTree("/tests");
py.FS.mount(py.FS.filesystems.NODEFS, { root: testsDir }, "/tests");
send({
  ready: true,
  python: py.runPython("import sys; sys.version.split()[0]"),
  boot_ms: Math.round(booted - started),
  packages_ms: Math.round(loaded - booted),
  output: output.join("\n"),
});

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
