#!/usr/bin/env node
// Forge test peer: MCP server built on the TypeScript SDK v1 (@modelcontextprotocol/sdk).
//
//   node ts-v1-server.mjs --port N [--json] [--record FILE]
//
// Serves, on 127.0.0.1:
//   /mcp                      stateful Streamable HTTP (Mcp-Session-Id, GET standalone stream,
//                             DELETE, resumability via an in-memory event store / Last-Event-ID);
//                             --json turns on enableJsonResponse for POST answers
//   GET /sse + POST /messages legacy 2024-11-05 HTTP+SSE transport (SSEServerTransport)
//   GET /health               "ok"
// Prints `LISTENING <port>` on stdout once ready; everything else goes to stderr.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import {
    CreateMessageResultSchema,
    ElicitResultSchema,
    ListRootsResultSchema,
    SubscribeRequestSchema,
    UnsubscribeRequestSchema,
    isInitializeRequest
} from '@modelcontextprotocol/sdk/types.js';
import { Recorder, greetingPrompt, httpInfo, simplePrompt, listen, log, parseArgs, readBody, sendJson, sleep, waitFor } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), { port: 'number', json: 'boolean', record: 'string' });
const JSON_MODE = !!args.json;
const recorder = new Recorder(args.record);

/** Event store for resumability: ids are `<streamId>.<seq>`, replay stays on the id's stream. */
class MemoryEventStore {
    constructor() {
        this.events = [];
        this.seq = 0;
    }
    async storeEvent(streamId, message) {
        const id = `${streamId}.${++this.seq}`;
        this.events.push({ id, streamId, message });
        return id;
    }
    async getStreamIdForEventId(id) {
        return this.events.find(e => e.id === id)?.streamId;
    }
    async replayEventsAfter(lastId, { send }) {
        const at = this.events.findIndex(e => e.id === lastId);
        if (at < 0) throw new Error(`unknown event id ${lastId}`);
        const streamId = this.events[at].streamId;
        for (const e of this.events.slice(at + 1)) {
            if (e.streamId === streamId && Object.keys(e.message).length > 0) await send(e.id, e.message);
        }
        return streamId;
    }
}

const text = t => ({ content: [{ type: 'text', text: t }] });
const jsonText = v => text(JSON.stringify(v));
const BLOB = Buffer.from(Array.from({ length: 16 }, (_, i) => i)).toString('base64');
const ITEM_IDS = ['1', '2', '3', '10', '11'];
const NAMES = ['alice', 'bob', 'carol', 'carlos'];

/**
 * One McpServer per session. `link` describes how server-initiated traffic reaches the client:
 * for Streamable HTTP in SSE mode request-related messages ride the POST response stream;
 * in --json mode (no stream on POST) and for unsolicited notifications they go on the
 * standalone GET stream, which we wait for so nothing is dropped.
 */
