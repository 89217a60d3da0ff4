#!/usr/bin/env bash
# The main job on the embedded local default: bring up the local stack (Kubernetes API
# stand-in, TLS MariaDB behind a moto RDS instance, moto Secrets Manager/S3, Temporal dev
# servers), start a worker against it, and provision the `local` environment.
#   scripts/demo.sh          provision (re-running it attaches / changes nothing)
#   scripts/demo.sh down     stop the worker and the local stack
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
STATE=.state
WORKER_PID="$STATE/worker.pid"
WORKER_LOG="$STATE/worker.log"

worker_alive() { [ -f "$WORKER_PID" ] && kill -0 "$(cat "$WORKER_PID")" 2>/dev/null; }

if [ "${1:-}" = "down" ]; then
  if worker_alive; then kill "$(cat "$WORKER_PID")"; echo "worker stopped"; fi
  rm -f "$WORKER_PID"
  exec "$PY" -m local_stack down
fi

scripts/setup.sh
"$PY" -m local_stack up
mkdir -p "$STATE"
if ! worker_alive; then
  echo "starting the worker (log: $WORKER_LOG)"
  setsid nohup "$PY" worker.py --local-stack >"$WORKER_LOG" 2>&1 < /dev/null &
  echo $! > "$WORKER_PID"
  for _ in $(seq 1 60); do
    grep -q "worker ready" "$WORKER_LOG" 2>/dev/null && break
    worker_alive || { echo "the worker died:"; tail -n 30 "$WORKER_LOG"; exit 1; }
    sleep 0.5
  done
  grep -q "worker ready" "$WORKER_LOG" || { echo "the worker did not become ready:"; tail -n 30 "$WORKER_LOG"; exit 1; }
fi
exec "$PY" starter.py --local-stack provision local "$@"
