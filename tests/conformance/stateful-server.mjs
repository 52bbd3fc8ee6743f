#!/usr/bin/env node
// Forge conformance upstream #1: a stateful Streamable HTTP MCP server built
// with the official TypeScript SDK v1 (@modelcontextprotocol/sdk), protocol
// revisions up to 2025-11-25.
//
// It implements the fixtures the MCP conformance suite's `server` scenarios
// expect (tool/resource/prompt names and behaviours) so the suite can run once
// directly against it and once through the Forge gateway.
//
// Usage: node stateful-server.mjs --port N [--host 127.0.0.1]
// Prints "LISTENING <port>" on stdout when ready; logs go to stderr.

import http from 'node:http';
import { randomUUID } from 'node:crypto';

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';

import { RED_PIXEL_PNG, SILENT_WAV, JSON_SCHEMA_2020_12_INPUT, checkLoopbackHostAndOrigin, exitOnSignals, log as logLine, readBody, sendJsonRpcError, sleep, optionsOrExit } from './common.mjs';

const NAME = 'stateful-server';
const log = (...a) => logLine(NAME, ...a);

// Extra Host/Origin names accepted besides loopback (--allow-host).
let allowHosts = [];

// ---------------------------------------------------------------------------
// Resumability: a small in-memory event store so SSE streams can be resumed
// with Last-Event-ID (needed by test_reconnection / SEP-1699 polling).
// ---------------------------------------------------------------------------
class MemoryEventStore {
  constructor(limit = 10_000) {
    this.limit = limit;
    this.seq = 0;
    this.events = new Map(); // eventId -> { streamId, message }
  }
  async storeEvent(streamId, message) {
    const eventId = `${streamId}.${++this.seq}`;
    this.events.set(eventId, { streamId, message });
    if (this.events.size > this.limit) {
      this.events.delete(this.events.keys().next().value);
    }
    return eventId;
  }
  async getStreamIdForEventId(eventId) {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const start = this.events.get(lastEventId);
    if (!start) return '';
    let after = false;
    for (const [id, ev] of this.events) {
      if (id === lastEventId) {
        after = true;
        continue;
      }
      if (!after || ev.streamId !== start.streamId) continue;
      // Priming events are stored as {} and carry no message to replay.
      if (ev.message && Object.keys(ev.message).length > 0) await send(id, ev.message);
    }
    return start.streamId;
  }
}

// ---------------------------------------------------------------------------
// Fixture data
// ---------------------------------------------------------------------------
const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {} };

const TOOLS = [
  {
    name: 'test_simple_text',
    description: 'Returns a fixed text block',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_image_content',
    description: 'Returns a 1x1 PNG image',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_audio_content',
    description: 'Returns a short WAV clip',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_embedded_resource',
    description: 'Returns an embedded text resource',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_multiple_content_types',
    description: 'Returns text, image and resource content together',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_tool_with_logging',
    description: 'Emits three log notifications while running',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_error_handling',
    description: 'Always fails with a tool error (isError: true)',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_tool_with_progress',
    description: 'Reports progress 0/50/100 of 100 when given a progress token',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample an LLM completion for a prompt',
    inputSchema: {
      type: 'object',
      properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
      required: ['prompt'],
    },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the client (user) for a username and email',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string', description: 'The message to show the user' } },
      required: ['message'],
    },
  },
  {
    name: 'test_elicitation_sep1034_defaults',
    description: 'Elicitation whose schema carries defaults for every primitive type (SEP-1034)',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'test_elicitation_sep1330_enums',
    description: 'Elicitation whose schema carries every enum variant (SEP-1330)',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: JSON_SCHEMA_2020_12_INPUT,
  },
  {
    name: 'test_reconnection',
    description: 'Closes its SSE stream mid-call, then answers on the resumed stream (SEP-1699)',
    inputSchema: EMPTY_OBJECT_SCHEMA,
  },
];

const RESOURCES = [
  {
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
  },
  {
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary (PNG) resource',
    mimeType: 'image/png',
  },
  {
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource clients may subscribe to',
    mimeType: 'text/plain',
  },
];

const RESOURCE_TEMPLATES = [
  {
    uriTemplate: 'test://template/{id}/data',
    name: 'template-data',
    description: 'Per-id JSON data',
    mimeType: 'application/json',
  },
];

const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt that embeds a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt that carries an image' },
];

const COMPLETIONS = {
  arg1: ['paris', 'park', 'party', 'test', 'testing'],
  arg2: ['alpha', 'beta', 'gamma'],
};

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

