#!/usr/bin/env bash
# End-to-end: the upgrade guard reading a fake kube-apiserver (a real
# HTTPS server with its own CA) through a kubeconfig and as in-cluster.
#
#   test/e2e/live_cluster.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

cluster_args=()
trap 'stop_api; cleanup' EXIT

mkdir -p "$work/api-state"
cp "$src/test/fixtures/cluster/"*.json "$src/test/fixtures/cluster-active-volume.json" "$work/api-state/"
start_api --state "$work/api-state" --volumes 1200 --token first-token

echo "first-token" >"$work/token"
write_kubeconfig "$work/kubeconfig" "$api_port" token

# 8 s: reading 1,200 volumes and the rest from the Python fake API took
# more than 3 s under the sanitizers with clang-tidy running beside them.
start_server "$work/live.log" --kubeconfig "$work/kubeconfig" --cluster-read-timeout 8s
jq .review "$src/test/fixtures/e2e/upgrade-single-replica.json" >"$work/up.json"
jq '.request.object.metadata.annotations["harvesterhci.io/skipSingleReplicaDetachedVol"] = "true"' "$work/up.json" >"$work/up-skip.json"
guard=/validate/upgrade-guard

expect_status "live: refused while single-replica volumes exist" 200 "$(post $guard "$work/up.json")" '"allowed":false'
check "live: lists every single-replica PVC, sorted, across pages" \
  bash -c "jq -r .response.status.message '$work/out' | grep -qF 'integrity concerns: backup-restore-test, ns-0/data-0, ns-0/data-1050, ns-0/data-350, ns-0/data-700, ns-1/data-1100'"
check "live: 1200 volumes were read in 3 pages" \
  test "$(api /_stats | jq '.pages')" -ge 4
expect_status "live: skip annotation leaves the attached one" 200 "$(post $guard "$work/up-skip.json")" '"allowed":false'
check "live: the attached volume is named" \
  bash -c "jq -r .response.status.message '$work/out' | grep -qF 'before upgrade: prod/postgres'"
check "live: the token from the kubeconfig's tokenFile was sent" \
  bash -c "api /_stats | jq -e '.authorizations[-1] == \"Bearer first-token\"' >/dev/null"

# A rotated token (bound service account tokens rotate) is read again.
control '{"tokens": ["second-token"]}'
echo "second-token" >"$work/token"
expect_status "live: a rotated token file is re-read" 200 "$(post $guard "$work/up.json")" 'integrity concerns'
control '{"tokens": null}'

# An expired continue token restarts the list once.
control '{"expire_continue": true}'
expect_status "live: an expired continue token restarts the list" 200 "$(post $guard "$work/up.json")" 'integrity concerns'

# Every way the API can fail denies, saying why; the server keeps serving.
for failure in 401 403 404 500 503 '"garbage"' '"close"' '"notalist"'; do
  control "{\"fail\": $failure}"
  status=$(post $guard "$work/up.json")
  expect_status "live: API failure $failure denies" 200 "$status" '"allowed":false'
  check "live: API failure $failure is explained" \
    bash -c "jq -r .response.status.message '$work/out' | grep -q 'upgrade-guard could not read the cluster: list '"
  check "live: API failure $failure has code 503" test "$(jq -r .response.status.code "$work/out")" = 503
done
jq -r .response.status.message "$work/out" >"$work/last-failure"
control '{"fail": 403}'
post $guard "$work/up.json" >/dev/null
check "live: a 403 carries the API server's message" grep -q "HTTP 403: volumes.longhorn.io is forbidden" "$work/out"
curl -sS --cacert "$ca" "$(url /metrics)" >"$work/live-metrics"
check "live: Kubernetes API calls counted by code (client-go's names)" \
  grep -qE "^rest_client_requests_total\{code=\"403\",host=\"127.0.0.1:$api_port\",method=\"GET\"\} [1-9]" "$work/live-metrics"
