#!/usr/bin/env bash
# Installs what the approval-page browser test needs: playwright-core (npm, from
# package-lock.json) to drive Debian's chromium. Idempotent. chromium itself comes from
# scripts/test.sh (apt-get); without it the test skips with a message.
set -euo pipefail
cd "$(dirname "$0")"
want=$(sha256sum package.json package-lock.json | sha256sum | cut -c1-16)
if [ "${FORCE:-}" != 1 ] && [ -f node_modules/.forge-stamp ] && [ "$(cat node_modules/.forge-stamp)" = "$want" ]; then
    echo "[browser/install] playwright-core up to date"
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > node_modules/.forge-stamp
echo "[browser/install] playwright-core installed"
