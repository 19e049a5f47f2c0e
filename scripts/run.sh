#!/usr/bin/env bash
# The main job, until the daemon exists: installs what is missing, builds, and
# starts the guest agent in host mode on a Unix socket with a demo root, then
# opens a client session against it (ping, guest info, an exec, a copy round
# trip). The agent keeps running in the foreground until Ctrl-C.
#   PL_STATE   state directory (default ./state)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
state=${PL_STATE:-$top/state}

bash scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)"

agent=build/release/guest-agent/pl-agent
cli=build/release/portlayer/pl-agent-cli
mkdir -p "$state/root"
sock=$state/agent.sock

"$agent" --unix "$sock" --root "$state/root" &
agent_pid=$!
trap 'kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

echo "== agent on $sock (pid $agent_pid), root $state/root"
"$cli" --socket "$sock" ping
"$cli" --socket "$sock" info
"$cli" --socket "$sock" exec -- sh -c 'echo "hello from $(uname -n), exit code follows"; exit 3' || echo "exit code: $?"
echo "== try: $cli --socket $sock exec --tty --stdin -- sh"
echo "== Ctrl-C stops the agent"
wait "$agent_pid"
