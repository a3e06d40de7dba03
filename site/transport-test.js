// Boots Pyodide directly (no PyScript) with pyodide-transport loaded from ./pyodide/, then exposes
// window.runPython(code): runs Python with top-level await in fresh globals and resolves to the
// text of the last expression (or null). Used by tests/e2e/test_e2e_transports.py.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const status = document.getElementById("status");
try {
  const indexURL = new URL("./pyodide/", location.href).href;
  const py = await loadPyodide({ indexURL, lockFileURL: new URL("pyodide-lock.json", indexURL).href });
  await py.loadPackage(["pyodide-transport"]);
  window.runPython = async (code) => {
    const globals = py.globals.get("dict")();
    try {
      const result = await py.runPythonAsync(code, { globals });
      const text = result === undefined || result === null ? null : String(result);
      if (result && typeof result.destroy === "function") result.destroy();
      return text;
    } finally {
      globals.destroy();
    }
  };
  status.textContent = "ready";
} catch (err) {
  status.textContent = `boot failed: ${err}`;
}
