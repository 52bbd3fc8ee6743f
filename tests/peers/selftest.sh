#!/usr/bin/env bash
# Self-test of the peers, no gateway involved: every client runs twice directly against its
# server and the two transcripts must be byte-identical. Usage: tests/peers/selftest.sh [name...]
# where name is one of: v1 v1-json v1-sse v2 py everything-http (none = all). NODE=... picks the node binary.
set -euo pipefail
cd "$(dirname "$0")"
NODE=${NODE:-node}
PY=.venv/bin/python
OUT=${SELFTEST_OUT:-$(mktemp -d /tmp/forge-peers-selftest.XXXXXX)}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME CMD... -> sets PORT
start_server() {
    local name=$1; shift
    "$@" >"$OUT/$name.server.out" 2>"$OUT/$name.server.err" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        if grep -q '^LISTENING ' "$OUT/$name.server.out" 2>/dev/null; then
            PORT=$(awk '/^LISTENING /{print $2; exit}' "$OUT/$name.server.out")
            return 0
        fi
        sleep 0.1
    done
    echo "server $name did not start:"; cat "$OUT/$name.server.err"; return 1
}

passed=0; failed=0
# twice NAME CLIENTCMD... : run the client twice and compare
twice() {
    local name=$1; shift
    local ok=1
    for i in 1 2; do
        local t0=$(date +%s%N)
        if ! "$@" >"$OUT/$name.run$i.json" 2>"$OUT/$name.run$i.err"; then
            echo "FAIL $name run $i exited non-zero (see $OUT/$name.run$i.err)"; ok=0
        fi
        echo "  $name run $i: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    done
    if ! cmp -s "$OUT/$name.run1.json" "$OUT/$name.run2.json"; then
        echo "FAIL $name transcripts differ:"; diff "$OUT/$name.run1.json" "$OUT/$name.run2.json" | head -40; ok=0
    fi
    if [ $ok = 1 ]; then echo "ok   $name ($(grep -c '"step"' "$OUT/$name.run1.json") steps)"; passed=$((passed+1)); else failed=$((failed+1)); fi
}

want() { [ $# -eq 0 ] && return 0; local x; for x in "${SEL[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
SEL=("$@")
all() { [ ${#SEL[@]} -eq 0 ] || want "$1"; }

if all v1; then
    start_server v1 $NODE ts-v1-server.mjs --port 0 --record "$OUT/v1.record.jsonl"
    twice v1 $NODE ts-v1-client.mjs --url "http://127.0.0.1:$PORT/mcp" --resume
fi
if all v1-json; then
    start_server v1-json $NODE ts-v1-server.mjs --port 0 --json
    twice v1-json $NODE ts-v1-client.mjs --url "http://127.0.0.1:$PORT/mcp"
fi
if all v1-sse; then
    start_server v1-sse $NODE ts-v1-server.mjs --port 0
    twice v1-sse $NODE ts-v1-client.mjs --url "http://127.0.0.1:$PORT/sse" --transport sse
fi
if all v2; then
    start_server v2 $NODE ts-v2-server.mjs --port 0 --record "$OUT/v2.record.jsonl"
    twice v2 $NODE ts-v2-client.mjs --url "http://127.0.0.1:$PORT/mcp"
fi
if all py; then
    start_server py $PY py-server.py --port 0 --record "$OUT/py.record.jsonl"
    twice py $PY py-client.py --url "http://127.0.0.1:$PORT/mcp"
fi
if all everything-http; then
    # server-everything's own Streamable HTTP mode (PORT env); the stdio mode is what a gateway fronts.
    EV_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    PORT=$EV_PORT $NODE node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp >"$OUT/ev.server.out" 2>"$OUT/ev.server.err" &
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q "listening on port" "$OUT/ev.server.err" 2>/dev/null && break; sleep 0.1; done
    twice everything-http $NODE everything-client.mjs --url "http://127.0.0.1:$EV_PORT/mcp"
fi
echo "selftest: $passed passed, $failed failed (outputs in $OUT)"
[ $failed = 0 ]
