#!/usr/bin/env bash
# Installs everything the test suite needs (real MCP SDK peers, the conformance suite, Node 22)
# and runs the whole suite: formatting, lints, unit and integration tests.
# Slow runs (the load harness, long fuzzing) are not here: see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test peers"
tests/peers/install.sh
tests/conformance/install.sh

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --all-targets --locked -- --test-threads=2
