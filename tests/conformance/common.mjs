// Shared helpers for the Forge conformance upstream servers.
// Plain node:http plumbing only; the MCP protocol handling lives in the
// official SDKs used by stateful-server.mjs (v1) and stateless-server.mjs (v2).

import { deflateSync } from 'node:zlib';

function crc32(buf) {
  let c = ~0 >>> 0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

// A 1x1 red PNG (RGB, 8 bit), built at load time, base64.
export const RED_PIXEL_PNG = (() => {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0); // width
  ihdr.writeUInt32BE(1, 4); // height
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.from([0, 255, 0, 0]); // filter byte + one red pixel
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]).toString('base64');
})();

// A tiny valid WAV file (8 kHz, mono, 8-bit PCM, 8 samples of silence), base64.
export const SILENT_WAV = (() => {
  const samples = 8;
  const buf = Buffer.alloc(44 + samples);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + samples, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(8000, 24); // sample rate
  buf.writeUInt32LE(8000, 28); // byte rate
  buf.writeUInt16LE(1, 32); // block align
  buf.writeUInt16LE(8, 34); // bits per sample
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(samples, 40);
  buf.fill(128, 44); // 8-bit PCM silence
  return buf.toString('base64');
})();

export function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1', allowHosts: [] };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--port') out.port = Number(next());
    else if (a.startsWith('--port=')) out.port = Number(a.slice(7));
    else if (a === '--host') out.host = next();
    else if (a.startsWith('--host=')) out.host = a.slice(7);
    else if (a === '--allow-host') out.allowHosts.push(next().toLowerCase());
    else if (a.startsWith('--allow-host=')) out.allowHosts.push(a.slice(13).toLowerCase());
    else if (a === '--help' || a === '-h') out.help = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    throw new Error(`invalid --port ${out.port}`);
  }
  return out;
}

/// Parses the command line of the server script `name`; prints usage and exits on
/// `--help` (status 0) or a bad argument (status 2).
export function optionsOrExit(name) {
  let opts;
  try {
    opts = parseArgs(process.argv);
  } catch (e) {
    process.stderr.write(`${e.message}\n${USAGE(name)}`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(USAGE(name));
    process.exit(0);
  }
  return opts;
}

export function log(name, ...parts) {
  process.stderr.write(`[${name}] ${parts.join(' ')}\n`);
}

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function hostnameOf(hostHeader) {
  // Host header: "name", "name:port", "[v6]", "[v6]:port".
  if (!hostHeader) return undefined;
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

export const USAGE = (name) =>
  `usage: ${name} --port N [--host 127.0.0.1] [--allow-host NAME]...\n` +
  '  --port 0 picks a free port; "LISTENING <port>" is printed on stdout when ready.\n' +
  '  --allow-host NAME also accepts NAME in Host/Origin (DNS-rebinding check);\n' +
  '  --allow-host "*" disables the check.\n';

// DNS-rebinding protection for a loopback-bound server: the Host header (and
// the Origin header, when present) must name a loopback host (or one of the
// extra names given with --allow-host). Returns an error string when the
// request must be refused, undefined otherwise.
export function checkLoopbackHostAndOrigin(req, allowHosts = []) {
  if (allowHosts.includes('*')) return undefined;
  const ok = (h) => LOOPBACK_HOSTNAMES.has(h) || allowHosts.includes(h);
  const host = hostnameOf(req.headers.host);
  if (!host || !ok(host)) {
    return `Invalid Host header: ${req.headers.host ?? '(missing)'}`;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let oh;
    try {
      oh = new URL(origin).hostname.toLowerCase();
    } catch {
      return `Invalid Origin header: ${origin}`;
    }
    if (!ok(oh)) return `Invalid Origin header: ${origin}`;
  }
  return undefined;
}

export function sendJsonRpcError(res, status, code, message, id = null) {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id });
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

export async function readBody(req, limit = 4 * 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Install SIGINT/SIGTERM handlers that close the HTTP server and exit.
export function exitOnSignals(name, httpServer, extraCleanup) {
  const stop = (sig) => {
    log(name, `received ${sig}, shutting down`);
    try {
      extraCleanup?.();
    } catch {}
    httpServer.closeAllConnections?.();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

// Input schema exercising JSON Schema 2020-12 keywords that must survive
// tools/list untouched (SEP-1613: $schema/$defs/additionalProperties;
// SEP-2106: $anchor, allOf/anyOf, if/then/else).
export const JSON_SCHEMA_2020_12_INPUT = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: {
      $anchor: 'addressDef',
      type: 'object',
      properties: { street: { type: 'string' }, city: { type: 'string' } },
    },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};
