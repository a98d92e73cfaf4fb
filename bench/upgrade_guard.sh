#!/usr/bin/env bash
# Admission latency and peak memory of the upgrade guard over a large
# cluster: the fake API server holds VOLUMES Longhorn volumes (1 in 50
# single-replica, so every review is refused), PODS Running pods of
# 10-replica apps with PDBS PodDisruptionBudgets over them, and NODES nodes
# (3 control-plane), plus the sample cluster's blockers, all behind
# pagination (limit=500). wrk sends Upgrade reviews one at a time (the API
# server calls the guard once per Upgrade); every review reads all eight
# kinds and runs all four checks.
#
#   bench/upgrade_guard.sh [VOLUMES=10000] [SECONDS=20] [CONNECTIONS=1] [PODS=10000] [PDBS=1000] [NODES=50]
set -euo pipefail
cd "$(dirname "$0")/.."
volumes=${1:-10000}
seconds=${2:-20}
conns=${3:-1}
pods=${4:-10000}
pdbs=${5:-1000}
nodes=${6:-50}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
scripts/build.sh >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

certs/make-certs.sh -d 1 "$work/certs" >/dev/null 2>&1
certs/make-certs.sh -s kubernetes -n default -d 1 "$work/api" >/dev/null 2>&1
mkdir -p "$work/state"
cp test/fixtures/cluster/{kubevirt,poddisruptionbudgets,pods,instancemanagers,upgrades}.json "$work/state/"
/usr/bin/python3 test/fake_apiserver.py --certs "$work/api" --state "$work/state" --volumes "$volumes" \
  --nodes "$nodes" --pods "$pods" --pdbs "$pdbs" >"$work/api.log" 2>&1 &
for _ in $(seq 1 200); do grep -q "listening on" "$work/api.log" && break; sleep 0.1; done
api_port=$(sed -n 's/listening on //p' "$work/api.log")
cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: $work/api/ca.crt
    server: https://127.0.0.1:$api_port
  name: bench
contexts:
- context:
    cluster: bench
    user: bench
  name: bench
current-context: bench
users:
- name: bench
  user:
    token: bench
KC
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
build/hci-admission --cert-dir "$work/certs" --port "$port" --bind 127.0.0.1 --kubeconfig "$work/kubeconfig" \
  --policies upgrade-guard --log-level warn ${PAGE_SIZE:+--cluster-page-size $PAGE_SIZE} >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$work/certs/ca.crt" "https://localhost:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -sf --cacert "$work/certs/ca.crt" "https://localhost:$port/readyz" >/dev/null || { echo "server not ready:" >&2; cat "$work/server.log" >&2; exit 1; }
jq .review test/fixtures/e2e/upgrade-single-replica.json >"$work/review.json"
# Warm the fake server's page cache so that it is not what is measured.
curl -s --cacert "$work/certs/ca.crt" -H 'Content-Type: application/json' --data-binary @"$work/review.json" \
  "https://localhost:$port/validate/upgrade-guard" | jq -r '.response.status.message' | tr ';' '\n' | cut -c1-160
echo "cluster: $volumes volumes, $pods pods, $pdbs PDBs, $nodes nodes"
export BODY="$work/review.json" PATH_=/validate/upgrade-guard
wrk -t1 -c"$conns" -d"${seconds}s" --latency -s ../shared/bench/post.lua "https://127.0.0.1:$port" |
  grep -E "Latency|Requests/sec|50%|90%|99%|Non-2xx|Socket"
echo "peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$server_pid/status)"
