#!/usr/bin/env node
// Forge test peer: stateless MCP server (protocol 2026-07-28) built on the TypeScript SDK v2
// (@modelcontextprotocol/server + @modelcontextprotocol/node).
//
//   node ts-v2-server.mjs --port N [--record FILE] [--legacy stateless|reject]
//
// Serves POST /mcp on 127.0.0.1 through createMcpHandler: one fresh McpServer per HTTP request,
// server/discover, multi round-trip (input_required) tools, subscriptions/listen streams, cache
// hints (ttlMs/cacheScope) on list results. 2025-era requests are answered statelessly too
// (SDK default `legacy: 'stateless'`) unless --legacy reject.
// Prints `LISTENING <port>` on stdout once ready; everything else goes to stderr.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import {
    McpServer,
    ResourceTemplate,
    acceptedContent,
    completable,
    createMcpHandler,
    createRequestStateCodec,
    inputRequired,
    inputResponse
} from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { Recorder, greetingPrompt, httpInfo, simplePrompt, listen, log, parseArgs, readBody, sendJson, sleep, waitFor } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), { port: 'number', record: 'string', legacy: 'string' });
const recorder = new Recorder(args.record);

const text = t => ({ content: [{ type: 'text', text: t }] });
const jsonText = v => text(JSON.stringify(v));
const BLOB = Buffer.from(Array.from({ length: 16 }, (_, i) => i)).toString('base64');
const ITEM_IDS = ['1', '2', '3', '10', '11'];
const NAMES = ['alice', 'bob', 'carol', 'carlos'];

// The server is stateless per request; the only process-wide state is keyed by a client-chosen run id
// so a client can ask how its own `slow` run ended.
const slowRuns = new Map();
const stateCodec = createRequestStateCodec({ key: randomBytes(32), ttlSeconds: 600 });

const answerSchema = z.object({ name: z.string(), count: z.number().int().min(0).optional() });
const confirmSchema = z.object({ confirm: z.boolean() });
const scopeSchema = z.object({ scope: z.enum(['all', 'sessions', 'cache']) });

let handler; // set below; tools publish change events through handler.notify

