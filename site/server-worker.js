// The in-browser demo MCP server: a module worker running server_demo's core in Pyodide.
// A page connects by posting {type: "mcp-connect"} with one end of a MessageChannel; each port is
// one connection (see server_demo/worker.py). Everything comes from this site: no CDN, no install.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const started = performance.now();
const ready = (async () => {
  const pyodide = await loadPyodide({ indexURL: new URL("./pyodide/", import.meta.url).href });
  await pyodide.loadPackage(["server-demo"], { messageCallback: () => {} }); // with its dependencies
  pyodide.runPython("import pyodide_transport; pyodide_transport.install_scheduler()");
  const serve = pyodide.runPython("from server_demo.worker import serve_port, server; server(); serve_port");
  console.info(`in-browser MCP server ready in ${Math.round(performance.now() - started)} ms`);
  return serve;
})();

self.onmessage = async (event) => {
  const data = event.data;
  if (!data || data.type !== "mcp-connect" || event.ports.length !== 1) {
    return; // not ours: nothing else is accepted on the worker itself
  }
  const port = event.ports[0];
  try {
    (await ready)(port);
  } catch (err) {
    const reason = `the in-browser MCP server could not start: ${err && err.message ? err.message : err}`;
    port.postMessage({ type: "mcp-port-close", reason });
    port.close();
  }
};
