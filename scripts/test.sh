#!/usr/bin/env bash
# Installs everything the test suite needs (real MCP SDK peers, the conformance suite, Node 22)
# and runs the whole suite: formatting, lints, unit and integration tests.
# Slow runs (the load harness, long fuzzing) are not here: see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test peers"
tests/peers/install.sh
tests/conformance/install.sh
echo "== building the test detector plugins (wasm32-wasip2)"
scripts/build-test-plugins.sh
# Approvals and shared state: a real redis-server, and Debian chromium for the approval page.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null ||
        echo "== could not install ${missing[*]}: the tests that need them will say SKIPPED"
fi
tests/browser/install.sh

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"

echo "== detector plugins (wasm-plugins/)"
wasm-plugins/test.sh 2>&1 | tee -a "$log"

# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"

# After cargo test: the chart is tested against the forge binary it built (forge webhook).
echo "== deployment: helm chart, terraform, dashboard, alerts, Dockerfile"
tests/deploy/run.sh
