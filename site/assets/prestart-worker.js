// Starts the in-browser MCP server (server-worker.js) early, in parallel with the page's own Pyodide boot,
// when the page will want it: ?transport=in-browser, or no MCP server answers at this page's origin (a static
// host). pyodide_transport's connect("worker:./server-worker.js") adopts a worker registered here
// (globalThis.pyodideTransportWorkers: script URL -> Worker) instead of starting a second one.
const script = new URL("../server-worker.js", import.meta.url).href;
const asked = new URLSearchParams(location.search).get("transport");
const wanted = ["in-browser", "worker", "browser"].includes(asked || "");

async function noServerHere() {
  try {
    const response = await fetch(new URL("/mcp", location.origin), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: '{"jsonrpc": "2.0", "id": 0, "method": "ping"}',
    });
    const kind = response.headers.get("content-type") || "";
    return !(kind.includes("json") || kind.includes("event-stream"));
  } catch {
    return true;
  }
}

if (wanted || (!asked && (await noServerHere()))) {
  const workers = (globalThis.pyodideTransportWorkers ??= new Map());
  if (!workers.has(script)) workers.set(script, new Worker(script, { type: "module" }));
}
