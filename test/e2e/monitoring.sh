#!/usr/bin/env bash
# End-to-end: the monitoring component (manifests/components/monitoring)
# against a real Prometheus (Debian's prometheus, started here) scraping a
# running server over TLS as the ServiceMonitor says, while this script
# sends reviews of every kind: patches, denials, a guard failing closed
# (the fake API failing), a slow guard (the fake API delayed), bad input
# and failed TLS handshakes. Every dashboard query and alert expression is
# evaluated through Prometheus's HTTP API; the alerts this provokes must be
# pending or firing and the others silent; then the server stops and "no
# ready replica" must follow. promtool checks the rules and runs their unit
# tests (test/fixtures/monitoring/alerts_test.yml).
#
#   test/e2e/monitoring.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

component=$src/manifests/components/monitoring
helper=$src/test/e2e/prometheus_check.py
prom_pid=""
twin_pid=""
stop_all() {
  for p in $prom_pid $twin_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  stop_api
  cleanup
}
trap stop_all EXIT
for tool in prometheus promtool; do
  command -v "$tool" >/dev/null || { fail "$tool is installed (Debian package prometheus; scripts/install-deps.sh)"; finish; exit; }
done

# -- the rules on their own ----------------------------------------------------
"$py" "$helper" rules "$component" "$work/rules.yml"
check "promtool check rules: the PrometheusRule's groups" promtool check rules "$work/rules.yml"
"$py" "$helper" rule-tests "$component" "$src/test/fixtures/monitoring/alerts_test.yml" "$work/alerts_test.yml"
check "promtool test rules: each alert fires at its threshold and not just below" \
  promtool test rules "$work/alerts_test.yml"

# -- a server, its fake cluster, and Prometheus scraping it --------------------
start_api --state "$src/test/fixtures/cluster"
echo "token" >"$work/token"
write_kubeconfig "$work/kubeconfig" "$api_port" token
cluster_args=(--kubeconfig "$work/kubeconfig" --cluster-read-timeout 5s)
start_server "$work/server.log"
# The pod's memory limit as the Deployment sets it. Under the sanitizers RSS
# is mostly shadow memory (several times the limit): the twin then reports a
# limit to match, and the memory alert is judged on its expression alone.
limit_scale=1
[ "${SANITIZED:-false}" = true ] && limit_scale=64
"$py" "$helper" twin "$server_pid" "$src/manifests/base/deployment.yaml" "$limit_scale" >"$work/twin.log" 2>&1 &
twin_pid=$!
twin_port=""
for _ in $(seq 1 100); do
  twin_port=$(sed -n 's/^listening on //p' "$work/twin.log")
  [ -n "$twin_port" ] && break
  sleep 0.05
done
"$py" "$helper" scrape-config "$component" "127.0.0.1:$port" "$ca" "127.0.0.1:$twin_port" "$work/rules.yml" \
  "$work/prometheus.yml"
# Prometheus cannot be told to pick a free port: a port found free may be
# taken by a test beside this one before it binds, so try again on another.
for _ in 1 2 3; do
  prom_port=$(free_port)
  rm -rf "$work/tsdb"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  sleep 0.5
  kill -0 "$prom_pid" 2>/dev/null && break
  grep -q 'address already in use' "$work/prometheus.log" || break
done
prom=http://127.0.0.1:$prom_port
instant() { curl -sS "$prom/api/v1/query" --data-urlencode "query=$1" | jq -r "${2:-.data.result[0].value[1]}"; }
up=""
for _ in $(seq 1 100); do
  up=$(instant 'sum(up)' 2>/dev/null)
  [ "$up" = 2 ] && break
  sleep 0.2
done
if ! check "Prometheus scrapes the server over TLS as the ServiceMonitor says, and the twin (up: $up)" test "$up" = 2; then
  cat "$work/prometheus.log" >&2
  finish
  exit
fi

# -- reviews of every kind -----------------------------------------------------
for f in kubevirt-no-infra upgrade-single-replica vm-pvc-cleanup-ui-delete vm-pvc-cleanup-foreign; do
  jq .review "$src/test/fixtures/e2e/$f.json" >"$work/$f.json"
