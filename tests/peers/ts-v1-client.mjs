#!/usr/bin/env node
// Forge test peer: scenario client built on the TypeScript SDK v1 (@modelcontextprotocol/sdk).
//
//   node ts-v1-client.mjs --url URL [--transport streamable|sse] [--ca PEMFILE] [--resume]
//                         [--bearer TOKEN] [--scenario full|policy]
//
// Runs every feature of ts-v1-server.mjs and prints ONE JSON transcript on stdout
// (volatile values such as session ids, tokens and request ids are left out or masked).
// Exit code 1 when a step fails unexpectedly.
// `--bearer` sends `Authorization: Bearer TOKEN` with every request. `--scenario policy` runs
// only the steps a gateway's policy decides (list tools, call echo, add, sample) and records
// each outcome without judging it: the test that runs it knows what the policy allows.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import {
    CallToolResultSchema,
    CreateMessageRequestSchema,
    ElicitRequestSchema,
    ListRootsRequestSchema,
    LoggingMessageNotificationSchema,
    ResourceUpdatedNotificationSchema,
    ToolListChangedNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';
import { Transcript, ensureCa, log, parseArgs, resourceReadSteps, sleep, waitFor } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), {
    url: 'string',
    transport: 'string',
    ca: 'string',
    resume: 'boolean',
    bearer: 'string',
    scenario: 'string'
});
ensureCa(args.ca);
if (!args.url) throw new Error('--url is required');
const kind = args.transport ?? 'streamable';
if (!['streamable', 'sse'].includes(kind)) throw new Error('--transport must be streamable or sse');
const url = new URL(args.url);

const ROOTS = [
    { uri: 'file:///tmp/forge-root-a', name: 'root-a' },
    { uri: 'file:///tmp/forge-root-b', name: 'root-b' }
];

/** Counts HTTP requests the SDK makes, so resumption (GET + Last-Event-ID) can be observed. */
const httpLog = [];
const countingFetch = (input, init) => {
    const h = new Headers(init?.headers);
    httpLog.push({ method: init?.method ?? 'GET', lastEventId: h.has('last-event-id') });
    return fetch(input, init);
};

function newClient(seen) {
    const client = new Client(
        { name: 'forge-ts-v1-client', version: '1.0.0' },
        { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } }
    );
    client.setRequestHandler(CreateMessageRequestSchema, async req => {
        seen.sampling.push(req.params);
        const last = req.params.messages.at(-1)?.content;
        return { model: 'forge-fixed-model', role: 'assistant', stopReason: 'endTurn', content: { type: 'text', text: `sampled: ${last?.text ?? ''}` } };
    });
    client.setRequestHandler(ElicitRequestSchema, async req => {
        seen.elicitation.push(req.params);
        return { action: 'accept', content: { name: 'forge', count: 3, confirm: true } };
    });
    client.setRequestHandler(ListRootsRequestSchema, async () => {
        seen.roots++;
        return { roots: ROOTS };
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, n => seen.logs.push(n.params));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, n => seen.updated.push(n.params.uri));
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => seen.toolsChanged++);
    return client;
}

const requestInit = args.bearer ? { headers: { Authorization: `Bearer ${args.bearer}` } } : undefined;
const makeTransport = (opts = {}) =>
    kind === 'sse'
        ? new SSEClientTransport(url, { fetch: countingFetch, requestInit, eventSourceInit: { fetch: countingFetch, headers: requestInit?.headers } })
        : new StreamableHTTPClientTransport(url, { fetch: countingFetch, requestInit, ...opts });

const t = new Transcript();
const seen = { sampling: [], elicitation: [], roots: 0, logs: [], updated: [], toolsChanged: 0 };
const client = newClient(seen);
const transport = makeTransport();
const text = r => r.content?.map(c => c.text ?? `[${c.type}]`).join('\n');

