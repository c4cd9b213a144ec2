#!/usr/bin/env bash
# One command: flowengine vs Node-RED on the chain, switch (batch 100 and 1) and fanout
# workloads, interleaved runs, a table of msgs/s, ratio vs target, latency and peak RSS.
#
#   bench/run.sh                              # 3 repetitions, N = 200000
#   bench/run.sh --reps 1 --n 50000           # quicker
#   bench/run.sh --cases chain:100 --reps 1   # one case
#   NR_VERSION=4 bench/run.sh                 # Node-RED 4 on the system Node instead of 5
#
# Node-RED comes from the shared bench (../shared/bench/nodered from the repository root, or
# $NODERED_BENCH_DIR), whose run.sh installs it from npm on first use into $NR_BENCH_DIR
# (default /tmp/nodered-bench). flowengine runs from the repository's .venv when there is one.
# Every option goes to bench/compare.py (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" bench/compare.py "$@"
