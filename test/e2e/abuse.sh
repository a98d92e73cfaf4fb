#!/usr/bin/env bash
# End-to-end: abuse. Connection floods, slow clients and malformed
# input each get a clear answer or are cut off, and /healthz and other
# clients are served throughout.
#
#   test/e2e/abuse.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

start_server "$work/abuse.log" --max-connections 40 --read-timeout 2s
healthy() { test "$(curl -sS -m 2 --cacert "$ca" -o /dev/null -w '%{http_code}' "$(url /healthz)" 2>/dev/null)" = 200; }

# One address opens 100 silent connections: it gets its half of the 40.
"$py" "$raw" flood "$port" 127.0.0.2 100 3 >"$work/flood1.out" &
flood_pid=$!
sleep 1
check "abuse: /healthz answers during a one-address flood" healthy
expect_status "abuse: reviews are served during a one-address flood" 200 "$(post $csi "$work/good.json")" '"allowed":true'
wait "$flood_pid"
check "abuse: the flooding address was held to half of --max-connections" \
  test "$(metric 'hci_admission_connections_refused_total{limit="max-connections-per-client"}')" -ge 80

# Four addresses, 25 silent connections each: more than --max-connections.
# Handshakes idle for over a second make room for new clients.
"$py" "$raw" flood "$port" 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 25 4 >"$work/flood2.out" &
flood_pid=$!
sleep 1.5
check "abuse: /healthz answers when a flood fills --max-connections" healthy
expect_status "abuse: reviews are served when a flood fills --max-connections" 200 "$(post $csi "$work/good.json")" \
  '"allowed":true'
wait "$flood_pid"
check "abuse: stale connections were closed to make room" \
  test "$(metric hci_admission_connections_evicted_total)" -ge 1

# Slowloris: 15 clients (under the per-address limit) trickling one header byte every 0.2 s.
"$py" "$raw" slowloris "$port" "$ca" 15 6 >"$work/slowloris.out" &
slow_pid=$!
sleep 1
check "abuse: /healthz answers during slowloris" healthy
wait "$slow_pid"
check "abuse: slowloris clients are cut off at --read-timeout: $(cat "$work/slowloris.out")" \
  grep -q "cut off 15 of 15" "$work/slowloris.out"
check "abuse: a TLS handshake cut short is closed at --read-timeout" bash -c "'$py' '$raw' hello '$port' 3.5 >/dev/null"
check "abuse: timeouts are counted" test "$(metric hci_admission_connections_timed_out_total)" -ge 15

# Headers: one huge, or very many.
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" \
  "$(url /healthz)")
expect_status "abuse: a 20 KB header is 431" 431 "$status" "header"
for i in $(seq 1 2000); do printf -- '-H\nX-H%d: v\n' "$i"; done >"$work/many-headers"
status=$(xargs -d '\n' -a "$work/many-headers" curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' "$(url /healthz)")
expect_status "abuse: 2000 headers are 431" 431 "$status"

# JSON that parses but does not fit.
body() { printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":%s}' "$1" >"$work/bad.json"; }
body '{"uid":"a","uid":"b","kind":{"group":"","version":"v1","kind":"Pod"}}'
expect_status "abuse: a duplicate key is refused" 400 "$(post $csi "$work/bad.json")" 'duplicate key \\"request.uid\\"'
printf '{"apiVersion":"admission.k8s.io/v1","apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"a"}}' >"$work/bad.json"
expect_status "abuse: a duplicate envelope key is refused" 400 "$(post $csi "$work/bad.json")" 'duplicate key \\"apiVersion\\"'
body '{"uid":"a","kind":"Pod"}'
expect_status "abuse: request.kind of the wrong type" 400 "$(post $csi "$work/bad.json")" "request.kind must be an object"
body '{"uid":"a","operation":5}'
expect_status "abuse: request.operation of the wrong type" 400 "$(post $csi "$work/bad.json")" "must be a string"
body '{"uid":"a","kind":{"group":"kubevirt.io","version":"v1","kind":"KubeVirt"},"operation":"CREATE","object":{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kv","namespace":"harvester-system","generation":1e400},"spec":{"infra":{"replicas":123456789012345678901234567890}}}}'
status=$(post /mutate/kubevirt-infra-placement "$work/bad.json")
check "abuse: numbers out of range get an answer ($status), never a crash" \
  bash -c "[ '$status' = 200 ] || [ '$status' = 400 ]"
# Found by fuzzing: 1e400 in a field a policy reads used to end the process.
jq -c '.request.object.metadata.labels.x = 1' "$work/good.json" | sed 's/"x":1/"x":1e400/' >"$work/bad.json"
expect_status "abuse: a number beyond a double in a field the policy reads" 400 "$(post $csi "$work/bad.json")" \
  "number out of range"
check "abuse: the server survives it" kill -0 "$server_pid"
body '{"uid":"a","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":"a pod"}'
expect_status "abuse: an object that is not an object is left alone, with a warning" 200 \
  "$(post $csi "$work/bad.json")" "carries no pod"
check "abuse: the server is alive after all of it" kill -0 "$server_pid"
expect_status "abuse: and serving" 200 "$(post $csi "$work/good.json")" '"allowed":true'
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
finish