await t.run('connect', async () => {
    await client.connect(transport);
    return {
        protocolVersion: transport.protocolVersion ?? null,
        serverInfo: client.getServerVersion(),
        capabilities: client.getServerCapabilities(),
        instructions: client.getInstructions()
    };
});
if (t.failures.length) {
    t.finish({ scenario: 'ts-v1', transport: kind });
    process.exit(1);
}

if (args.scenario === 'policy') {
    const judged = { expectError: null };
    await t.run('tools/list', async () => (await client.listTools()).tools.map(tool => tool.name), judged);
    await t.run('tools/call echo', () => client.callTool({ name: 'echo', arguments: { text: 'hello forge' } }), judged);
    await t.run('tools/call add', () => client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }), judged);
    await t.run('sampling via tool', async () => {
        const r = await client.callTool({ name: 'sample', arguments: { prompt: 'What is Forge?' } });
        return { result: r, samplingRequestsSeenByClient: seen.sampling.length };
    }, judged);
    await client.close();
    t.finish({ scenario: 'ts-v1-policy', transport: kind });
    process.exit();
}

await t.run('ping', () => client.ping());
await t.run('logging/setLevel', () => client.setLoggingLevel('info'));
await t.run('tools/list', () => client.listTools());
await t.run('tools/call echo', () => client.callTool({ name: 'echo', arguments: { text: 'hello forge' } }));
await t.run('tools/call add', () => client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
await t.run('tools/call fail (isError)', () => client.callTool({ name: 'fail', arguments: {} }));
await t.run('tools/call unknown tool', () => client.callTool({ name: 'no-such-tool', arguments: {} }));
await t.run('tools/call echo invalid args', () => client.callTool({ name: 'echo', arguments: { text: 42 } }));

await t.run('tools/call slow with progress', async () => {
    const progress = [];
    const r = await client.callTool({ name: 'slow', arguments: { steps: 3, delayMs: 30 } }, CallToolResultSchema, { onprogress: p => progress.push(p) });
    return { result: r, progress };
});

await t.run('tools/call slow cancelled', async () => {
    const ac = new AbortController();
    const progress = [];
    const call = client.callTool({ name: 'slow', arguments: { steps: 50, delayMs: 100 } }, CallToolResultSchema, {
        signal: ac.signal,
        onprogress: p => {
            progress.push(p.progress);
            if (p.progress === 1) ac.abort(new Error('cancelled by forge client'));
        }
    });
    const outcome = await call.then(
        () => 'completed',
        e => `rejected: ${e.message}`
    );
    const status = await client.callTool({ name: 'slow-status', arguments: {} });
    return { outcome, progressBeforeCancel: progress, serverSaw: JSON.parse(text(status)) };
});

await t.run('sampling via tool', async () => {
    const r = await client.callTool({ name: 'sample', arguments: { prompt: 'What is Forge?' } });
    return { result: r, requestSeenByClient: seen.sampling.at(-1) };
});
await t.run('elicitation via tool', async () => {
    const r = await client.callTool({ name: 'elicit', arguments: { question: 'Who are you?' } });
    return { result: r, requestSeenByClient: seen.elicitation.at(-1) };
});
await t.run('roots via tool', async () => {
    const r = await client.callTool({ name: 'list-roots', arguments: {} });
    return { result: r, rootsRequests: seen.roots };
});
await t.run('roots list_changed notification', () => client.sendRootsListChanged());
await t.run('logging via tool', async () => {
    seen.logs.length = 0;
    const r = await client.callTool({ name: 'log', arguments: {} });
    await waitFor(() => seen.logs.length >= 3, 3000, 'log messages');
    return { result: r, messages: seen.logs.slice() };
});

await resourceReadSteps(t, client);
await t.run('resources/subscribe + updated', async () => {
    await client.subscribeResource({ uri: 'test://static/counter' });
    const touch = await client.callTool({ name: 'touch-resource', arguments: { uri: 'test://static/counter' } });
    await waitFor(() => seen.updated.length >= 1, 5000, 'notifications/resources/updated');
    const after = await client.readResource({ uri: 'test://static/counter' });
    return { touch, updated: seen.updated.slice(), after };
});
await t.run('resources/unsubscribe', async () => {
    await client.unsubscribeResource({ uri: 'test://static/counter' });
    const touch = await client.callTool({ name: 'touch-resource', arguments: { uri: 'test://static/counter' } });
    await sleep(200);
    return { touch, updatedCount: seen.updated.length };
});
await t.run('tools list_changed', async () => {
    const r = await client.callTool({ name: 'add-dynamic-tool', arguments: {} });
    await waitFor(() => seen.toolsChanged >= 1, 5000, 'notifications/tools/list_changed');
    const tools = await client.listTools();
    const call = await client.callTool({ name: 'dynamic-echo', arguments: { text: 'late' } });
    return { result: r, toolNames: tools.tools.map(x => x.name), call };
});

await t.run('prompts/list', () => client.listPrompts());
await t.run('prompts/get greet', () => client.getPrompt({ name: 'greet', arguments: { name: 'alice', style: 'pirate' } }));
await t.run('prompts/get simple', () => client.getPrompt({ name: 'simple' }));
await t.run('prompts/get missing argument', () => client.getPrompt({ name: 'greet', arguments: {} }), { expectError: true });
await t.run('completion/complete prompt arg', () =>
    client.complete({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'name', value: 'car' } })
);
await t.run('completion/complete resource template', () =>
    client.complete({ ref: { type: 'ref/resource', uri: 'test://items/{id}' }, argument: { name: 'id', value: '1' } })
);

