#!/usr/bin/env node
// Forge test peer: scenario client built on the TypeScript SDK v2 (@modelcontextprotocol/client),
// pinned to protocol 2026-07-28 (stateless, server/discover, input_required multi round-trips).
//
//   node ts-v2-client.mjs --url URL [--ca PEMFILE]
//
// Runs every feature of ts-v2-server.mjs and prints ONE JSON transcript on stdout
// (volatile values such as requestState tokens and run ids are masked or left out).
// Exit code 1 when a step fails unexpectedly.
import { randomUUID } from 'node:crypto';
import { Client, LOG_LEVEL_META_KEY, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Transcript, ensureCa, log, parseArgs, resourceReadSteps, sleep, waitFor } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), { url: 'string', ca: 'string' });
ensureCa(args.ca);
if (!args.url) throw new Error('--url is required');
const url = new URL(args.url);

const ROOTS = [
    { uri: 'file:///tmp/forge-root-a', name: 'root-a' },
    { uri: 'file:///tmp/forge-root-b', name: 'root-b' }
];
const ELICIT_ANSWERS = {
    'Really wipe?': { confirm: true },
    'Which scope?': { scope: 'sessions' }
};

function newClient(seen, options = {}) {
    const client = new Client(
        { name: 'forge-ts-v2-client', version: '2.0.0' },
        { capabilities: { sampling: {}, elicitation: { form: {} }, roots: {} }, ...options }
    );
    client.setRequestHandler('elicitation/create', async req => {
        seen.elicitation.push(req.params);
        return { action: 'accept', content: ELICIT_ANSWERS[req.params.message] ?? { name: 'forge', count: 3 } };
    });
    client.setRequestHandler('sampling/createMessage', async req => {
        seen.sampling.push(req.params);
        const last = req.params.messages.at(-1)?.content;
        return { model: 'forge-fixed-model', role: 'assistant', stopReason: 'endTurn', content: { type: 'text', text: `sampled: ${last?.text ?? ''}` } };
    });
    client.setRequestHandler('roots/list', async () => {
        seen.roots++;
        return { roots: ROOTS };
    });
    client.setNotificationHandler('notifications/message', n => seen.logs.push(n.params));
    client.setNotificationHandler('notifications/resources/updated', n => seen.updated.push(n.params.uri));
    client.setNotificationHandler('notifications/tools/list_changed', () => seen.toolsChanged++);
    return client;
}
/** Remembers the JSON-RPC methods POSTed, to tell cache hits from network round trips. */
const posted = [];
const countingFetch = (input, init) => {
    if (init?.method === 'POST' && typeof init.body === 'string') {
        try {
            const b = JSON.parse(init.body);
            for (const m of Array.isArray(b) ? b : [b]) if (m.method) posted.push(m.method);
        } catch {}
    }
    return fetch(input, init);
};
const transportFor = () => new StreamableHTTPClientTransport(url, { fetch: countingFetch });
const freshSeen = () => ({ sampling: [], elicitation: [], roots: 0, logs: [], updated: [], toolsChanged: 0 });
const MODERN = { versionNegotiation: { mode: { pin: '2026-07-28' } } };

const t = new Transcript();
const seen = freshSeen();
const client = newClient(seen, MODERN);
const text = r => r.content?.map(c => c.text ?? `[${c.type}]`).join('\n');

await t.run('connect (server/discover probe, pinned 2026-07-28)', async () => {
    await client.connect(transportFor());
    return {
        era: client.getProtocolEra(),
        discover: client.getDiscoverResult(),
        serverInfo: client.getServerVersion(),
        capabilities: client.getServerCapabilities(),
        instructions: client.getInstructions()
    };
});
if (t.failures.length) {
    t.finish({ scenario: 'ts-v2' });
    process.exit(1);
}

