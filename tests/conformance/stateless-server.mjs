#!/usr/bin/env node
// Forge conformance upstream #2: a stateless MCP server for protocol revision
// 2026-07-28, built with the official TypeScript SDK v2
// (@modelcontextprotocol/server + @modelcontextprotocol/node).
//
// Every HTTP request is served by a fresh McpServer from the factory below
// (createMcpHandler): no sessions, per-request `_meta` envelope, server/discover,
// multi-round-trip (MRTR) `input_required` results, SEP-2243 header checks,
// SEP-2549 cache hints and subscriptions/listen are handled by the SDK; this
// file supplies the fixtures the conformance suite's 2026-07-28 server
// scenarios call by name. 2025-era requests are answered by the SDK's stateless
// legacy fallback.
//
// Usage: node stateless-server.mjs --port N [--host 127.0.0.1]
// Prints "LISTENING <port>" on stdout when ready; logs go to stderr.

import http from 'node:http';
import { randomBytes } from 'node:crypto';

import {
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  acceptedContent,
  completable,
  createMcpHandler,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  inputResponse,
} from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { z } from 'zod';

import { JSON_SCHEMA_2020_12_INPUT, RED_PIXEL_PNG, SILENT_WAV, checkLoopbackHostAndOrigin, exitOnSignals, log as logLine, sendJsonRpcError, sleep, optionsOrExit } from './common.mjs';

const NAME = 'stateless-server';
const log = (...a) => logLine(NAME, ...a);

// Extra Host/Origin names accepted besides loopback (--allow-host).
let allowHosts = [];

// HMAC codec for MRTR requestState: integrity-protected, so a tampered echo
// is rejected with -32602 by the SDK seam (input-required-result-tampered-state).
// One key per process is enough: a single process serves every round.
const stateCodec = createRequestStateCodec({ key: randomBytes(32), ttlSeconds: 600 });

const EMPTY = () => fromJsonSchema({ type: 'object', properties: {} });

const text = (t) => ({ content: [{ type: 'text', text: t }] });

function clientCaps(server) {
  return server.server.getClientCapabilities() ?? {};
}

// Counters reported by the list-changed triggers. The triggers only publish
// the change events: the catalogue itself stays fixed so that concurrent suite
// runs against one server (direct + through the gateway) see identical,
// deterministic tools/list and prompts/list results.
let toolGeneration = 0;
let promptGeneration = 0;

let handler; // assigned below; the factory's triggers publish through it

