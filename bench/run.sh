#!/usr/bin/env bash
# Forge load harness: direct vs nginx TLS proxy vs Forge gateway.
#   bench/run.sh [--gateway-bin PATH] [--quick] [--help for all options]
# Results: bench/results/latest.md (+ latest.json). See bench/README.md.
# Everything started is stopped on exit (the Python driver owns the processes
# and stops them on normal exit, error, SIGINT, SIGTERM and SIGHUP).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:$HOME/.cargo/bin:/usr/sbin:/sbin"
exec python3 "$here/lib/bench.py" "$@"
