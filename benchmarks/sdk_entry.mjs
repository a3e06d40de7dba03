// Entry point esbuild bundles into site/dist/bench/mcp-sdk.js: the official TypeScript SDK client
// (@modelcontextprotocol/sdk, pinned in package.json) for the benchmark page, served locally.
export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
export { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
export { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
