// Forge benchmark upstream: a real MCP server built on the official TypeScript
// SDK v1 (Streamable HTTP transport, stateless, JSON responses instead of SSE).
//
//   node server.mjs --port 18080 [--host 127.0.0.1]
//
// POST /mcp     -> MCP endpoint (tool "echo" returns its "text" argument)
// GET  /healthz -> 200 "ok" (readiness probe used by bench/run.sh)
//
// Stateless mode needs a fresh McpServer + transport per request: a shared
// transport would route concurrent responses by JSON-RPC id, and every bench
// request uses id 1. That per-request setup is part of what this upstream costs.
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const host = arg('host', '127.0.0.1');
const port = Number(arg('port', process.env.PORT || '18080'));

function buildServer() {
  const server = new McpServer({ name: 'forge-bench-sdk-upstream', version: '0.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echo the given text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const httpServer = http.createServer(async (req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (path !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  if (req.method !== 'POST') {
    // Stateless JSON-response mode offers no standalone SSE stream.
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  let parsed;
  try {
    parsed = JSON.parse((await readBody(req)).toString('utf8'));
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' }).end(
      JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }),
    );
    return;
  }
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close().catch(() => {});
    server.close().catch(() => {});
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(
        JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: String(err) } }),
      );
    }
  }
});
httpServer.keepAliveTimeout = 120_000;
httpServer.headersTimeout = 125_000;
httpServer.maxRequestsPerSocket = 0; // unlimited requests per keep-alive connection
httpServer.listen(port, host, () => {
  console.error(`sdk-upstream listening on http://${host}:${port}/mcp (pid ${process.pid})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    httpServer.close();
    process.exit(0);
  });
}
