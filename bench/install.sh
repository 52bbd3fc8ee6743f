#!/usr/bin/env bash
# Installs what bench/run.sh needs. Idempotent: re-running skips what is present.
#   nginx, wrk, h2load (nghttp2-client), openssl, taskset  -> apt
#   oha                                                    -> cargo install --locked (~/.cargo/bin)
#   node deps of bench/sdk-upstream (@modelcontextprotocol/sdk v1) -> npm ci
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:$HOME/.cargo/bin:/usr/sbin:/sbin"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v nginx   >/dev/null 2>&1 || need_apt+=(nginx)
command -v wrk     >/dev/null 2>&1 || need_apt+=(wrk)
command -v h2load  >/dev/null 2>&1 || need_apt+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install.sh: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The Debian nginx package starts a system nginx on port 80; the bench runs its
# own instances on random loopback ports and does not need it.

OHA_VERSION="${OHA_VERSION:-1.16.0}"
if ! command -v oha >/dev/null 2>&1 || ! oha --version 2>/dev/null | grep -q "$OHA_VERSION"; then
  echo "install.sh: cargo install --locked oha@$OHA_VERSION"
  cargo install --locked "oha@$OHA_VERSION"
fi

command -v node >/dev/null 2>&1 || { echo "install.sh: node (>=18) is required" >&2; exit 1; }
if [ ! -f "$here/sdk-upstream/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  echo "install.sh: npm ci in bench/sdk-upstream"
  (cd "$here/sdk-upstream" && npm ci --no-audit --no-fund)
fi

echo "install.sh: ok -- nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(oha --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), h2load $(h2load --version | awk '{print $2}'), node $(node --version)"
