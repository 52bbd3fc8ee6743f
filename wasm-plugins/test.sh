#!/usr/bin/env bash
# The plugin workspace's checks, as scripts/test.sh runs them: build the four components
# (dist/), then formatting, lints (natively and for the wasm32 glue), unit tests and the
# corpus scoring. Nothing here needs the gateway.
set -euo pipefail
cd "$(dirname "$0")"

./build.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -p forge-plugin-sdk -p secrets -- -D warnings
cargo test --locked
