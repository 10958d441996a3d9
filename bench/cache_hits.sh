#!/usr/bin/env bash
# Cache-hit throughput of POST /v1/generations at 64 connections (issue 2 target: >= 1,000 req/s,
# p99 <= 50 ms on a 2-core machine, load generator included). Prints wrk's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8765}
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null; sleep 1; kill -9 $PID 2>/dev/null; rm -rf "$DATA"' EXIT
PIXELPIPE_DATA_DIR=$DATA PIXELPIPE_LOG_LEVEL=WARNING .venv/bin/pixelpipe serve --port "$PORT" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
BODY='{"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64"}'
curl -s -o /dev/null -X POST -H 'content-type: application/json' -d "$BODY" "http://127.0.0.1:$PORT/v1/generations"
sleep 1  # the first request generates; everything after is a cache hit
BODY="$BODY" wrk -t2 -c64 -d${DURATION:-10}s --latency -s bench/post.lua "http://127.0.0.1:$PORT/v1/generations"