function buildServer({ era }) {
    const server = new McpServer(
        { name: 'forge-ts-v2-peer', version: '2.0.0', title: 'Forge TS v2 test peer' },
        {
            capabilities: { logging: {}, resources: { subscribe: true, listChanged: true }, tools: { listChanged: true }, prompts: { listChanged: true } },
            instructions: 'Forge ts-v2 test peer: stateless 2026-07-28 server for gateway tests.',
            cacheHints: {
                'tools/list': { ttlMs: 60000, cacheScope: 'public' },
                'prompts/list': { ttlMs: 60000, cacheScope: 'public' },
                'resources/list': { ttlMs: 30000, cacheScope: 'private' },
                'resources/templates/list': { ttlMs: 30000, cacheScope: 'public' },
                'server/discover': { ttlMs: 60000, cacheScope: 'public' }
            },
            requestState: { verify: stateCodec.verify }
        }
    );

    server.registerTool('echo', { title: 'Echo', description: 'Echo the given text', inputSchema: z.object({ text: z.string() }) }, async ({ text: t }) =>
        text(`echo: ${t}`)
    );
    server.registerTool(
        'add',
        {
            description: 'Add two numbers',
            inputSchema: z.object({ a: z.number(), b: z.number() }),
            outputSchema: z.object({ sum: z.number() }),
            annotations: { readOnlyHint: true, idempotentHint: true }
        },
        async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } })
    );
    server.registerTool('fail', { description: 'Always returns a tool error (isError)', inputSchema: z.object({}) }, async () => ({
        content: [{ type: 'text', text: 'deliberate failure' }],
        isError: true
    }));
    server.registerTool(
        'slow',
        {
            description: 'Counts to `steps`, sleeping `delayMs` per step, sending progress; honours cancellation. `runId` names the run for slow-status.',
            inputSchema: z.object({ steps: z.number().int().min(1).max(100), delayMs: z.number().int().min(0).max(5000), runId: z.string().optional() })
        },
        async ({ steps, delayMs, runId }, ctx) => {
            const signal = ctx.mcpReq.signal;
            const token = ctx.mcpReq._meta?.progressToken;
            if (runId) slowRuns.set(runId, 'running');
            try {
                for (let i = 1; i <= steps; i++) {
                    await new Promise((ok, fail) => {
                        if (signal.aborted) return fail(new Error('cancelled'));
                        const t = setTimeout(ok, delayMs);
                        signal.addEventListener('abort', () => (clearTimeout(t), fail(new Error('cancelled'))), { once: true });
                    });
                    if (token !== undefined) {
                        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
                    }
                }
            } catch (e) {
                if (runId) slowRuns.set(runId, 'cancelled');
                log('slow cancelled', runId ?? '', String(signal.reason ?? e.message));
                throw e;
            }
            if (runId) slowRuns.set(runId, 'completed');
            await sleep(20);
            return text(`slow done after ${steps} steps`);
        }
    );
    server.registerTool(
        'slow-status',
        { description: 'How the `slow` run with this runId ended (waits up to 3 s while it runs)', inputSchema: z.object({ runId: z.string() }) },
        async ({ runId }) => {
            await waitFor(() => slowRuns.get(runId) !== 'running', 3000, 'slow to stop').catch(() => {});
            return jsonText({ lastSlow: slowRuns.get(runId) ?? 'unknown' });
        }
    );
    server.registerTool('log', { description: 'Logs at debug, info, warning and error (filtered by the request logLevel)', inputSchema: z.object({}) }, async (_a, ctx) => {
        for (const level of ['debug', 'info', 'warning', 'error']) {
            await ctx.mcpReq.log(level, { msg: `message at ${level}` }, 'forge-peer');
        }
        await sleep(20);
        return text('logged');
    });
    server.registerTool(
        'mrtr-elicit',
        { description: 'Multi round-trip: asks for a name via an embedded elicitation (input_required)', inputSchema: z.object({ question: z.string() }) },
        async ({ question }, ctx) => {
            const answer = acceptedContent(ctx.mcpReq.inputResponses, 'answer', answerSchema);
            if (!answer) {
                return inputRequired({ inputRequests: { answer: inputRequired.elicit({ message: question, requestedSchema: answerSchema }) } });
            }
            return jsonText({ greeting: `hello ${answer.name}`, count: answer.count ?? null });
        }
    );
    server.registerTool(
        'mrtr-sequence',
        { description: 'Multi round-trip in two rounds, carrying requestState: confirm, then pick a scope', inputSchema: z.object({}) },
        async (_a, ctx) => {
            const state = ctx.mcpReq.requestState();
            if (state?.step !== 'confirmed') {
                const ok = acceptedContent(ctx.mcpReq.inputResponses, 'confirm', confirmSchema);
                if (ok?.confirm !== true) {
                    return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: 'Really wipe?', requestedSchema: confirmSchema }) } });
                }
                return inputRequired({
                    inputRequests: { scope: inputRequired.elicit({ message: 'Which scope?', requestedSchema: scopeSchema }) },
                    requestState: await stateCodec.mint({ step: 'confirmed' })
                });
            }
            const scope = acceptedContent(ctx.mcpReq.inputResponses, 'scope', scopeSchema);
            if (!scope) {
                return inputRequired({
                    inputRequests: { scope: inputRequired.elicit({ message: 'Which scope?', requestedSchema: scopeSchema }) },
                    requestState: await stateCodec.mint({ step: 'confirmed' })
                });
            }
            return text(`wiped ${scope.scope}`);
        }
    );
    server.registerTool(
        'mrtr-sample-roots',
        { description: 'Multi round-trip: embedded sampling/createMessage and roots/list in one round', inputSchema: z.object({ prompt: z.string() }) },
        async ({ prompt }, ctx) => {
            const summary = inputResponse(ctx.mcpReq.inputResponses, 'summary');
            const roots = inputResponse(ctx.mcpReq.inputResponses, 'roots');
            if (summary.kind !== 'sampling' || roots.kind !== 'roots') {
                return inputRequired({
                    inputRequests: {
                        summary: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 64 }),
                        roots: inputRequired.listRoots()
                    }
                });
            }
            return jsonText({ model: summary.result.model, content: summary.result.content, roots: roots.roots });
        }
    );
    server.registerTool(
        'touch-resource',
        { description: 'Publishes notifications/resources/updated for uri to open subscriptions/listen streams', inputSchema: z.object({ uri: z.string() }) },
        async ({ uri }) => {
            handler.notify.resourceUpdated(uri);
            return jsonText({ uri, published: true });
        }
    );
    server.registerTool(
        'signal-tools-changed',
        { description: 'Publishes notifications/tools/list_changed to open subscriptions/listen streams', inputSchema: z.object({}) },
        async () => {
            handler.notify.toolsChanged();
            return text('published tools/list_changed');
        }
    );
    server.registerTool('era', { description: 'Which protocol era served this request', inputSchema: z.object({}) }, async () => text(era));

    server.registerResource('hello', 'test://static/hello', { title: 'Hello', description: 'A static text resource', mimeType: 'text/plain' }, async uri => ({
        contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Hello from the ts-v2 peer' }]
    }));
    server.registerResource(
        'counter',
        'test://static/counter',
        { description: 'Subscribable resource (updates are published by touch-resource)', mimeType: 'application/json' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ counter: true }) }] })
    );
    server.registerResource('blob', 'test://static/blob', { description: '16 bytes 0x00..0x0f', mimeType: 'application/octet-stream' }, async uri => ({
        contents: [{ uri: uri.href, mimeType: 'application/octet-stream', blob: BLOB }]
    }));
    server.registerResource(
        'item',
        new ResourceTemplate('test://items/{id}', {
            list: async () => ({ resources: ITEM_IDS.slice(0, 3).map(id => ({ uri: `test://items/${id}`, name: `item-${id}`, mimeType: 'text/plain' })) }),
            complete: { id: value => ITEM_IDS.filter(id => id.startsWith(value)) }
        }),
        { description: 'Items by id', mimeType: 'text/plain' },
        async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: `item ${id}` }] })
    );

    server.registerPrompt(
        'greet',
        {
            title: 'Greeting',
            description: 'Greets someone',
            argsSchema: z.object({ name: completable(z.string(), value => NAMES.filter(n => n.startsWith(value))), style: z.string().optional() })
        },
        greetingPrompt
    );
    server.registerPrompt('simple', { description: 'A prompt without arguments' }, simplePrompt);
    return server;
}

handler = createMcpHandler(buildServer, {
    legacy: args.legacy === 'reject' ? 'reject' : 'stateless',
    keepAliveMs: 0,
    onerror: e => log('handler:', e.message)
});
const nodeHandler = toNodeHandler(handler, { onerror: e => log('node handler:', e.message) });

const httpServer = http.createServer(async (req, res) => {
    try {
        const url = new URL(req.url, 'http://x');
        const info = httpInfo(req);
        if (url.pathname === '/health') return res.end('ok');
        if (url.pathname !== '/mcp') return res.writeHead(404).end('not found');
        if (req.method !== 'POST') {
            recorder.bare(info);
            return nodeHandler(req, res);
        }
        const raw = await readBody(req);
        let body;
        try {
            body = JSON.parse(raw);
        } catch {
            recorder.write({ kind: 'invalid', raw, http: info });
            return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
        }
        recorder.messages(body, info);
        await nodeHandler(req, res, body);
    } catch (e) {
        log('request failed', e);
        if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
        else res.end();
    }
});
await listen(httpServer, args.port);
log('ts-v2 peer ready');
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
