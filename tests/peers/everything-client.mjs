#!/usr/bin/env node
// Forge test peer: small scenario against the reference server @modelcontextprotocol/server-everything,
// typically run behind a gateway that fronts the server over stdio
// (`node node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio`).
//
//   node everything-client.mjs --url URL [--ca PEMFILE] [--transport streamable|sse]
//
// Lists tools/resources/prompts, calls `echo` and `get-sum` (the installed version's add tool),
// a progress-reporting tool, a prompt, a completion and a static resource, and prints ONE JSON
// transcript on stdout. Exit code 1 when a step fails unexpectedly.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { Transcript, ensureCa, log, parseArgs } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), { url: 'string', ca: 'string', transport: 'string' });
ensureCa(args.ca);
if (!args.url) throw new Error('--url is required');
const url = new URL(args.url);
const kind = args.transport ?? 'streamable';

// No roots/sampling/elicitation capability: server-everything would otherwise push requests at
// its own pace (roots sync 350 ms after initialize), which would make transcripts timing-dependent.
const client = new Client({ name: 'forge-everything-client', version: '1.0.0' }, { capabilities: {} });
const transport = kind === 'sse' ? new SSEClientTransport(url) : new StreamableHTTPClientTransport(url);
const t = new Transcript();
const byName = list => [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

await t.run('connect', async () => {
    await client.connect(transport);
    return {
        protocolVersion: transport.protocolVersion ?? null,
        serverInfo: client.getServerVersion(),
        capabilities: client.getServerCapabilities(),
        hasInstructions: typeof client.getInstructions() === 'string'
    };
});
if (t.failures.length) {
    t.finish({ scenario: 'everything' });
    process.exit(1);
}
await t.run('tools/list', async () => ({ tools: byName((await client.listTools()).tools) }));
await t.run('prompts/list', async () => ({ prompts: byName((await client.listPrompts()).prompts) }));
let firstDoc;
await t.run('resources/list', async () => {
    const r = await client.listResources();
    firstDoc = r.resources.map(x => x.uri).sort()[0];
    return r;
});
await t.run('resources/templates/list', () => client.listResourceTemplates());
await t.run('tools/call echo', () => client.callTool({ name: 'echo', arguments: { message: 'hello forge' } }));
await t.run('tools/call get-sum', () => client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }));
await t.run('tools/call get-tiny-image', () => client.callTool({ name: 'get-tiny-image', arguments: {} }));
await t.run('tools/call echo missing argument', () => client.callTool({ name: 'echo', arguments: {} }));
await t.run('tools/call trigger-long-running-operation with progress', async () => {
    const progress = [];
    const r = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, CallToolResultSchema, {
        onprogress: p => progress.push(p)
    });
    return { result: r, progress };
});
await t.run('prompts/get simple-prompt', () => client.getPrompt({ name: 'simple-prompt' }));
await t.run('prompts/get args-prompt', () => client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris', state: 'Texas' } }));
await t.run('completion/complete completable-prompt', () =>
    client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'E' } })
);
await t.run('resources/read first static document', () => client.readResource({ uri: firstDoc }));
if (kind === 'streamable') await t.run('terminate session (DELETE)', () => transport.terminateSession());
await client.close().catch(() => {});
t.finish({ scenario: 'everything', transport: kind });
log('done');
process.exit();
