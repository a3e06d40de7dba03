// The client benchmark page: four MCP clients in one page against the same server, the same echo tool.
//   raw  - a plain JavaScript JSON-RPC loop over fetch or WebSocket (the floor)
//   sdk  - the official TypeScript SDK client 1.x (./mcp-sdk.js, bundled locally by `python build.py bench`)
//   sdk2 - the v2 TypeScript client, @modelcontextprotocol/client (./mcp-client2.js, bundled the same way);
//          v2 has no WebSocket client transport, so /ws uses Sdk2WebSocket below
//   ours - pyodide-transport's Client in Pyodide (bench_client.py)
// window.bench(impl, url, calls, concurrency, warmup, protocol) resolves to
// {calls, concurrency, wall_ms, latencies_ms: [...], protocol_version}.
import { loadPyodide } from "../pyodide/pyodide.mjs";

const MESSAGE = "hello from the benchmark";
const HANDSHAKE = "2025-11-25";
const ECHO = { name: "echo", arguments: { message: MESSAGE } };
const status = document.getElementById("status");

function check(result) {
  if (!result || !result.content || result.content[0].text !== MESSAGE) {
    throw new Error(`unexpected echo result: ${JSON.stringify(result)}`);
  }
}

async function timedLoop(call, calls, concurrency) {
  const latencies = [];
  let remaining = calls;
  async function worker() {
    while (remaining > 0) {
      remaining -= 1;
      const start = performance.now();
      await call();
      latencies.push(performance.now() - start);
    }
  }
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { calls, concurrency, wall_ms: performance.now() - start, latencies_ms: latencies };
}

// Streamable HTTP by hand: JSON or SSE bodies, the session id when the server gives one.
class RawHttp {
  constructor(url, codec = null) {
    this.url = url;
    this.codec = codec;
    this.session = null;
    this.version = null;
    this.nextId = 0;
  }
  headers() {
    const h = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    if (this.version) h["mcp-protocol-version"] = this.version;
    if (this.session) h["mcp-session-id"] = this.session;
    return h;
  }
  async post(message) {
    const body = this.codec && message.method === "tools/call" ? this.codec.request(message.id) : JSON.stringify(message);
    const resp = await fetch(this.url, { method: "POST", headers: this.headers(), body });
    if (!resp.ok) throw new Error(`HTTP ${resp.status} for ${message.method}`);
    const sid = resp.headers.get("mcp-session-id");
    if (sid) this.session = sid;
    if (resp.status === 202) {
      await resp.arrayBuffer();
      return null;
    }
    const parse = this.codec && message.method === "tools/call" ? (t) => this.codec.reply(t) : JSON.parse;
    if ((resp.headers.get("content-type") || "").startsWith("application/json")) return parse(await resp.text());
    const text = await resp.text();
    for (const block of text.split("\n\n")) {
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      const m = parse(data);
      if (m.id === message.id && ("result" in m || "error" in m)) return m;
    }
    throw new Error("no JSON-RPC response in the SSE body");
  }
  async connect() {
    const params = { protocolVersion: HANDSHAKE, capabilities: {}, clientInfo: { name: "raw-js", version: "1" } };
    const init = await this.post({ jsonrpc: "2.0", id: 0, method: "initialize", params });
    this.version = init.result.protocolVersion;
    await this.post({ jsonrpc: "2.0", method: "notifications/initialized" });
  }
  async call() {
    const m = await this.post({ jsonrpc: "2.0", id: ++this.nextId, method: "tools/call", params: ECHO });
    check(m.result);
  }
  async close() {
    if (this.session) await fetch(this.url, { method: "DELETE", headers: this.headers() });
  }
}

// WebSocket by hand: subprotocol "mcp", one JSON-RPC message per text frame, responses matched by id.
class RawWs {
  constructor(url, codec = null) {
    this.url = url;
    this.codec = codec;
    this.pending = new Map();
    this.nextId = 0;
  }
  async connect() {
    this.ws = new WebSocket(this.url, "mcp");
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error("WebSocket failed to open"));
    });
    this.ws.onmessage = (event) => {
      const m = this.codec && this.ready ? this.codec.reply(event.data) : JSON.parse(event.data);
      const resolve = this.pending.get(m.id);
      if (resolve) {
        this.pending.delete(m.id);
        resolve(m);
      }
    };
    const params = { protocolVersion: HANDSHAKE, capabilities: {}, clientInfo: { name: "raw-js", version: "1" } };
    await this.request("initialize", params);
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    this.ready = true;
  }
  request(method, params) {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(this.codec && this.ready ? this.codec.request(id) : JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }
  async call() {
    check((await this.request("tools/call", ECHO)).result);
  }
  async close() {
    this.ws.close();
  }
}

async function rawClient(url, codec = null) {
  const client = url.startsWith("ws") ? new RawWs(url, codec) : new RawHttp(url, codec);
  await client.connect();
  return { call: () => client.call(), close: () => client.close(), version: HANDSHAKE };
}

async function sdkClient(url) {
  const sdk = await import("./mcp-sdk.js");
  const client = new sdk.Client({ name: "ts-sdk-bench", version: "1" });
  const transport = url.startsWith("ws")
    ? new sdk.WebSocketClientTransport(new URL(url))
    : new sdk.StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return {
    call: async () => check(await client.callTool(ECHO)),
    close: () => client.close(),
    version: transport.protocolVersion || sdk.LATEST_PROTOCOL_VERSION,
  };
}

