// Entry point esbuild bundles into site/dist/bench/mcp-client2.js: the v2 TypeScript client
// (@modelcontextprotocol/client, pinned in package.json) for the benchmark page, served locally.
// v2 has no WebSocket client transport; the bench page brings a minimal one (client.js, Sdk2WebSocket).
export {
  Client,
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  LATEST_PROTOCOL_VERSION,
  StreamableHTTPClientTransport,
  parseJSONRPCMessage,
} from "@modelcontextprotocol/client";