await t.run('server/discover', () => client.discover());
await t.run('tools/list', () => client.listTools());
await t.run('tools/list again (cache hint honoured)', async () => {
    const before = posted.length;
    const r = await client.listTools();
    return { result: r, reachedNetwork: posted.slice(before) };
});
await t.run('tools/list refresh (bypasses cache)', async () => {
    const before = posted.length;
    const r = await client.listTools(undefined, { cacheMode: 'refresh' });
    return { result: r, reachedNetwork: posted.slice(before) };
});
await t.run('tools/call echo', () => client.callTool({ name: 'echo', arguments: { text: 'hello forge' } }));
await t.run('tools/call add', () => client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
await t.run('tools/call fail (isError)', () => client.callTool({ name: 'fail', arguments: {} }));
await t.run('tools/call unknown tool', () => client.callTool({ name: 'no-such-tool', arguments: {} }), { expectError: true });
await t.run('tools/call echo invalid args', () => client.callTool({ name: 'echo', arguments: { text: 42 } }));
await t.run('tools/call era', () => client.callTool({ name: 'era', arguments: {} }));

await t.run('tools/call slow with progress', async () => {
    const progress = [];
    const r = await client.callTool({ name: 'slow', arguments: { steps: 3, delayMs: 30 } }, { onprogress: p => progress.push(p) });
    return { result: r, progress };
});
await t.run('tools/call slow cancelled', async () => {
    const runId = randomUUID();
    const ac = new AbortController();
    const progress = [];
    const outcome = await client
        .callTool(
            { name: 'slow', arguments: { steps: 50, delayMs: 100, runId } },
            {
                signal: ac.signal,
                onprogress: p => {
                    progress.push(p.progress);
                    if (p.progress === 1) ac.abort('cancelled by forge client');
                }
            }
        )
        .then(
            () => 'completed',
            e => `rejected: ${e.message}`
        );
    const status = await client.callTool({ name: 'slow-status', arguments: { runId } });
    return { outcome, progressBeforeCancel: progress, serverSaw: JSON.parse(text(status)) };
});
await t.run('logging with per-request logLevel=info', async () => {
    seen.logs.length = 0;
    const r = await client.callTool({ name: 'log', arguments: {}, _meta: { [LOG_LEVEL_META_KEY]: 'info' } });
    await waitFor(() => seen.logs.length >= 3, 3000, 'log messages');
    return { result: r, messages: seen.logs.slice() };
});
await t.run('logging without logLevel (none expected)', async () => {
    seen.logs.length = 0;
    const r = await client.callTool({ name: 'log', arguments: {} });
    await sleep(100);
    return { result: r, messages: seen.logs.slice() };
});

await t.run('MRTR elicitation (auto-fulfilled)', async () => {
    seen.elicitation.length = 0;
    const r = await client.callTool({ name: 'mrtr-elicit', arguments: { question: 'Who are you?' } });
    return { result: r, elicitationsSeen: seen.elicitation.slice() };
});
await t.run('MRTR two rounds with requestState (auto-fulfilled)', async () => {
    seen.elicitation.length = 0;
    const r = await client.callTool({ name: 'mrtr-sequence', arguments: {} });
    return { result: r, elicitationsSeen: seen.elicitation.map(e => e.message) };
});
await t.run('MRTR sampling + roots (auto-fulfilled)', async () => {
    seen.sampling.length = 0;
    const r = await client.callTool({ name: 'mrtr-sample-roots', arguments: { prompt: 'Summarise Forge' } });
    return { result: r, samplingSeen: seen.sampling.slice(), rootsRequests: seen.roots };
});

// Manual multi round-trip: the raw input_required results and the retries are visible here.
const manualSeen = freshSeen();
const manual = newClient(manualSeen, { ...MODERN, inputRequired: { autoFulfill: false } });
await t.run('MRTR manual: connect', async () => {
    await manual.connect(transportFor());
    return { era: manual.getProtocolEra() };
});
await t.run('MRTR manual: elicit round 1', () => manual.callTool({ name: 'mrtr-elicit', arguments: { question: 'Manual?' } }, { allowInputRequired: true }));
await t.run('MRTR manual: elicit retry with inputResponses', () =>
    manual.callTool(
        { name: 'mrtr-elicit', arguments: { question: 'Manual?' }, inputResponses: { answer: { action: 'accept', content: { name: 'manual', count: 7 } } } },
        { allowInputRequired: true }
    )
);
await t.run('MRTR manual: sequence with requestState echo', async () => {
    const call = extra => manual.callTool({ name: 'mrtr-sequence', arguments: {}, ...extra }, { allowInputRequired: true });
    const r1 = await call({});
    const r2 = await call({ inputResponses: { confirm: { action: 'accept', content: { confirm: true } } } });
    if (typeof r2.requestState !== 'string') throw new Error('round 2 carried no requestState');
    const r3 = await call({ inputResponses: { scope: { action: 'accept', content: { scope: 'cache' } } }, requestState: r2.requestState });
    return { round1: r1, round2: r2, round3: r3 };
});
await t.run(
    'MRTR manual: tampered requestState rejected',
    () =>
        manual.callTool(
            { name: 'mrtr-sequence', arguments: {}, inputResponses: { scope: { action: 'accept', content: { scope: 'all' } } }, requestState: 'tampered' },
            { allowInputRequired: true }
        ),
    { expectError: true }
);
await manual.close().catch(() => {});

await resourceReadSteps(t, client);

await t.run('subscriptions/listen', async () => {
    const sub = await client.listen({ toolsListChanged: true, resourceSubscriptions: ['test://static/counter'] });
    const touch = await client.callTool({ name: 'touch-resource', arguments: { uri: 'test://static/counter' } });
    await waitFor(() => seen.updated.length >= 1, 5000, 'notifications/resources/updated');
    const signal = await client.callTool({ name: 'signal-tools-changed', arguments: {} });
    await waitFor(() => seen.toolsChanged >= 1, 5000, 'notifications/tools/list_changed');
    await sub.close();
    const closed = await sub.closed;
    return { honoredFilter: sub.honoredFilter, touch, updated: seen.updated.slice(), signal, toolsChanged: seen.toolsChanged, closed };
});

await t.run('prompts/list', () => client.listPrompts());
await t.run('prompts/get greet', () => client.getPrompt({ name: 'greet', arguments: { name: 'alice', style: 'pirate' } }));
await t.run('prompts/get simple', () => client.getPrompt({ name: 'simple' }));
await t.run('prompts/get missing argument', () => client.getPrompt({ name: 'greet', arguments: {} }), { expectError: true });
await t.run('completion/complete prompt arg', () => client.complete({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'name', value: 'car' } }));
await t.run('completion/complete resource template', () =>
    client.complete({ ref: { type: 'ref/resource', uri: 'test://items/{id}' }, argument: { name: 'id', value: '1' } })
);
await client.close().catch(() => {});

// The same endpoint also answers 2025-era clients (stateless legacy serving).
const legacy = newClient(freshSeen());
await t.run('legacy-era client: connect', async () => {
    await legacy.connect(transportFor());
    return { era: legacy.getProtocolEra(), serverInfo: legacy.getServerVersion() };
});
await t.run('legacy-era client: tools/call era', () => legacy.callTool({ name: 'era', arguments: {} }));
await t.run('legacy-era client: tools/call echo', () => legacy.callTool({ name: 'echo', arguments: { text: 'old' } }));
await legacy.close().catch(() => {});

t.finish({ scenario: 'ts-v2' });
log('done');
process.exit();
