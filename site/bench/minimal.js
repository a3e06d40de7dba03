// The smallest page that calls a tool, with a mark after each stage (ms since navigation start):
// runtime (loadPyodide), wheels (loadPackage), imports (our Client and transports, mcp_types, pydantic),
// handshake (connect to this server's /mcp: discover or initialize), call (the first echo result).
import { loadPyodide } from "../pyodide/pyodide.mjs";

const marks = { script: performance.now() };
window.benchMarks = marks;
const status = document.getElementById("status");
try {
  const indexURL = new URL("../pyodide/", location.href).href;
  const py = await loadPyodide({ indexURL, lockFileURL: new URL("pyodide-lock.json", indexURL).href });
  marks.runtime = performance.now();
  await py.loadPackage(["pyodide-transport"]);
  marks.wheels = performance.now();
  await py.runPythonAsync("import pyodide_transport, pyodide_transport.client, pyodide_transport.connection");
  marks.imports = performance.now();
  py.globals.set("url", new URL("/mcp", location.href).href);
  await py.runPythonAsync("client = await pyodide_transport.connect(url)");
  marks.handshake = performance.now();
  const text = await py.runPythonAsync(
    "result = await client.call_tool('echo', {'message': 'cold start'})\n" +
      "await client.close()\n" +
      "result.content[0].text",
  );
  marks.call = performance.now();
  marks.protocol = py.runPython("client.protocol_version");
  status.textContent = `echo: ${text} in ${marks.call.toFixed(0)} ms`;
  document.body.dataset.done = text === "cold start" ? "ok" : "failed";
} catch (err) {
  status.textContent = `failed: ${err}`;
  document.body.dataset.done = "failed";
}
