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
"$PY" starter.py --local-stack provision local "$@" || exit $?

# The demo's cluster answers a user's own tools as any cluster does (kubectl from .tools/kubectl,
# the temporal CLI from .venv/bin; the Kubernetes API stand-in serves kubectl's Tables and its
# SPDY port-forward).
KUBECONFIG_PATH=$("$PY" -c 'from local_stack.stack import load_state; print(load_state()["kubernetes"]["kubeconfig"])')
cat <<EOF_HINT

The release is reachable with kubectl and the temporal CLI (PATH="\$PWD/.tools/kubectl:\$PWD/.venv/bin:\$PATH" if they are not on yours):
  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl get pods -n my-app-local
  kubectl port-forward svc/temporal-frontend 7233:7233 -n my-app-local
  temporal operator namespace list --address 127.0.0.1:7233    # in another shell, while the port-forward runs
EOF_HINT
