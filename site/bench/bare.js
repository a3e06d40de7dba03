// Cold-start baseline: loadPyodide() and one line of Python, nothing else.
// Marks (ms since navigation start) land in window.benchMarks; body[data-done] says it finished.
import { loadPyodide } from "../pyodide/pyodide.mjs";

const marks = { script: performance.now() };
window.benchMarks = marks;
try {
  const indexURL = new URL("../pyodide/", location.href).href;
  const py = await loadPyodide({ indexURL, lockFileURL: new URL("pyodide-lock.json", indexURL).href });
  marks.runtime = performance.now();
  py.runPython("1 + 1");
  marks.done = performance.now();
  document.getElementById("status").textContent = `ready in ${marks.done.toFixed(0)} ms`;
  document.body.dataset.done = "ok";
} catch (err) {
  document.getElementById("status").textContent = `failed: ${err}`;
  document.body.dataset.done = "failed";
}
