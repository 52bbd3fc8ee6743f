// Preloaded (node --import) by run.sh only when the target URL is https.
//
// A few conformance scenarios (0.2.x `http-header-validation`,
// `http-custom-header-server-validation`) build raw requests with
// `http.request({hostname, port, path, ...})`, which cannot speak TLS. This
// shim routes exactly those calls — the ones aimed at the host:port of
// CONFORMANCE_TARGET_URL — through `https.request` with the same options.
// Everything else (fetch, undici, the SDK client) already handles https, and
// NODE_EXTRA_CA_CERTS (set by run.sh from CONFORMANCE_CA) makes Node trust a
// self-signed certificate for all of them.
//
// Second fix-up: `dns-rebinding-protection` sends a spoofed `Host:
// evil.example.com` header through undici, which then uses that name for TLS
// SNI and certificate verification, so the handshake fails before the server
// can answer 4xx. The shim installs a global undici dispatcher whose TLS
// connector always uses the target URL's hostname for SNI and verification;
// the spoofed Host header still reaches the server unchanged.

import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const target = process.env.CONFORMANCE_TARGET_URL ? new URL(process.env.CONFORMANCE_TARGET_URL) : undefined;

if (target && target.protocol === 'https:') {
  const port = target.port || '443';
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const aimsAtTarget = (opts) =>
    opts &&
    typeof opts === 'object' &&
    !(opts instanceof URL) &&
    opts.protocol === undefined &&
    String(opts.hostname ?? opts.host ?? '').replace(/^\[|\]$/g, '').toLowerCase() === host &&
    String(opts.port ?? '80') === port;

  const origRequest = http.request;
  const origGet = http.get;
  http.request = function patchedRequest(opts, ...rest) {
    if (aimsAtTarget(opts)) return https.request({ ...opts, protocol: 'https:' }, ...rest);
    return origRequest.call(this, opts, ...rest);
  };
  http.get = function patchedGet(opts, ...rest) {
    if (aimsAtTarget(opts)) return https.get({ ...opts, protocol: 'https:' }, ...rest);
    return origGet.call(this, opts, ...rest);
  };
}

if (target && target.protocol === 'https:') {
  const here = dirname(fileURLToPath(import.meta.url));
  let undici;
  for (const pkg of ['conformance-next', '@modelcontextprotocol/conformance']) {
    try {
      undici = createRequire(join(here, 'node_modules', pkg, 'package.json'))('undici');
      break;
    } catch {}
  }
  if (undici) {
    const servername = target.hostname.replace(/^\[|\]$/g, '');
    const isIp = /^[\d.]+$|:/.test(servername);
    const connector = undici.buildConnector({});
    const agent = new undici.Agent({
      connect: (opts, cb) =>
        connector(
          { ...opts, servername: isIp ? undefined : servername },
          cb,
        ),
    });
    undici.setGlobalDispatcher(agent);
  } else {
    process.stderr.write('https-shim: undici not found; Host-spoofing scenarios may fail TLS verification\n');
  }
}
