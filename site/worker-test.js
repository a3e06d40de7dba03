// A module worker: boots Pyodide from this site and runs the client against the serving demo server.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const PROGRAM = `
import json
import sys

import pyodide_transport as pt

report = {"platform": sys.platform, "has_window": "window" in dir(__import__("js"))}
for url in (SERVER + "/mcp", SERVER.replace("http", "ws", 1) + "/ws"):
    client = await pt.connect(url)
    try:
        result = await client.call_tool("echo", {"message": "from a worker"})
        report[client.transport.transport_type] = result.content[0].text
    finally:
        await client.close()
json.dumps(report)
`;

self.onmessage = async (event) => {
  try {
    const pyodide = await loadPyodide({ indexURL: new URL("./pyodide/", import.meta.url).href });
    await pyodide.loadPackage(["pyodide-transport"], { messageCallback: () => {} });
    pyodide.globals.set("SERVER", event.data.server);
    const report = JSON.parse(await pyodide.runPythonAsync(PROGRAM));
    self.postMessage({ ok: true, report });
  } catch (err) {
    self.postMessage({ ok: false, error: String(err && err.message ? err.message : err) });
  }
};
