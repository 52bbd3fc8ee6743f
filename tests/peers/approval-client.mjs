#!/usr/bin/env node
// Forge test peer: one tools/call through the gateway with the TypeScript SDK v1 client
// (Streamable HTTP, protocol 2025-11-25), for the human-approval tests.
//
//   node approval-client.mjs --url URL --token JWT --tool NAME [--arguments JSON] [--timeout MS] [--ca PEMFILE]
//                          [--url-elicitation]
//
// The call asks for progress (so it carries a progressToken) and lets each progress
// notification reset its timeout, as a client waiting for a human would. Prints ONE JSON
// line on stdout: {progress: [notification params…], elicitations: [elicitation/create params…],
// completed: [elicitationId…], result} or the same with error. With --url-elicitation the
// client declares URL-mode elicitation and accepts every elicitation (as a user who opened
// the page would).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitationCompleteNotificationSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { ensureCa, errorInfo, parseArgs } from './lib/common.mjs';

const args = parseArgs(process.argv.slice(2), { url: 'string', token: 'string', tool: 'string', arguments: 'string', timeout: 'number', ca: 'string', 'url-elicitation': 'boolean' });
ensureCa(args.ca);
if (!args.url || !args.token || !args.tool) throw new Error('--url, --token and --tool are required');

const capabilities = args['url-elicitation'] ? { elicitation: { url: {} } } : {};
const client = new Client({ name: 'forge-approval-client', version: '1.0.0' }, { capabilities });
const progress = [];
const elicitations = [];
const completed = [];
const out = { progress, elicitations, completed };
if (args['url-elicitation']) {
    client.setRequestHandler(ElicitRequestSchema, async req => {
        elicitations.push(req.params);
        return { action: 'accept' };
    });
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, n => completed.push(n.params.elicitationId));
}
const transport = new StreamableHTTPClientTransport(new URL(args.url), {
    requestInit: { headers: { Authorization: `Bearer ${args.token}` } }
});
await client.connect(transport);
try {
    out.result = await client.callTool({ name: args.tool, arguments: JSON.parse(args.arguments ?? '{}') }, CallToolResultSchema, {
        onprogress: p => progress.push(p),
        resetTimeoutOnProgress: true,
        timeout: args.timeout ?? 5000
    });
} catch (e) {
    out.error = errorInfo(e);
}
console.log(JSON.stringify(out));
await client.close();
