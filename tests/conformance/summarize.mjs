#!/usr/bin/env node
// Collapse a conformance `server -o DIR` result tree into one JSON summary.
//
// usage: node summarize.mjs RESULTS_DIR OUTFILE SUITE PACKAGE URL EXIT_CODE SECONDS [suite args...]
//
// RESULTS_DIR holds one `server-<scenario>-<timestamp>/checks.json` per
// scenario. Output:
//   {
//     "checks":  { "<scenario>/<check-id>": "pass" | "fail" | "skip" },
//     "status":  { "<scenario>/<check-id>": "SUCCESS" | "WARNING" | "FAILURE" | "SKIPPED" },
//     "info":    [ "<scenario>/<check-id>", ... ],   // INFO-only ids (wire logs etc.)
//     "scenarios": { "<scenario>": "pass" | "fail" },
//     "summary": { "pass": n, "fail": n, "skip": n, "warning": n, "scenarios": n },
//     "suite", "package", "url", "args", "exit_code", "duration_s"
//   }
// Mapping: SUCCESS -> pass, WARNING -> pass (a SHOULD-level miss; the raw
// status stays in "status"), SKIPPED -> skip, FAILURE -> fail. A check id
// repeated within one scenario collapses to its most severe status.

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, outFile, suite, pkg, url, exitCode, seconds, ...args] = process.argv.slice(2);
if (!dir || !outFile) {
  process.stderr.write('usage: summarize.mjs RESULTS_DIR OUTFILE SUITE PACKAGE URL EXIT_CODE SECONDS [args...]\n');
  process.exit(2);
}

const SEVERITY = { FAILURE: 4, WARNING: 3, SUCCESS: 2, SKIPPED: 1, INFO: 0 };
const MAP = { FAILURE: 'fail', WARNING: 'pass', SUCCESS: 'pass', SKIPPED: 'skip' };
const TS_SUFFIX = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

const status = {};
const infoOnly = new Set();
const scenarios = {};
let entries = [];
try {
  entries = readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory());
} catch {
  entries = [];
}

for (const d of entries.sort()) {
  const file = join(dir, d, 'checks.json');
  let checks;
  try {
    checks = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    continue;
  }
  // Directory name: "server-<scenario>-<timestamp>"; scenario names can
  // themselves start with "server-", so strip exactly one prefix.
  let scenario = d.replace(TS_SUFFIX, '');
  if (scenario.startsWith('server-')) scenario = scenario.slice('server-'.length);
  scenarios[scenario] ??= 'pass';
  for (const c of Array.isArray(checks) ? checks : []) {
    const key = `${scenario}/${c.id}`;
    const s = c.status in SEVERITY ? c.status : 'FAILURE';
    if (s === 'INFO') {
      if (!(key in status)) infoOnly.add(key);
      continue;
    }
    infoOnly.delete(key);
    if (!(key in status) || SEVERITY[s] > SEVERITY[status[key]]) status[key] = s;
    if (s === 'FAILURE') scenarios[scenario] = 'fail';
  }
}

const keys = Object.keys(status).sort();
const checks = {};
const summary = { pass: 0, fail: 0, skip: 0, warning: 0, scenarios: Object.keys(scenarios).length };
const sortedStatus = {};
for (const k of keys) {
  const v = MAP[status[k]];
  checks[k] = v;
  sortedStatus[k] = status[k];
  summary[v]++;
  if (status[k] === 'WARNING') summary.warning++;
}

const out = {
  suite,
  package: pkg,
  url,
  args,
  exit_code: Number(exitCode),
  duration_s: Number(seconds),
  summary,
  scenarios: Object.fromEntries(Object.entries(scenarios).sort()),
  checks,
  status: sortedStatus,
  info: [...infoOnly].sort(),
};
writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n');
// Deliberately not the "N passed, N failed" shape: CI reads that shape as a
// test runner's closing line.
process.stdout.write(
  `conformance ${suite}: pass=${summary.pass} fail=${summary.fail} skip=${summary.skip} ` +
    `warn=${summary.warning} scenarios=${summary.scenarios} time=${seconds}s -> ${outFile}\n`,
);
if (summary.scenarios === 0) process.exit(3);