function buildServer() {
  const server = new McpServer(
    { name: 'forge-conformance-stateless', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { listChanged: true },
        completions: {},
        logging: {},
      },
      cacheHints: {
        'tools/list': { ttlMs: 60_000, cacheScope: 'public' },
        'prompts/list': { ttlMs: 60_000, cacheScope: 'public' },
        'resources/list': { ttlMs: 60_000, cacheScope: 'public' },
        'resources/templates/list': { ttlMs: 60_000, cacheScope: 'public' },
        'resources/read': { ttlMs: 30_000, cacheScope: 'private' },
        'server/discover': { ttlMs: 60_000, cacheScope: 'public' },
      },
      requestState: { verify: stateCodec.verify },
    },
  );

  // ---- content tools ------------------------------------------------------
  server.registerTool(
    'test_simple_text',
    { description: 'Returns a fixed text block', inputSchema: EMPTY() },
    async () => text('This is a simple text response for testing.'),
  );

  server.registerTool(
    'test_image_content',
    { description: 'Returns a 1x1 PNG image', inputSchema: EMPTY() },
    async () => ({ content: [{ type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' }] }),
  );

  server.registerTool(
    'test_audio_content',
    { description: 'Returns a short WAV clip', inputSchema: EMPTY() },
    async () => ({ content: [{ type: 'audio', data: SILENT_WAV, mimeType: 'audio/wav' }] }),
  );

  server.registerTool(
    'test_embedded_resource',
    { description: 'Returns an embedded text resource', inputSchema: EMPTY() },
    async () => ({
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
    }),
  );

  server.registerTool(
    'test_multiple_content_types',
    { description: 'Returns text, image and resource content together', inputSchema: EMPTY() },
    async () => ({
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
    }),
  );

  server.registerTool(
    'test_error_handling',
    { description: 'Always fails with a tool error (isError: true)', inputSchema: EMPTY() },
    async () => ({
      isError: true,
      content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
    }),
  );

  server.registerTool(
    'test_tool_with_progress',
    { description: 'Reports progress 0/50/100 of 100 when given a progress token', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) {
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken: token, progress, total: 100, message: `step ${progress}` },
          });
        }
        if (progress < 100) await sleep(50);
      }
      return text('Progress tool finished.');
    },
  );

  server.registerTool(
    'test_tool_with_logging',
    { description: 'Emits three log notifications while running', inputSchema: EMPTY() },
    async (_args, ctx) => {
      await ctx.mcpReq.log('info', 'Tool execution started');
      await sleep(50);
      await ctx.mcpReq.log('info', 'Tool processing data');
      await sleep(50);
      await ctx.mcpReq.log('info', 'Tool execution completed');
      return text('Logging tool finished.');
    },
  );

  server.registerTool(
    'json_schema_2020_12_tool',
    {
      description: 'Tool with JSON Schema 2020-12 features',
      inputSchema: fromJsonSchema(JSON_SCHEMA_2020_12_INPUT),
    },
    async (args) => text(`Received: ${JSON.stringify(args)}`),
  );

  // SEP-2243: a tool whose argument is mirrored into an Mcp-Param-* header.
  server.registerTool(
    'test_custom_headers',
    {
      description: 'Echoes a region argument that clients also send as the Mcp-Param-Region header',
      inputSchema: fromJsonSchema({
        type: 'object',
        properties: {
          region: { type: 'string', description: 'Deployment region', 'x-mcp-header': 'Region' },
        },
        required: ['region'],
      }),
    },
    async (args) => text(`region=${args.region}`),
  );

  // ---- server-stateless diagnostics --------------------------------------
  server.registerTool(
    'test_missing_capability',
    { description: 'Needs the client sampling capability; fails with -32021 without it', inputSchema: EMPTY() },
    async (_args, ctx) => {
      // Returning an input request the client cannot serve makes the SDK's
      // MRTR seam answer -32021 MissingRequiredClientCapability (HTTP 400).
      // (Throwing MissingRequiredClientCapabilityError from a McpServer tool
      // callback would be turned into an isError tool result instead.)
      if (inputResponse(ctx.mcpReq.inputResponses, 'probe').kind === 'sampling') return text('sampled');
      return inputRequired({
        inputRequests: {
          probe: inputRequired.createMessage({
            messages: [{ role: 'user', content: { type: 'text', text: 'ping' } }],
            maxTokens: 10,
          }),
        },
      });
    },
  );

  server.registerTool(
    'test_streaming_elicitation',
    { description: 'Streams progress, then asks for input via an input_required result', inputSchema: EMPTY() },
    async (_args, ctx) => {
      if (acceptedContent(ctx.mcpReq.inputResponses, 'confirm')) return text('confirmed');
      const token = ctx.mcpReq._meta?.progressToken;
      if (token !== undefined) {
        await ctx.mcpReq.notify({
          method: 'notifications/progress',
          params: { progressToken: token, progress: 1, total: 2 },
        });
      }
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: 'Continue?',
            requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          }),
        },
      });
    },
  );

  server.registerTool(
    'test_logging_tool',
    { description: 'Logs at info level; the SDK drops logs unless the request set a logLevel', inputSchema: EMPTY() },
    async (_args, ctx) => {
      await ctx.mcpReq.log('info', 'test_logging_tool ran');
      await sleep(20);
      return text('logged');
    },
  );

  server.registerTool(
    'test_trigger_tool_change',
    { description: 'Publishes notifications/tools/list_changed to subscriptions/listen streams', inputSchema: EMPTY() },
    async () => {
      toolGeneration++;
      handler.notify.toolsChanged();
      return text(`tool list generation ${toolGeneration}`);
    },
  );

  server.registerTool(
    'test_trigger_prompt_change',
    { description: 'Publishes notifications/prompts/list_changed to subscriptions/listen streams', inputSchema: EMPTY() },
    async () => {
      promptGeneration++;
      handler.notify.promptsChanged();
      return text(`prompt list generation ${promptGeneration}`);
    },
  );

  // ---- multi-round-trip (SEP-2322) ----------------------------------------
  const askName = () =>
    inputRequired.elicit({
      message: 'What is your name?',
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    });

  server.registerTool(
    'test_input_required_result_elicitation',
    { description: 'MRTR: asks for a name via elicitation', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const raw = ctx.mcpReq.inputResponses;
      if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'inputResponses must be an object');
      }
      const got = acceptedContent(raw, 'user_name');
      if (got && typeof got.name === 'string') return text(`Hello, ${got.name}!`);
      return inputRequired({ inputRequests: { user_name: askName() } });
    },
  );

  server.registerTool(
    'test_input_required_result_sampling',
    { description: 'MRTR: asks the client to sample a completion', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const r = inputResponse(ctx.mcpReq.inputResponses, 'capital_question');
      if (r.kind === 'sampling') {
        const c = r.result.content;
        return text(`Sampling said: ${c?.type === 'text' ? c.text : JSON.stringify(c)}`);
      }
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({
            messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }],
            maxTokens: 100,
          }),
        },
      });
    },
  );

  server.registerTool(
    'test_input_required_result_list_roots',
    { description: 'MRTR: asks the client for its roots', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const r = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
      if (r.kind === 'roots') return text(`Roots: ${r.roots.map((x) => x.uri).join(', ')}`);
      return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    },
  );

  server.registerTool(
    'test_input_required_result_request_state',
    { description: 'MRTR: round-trips an integrity-protected requestState', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const state = ctx.mcpReq.requestState();
      const ok = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
      if (state?.flow === 'request_state' && ok) return text('state-ok: requestState verified');
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: 'Please confirm',
            requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          }),
        },
        requestState: await stateCodec.mint({ flow: 'request_state' }),
      });
    },
  );

  server.registerTool(
    'test_input_required_result_multiple_inputs',
    { description: 'MRTR: elicitation + sampling + roots in one round', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const responses = ctx.mcpReq.inputResponses;
      const name = acceptedContent(responses, 'user_name');
      const greeting = inputResponse(responses, 'greeting');
      const roots = inputResponse(responses, 'client_roots');
      if (ctx.mcpReq.requestState()?.flow === 'multiple' && name && greeting.kind === 'sampling' && roots.kind === 'roots') {
        return text(`All inputs received for ${name.name} (${roots.roots.length} roots)`);
      }
      return inputRequired({
        inputRequests: {
          user_name: askName(),
          greeting: inputRequired.createMessage({
            messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }],
            maxTokens: 50,
          }),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await stateCodec.mint({ flow: 'multiple' }),
      });
    },
  );

  server.registerTool(
    'test_input_required_result_multi_round',
    { description: 'MRTR: two rounds of elicitation with evolving requestState', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const state = ctx.mcpReq.requestState();
      const responses = ctx.mcpReq.inputResponses;
      if (state?.round === 2) {
        const color = acceptedContent(responses, 'step2');
        if (color) return text(`Thanks ${state.name}, favourite colour ${color.color}`);
      }
      if (state?.round === 1) {
        const step1 = acceptedContent(responses, 'step1');
        if (step1) {
          return inputRequired({
            inputRequests: {
              step2: inputRequired.elicit({
                message: 'Step 2: What is your favorite color?',
                requestedSchema: {
                  type: 'object',
                  properties: { color: { type: 'string' } },
                  required: ['color'],
                },
              }),
            },
            requestState: await stateCodec.mint({ round: 2, name: step1.name }),
          });
        }
      }
      return inputRequired({
        inputRequests: {
          step1: inputRequired.elicit({
            message: 'Step 1: What is your name?',
            requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
          }),
        },
        requestState: await stateCodec.mint({ round: 1 }),
      });
    },
  );

  server.registerTool(
    'test_input_required_result_tampered_state',
    { description: 'MRTR: HMAC-protected requestState; tampering is rejected', inputSchema: EMPTY() },
    async (_args, ctx) => {
      if (ctx.mcpReq.requestState()?.flow === 'tamper' && acceptedContent(ctx.mcpReq.inputResponses, 'confirm')) {
        return text('state verified');
      }
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: 'Please confirm',
            requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          }),
        },
        requestState: await stateCodec.mint({ flow: 'tamper' }),
      });
    },
  );

  server.registerTool(
    'test_input_required_result_capabilities',
    { description: 'MRTR: only asks for inputs the client declared capabilities for', inputSchema: EMPTY() },
    async (_args, ctx) => {
      const caps = clientCaps(server);
      const responses = ctx.mcpReq.inputResponses ?? {};
      const requests = {};
      if (caps.elicitation && !acceptedContent(responses, 'user_name')) requests.user_name = askName();
      if (caps.sampling && inputResponse(responses, 'summary').kind !== 'sampling') {
        requests.summary = inputRequired.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: 'Summarise the request' } }],
          maxTokens: 50,
        });
      }
      if (caps.roots && inputResponse(responses, 'client_roots').kind !== 'roots') {
        requests.client_roots = inputRequired.listRoots();
      }
      if (Object.keys(requests).length === 0) return text('Nothing (more) to ask for');
      return inputRequired({ inputRequests: requests });
    },
  );

  server.registerPrompt(
    'test_input_required_result_prompt',
    { description: 'MRTR on prompts/get: asks for context before rendering' },
    async (ctx) => {
      const got = acceptedContent(ctx.mcpReq.inputResponses, 'user_context');
      if (got && typeof got.context === 'string') {
        return {
          messages: [{ role: 'user', content: { type: 'text', text: `Context: ${got.context}` } }],
        };
      }
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: 'What context should the prompt use?',
            requestedSchema: {
              type: 'object',
              properties: { context: { type: 'string' } },
              required: ['context'],
            },
          }),
        },
      });
    },
  );

  // ---- prompts ------------------------------------------------------------
  server.registerPrompt(
    'test_simple_prompt',
    { description: 'A prompt without arguments' },
    async () => ({
      messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
    }),
  );

  const completeFrom = (pool) => (value) => pool.filter((v) => v.startsWith(value ?? ''));
  server.registerPrompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt with two required arguments',
      argsSchema: z.object({
        arg1: completable(z.string().describe('First test argument'), completeFrom(['paris', 'park', 'party', 'test', 'testing'])),
        arg2: completable(z.string().describe('Second test argument'), completeFrom(['alpha', 'beta', 'gamma'])),
      }),
    },
    async ({ arg1, arg2 }) => ({
      messages: [
        { role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } },
      ],
    }),
  );

  server.registerPrompt(
    'test_prompt_with_embedded_resource',
    {
      description: 'A prompt that embeds a resource',
      argsSchema: z.object({ resourceUri: z.string().describe('URI of the resource to embed') }),
    },
    async ({ resourceUri }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
          },
        },
        { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
      ],
    }),
  );

  server.registerPrompt(
    'test_prompt_with_image',
    { description: 'A prompt that carries an image' },
    async () => ({
      messages: [
        { role: 'user', content: { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' } },
        { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
      ],
    }),
  );

  // ---- resources ----------------------------------------------------------
  server.registerResource(
    'static-text',
    'test://static-text',
    { description: 'A static text resource', mimeType: 'text/plain' },
    async (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
    }),
  );

  server.registerResource(
    'static-binary',
    'test://static-binary',
    { description: 'A static binary (PNG) resource', mimeType: 'image/png' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: RED_PIXEL_PNG }] }),
  );

  server.registerResource(
    'watched-resource',
    'test://watched-resource',
    { description: 'A resource whose updates can be listened for', mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content.' }] }),
  );

  server.registerResource(
    'template-data',
    new ResourceTemplate('test://template/{id}/data', {
      list: undefined,
      complete: { id: (value) => ['1', '2', '3', '123'].filter((v) => v.startsWith(value ?? '')) },
    }),
    { description: 'Per-id JSON data', mimeType: 'application/json' },
    async (uri, { id }) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: 'application/json',
          text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
        },
      ],
    }),
  );

  return server;
}

function main() {
  const opts = optionsOrExit('stateless-server.mjs');
  allowHosts = opts.allowHosts;

  handler = createMcpHandler(() => buildServer(), {
    onerror: (err) => log(`sdk: ${err?.message ?? err}`),
    keepAliveMs: 0,
  });
  const nodeHandler = toNodeHandler(handler);

  const httpServer = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not found');
      return;
    }
    const rejected = checkLoopbackHostAndOrigin(req, allowHosts);
    if (rejected) {
      log(`403 ${req.method}: ${rejected}`);
      sendJsonRpcError(res, 403, -32000, `Forbidden: ${rejected}`);
      return;
    }
    Promise.resolve(nodeHandler(req, res)).catch((err) => {
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
    handler.close().catch(() => {});
  });
}

main();