check "live: Kubernetes API latency histogram" \
  grep -qE "^rest_client_request_duration_seconds_count\{host=\"127.0.0.1:$api_port\",verb=\"GET\"\} [1-9]" "$work/live-metrics"
control '{"fail": null, "delay": 20}'
started=$(date +%s%N)
post $guard "$work/up.json" >/dev/null
took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
check "live: a slow API is given up on at --cluster-read-timeout (took ${took_ms} ms)" \
  bash -c "[ $took_ms -ge 7500 ] && [ $took_ms -lt 15000 ] && grep -q 'could not read the cluster' '$work/out'"
control '{"delay": 0}'
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "@$work/up.json" "$(url "$guard")?timeout=2s")
check "live: ?timeout= from the API server is honoured" test "$status" = 200
check "server still serving the mutating policies" test "$(post /mutate/csi-controller-placement "$work/good.json")" = 200
check "the guard ran on a worker: health answered while it waited" \
  bash -c "control '{\"delay\": 2}'; (curl -s --cacert '$ca' -H 'Content-Type: application/json' --data-binary @'$work/up.json' '$(url $guard)' >/dev/null &) ; sleep 0.3; s=\$(date +%s%N); curl -sf --cacert '$ca' '$(url /healthz)' >/dev/null; [ \$(( (\$(date +%s%N) - s) / 1000000 )) -lt 500 ]"
sleep 2
control '{"delay": 0}'
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

# A CA that does not sign the API server's certificate is refused.
sed "s|api-certs/ca.crt|certs/ca.crt|" "$work/kubeconfig" >"$work/kubeconfig-wrong-ca"
start_server "$work/wrongca.log" --kubeconfig "$work/kubeconfig-wrong-ca"
post $guard "$work/up.json" >/dev/null
check "live: an untrusted API server certificate denies" grep -q "not trusted" "$work/out"
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

# In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account files.
mkdir -p "$work/sa" && cp "$work/api-certs/ca.crt" "$work/sa/ca.crt" && echo "second-token" >"$work/sa/token"
control '{"tokens": ["second-token"]}'
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$api_port \
  start_server "$work/incluster.log" --service-account-dir "$work/sa"
check "in-cluster: credentials found" grep -q "cluster=\"the Kubernetes API at https://127.0.0.1:$api_port (in-cluster service account)\"" "$work/incluster.log"
expect_status "in-cluster: the guard reads the API" 200 "$(post $guard "$work/up-skip.json")" 'before upgrade: prod/postgres'
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

# --- precheck: the same decision before an Upgrade exists
precheck() { "$bin" precheck "$@" >"$work/precheck.out" 2>&1; echo $?; }
check "precheck offline: refused, exit 1" test "$(precheck --cluster-state "$src/test/fixtures/cluster")" = 1
check "precheck lists each PVC with volume and state" \
  grep -qE '^  ! +team-a/db +pvc-3f1c0a52-bbbb-4a1e-9d0e-000000000002 +detached' "$work/precheck.out"
check "precheck offline with the skip annotation: allowed, exit 0" \
  test "$(precheck --cluster-state "$src/test/fixtures/cluster" --skip-single-replica-detached-vol true \
    --skip-checks kubevirt-placement,pod-disruption-budgets)" = 0
check "precheck live: refused for the attached volume, exit 1" \
  test "$(precheck --kubeconfig "$work/kubeconfig" --skip-single-replica-detached-vol true)" = 1
check "precheck live names the attached volume" grep -q "REFUSED: .*prod/postgres" "$work/precheck.out"
control '{"fail": 500}'
check "precheck live: an API failure refuses, exit 1" test "$(precheck --kubeconfig "$work/kubeconfig")" = 1
check "precheck says why" grep -q "could not read the cluster" "$work/precheck.out"
control '{"fail": null}'
check "precheck: a bad flag exits 2" test "$(precheck --frobnicate x)" = 2
check "precheck --skip-webhook: allowed" test "$(precheck --cluster-state "$src/test/fixtures/cluster" --skip-webhook)" = 0
stop_api
finish
