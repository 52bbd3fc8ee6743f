#!/usr/bin/env bash
# Installs the Forge test peers: npm packages into tests/peers/node_modules (from package-lock.json)
# and the Python SDK into tests/peers/.venv (from requirements.txt). Idempotent: a stamp holding the
# lockfile's hash makes a second run a no-op. Needs node >= 20 + npm, and python3 >= 3.10 with venv.
# Env: PYTHON (default python3), NODE (default node), FORCE=1 to reinstall.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
say() { echo "[peers/install] $*"; }
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

# ---- node
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
    say "node >= 20 is required (found: $("$NODE" --version 2>/dev/null || echo none))"; exit 1
fi
want=$(hash_of package.json package-lock.json)
if [ "${FORCE:-}" != 1 ] && [ -f node_modules/.forge-stamp ] && [ "$(cat node_modules/.forge-stamp)" = "$want" ]; then
    say "npm packages up to date ($("$NODE" -p 'require("./package.json").dependencies["@modelcontextprotocol/sdk"]') sdk v1; node $("$NODE" --version))"
else
    say "installing npm packages with npm ci (node $("$NODE" --version))"
    npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
    [ -d node_modules/@modelcontextprotocol/sdk ] || { say "npm ci failed"; exit 1; }
    echo "$want" > node_modules/.forge-stamp
    say "npm packages installed"
fi

# ---- python
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    say "python >= 3.10 is required (PYTHON=$PYTHON)"; exit 1
fi
want=$(hash_of requirements.txt)
if [ "${FORCE:-}" != 1 ] && [ -x .venv/bin/python ] && [ -f .venv/.forge-stamp ] && [ "$(cat .venv/.forge-stamp)" = "$want" ]; then
    say "python venv up to date ($(.venv/bin/python --version), mcp $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
else
    if [ ! -x .venv/bin/python ]; then
        say "creating venv .venv with $("$PYTHON" --version)"
        "$PYTHON" -m venv .venv
    fi
    say "installing python packages from requirements.txt"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > .venv/.forge-stamp
    say "python packages installed (mcp $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
fi
say "ready: node peers in $(pwd)/node_modules, python peers via $(pwd)/.venv/bin/python"
