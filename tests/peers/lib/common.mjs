// Shared helpers for the Forge test peers (node side).
// Servers: argument parsing, the received-message recorder, body reading, LISTENING line.
// Clients: --ca handling, transcript building and normalisation.
import { appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Minimal `--flag value` / `--flag` parser. `spec` maps flag name -> 'string' | 'number' | 'boolean'. */
export function parseArgs(argv, spec) {
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--')) throw new Error(`unexpected argument: ${a}`);
        let name = a.slice(2);
        let inline;
        const eq = name.indexOf('=');
        if (eq >= 0) {
            inline = name.slice(eq + 1);
            name = name.slice(0, eq);
        }
        const kind = spec[name];
        if (!kind) throw new Error(`unknown option --${name}`);
        if (kind === 'boolean') {
            out[name] = true;
            continue;
        }
        const v = inline ?? argv[++i];
        if (v === undefined) throw new Error(`--${name} needs a value`);
        out[name] = kind === 'number' ? Number(v) : v;
    }
    return out;
}

export const log = (...a) => console.error(`[${process.argv[1]?.split('/').pop()}]`, ...a);

/** Appends one JSON line per received JSON-RPC message (or bare HTTP request) to `file`. */
export class Recorder {
    constructor(file) {
        this.file = file ? resolve(file) : undefined;
    }
    write(entry) {
        if (!this.file) return;
        appendFileSync(this.file, JSON.stringify(entry) + '\n');
    }
    /** Record every JSON-RPC message in a parsed POST body. */
    messages(body, http) {
        const list = Array.isArray(body) ? body : [body];
        for (const m of list) this.write({ ...describe(m), http });
    }
    /** Record an HTTP request that carries no JSON-RPC body (GET/DELETE). */
    bare(http) {
        this.write({ kind: 'http', http });
    }
}

export function describe(m) {
    if (m === null || typeof m !== 'object') return { kind: 'invalid', raw: m };
    if (typeof m.method === 'string') {
        const e = { kind: 'id' in m ? 'request' : 'notification', method: m.method };
        if ('id' in m) e.id = m.id;
        if ('params' in m) e.params = m.params;
        return e;
    }
    if ('result' in m || 'error' in m) {
        const e = { kind: 'response', id: m.id };
        if ('result' in m) e.result = m.result;
        if ('error' in m) e.error = m.error;
        return e;
    }
    return { kind: 'invalid', raw: m };
}

/** HTTP facts worth asserting on: method, path+query, and all request headers. */
export function httpInfo(req) {
    return { method: req.method, path: req.url, headers: { ...req.headers } };
}

export function readBody(req) {
    return new Promise((ok, fail) => {
        const chunks = [];
        req.on('data', c => chunks.push(c));
        req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
        req.on('error', fail);
    });
}

export function sendJson(res, status, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
}

/** Listen on 127.0.0.1:port (0 = any free port) and print the one stdout line tests wait for. */
export function listen(server, port) {
    return new Promise((ok, fail) => {
        server.once('error', fail);
        server.listen(port ?? 0, '127.0.0.1', () => {
            const p = server.address().port;
            process.stdout.write(`LISTENING ${p}\n`);
            ok(p);
        });
    });
}

// Prompt handlers both SDK generations' servers register (their argument schemas differ).
export const greetingPrompt = async ({ name, style }) => ({
    description: 'A greeting prompt',
    messages: [{ role: 'user', content: { type: 'text', text: `Greet ${name} in a ${style ?? 'plain'} style.` } }]
});
export const simplePrompt = async () => ({
    messages: [
        { role: 'user', content: { type: 'text', text: 'Say something simple.' } },
        { role: 'assistant', content: { type: 'text', text: 'Something simple.' } }
    ]
});

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/**
 * NODE_EXTRA_CA_CERTS is only read when node starts, so when --ca is given and the
 * variable does not already name that file, re-run this same script with it set.
 * Returns only in the process that should do the work.
 */
export function ensureCa(caFile) {
    if (!caFile) return;
    const want = resolve(caFile);
    if (process.env.NODE_EXTRA_CA_CERTS === want) return;
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
        stdio: 'inherit',
        env: { ...process.env, NODE_EXTRA_CA_CERTS: want }
    });
    process.exit(r.status ?? 1);
}

// ---------------------------------------------------------------- transcripts

const VOLATILE_KEYS = new Set(['sessionId', 'requestState', 'progressToken', 'eventId', 'lastEventId', 'resumptionToken', 'timestamp', 'requestId']);

/** Deep copy with volatile values replaced by a fixed marker so two runs compare equal. */
export function normalize(v) {
    if (Array.isArray(v)) return v.map(normalize);
    if (v && typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v).sort()) {
            if (v[k] === undefined) continue;
            out[k] = VOLATILE_KEYS.has(k) ? '<volatile>' : normalize(v[k]);
        }
        return out;
    }
    return v;
}

export function errorInfo(e) {
    const o = { name: e?.name ?? 'Error', message: String(e?.message ?? e) };
    if (e && typeof e.code === 'number') o.code = e.code;
    if (e && e.data !== undefined) o.data = e.data;
    return o;
}

/**
 * Ordered list of steps. `run(name, fn, {expectError})` records {step, ok, result|error}.
 * A step "fails unexpectedly" when it throws without expectError, or succeeds with it;
 * with `expectError: null` either outcome is only recorded, for the caller to judge.
 */
export class Transcript {
    constructor() {
        this.steps = [];
        this.failures = [];
    }
    async run(step, fn, { expectError = false } = {}) {
        const t0 = Date.now();
        try {
            const result = await fn();
            this.steps.push({ step, ok: true, result: normalize(result ?? null) });
            if (expectError) this.failures.push(`${step}: succeeded but an error was expected`);
        } catch (e) {
            this.steps.push({ step, ok: false, error: normalize(errorInfo(e)) });
            if (expectError === false) this.failures.push(`${step}: ${e?.stack ?? e}`);
        }
        log(`step ${step} ${Date.now() - t0}ms`);
    }
    check(step, cond, detail) {
        if (!cond) this.failures.push(`${step}: check failed: ${detail}`);
    }
    finish(meta) {
        process.stdout.write(JSON.stringify({ ...meta, steps: this.steps }, null, 2) + '\n');
        if (this.failures.length) {
            for (const f of this.failures) log('FAILED', f);
            process.exitCode = 1;
        }
    }
}

/** Resolve when `pred()` becomes true, or reject after `ms`. */
// The resource steps every TypeScript client scenario runs (both SDK generations' clients
// name these methods alike).
export async function resourceReadSteps(t, client) {
    await t.run('resources/list', () => client.listResources());
    await t.run('resources/templates/list', () => client.listResourceTemplates());
    await t.run('resources/read static', () => client.readResource({ uri: 'test://static/hello' }));
    await t.run('resources/read blob', () => client.readResource({ uri: 'test://static/blob' }));
    await t.run('resources/read template', () => client.readResource({ uri: 'test://items/42' }));
    await t.run('resources/read unknown', () => client.readResource({ uri: 'test://nope' }), { expectError: true });
}

export async function waitFor(pred, ms, what) {
    const end = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10);
    }
}
