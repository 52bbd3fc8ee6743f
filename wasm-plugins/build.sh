#!/usr/bin/env bash
# Builds the four shipped detectors as WebAssembly components (release, wasm32-wasip2) in one
# cargo invocation and writes dist/<name>/{<name>.wasm,manifest.yaml}, the manifest's sha256
# filled in from the built .wasm. dist/ is the gateway's default plugins directory.
set -euo pipefail
cd "$(dirname "$0")"

plugins=(pii secrets code-exec tool-poisoning)

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

cargo build --locked --release --target wasm32-wasip2 "${plugins[@]/#/-p}"

for name in "${plugins[@]}"; do
  out="dist/$name"
  mkdir -p "$out"
  cp "target/wasm32-wasip2/release/${name//-/_}.wasm" "$out/$name.wasm"
  sum=$(sha256sum "$out/$name.wasm" | cut -d' ' -f1)
  grep -q '^sha256:' "$name/manifest.yaml" || { echo "$name/manifest.yaml has no sha256 line" >&2; exit 1; }
  sed "s/^sha256:.*/sha256: $sum/" "$name/manifest.yaml" >"$out/manifest.yaml"
  echo "$out/$name.wasm $(stat -c %s "$out/$name.wasm") bytes sha256 $sum"
done
