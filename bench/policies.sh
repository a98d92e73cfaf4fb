#!/usr/bin/env bash
# Load test of each policy with wrk (HTTP/1.1 keep-alive over TLS) at 1, 16,
# 64 and 256 connections: throughput, p50/p99, errors, and the server's RSS
# (idle, after each step, and the peak). The guards decide from the offline
# fixture cluster here (the PVC cleanup guard twice: the UI's list, which
# needs no read, and the node driver's, which needs one); bench/upgrade_guard.sh
# measures the upgrade guard over 10,000 volumes on a (fake) API server.
#   bench/policies.sh [SECONDS=5] [CONNS="1 16 64 256"]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
conns=${2:-"1 16 64 256"}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
scripts/build.sh >/dev/null
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
certs/make-certs.sh -d 2 "$work/certs" >/dev/null 2>&1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
build/hci-admission --cert-dir "$work/certs" --port "$port" --bind 127.0.0.1 --log-level warn \
  --cluster-state test/fixtures/cluster >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf --cacert "$work/certs/ca.crt" "https://localhost:$port/readyz" >/dev/null && break; sleep 0.05; done
rss() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
echo "idle RSS: $(rss VmRSS) MiB"
printf '%-34s %6s %10s %9s %9s %7s %9s\n' policy conns req/s p50 p99 errors "RSS MiB"
for policy in csi-controller-placement:mutate:csi-no-affinity kubevirt-infra-placement:mutate:kubevirt-no-infra \
  upgrade-guard:validate:upgrade-skip-true-detached pvc-cleanup-guard:validate:vm-pvc-cleanup-ui-delete \
  pvc-cleanup-guard:validate:vm-pvc-cleanup-node-driver; do
  IFS=: read -r name kind fixture <<<"$policy"
  jq -c .review "test/fixtures/e2e/$fixture.json" >"$work/body.json"
  label=$name
  [[ $fixture == vm-pvc-cleanup-* ]] && label="$name (${fixture#vm-pvc-cleanup-})"
  for c in $conns; do
    out=$(BODY="$work/body.json" URL_PATH="/$kind/$name" wrk -t1 -c"$c" -d"${seconds}s" --latency \
      -s bench/post.lua "https://127.0.0.1:$port" 2>&1)
    rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
    printf '%-34s %6s %10s %9s %9s %7s %9s\n' "$label" "$c" "$rps" "$p50" "$p99" "$errors" "$(rss VmRSS)"
  done
done
echo "peak RSS: $(rss VmHWM) MiB"
sleep 2
echo "RSS after the load: $(rss VmRSS) MiB"