function buildServer(link) {
    // NB: the SDK calls a tool without inputSchema as cb(extra), with one as cb(args, extra).
    const server = new McpServer(
        { name: 'forge-ts-v1-peer', version: '1.0.0', title: 'Forge TS v1 test peer' },
        {
            capabilities: { logging: {}, resources: { subscribe: true, listChanged: true } },
            instructions: 'Forge ts-v1 test peer: deterministic tools, resources and prompts for gateway tests.'
        }
    );
    const state = { lastSlow: 'none', subscribed: new Set(), versions: new Map(), dynamic: false };

    const standaloneReady = async () => {
        if (link.kind !== 'streamable') return;
        await waitFor(() => link.transport._webStandardTransport?._streamMapping?.has('_GET_stream'), 5000, 'the standalone GET stream');
    };
    const viaStandalone = () => link.kind === 'streamable' && JSON_MODE;
    const notify = async (extra, notification) => {
        if (viaStandalone()) {
            await standaloneReady();
            await server.server.notification(notification);
        } else {
            await extra.sendNotification(notification);
        }
    };
    const ask = async (extra, request, schema) => {
        if (viaStandalone()) {
            await standaloneReady();
            return server.server.request(request, schema);
        }
        return extra.sendRequest(request, schema);
    };
    // In --json mode notifications travel on another HTTP stream than the result; give them a head start.
    // Otherwise a short pause keeps the last notification out of the result's network chunk: the
    // SDK's legacy SSE client drops a progress notification handled after its request completed.
    const settle = () => sleep(viaStandalone() ? 100 : 20);

    server.registerTool(
        'echo',
        { title: 'Echo', description: 'Echo the given text', inputSchema: { text: z.string() } },
        async ({ text: t }) => text(`echo: ${t}`)
    );
    server.registerTool(
        'add',
        {
            description: 'Add two numbers',
            inputSchema: { a: z.number(), b: z.number() },
            outputSchema: { sum: z.number() },
            annotations: { readOnlyHint: true, idempotentHint: true }
        },
        async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } })
    );
    server.registerTool('fail', { description: 'Always returns a tool error (isError)' }, async () => ({
        content: [{ type: 'text', text: 'deliberate failure' }],
        isError: true
    }));
    server.registerTool(
        'slow',
        {
            description: 'Counts to `steps`, sleeping `delayMs` per step, sending progress; honours cancellation. ' +
                '`closeStreamAfter` closes the POST SSE stream after that many steps (client must resume).',
            inputSchema: { steps: z.number().int().min(1).max(100), delayMs: z.number().int().min(0).max(5000), closeStreamAfter: z.number().int().optional() }
        },
        async ({ steps, delayMs, closeStreamAfter }, extra) => {
            state.lastSlow = 'running';
            const token = extra._meta?.progressToken;
            try {
                for (let i = 1; i <= steps; i++) {
                    await new Promise((ok, fail) => {
                        if (extra.signal.aborted) return fail(new Error('cancelled'));
                        const t = setTimeout(ok, delayMs);
                        extra.signal.addEventListener('abort', () => (clearTimeout(t), fail(new Error('cancelled'))), { once: true });
                    });
                    if (token !== undefined) {
                        await notify(extra, { method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
                    }
                    if (closeStreamAfter === i) {
                        log('closing the POST SSE stream for', extra.requestId, extra.closeSSEStream ? '' : '(not resumable: no-op)');
                        extra.closeSSEStream?.();
                    }
                }
            } catch (e) {
                state.lastSlow = 'cancelled';
                log('slow tool cancelled:', String(extra.signal.reason ?? e.message));
                throw e;
            }
            state.lastSlow = 'completed';
            await settle();
            return text(`slow done after ${steps} steps`);
        }
    );
    server.registerTool('slow-status', { description: 'How the last `slow` run ended (waits up to 3 s while one runs)' }, async () => {
        await waitFor(() => state.lastSlow !== 'running', 3000, 'slow to stop').catch(() => {});
        return jsonText({ lastSlow: state.lastSlow });
    });
    server.registerTool(
        'sample',
        { description: 'Asks the client to sample (sampling/createMessage)', inputSchema: { prompt: z.string() } },
        async ({ prompt }, extra) => {
            const r = await ask(
                extra,
                {
                    method: 'sampling/createMessage',
                    params: {
                        messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
                        systemPrompt: 'You are a test double.',
                        maxTokens: 64,
                        temperature: 0
                    }
                },
                CreateMessageResultSchema
            );
            return jsonText({ model: r.model, role: r.role, content: r.content, stopReason: r.stopReason });
        }
    );
    server.registerTool(
        'elicit',
        { description: 'Asks the user for input (elicitation/create, form mode)', inputSchema: { question: z.string() } },
        async ({ question }, extra) => {
            const r = await ask(
                extra,
                {
                    method: 'elicitation/create',
                    params: {
                        mode: 'form',
                        message: question,
                        requestedSchema: {
                            type: 'object',
                            properties: {
                                name: { type: 'string', title: 'Name' },
                                count: { type: 'integer', minimum: 0 },
                                confirm: { type: 'boolean' }
                            },
                            required: ['name']
                        }
                    }
                },
                ElicitResultSchema
            );
            return jsonText({ action: r.action, content: r.content ?? null });
        }
    );
    server.registerTool('list-roots', { description: 'Asks the client for its roots (roots/list)' }, async extra => {
        const r = await ask(extra, { method: 'roots/list' }, ListRootsResultSchema);
        return jsonText(r.roots);
    });
    server.registerTool('log', { description: 'Emits notifications/message at debug, info, warning and error (filtered by logging/setLevel)' }, async extra => {
        const sent = [];
        for (const level of ['debug', 'info', 'warning', 'error']) {
            if (server.server.isMessageIgnored(level, extra.sessionId)) continue;
            await notify(extra, { method: 'notifications/message', params: { level, logger: 'forge-peer', data: { msg: `message at ${level}` } } });
            sent.push(level);
        }
        await settle();
        return jsonText({ sent });
    });
    server.registerTool(
        'touch-resource',
        { description: 'Bumps a resource version; sends notifications/resources/updated if the client subscribed', inputSchema: { uri: z.string() } },
        async ({ uri }) => {
            state.versions.set(uri, (state.versions.get(uri) ?? 0) + 1);
            const notified = state.subscribed.has(uri);
            if (notified) {
                await standaloneReady();
                await server.server.sendResourceUpdated({ uri });
            }
            return jsonText({ uri, version: state.versions.get(uri), notified });
        }
    );
    server.registerTool('add-dynamic-tool', { description: 'Registers tool `dynamic-echo` (sends notifications/tools/list_changed)' }, async () => {
        if (!state.dynamic) {
            state.dynamic = true;
            await standaloneReady();
            server.registerTool('dynamic-echo', { description: 'Added at run time', inputSchema: { text: z.string() } }, async ({ text: t }) => text(`dynamic: ${t}`));
        }
        return text('registered dynamic-echo');
    });

    server.registerResource(
        'hello',
        'test://static/hello',
        { title: 'Hello', description: 'A static text resource', mimeType: 'text/plain' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Hello from the ts-v1 peer' }] })
    );
    server.registerResource(
        'counter',
        'test://static/counter',
        { description: 'Version counter bumped by touch-resource (subscribable)', mimeType: 'application/json' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ version: state.versions.get(uri.href) ?? 0 }) }] })
    );
    server.registerResource(
        'blob',
        'test://static/blob',
        { description: '16 bytes 0x00..0x0f', mimeType: 'application/octet-stream' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'application/octet-stream', blob: BLOB }] })
    );
    server.registerResource(
        'item',
        new ResourceTemplate('test://items/{id}', {
            list: async () => ({ resources: ITEM_IDS.slice(0, 3).map(id => ({ uri: `test://items/${id}`, name: `item-${id}`, mimeType: 'text/plain' })) }),
            complete: { id: value => ITEM_IDS.filter(id => id.startsWith(value)) }
        }),
        { description: 'Items by id', mimeType: 'text/plain' },
        async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: `item ${id}` }] })
    );

    server.server.setRequestHandler(SubscribeRequestSchema, async req => {
        state.subscribed.add(req.params.uri);
        return {};
    });
    server.server.setRequestHandler(UnsubscribeRequestSchema, async req => {
        state.subscribed.delete(req.params.uri);
        return {};
    });

    server.registerPrompt(
        'greet',
        {
            title: 'Greeting',
            description: 'Greets someone',
            argsSchema: {
                name: completable(z.string(), value => NAMES.filter(n => n.startsWith(value))),
                style: z.string().optional()
            }
        },
        greetingPrompt
    );
    server.registerPrompt('simple', { description: 'A prompt without arguments' }, simplePrompt);
    return server;
}

