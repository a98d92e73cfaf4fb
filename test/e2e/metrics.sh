#!/usr/bin/env bash
# End-to-end: /metrics (on the HTTPS port and the plain --metrics-port),
# checked with prometheus_client's own parser, and the log fields that match
# the metrics' labels.
#
#   test/e2e/metrics.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

metrics_port=$(free_port)
start_server "$work/metrics.log" --metrics-port "$metrics_port" --log-format json --log-objects
# samples URL [CURL_ARGS...]: every sample as "name{k=v,...} value", labels sorted, via prometheus_client.
samples() {
  curl -sS "$@" | "$py" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value:.17g}")'
}
value() { grep -F "$1 " "$work/samples" | awk '{print $2}'; }

jq .review "$src/test/fixtures/e2e/upgrade-single-replica.json" >"$work/up-guard.json"
for _ in 1 2 3 4 5; do post $csi "$work/good.json" >/dev/null; done
printf '{"apiVersion":' >"$work/truncated.json"
post $csi "$work/truncated.json" >/dev/null
post $csi "$work/good.json" text/plain >/dev/null
post /validate/upgrade-guard "$work/up-guard.json" >/dev/null
jq '.request.kind = {"group":"","version":"v1","kind":"Secret"} | .request.object = {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"kube-system"},"data":{"password":"c2VjcmV0LXNhdXNhZ2U="},"stringData":{"token":"secret-sausage"}}' \
  "$work/good.json" >"$work/secret-review.json"
post $csi "$work/secret-review.json" >/dev/null

check "metrics: /metrics over HTTPS is Prometheus text 0.0.4" \
  bash -c "curl -sS --cacert '$ca' -o /dev/null -w '%{content_type}' '$(url /metrics)' | grep -q 'text/plain; version=0.0.4'"
samples --cacert "$ca" "$(url /metrics)" >"$work/samples"
check "metrics: prometheus_client parses every family" test "$(wc -l <"$work/samples")" -gt 50
check "metrics: 200s counted per webhook (controller-runtime's name)" \
  test "$(value 'controller_runtime_webhook_requests_total{code=200,webhook=/mutate/csi-controller-placement}')" = 6
check "metrics: a bad review counted as 400" \
  test "$(value 'controller_runtime_webhook_requests_total{code=400,webhook=/mutate/csi-controller-placement}')" = 1
check "metrics: a wrong content type counted as 415" \
  test "$(value 'controller_runtime_webhook_requests_total{code=415,webhook=/mutate/csi-controller-placement}')" = 1
check "metrics: decisions by policy: 5 patched, 1 allowed (wrong kind), 1 error" \
  bash -c "[ \"\$(grep -F 'hci_admission_decisions_total{code=200,decision=patched,policy=csi-controller-placement} ' '$work/samples' | awk '{print \$2}')\" = 5 ] &&
           [ \"\$(grep -F 'hci_admission_decisions_total{code=200,decision=allowed,policy=csi-controller-placement} ' '$work/samples' | awk '{print \$2}')\" = 1 ] &&
           [ \"\$(grep -F 'hci_admission_decisions_total{code=400,decision=error,policy=csi-controller-placement} ' '$work/samples' | awk '{print \$2}')\" = 1 ]"
check "metrics: the guard's denial counted with its status code (422 Invalid)" \
  test "$(value 'hci_admission_decisions_total{code=422,decision=denied,policy=upgrade-guard}')" = 1
check "metrics: a latency histogram per webhook (reviews that reached a policy)" \
  test "$(value 'controller_runtime_webhook_latency_seconds_count{webhook=/mutate/csi-controller-placement}')" = 7
check "metrics: nothing in flight at rest" \
  test "$(value 'controller_runtime_webhook_requests_in_flight{webhook=/mutate/csi-controller-placement}')" = 0
check "metrics: certificate expiry is the certificate's notAfter" \
  test "$(value 'hci_admission_certificate_expiry_timestamp_seconds{}')" = \
  "$(date -d "$(openssl x509 -in "$work/certs/tls.crt" -noout -enddate | cut -d= -f2)" +%s)"
check "metrics: certificate reads counted (certwatcher's names)" \
  test "$(value 'certwatcher_read_certificate_total{}')" = 1
check "metrics: resident memory reported" bash -c "[ \$(grep -F 'process_resident_memory_bytes{} ' '$work/samples' | awk '{print \$2}') -gt 1000000 ]"
samples "http://127.0.0.1:$metrics_port/metrics" >"$work/samples-plain"
check "metrics: the same on the plain --metrics-port" \
  grep -qF 'controller_runtime_webhook_requests_total{code=200,webhook=/mutate/csi-controller-placement} 6' "$work/samples-plain"
check "metrics: the plain port serves nothing else" \
  test "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/mutate/csi-controller-placement")" = 404
check "metrics: POST /metrics is 405" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -d x "$(url /metrics)")" = 405
check "logs: JSON admission lines carry uid, policy, webhook, decision and code" \
  bash -c "grep '\"msg\":\"admission\"' '$work/metrics.log' | head -1 | jq -e 'has(\"uid\") and .policy == \"csi-controller-placement\" and .webhook == \"$csi\" and .decision == \"patched\" and .code == 200' >/dev/null"
check "logs: a failed review is logged with decision error and its code" \
  bash -c "grep '\"msg\":\"admission failed\"' '$work/metrics.log' | jq -s -e 'map(.code) | sort == [400, 415]' >/dev/null"
check "logs: --log-objects logs what the policy was given" \
  bash -c "grep '\"msg\":\"admission\"' '$work/metrics.log' | head -1 | jq -e '.request_object | fromjson | .metadata' >/dev/null"
check "logs: Secret data never reaches the log" bash -c "! grep -q 'secret-sausage\|c2VjcmV0LXNhdXNhZ2U' '$work/metrics.log'"
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
start_server "$work/metrics-nodebug.log" --log-format json
post $csi "$work/good.json" >/dev/null
check "logs: without --log-objects no object contents" bash -c "! grep -q 'request_object' '$work/metrics-nodebug.log'"
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
finish