done
printf '{"apiVersion":' >"$work/truncated.json"
round() {
  post $csi "$work/good.json" >/dev/null
  post /mutate/kubevirt-infra-placement "$work/kubevirt-no-infra.json" >/dev/null
  post /validate/upgrade-guard "$work/upgrade-single-replica.json" >/dev/null
  post /validate/pvc-cleanup-guard "$work/vm-pvc-cleanup-ui-delete.json" >/dev/null
  post /validate/pvc-cleanup-guard "$work/vm-pvc-cleanup-foreign.json" >/dev/null
  for _ in 1 2 3 4 5; do post $csi "$work/truncated.json" >/dev/null; done
  post $csi "$work/good.json" text/plain >/dev/null
  post /mutate/nothing-here "$work/good.json" >/dev/null
  # Plain HTTP on the TLS port: a failed handshake.
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"
}
for _ in 1 2 3 4; do round; sleep 0.5; done
control '{"fail": 503}'
for _ in 1 2 3; do post /validate/upgrade-guard "$work/upgrade-single-replica.json" >/dev/null; sleep 0.3; done
check "the guard failed closed: 503 in the review" grep -q '"code":503' "$work/out"
control '{"fail": null, "delay": 1.2}'
for _ in 1 2 3; do post /validate/upgrade-guard "$work/upgrade-single-replica.json" >/dev/null; done
control '{"delay": 0}'
for _ in 1 2 3 4; do round; sleep 0.5; done

# What the server counted must reach Prometheus before anything is judged.
sent=$(metric 'controller_runtime_webhook_requests_total{webhook="/mutate/csi-controller-placement",code="200"}')
scraped=""
for _ in $(seq 1 100); do
  scraped=$(instant 'sum(controller_runtime_webhook_requests_total{webhook="/mutate/csi-controller-placement",code="200"})')
  [ "$scraped" = "$sent" ] && break
  sleep 0.2
done
check "Prometheus holds every CSI review the server answered ($scraped of $sent)" test "$scraped" = "$sent"
provoked=HciAdmissionCertificateExpiresSoon,HciAdmissionErrors,HciAdmissionSlowWebhook,HciAdmissionGuardCannotReadCluster
active() { curl -sS "$prom/api/v1/rules?type=alert" | jq -r '.data.groups[].rules[] | select(.state != "inactive") | .name' | sort | paste -sd,; }
want=$(tr , '\n' <<<"$provoked" | sort | paste -sd,)
for _ in $(seq 1 100); do [ "$(active)" = "$want" ] && break; sleep 0.2; done

# -- every query and every alert -----------------------------------------------
report() { while read -r verdict what; do if [ "$verdict" = PASS ]; then pass "$what"; else fail "$what"; fi; done; }
report < <("$py" "$helper" dashboard "$component" "$prom" 2>&1)
report < <("$py" "$helper" alerts "$component" "$prom" "$provoked" 2>&1)

# A few values that must be right, not merely present.
decisions=$(curl -sS "$prom/api/v1/query" --data-urlencode \
  'query=sum by (policy, decision, code) (hci_admission_decisions_total) > 0' |
  jq -r '.data.result[].metric | "\(.policy)/\(.decision)/\(.code)"' | sort | paste -sd' ')
for d in csi-controller-placement/patched/200 csi-controller-placement/error/400 csi-controller-placement/error/415 \
  kubevirt-infra-placement/patched/200 upgrade-guard/denied/422 upgrade-guard/denied/503 \
  pvc-cleanup-guard/allowed/200 pvc-cleanup-guard/denied/422; do
  check "Prometheus holds the decision policy/decision/code $d" grep -qw "$d" <<<"$decisions"
done
days=$(instant 'min(hci_admission_certificate_expiry_timestamp_seconds) - time()' '.data.result[0].value[1] | tonumber / 86400 | floor')
check "the certificate countdown says 1 whole day left of the 2-day test certificate ($days)" test "$days" = 1
check "TLS handshake failures were counted" \
  test "$(instant 'max(hci_admission_tls_handshake_failures_total)')" -ge 8
p99=$(instant 'histogram_quantile(0.99, sum by (le) (rate(controller_runtime_webhook_latency_seconds_bucket{webhook="/validate/upgrade-guard"}[5m])))')
check "the delayed guard's p99 is over the 1 s alert threshold ($p99 s)" \
  "$py" -c "import sys; sys.exit(not 1 < float('$p99') < 10)"

# -- the server goes away ------------------------------------------------------
kill "$server_pid" && wait "$server_pid" 2>/dev/null
server_pid=""
state=""
for _ in $(seq 1 100); do
  state=$(curl -sS "$prom/api/v1/rules?type=alert" | jq -r '.data.groups[].rules[] | select(.name == "HciAdmissionNoReadyReplica") | .state')
  [ "$state" = pending ] && break
  sleep 0.2
done
check "with the server stopped, HciAdmissionNoReadyReplica is pending ($state)" test "$state" = pending
finish