// Recording happens at the HTTP layer (handle), before the transports see the body.
const streamable = new Map(); // session id -> transport
const legacySse = new Map(); // session id -> SSEServerTransport

async function handle(req, res) {
    const url = new URL(req.url, 'http://x');
    const info = httpInfo(req);
    if (url.pathname === '/health') return res.end('ok');

    if (url.pathname === '/mcp') {
        const sid = req.headers['mcp-session-id'];
        if (req.method === 'POST') {
            const raw = await readBody(req);
            let body;
            try {
                body = JSON.parse(raw);
            } catch {
                recorder.write({ kind: 'invalid', raw, http: info });
                return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
            }
            recorder.messages(body, info);
            let transport = sid ? streamable.get(sid) : undefined;
            if (sid && !transport) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
            if (!transport) {
                const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
                if (!isInit) return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
                const link = { kind: 'streamable' };
                transport = new StreamableHTTPServerTransport({
                    sessionIdGenerator: () => randomUUID(),
                    enableJsonResponse: JSON_MODE,
                    eventStore: new MemoryEventStore(),
                    retryInterval: 100,
                    onsessioninitialized: id => {
                        streamable.set(id, transport);
                        log('session opened', id);
                    },
                    onsessionclosed: id => log('session closed by DELETE', id)
                });
                link.transport = transport;
                transport.onclose = () => {
                    if (transport.sessionId) streamable.delete(transport.sessionId);
                };
                await buildServer(link).connect(transport);
            }
            return transport.handleRequest(req, res, body);
        }
        recorder.bare(info);
        if (req.method === 'GET' || req.method === 'DELETE') {
            const transport = sid ? streamable.get(sid) : undefined;
            if (!sid) return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' }, id: null });
            if (!transport) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
            return transport.handleRequest(req, res);
        }
        return sendJson(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, { allow: 'GET, POST, DELETE' });
    }

    if (url.pathname === '/sse' && req.method === 'GET') {
        recorder.bare(info);
        const transport = new SSEServerTransport('/messages', res);
        legacySse.set(transport.sessionId, transport);
        res.on('close', () => legacySse.delete(transport.sessionId));
        log('legacy SSE session', transport.sessionId);
        await buildServer({ kind: 'sse', transport }).connect(transport);
        return;
    }
    if (url.pathname === '/messages' && req.method === 'POST') {
        const transport = legacySse.get(url.searchParams.get('sessionId') ?? '');
        const raw = await readBody(req);
        let body;
        try {
            body = JSON.parse(raw);
        } catch {
            recorder.write({ kind: 'invalid', raw, http: info });
            return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
        }
        recorder.messages(body, info);
        if (!transport) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return transport.handlePostMessage(req, res, body);
    }
    res.writeHead(404).end('not found');
}

const httpServer = http.createServer((req, res) => {
    handle(req, res).catch(e => {
        log('request failed', e);
        if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
        else res.end();
    });
});
await listen(httpServer, args.port);
log(`ts-v1 peer ready (json=${JSON_MODE})`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
