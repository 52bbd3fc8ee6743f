#!/usr/bin/env node
// Compare two run.sh summaries: the direct run (reference) and the run through
// the gateway (candidate).
//
// usage: node compare.mjs DIRECT.json GATEWAY.json [--allow KEY]... [--json OUT]
//
// A regression is any check that passed directly but, through the gateway,
// failed, was skipped, or is missing. Checks that fail directly are reported
// but never count as regressions (the gateway cannot be blamed for them).
// `--allow <scenario>/<check>` (repeatable; a trailing `*` is a prefix match)
// excuses a known, documented difference.
// Exit status: 0 no regressions, 1 regressions, 2 usage or unreadable input.

import { readFileSync, writeFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const files = [];
const allow = [];
let jsonOut;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--allow') allow.push(argv[++i]);
  else if (argv[i] === '--json') jsonOut = argv[++i];
  else files.push(argv[i]);
}
if (files.length !== 2 || allow.some((a) => !a)) {
  process.stderr.write('usage: compare.mjs DIRECT.json GATEWAY.json [--allow KEY]... [--json OUT]\n');
  process.exit(2);
}

let direct, gateway;
try {
  direct = JSON.parse(readFileSync(files[0], 'utf8'));
  gateway = JSON.parse(readFileSync(files[1], 'utf8'));
} catch (e) {
  process.stderr.write(`compare.mjs: ${e.message}\n`);
  process.exit(2);
}

const allowed = (key) => allow.some((a) => (a.endsWith('*') ? key.startsWith(a.slice(0, -1)) : key === a));

const regressions = [];
const excused = [];
const improvements = [];
const directFailures = [];
for (const [key, d] of Object.entries(direct.checks ?? {})) {
  const g = gateway.checks?.[key] ?? 'missing';
  if (d === 'fail') {
    directFailures.push(key);
    if (g === 'pass') improvements.push(key);
    continue;
  }
  if (d === 'pass' && g !== 'pass') (allowed(key) ? excused : regressions).push({ key, direct: d, gateway: g });
}
const extra = Object.keys(gateway.checks ?? {}).filter((k) => !(k in (direct.checks ?? {})));
const statusChanges = Object.entries(direct.status ?? {})
  .filter(([k, s]) => gateway.status?.[k] !== undefined && gateway.status[k] !== s)
  .map(([k, s]) => ({ key: k, direct: s, gateway: gateway.status[k] }));

const report = { regressions, excused, improvements, directFailures, extra, statusChanges };
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 2) + '\n');

for (const r of regressions) process.stdout.write(`REGRESSION ${r.key}: direct=${r.direct} gateway=${r.gateway}\n`);
for (const r of excused) process.stdout.write(`allowed    ${r.key}: direct=${r.direct} gateway=${r.gateway}\n`);
for (const c of statusChanges) {
  if (!regressions.some((r) => r.key === c.key)) {
    process.stdout.write(`changed    ${c.key}: ${c.direct} -> ${c.gateway}\n`);
  }
}
for (const k of extra) process.stdout.write(`extra      ${k}: ${gateway.checks[k]} (not in direct run)\n`);
process.stdout.write(
  `compare ${direct.suite ?? ''}: ${regressions.length} regressions, ${excused.length} allowed, ` +
    `${directFailures.length} failing directly, ${improvements.length} fixed by gateway\n`,
);
process.exit(regressions.length > 0 ? 1 : 0);
