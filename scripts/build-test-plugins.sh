#!/usr/bin/env bash
# Builds the detector plugins the plugin host's tests load (tests/plugins/) for
# wasm32-wasip2. Their .wasm files land in tests/plugins/target/wasm32-wasip2/release/.
set -euo pipefail
cd "$(dirname "$0")/../tests/plugins"
rustup target add wasm32-wasip2 >/dev/null
cargo build --release --target wasm32-wasip2 --locked "$@"
