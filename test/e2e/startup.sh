#!/usr/bin/env bash
# End-to-end: JSON logs, --policies, SIGTERM, --read-timeout and
# --max-connections, and every start-up error (one line, non-zero exit).
#
#   test/e2e/startup.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

# --- JSON logs and --policies
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
start_server "$work/json.log" --log-format json --policies kubevirt-infra-placement
expect_status "a policy left out by --policies is not served" 404 "$(post $csi "$work/good.json")"
jq .review "$src/test/fixtures/e2e/kubevirt-no-infra.json" >"$work/kv.json"
expect_status "an enabled policy is served" 200 "$(post /mutate/kubevirt-infra-placement "$work/kv.json")"
check "JSON log lines are JSON with the decision fields" \
  bash -c "grep '\"msg\":\"admission\"' '$work/json.log' | jq -e 'select(.uid == \"u-1\" and .decision == \"patched\" and .policy == \"kubevirt-infra-placement\")' >/dev/null"
kill -TERM "$server_pid"; kill -TERM "$server_pid"; wait "$server_pid"; rc=$?; server_pid=""
check "a second SIGTERM skips the delay; exit code 0" test "$rc" = 0

# --- slow and greedy clients: a request must arrive within --read-timeout,
# and connections past --max-connections are refused while others are served
start_server "$work/limits.log" --read-timeout 1s --max-connections 4 --max-connections-per-client 4
check "a client that never finishes its request is cut off" "$py" "$raw" slow "$port" "$ca" 1
"$py" "$raw" hold "$port" "$ca" 8 >"$work/hold.out"
check "--max-connections: at the limit the longest-idle connections make room ($(cat "$work/hold.out"))" \
  grep -q "served 8 of 8, open 4" "$work/hold.out"
expect_status "served again once connections close" 200 "$(post $csi "$work/good.json")"
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

# --- start-up errors: one line naming the problem, non-zero exit, nothing listening
startup_error "unknown flag" "unknown flag --frobnicate" --frobnicate
startup_error "missing --cert-dir" "cert-dir is required" --port 1
startup_error "missing certificate" "tls.crt" --cert-dir "$work/nowhere"
mkdir -p "$work/mismatch" && cp "$work/certs/tls.crt" "$work/mismatch/" && cp "$work/certs/ca.key" "$work/mismatch/tls.key"
startup_error "key not matching certificate" "does not match" --cert-dir "$work/mismatch"
mkdir -p "$work/junk" && echo junk >"$work/junk/tls.crt" && echo junk >"$work/junk/tls.key"
startup_error "certificate that is not PEM" "no PEM certificate" --cert-dir "$work/junk"
mkdir -p "$work/expired" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/expired/tls.key" -out "$work/expired/tls.crt" -subj /CN=localhost \
  -not_before 20200101000000Z -not_after 20200102000000Z 2>/dev/null ||
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 0 \
    -keyout "$work/expired/tls.key" -out "$work/expired/tls.crt" -subj /CN=localhost 2>/dev/null
startup_error "expired certificate" "expired" --cert-dir "$work/expired"
startup_error "bad port" "port" --cert-dir "$work/certs" --port 70000
startup_error "bad log format" "log-format" --cert-dir "$work/certs" --log-format xml
startup_error "bad selector" "csi-controller-placement" --cert-dir "$work/certs" --csi-controller-selector "=x"
start_server "$work/first.log"
startup_error "port already in use" "cannot listen" --cert-dir "$work/certs" --bind 127.0.0.1 --port "$port" \
  --cluster-state "$src/test/fixtures/cluster"
startup_error "upgrade guard named without cluster access" "upgrade-guard: needs cluster access" --cert-dir "$work/certs" \
  --policies upgrade-guard
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
cluster_args=()
start_server "$work/nocluster.log"
check "without cluster access the guard is left out, with a warning" \
  grep -q 'policy not served: no cluster access policy=upgrade-guard' "$work/nocluster.log"
check "without cluster access the mutating policies are served" test "$(post $csi "$work/good.json")" = 200
check "without cluster access the guard's path is not found" test "$(post /validate/upgrade-guard "$work/good.json")" = 404
cluster_args=(--cluster-state "$src/test/fixtures/cluster")
startup_error "cluster state that does not exist" "does not exist" --cert-dir "$work/certs" --cluster-state /nowhere
startup_error "kubeconfig that does not exist" "cannot read kubeconfig" --cert-dir "$work/certs" --kubeconfig /nowhere
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

finish
