#!/usr/bin/env bash
# Runs the gateway with its defaults in front of the reference MCP server
# (@modelcontextprotocol/server-everything over stdio): a development TLS certificate is
# generated under ./forge-state/tls/, MCP is served at https://localhost:8443/mcp and the
# admin endpoints at http://127.0.0.1:9090/{healthz,readyz,metrics}. The default policies
# (policies/) and the shipped detectors (wasm-plugins/dist, built here) are loaded; the
# detectors are compiled once into ./forge-state/plugins-cache/ and reused by later starts.
# Extra arguments go to `forge run` (see `forge run --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
everything=.dev/node_modules/@modelcontextprotocol/server-everything/dist/index.js
if [ ! -f "$everything" ]; then
  echo "installing @modelcontextprotocol/server-everything into .dev/"
  npm install --silent --no-audit --no-fund --prefix .dev @modelcontextprotocol/server-everything@2026.8.31
fi
wasm-plugins/build.sh
exec cargo run --release --locked -- run --upstream "stdio:node $everything stdio" "$@"
