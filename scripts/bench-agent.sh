#!/usr/bin/env bash
# Agent protocol benchmark over a Unix socket (see tests/bench/bench-agent.c).
# Builds a release tree, starts pl-agent in host mode, runs the benchmark and
# stops the agent. Usage: scripts/bench-agent.sh [exec-iterations] [copy-MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target pl-agent bench-agent >/dev/null
dir=$(mktemp -d /tmp/pl-bench.XXXXXX)
mkdir -p "$dir/root"
build/release/bin/pl-agent --unix "$dir/agent.sock" --root "$dir/root" --log-level warning &
agent=$!
trap 'kill $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/agent.sock" ] && break; sleep 0.05; done
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r)"
build/release/bin/bench-agent "$dir/agent.sock" "$dir/root" "${1:-200}" "${2:-512}"