if (args.resume) {
    if (kind !== 'streamable') throw new Error('--resume needs --transport streamable');
    await t.run('resume after server closes the stream', async () => {
        const progress = [];
        const before = httpLog.filter(h => h.lastEventId).length;
        const r = await client.callTool({ name: 'slow', arguments: { steps: 4, delayMs: 100, closeStreamAfter: 2 } }, CallToolResultSchema, {
            onprogress: p => progress.push(p.progress)
        });
        return { result: r, progress, resumedWithLastEventId: httpLog.filter(h => h.lastEventId).length > before };
    });
    await t.run('resume after client disconnect', async () => {
        const sessionId = transport.sessionId;
        const seen1 = { sampling: [], elicitation: [], roots: 0, logs: [], updated: [], toolsChanged: 0 };
        const c1 = newClient(seen1);
        const t1 = makeTransport({ sessionId });
        await c1.connect(t1); // sessionId given: no initialize, reuse the session
        let token;
        const progress = [];
        const params = { name: 'slow', arguments: { steps: 5, delayMs: 150 } };
        const first = await c1
            .request({ method: 'tools/call', params }, CallToolResultSchema, {
                onresumptiontoken: tk => (token = tk),
                onprogress: p => {
                    progress.push(p.progress);
                    if (p.progress === 2) void t1.close(); // drop the connection mid-call
                }
            })
            .then(
                () => 'completed',
                e => `rejected: ${e.message}`
            );
        if (!token) throw new Error('no resumption token was received before the disconnect');
        await sleep(50);
        const c2 = newClient(seen1);
        const t2 = makeTransport({ sessionId });
        await c2.connect(t2);
        const r = await c2.request({ method: 'tools/call', params }, CallToolResultSchema, { resumptionToken: token, timeout: 10000 });
        await t2.close();
        return { firstAttempt: first, progressBeforeDisconnect: progress, resumedResult: r };
    });
}

if (kind === 'streamable') {
    await t.run('terminate session (DELETE)', () => transport.terminateSession());
    await t.run('request after terminate', async () => {
        try {
            await client.listTools();
            return { rejected: false };
        } catch (e) {
            return { rejected: true, httpStatus: e.code ?? null };
        }
    });
}
await client.close().catch(() => {});
t.finish({ scenario: 'ts-v1', transport: kind, resume: !!args.resume });
log('done');
process.exit();