// ---------------------------------------------------------------------------
// One SDK Server per session
// ---------------------------------------------------------------------------
function createMcpServer() {
  const server = new Server(
    { name: 'forge-conformance-stateful', version: '1.0.0' },
    {
      capabilities: {
        tools: {},
        resources: { subscribe: true },
        prompts: {},
        logging: {},
        completions: {},
      },
    },
  );

  let minLevel = 'debug';
  const subscriptions = new Set();

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    minLevel = req.params.level;
    return {};
  });

  const logTo = async (extra, level, data) => {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(minLevel)) return;
    await extra.sendNotification({
      method: 'notifications/message',
      params: { level, logger: 'forge-conformance', data },
    });
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const args = req.params.arguments ?? {};
    switch (req.params.name) {
      case 'test_simple_text':
        return { content: [{ type: 'text', text: 'This is a simple text response for testing.' }] };

      case 'test_image_content':
        return { content: [{ type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' }] };

      case 'test_audio_content':
        return { content: [{ type: 'audio', data: SILENT_WAV, mimeType: 'audio/wav' }] };

      case 'test_embedded_resource':
        return {
          content: [
            {
              type: 'resource',
              resource: {
                uri: 'test://embedded-resource',
                mimeType: 'text/plain',
                text: 'This is an embedded resource content.',
              },
            },
          ],
        };

      case 'test_multiple_content_types':
        return {
          content: [
            { type: 'text', text: 'Multiple content types test:' },
            { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: {
                uri: 'test://mixed-content-resource',
                mimeType: 'application/json',
                text: JSON.stringify({ test: 'data', value: 123 }),
              },
            },
          ],
        };

      case 'test_tool_with_logging':
        await logTo(extra, 'info', 'Tool execution started');
        await sleep(50);
        await logTo(extra, 'info', 'Tool processing data');
        await sleep(50);
        await logTo(extra, 'info', 'Tool execution completed');
        return { content: [{ type: 'text', text: 'Logging tool finished (3 log messages sent).' }] };

      case 'test_error_handling':
        return {
          isError: true,
          content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
        };

      case 'test_tool_with_progress': {
        const token = req.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (token !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress, total: 100, message: `step ${progress}` },
            });
          }
          if (progress < 100) await sleep(50);
        }
        return { content: [{ type: 'text', text: 'Progress tool finished.' }] };
      }

      case 'test_sampling': {
        if (!server.getClientCapabilities()?.sampling) {
          throw new McpError(ErrorCode.InvalidRequest, 'Client does not support sampling');
        }
        const result = await extra.sendRequest(
          {
            method: 'sampling/createMessage',
            params: {
              messages: [{ role: 'user', content: { type: 'text', text: String(args.prompt ?? '') } }],
              maxTokens: 100,
            },
          },
          CreateMessageResultSchema,
        );
        const text = result.content?.type === 'text' ? result.content.text : JSON.stringify(result.content);
        return { content: [{ type: 'text', text: `LLM response: ${text}` }] };
      }

      case 'test_elicitation': {
        if (!server.getClientCapabilities()?.elicitation) {
          throw new McpError(ErrorCode.InvalidRequest, 'Client does not support elicitation');
        }
        const result = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: String(args.message ?? 'Please provide your information'),
              requestedSchema: {
                type: 'object',
                properties: {
                  username: { type: 'string', description: "User's response" },
                  email: { type: 'string', description: "User's email address" },
                },
                required: ['username', 'email'],
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            {
              type: 'text',
              text: `User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
            },
          ],
        };
      }

      case 'test_elicitation_sep1034_defaults': {
        const result = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Please review these values (all fields have defaults)',
              requestedSchema: {
                type: 'object',
                properties: {
                  name: { type: 'string', description: 'User name', default: 'John Doe' },
                  age: { type: 'integer', description: 'User age', default: 30 },
                  score: { type: 'number', description: 'User score', default: 95.5 },
                  status: {
                    type: 'string',
                    description: 'User status',
                    enum: ['active', 'inactive', 'pending'],
                    default: 'active',
                  },
                  verified: { type: 'boolean', description: 'Verification status', default: true },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            {
              type: 'text',
              text: `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
            },
          ],
        };
      }

      case 'test_elicitation_sep1330_enums': {
        const result = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Please pick some options',
              requestedSchema: {
                type: 'object',
                properties: {
                  untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  titledSingle: {
                    type: 'string',
                    oneOf: [
                      { const: 'value1', title: 'First Option' },
                      { const: 'value2', title: 'Second Option' },
                      { const: 'value3', title: 'Third Option' },
                    ],
                  },
                  legacyEnum: {
                    type: 'string',
                    enum: ['opt1', 'opt2', 'opt3'],
                    enumNames: ['Option One', 'Option Two', 'Option Three'],
                  },
                  untitledMulti: {
                    type: 'array',
                    items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  },
                  titledMulti: {
                    type: 'array',
                    items: {
                      anyOf: [
                        { const: 'value1', title: 'First Choice' },
                        { const: 'value2', title: 'Second Choice' },
                        { const: 'value3', title: 'Third Choice' },
                      ],
                    },
                  },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            {
              type: 'text',
              text: `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
            },
          ],
        };
      }

      case 'json_schema_2020_12_tool':
        return { content: [{ type: 'text', text: `Received: ${JSON.stringify(args)}` }] };

      case 'test_reconnection': {
        // Let the priming event and any early events flush, then drop the
        // stream: the client reconnects (GET + Last-Event-ID) and receives
        // the result from the event store.
        await sleep(100);
        if (extra.closeSSEStream) {
          log('test_reconnection: closing SSE stream mid-call');
          extra.closeSSEStream();
        } else {
          log('test_reconnection: closeSSEStream unavailable (no priming event for this client)');
        }
        await sleep(300);
        return { content: [{ type: 'text', text: 'Reconnection test completed successfully' }] };
      }

      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${req.params.name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: RESOURCE_TEMPLATES,
  }));

  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const uri = req.params.uri;
    if (uri === 'test://static-text') {
      return {
        contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
      };
    }
    if (uri === 'test://static-binary') {
      return { contents: [{ uri, mimeType: 'image/png', blob: RED_PIXEL_PNG }] };
    }
    if (uri === 'test://watched-resource') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
    }
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1]);
      return {
        contents: [
          {
            uri,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    }
    // -32602 per 2025-11-25 guidance for unknown resources (older servers used -32002).
    throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`, { uri });
  });

  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));

  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const args = req.params.arguments ?? {};
    switch (req.params.name) {
      case 'test_simple_prompt':
        return {
          messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
        };
      case 'test_prompt_with_arguments':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'text',
                text: `Prompt with arguments: arg1='${args.arg1 ?? ''}', arg2='${args.arg2 ?? ''}'`,
              },
            },
          ],
        };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'resource',
                resource: {
                  uri: String(args.resourceUri ?? 'test://example-resource'),
                  mimeType: 'text/plain',
                  text: 'Embedded resource content for testing.',
                },
              },
            },
            { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' } },
            { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${req.params.name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool = [];
    if (ref.type === 'ref/prompt' && ref.name === 'test_prompt_with_arguments') {
      pool = COMPLETIONS[argument.name] ?? [];
    } else if (ref.type === 'ref/resource' && ref.uri === 'test://template/{id}/data' && argument.name === 'id') {
      pool = ['1', '2', '3', '123'];
    }
    const prefix = String(argument.value ?? '');
    const values = pool.filter((v) => v.startsWith(prefix));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

// ---------------------------------------------------------------------------
// HTTP plumbing: session routing around the SDK transport
// ---------------------------------------------------------------------------
const sessions = new Map(); // sessionId -> { transport, server }

function isInitializeBody(body) {
  if (Array.isArray(body)) return body.some((m) => isInitializeRequest(m));
  return isInitializeRequest(body);
}

async function handleMcp(req, res) {
  const rejected = checkLoopbackHostAndOrigin(req, allowHosts);
  if (rejected) {
    log(`403 ${req.method}: ${rejected}`);
    sendJsonRpcError(res, 403, -32000, `Forbidden: ${rejected}`);
    return;
  }

  const sid = req.headers['mcp-session-id'];

  if (req.method === 'POST') {
    let body;
    try {
      const text = await readBody(req);
      body = JSON.parse(text);
    } catch (e) {
      if (e?.status === 413) return sendJsonRpcError(res, 413, -32600, 'Request body too large');
      return sendJsonRpcError(res, 400, -32700, 'Parse error: request body is not valid JSON');
    }

    if (sid !== undefined) {
      const entry = sessions.get(sid);
      if (!entry) return sendJsonRpcError(res, 404, -32001, 'Session not found');
      await entry.transport.handleRequest(req, res, body);
      return;
    }

    if (!isInitializeBody(body)) {
      return sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    }

    const server = createMcpServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new MemoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
        log(`session ${id} opened (${sessions.size} live)`);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
        log(`session ${id} closed by DELETE (${sessions.size} live)`);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId && sessions.delete(transport.sessionId)) {
        log(`session ${transport.sessionId} transport closed (${sessions.size} live)`);
      }
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    return;
  }

  if (req.method === 'GET' || req.method === 'DELETE') {
    if (sid === undefined) {
      return sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    }
    const entry = sessions.get(sid);
    if (!entry) return sendJsonRpcError(res, 404, -32001, 'Session not found');
    await entry.transport.handleRequest(req, res);
    return;
  }

  res.writeHead(405, { allow: 'GET, POST, DELETE', 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
}

function main() {
  const opts = optionsOrExit('stateful-server.mjs');
  allowHosts = opts.allowHosts;

  const httpServer = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not found');
      return;
    }
    handleMcp(req, res).catch((err) => {
      log(`internal error: ${err?.stack ?? err}`);
      sendJsonRpcError(res, 500, -32603, 'Internal server error');
    });
  });

  httpServer.listen(opts.port, opts.host, () => {
    const port = httpServer.address().port;
    log(`listening on http://${opts.host}:${port}/mcp`);
    process.stdout.write(`LISTENING ${port}\n`);
  });

  exitOnSignals(NAME, httpServer, () => {
    for (const { transport } of sessions.values()) transport.close().catch(() => {});
  });
}

main();