// A minimal WebSocket Transport for the v2 client (v2 dropped its own): the same wire as the 1.x SDK's
// WebSocketClientTransport, i.e. subprotocol "mcp", one JSON-RPC message per text frame, each incoming
// message validated with the client's own schema (parseJSONRPCMessage) before it reaches the Client.
class Sdk2WebSocket {
  constructor(url, parse) {
    this.url = url;
    this.parse = parse;
    this.socket = null;
    this.onclose = undefined;
    this.onerror = undefined;
    this.onmessage = undefined;
  }
  start() {
    if (this.socket) throw new Error("Sdk2WebSocket already started (Client.connect() starts it)");
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, "mcp");
      this.socket = socket;
      socket.onopen = () => resolve();
      socket.onerror = () => {
        const error = new Error("WebSocket error");
        reject(error);
        this.onerror?.(error);
      };
      socket.onclose = () => this.onclose?.();
      socket.onmessage = (event) => {
        let message;
        try {
          message = this.parse(JSON.parse(event.data));
        } catch (error) {
          this.onerror?.(error);
          return;
        }
        this.onmessage?.(message);
      };
    });
  }
  async send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) throw new Error("Not connected");
    this.socket.send(JSON.stringify(message));
  }
  async close() {
    this.socket?.close();
  }
}

// protocol: a 2025 version -> v2's default connect (the plain initialize handshake, which offers the
// client's newest 2025 revision); a 2026 version -> versionNegotiation pinned to it; null -> "auto".
function sdk2Options(protocol) {
  if (!protocol) return { versionNegotiation: { mode: "auto" } };
  if (protocol.startsWith("2025") || protocol.startsWith("2024")) return {};
  return { versionNegotiation: { mode: { pin: protocol } } };
}

async function sdk2Connect(url, options) {
  const sdk = await import("./mcp-client2.js");
  const client = new sdk.Client({ name: "ts-client2-bench", version: "1" }, options);
  const transport = url.startsWith("ws")
    ? new Sdk2WebSocket(url, sdk.parseJSONRPCMessage)
    : new sdk.StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return client;
}

async function sdk2Client(url, protocol) {
  const client = await sdk2Connect(url, sdk2Options(protocol));
  const version = client.getNegotiatedProtocolVersion();
  if (protocol && version !== protocol) throw new Error(`v2 client negotiated ${version}, wanted ${protocol}`);
  return {
    call: async () => check(await client.callTool(ECHO)),
    close: () => client.close(),
    version,
  };
}

// What the v2 client negotiates with this server: with no options (its default) and with mode "auto".
async function sdk2Negotiation(url) {
  const out = {};
  for (const [name, options] of [["default", {}], ["auto", { versionNegotiation: { mode: "auto" } }]]) {
    try {
      const client = await sdk2Connect(url, options);
      out[name] = { version: client.getNegotiatedProtocolVersion(), era: client.getProtocolEra() };
      check(await client.callTool(ECHO));
      await client.close();
    } catch (err) {
      out[name] = { error: String(err).slice(0, 200) };
    }
  }
  return out;
}

let py = null;

async function bootPython() {
  const t0 = performance.now();
  const indexURL = new URL("../pyodide/", location.href).href;
  py = await loadPyodide({ indexURL, lockFileURL: new URL("pyodide-lock.json", indexURL).href });
  await py.loadPackage(["pyodide-transport"]);
  const source = await (await fetch("./bench_client.py")).text();
  py.FS.mkdirTree("/bench");
  py.FS.writeFile("/bench/bench_client.py", source);
  py.runPython("import sys; sys.path.insert(0, '/bench'); import bench_client");
  return performance.now() - t0;
}

async function callPython(name, ...args) {
  const module = py.pyimport("bench_client");
  const fn = module[name];
  try {
    return await fn(...args);
  } finally {
    fn.destroy();
    module.destroy();
  }
}

// The Python floor: the raw JavaScript client with each echo request built and each reply decoded by Python
// (json.dumps / json.loads, one call into Python each way): what any Pyodide client pays at the least.
function floorCodec() {
  const module = py.pyimport("bench_client");
  const request = module.floor_request;
  const reply = module.floor_reply;
  const echoed = { content: [{ type: "text", text: MESSAGE }] }; // Python checked it
  return {
    request: (id) => request(id),
    reply: (text) => ({ jsonrpc: "2.0", id: reply(text), result: echoed }),
    destroy: () => {
      request.destroy();
      reply.destroy();
      module.destroy();
    },
  };
}

window.bench = async (impl, url, calls, concurrency, warmup, protocol) => {
  if (impl === "ours") return JSON.parse(await callPython("bench", url, calls, concurrency, warmup, protocol || null));
  const codec = impl === "pyfloor" ? floorCodec() : null;
  const client =
    impl === "sdk"
      ? await sdkClient(url)
      : impl === "sdk2"
        ? await sdk2Client(url, protocol)
        : await rawClient(url, codec);
  try {
    for (let i = 0; i < warmup; i++) await client.call();
    const out = await timedLoop(client.call, calls, concurrency);
    out.protocol_version = client.version;
    return out;
  } finally {
    await client.close();
    if (codec) codec.destroy();
  }
};
window.benchRunPython = async (code) => {
  const result = await py.runPythonAsync(code);
  return result === undefined || result === null ? null : String(result);
};
window.benchNegotiation = sdk2Negotiation;
window.benchSplit = async (calls) => JSON.parse(await callPython("split", calls));
window.benchProfile = async (url, calls, protocol) => callPython("profile", url, calls, protocol || null);

try {
  const ms = await bootPython();
  status.textContent = `ready (Python booted in ${ms.toFixed(0)} ms)`;
  document.body.dataset.ready = "true";
} catch (err) {
  status.textContent = `boot failed: ${err}`;
  document.body.dataset.ready = "failed";
}
