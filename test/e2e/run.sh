#!/usr/bin/env bash
# End-to-end: the real binary, fresh certificates, real TLS verified by curl
# (--cacert), AdmissionReview fixtures from test/fixtures/e2e, and every
# bad-input case. Patches are applied with python3-jsonpatch, an
# implementation independent of ours.
#
#   test/e2e/run.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

start_server "$work/server.log"

# --- readiness and health, over verified TLS
check "/healthz answers 200 over verified TLS" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$(url /healthz)")" = 200
check "/readyz answers 200 once serving" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$(url /readyz)")" = 200
check "a client that does not trust the CA is refused" \
  bash -c "! curl -sS -o /dev/null '$(url /healthz)' 2>/dev/null"
check "TLS 1.1 is refused" \
  bash -c "! curl -sS --cacert '$ca' --tls-max 1.1 -o /dev/null '$(url /healthz)' 2>/dev/null"
check "TLS 1.2 with an ECDHE AEAD cipher is accepted" \
  test "$(curl -sS --cacert "$ca" --tls-max 1.2 -o /dev/null -w '%{http_code}' "$(url /healthz)")" = 200
check "a TLS 1.2 CBC cipher is refused" \
  bash -c "! curl -sS --cacert '$ca' --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA -o /dev/null '$(url /healthz)' 2>/dev/null"

# --- the fixture table
apply_patch() { # apply_patch OBJECT_FILE PATCH_FILE -> patched object on stdout
  "$py" -c 'import json, sys, jsonpatch
obj = json.load(open(sys.argv[1])); patch = json.load(open(sys.argv[2]))
print(json.dumps(jsonpatch.apply_patch(obj, patch)))' "$1" "$2"
}

for fixture in "$src"/test/fixtures/e2e/*.json; do
  name=$(basename "$fixture" .json)
  path=$(jq -r .path "$fixture")
  jq .review "$fixture" >"$work/review.json"
  status=$(post "$path" "$work/review.json")
  if [ "$status" != 200 ]; then fail "$name: HTTP $status: $(cat "$work/out")"; continue; fi
  resp="$work/out"
  check "$name: response echoes apiVersion" \
    test "$(jq -r .apiVersion "$resp")" = "$(jq -r .review.apiVersion "$fixture")"
  check "$name: response kind is AdmissionReview" test "$(jq -r .kind "$resp")" = AdmissionReview
  check "$name: response echoes uid" \
    test "$(jq -r .response.uid "$resp")" = "$(jq -r .review.request.uid "$fixture")"
  check "$name: allowed" test "$(jq -r .response.allowed "$resp")" = "$(jq -r .expect.allowed "$fixture")"
  code=$(jq -r '.expect.code // empty' "$fixture")
  if [ -n "$code" ]; then
    check "$name: status.code $code" test "$(jq -r .response.status.code "$resp")" = "$code"
  fi
  message=$(jq -r '.expect.message // empty' "$fixture")
  if [ -n "$message" ]; then
    check "$name: message has '$message'" bash -c "jq -r .response.status.message '$resp' | grep -qF -- '$message'"
  fi
  warning=$(jq -r '.expect.warning // empty' "$fixture")
  if [ -n "$warning" ]; then
    check "$name: warning mentions '$warning'" \
      bash -c "jq -r '.response.warnings[]?' '$resp' | grep -qF -- '$warning'"
  fi
  if [ "$(jq -r .expect.patched "$fixture")" = true ]; then
    check "$name: patchType is JSONPatch" test "$(jq -r .response.patchType "$resp")" = JSONPatch
    jq -r .response.patch "$resp" | base64 -d >"$work/patch.json"
    jq .review.request.object "$fixture" >"$work/object.json"
    if apply_patch "$work/object.json" "$work/patch.json" >"$work/patched.json" 2>"$work/err"; then
      pass
      check "$name: patched object is the expected one" \
        test "$(jq -S . "$work/patched.json")" = "$(jq -S .expect.object "$fixture")"
      # Idempotence, as with reinvocationPolicy: IfNeeded.
      jq --slurpfile o "$work/patched.json" '.review | .request.object = $o[0] | .request.uid = "again"' \
        "$fixture" >"$work/again.json"
      post "$path" "$work/again.json" >/dev/null
      check "$name: no patch for its own output" \
        test "$(jq -r '.response.patch // "none"' "$work/out")" = none
    else
      fail "$name: patch does not apply: $(cat "$work/err")"
    fi
  else
    check "$name: no patch" test "$(jq -r '.response.patch // "none"' "$resp")" = none
    check "$name: no patchType" test "$(jq -r '.response.patchType // "none"' "$resp")" = none
  fi
done

# --- bad input: clear answers, and the server keeps serving
csi=/mutate/csi-controller-placement
good="$src/test/fixtures/e2e/csi-no-affinity.json"
jq .review "$good" >"$work/good.json"

expect_status() { # expect_status WHAT WANT STATUS [BODY_PATTERN]
  if [ "$3" = "$2" ] && { [ -z "${4:-}" ] || grep -q -- "$4" "$work/out"; }; then pass
  else fail "$1: want $2${4:+ with '$4'}, got $3: $(head -c 300 "$work/out")"; fi
}
printf '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {' >"$work/bad.json"
expect_status "malformed JSON" 400 "$(post $csi "$work/bad.json")" "not valid JSON"
printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}' >"$work/bad.json"
expect_status "review without request" 400 "$(post $csi "$work/bad.json")" "no request"
jq 'del(.request.uid)' "$work/good.json" >"$work/bad.json"
expect_status "review without uid" 400 "$(post $csi "$work/bad.json")" "uid"
jq '.request.uid = 42' "$work/good.json" >"$work/bad.json"
expect_status "uid of the wrong type" 400 "$(post $csi "$work/bad.json")" "must be a string"
jq '.apiVersion = "admission.k8s.io/v2"' "$work/good.json" >"$work/bad.json"
expect_status "unknown apiVersion" 400 "$(post $csi "$work/bad.json")" "unsupported apiVersion"
jq '.kind = "Pod"' "$work/good.json" >"$work/bad.json"
expect_status "wrong review kind" 400 "$(post $csi "$work/bad.json")" "want AdmissionReview"
printf '[1,2,3]' >"$work/bad.json"
expect_status "JSON that is not an object" 400 "$(post $csi "$work/bad.json")" "not a JSON object"
printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"\xff"}}' >"$work/bad.json"
expect_status "invalid UTF-8" 400 "$(post $csi "$work/bad.json")" "UTF-8"
"$py" -c 'print("[" * 100000 + "]" * 100000)' >"$work/bad.json"
expect_status "deeply nested JSON" 400 "$(post $csi "$work/bad.json")" "nested too deeply"
expect_status "wrong content type" 415 "$(post $csi "$work/good.json" text/plain)" "application/json"
expect_status "content type with charset" 200 "$(post $csi "$work/good.json" 'application/json; charset=utf-8')"
head -c $((8 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$work/big.json"
expect_status "body over 7 MiB" 413 "$(post $csi "$work/big.json")" "exceeds"
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Transfer-Encoding: chunked' --data-binary "@$work/big.json" "$(url $csi)")
expect_status "chunked body over 7 MiB" 413 "$status" "exceeds"
expect_status "unknown path" 404 "$(post /mutate/nothing-here "$work/good.json")" "no webhook"
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' "$(url $csi)")
expect_status "GET on a webhook path" 405 "$status" "use POST"
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -X POST "$(url /healthz)")
expect_status "POST on /healthz" 405 "$status"
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$(url $csi)")
expect_status "POST without a body answers at once" 400 "$status" "not valid JSON"
# Plain HTTP on the TLS port and a client that hangs up mid-handshake.
curl -sS -m 5 -o /dev/null "http://localhost:$port/healthz" 2>/dev/null
exec 3<>"/dev/tcp/127.0.0.1/$port" && printf '\x16\x03\x01\x00\xff' >&3 && exec 3>&-

raw="$src/test/e2e/raw_client.py"
check "plain HTTP on the TLS port gets a plain 400" "$py" "$raw" plain "$port"
check "pipelined requests are answered in order" "$py" "$raw" pipeline "$port" "$ca" "$work/good.json" $csi
check "pipelined requests in separate TLS records all answered (read-ahead)" \
  "$py" "$raw" pipeline-records "$port" "$ca" 3
check "pipelined requests all answered when the client reads late" \
  timeout 20 "$py" "$raw" pipeline-slow-reader "$port" "$ca" "$work/good.json" $csi 600
status=$(curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H 'Expect: 100-continue' \
  -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")
expect_status "Expect: 100-continue" 200 "$status" '"allowed":true'
check "HEAD /healthz has no body" \
  test "$(curl -sS --cacert "$ca" -I "$(url /healthz)" | head -1 | tr -d '\r')" = "HTTP/1.1 200 OK"
check "server still alive after bad input" kill -0 "$server_pid"
expect_status "server still serving after bad input" 200 "$(post $csi "$work/good.json")" '"allowed":true'
check "one log line per admission decision, with uid and outcome" \
  grep -q 'admission uid=u-1 policy=csi-controller-placement webhook=/mutate/csi-controller-placement kind=Pod object=kube-system/harvester-csi-driver-controllers-6d9f7c8b5d- operation=CREATE decision=patched code=200 patch_ops=3' "$work/server.log"

# --- the README's curl examples, run as written (CA path and port swapped in)
awk '/^## Try it with curl/{f=1} f && /^```sh/{g=1; next} g && /^```/{exit} g' "$src/README.md" |
  sed -e "s|certs/dev/ca.crt|$ca|g" -e "s|localhost:9443|localhost:$port|g" >"$work/readme.sh"
check "README has curl examples" grep -q "curl --cacert" "$work/readme.sh"
(cd "$src" && bash -euo pipefail "$work/readme.sh") >"$work/readme.out" 2>&1
check "README curl examples run as written" test $? = 0
check "README examples show the patches" \
  bash -c "grep -q '/spec/affinity' '$work/readme.out' && grep -q '/spec/infra' '$work/readme.out' && grep -q 'not valid JSON' '$work/readme.out'"

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
startup_error() { # startup_error WHAT PATTERN ARGS...
  local what=$1 pattern=$2; shift 2
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q -- "$pattern"; then pass
  else fail "$what: rc=$rc output: $out"; fi
}
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

# --- abuse: floods, slow clients, malformed input
source "$src/test/e2e/abuse.sh"

# --- /metrics and the log fields
source "$src/test/e2e/metrics.sh"

# --- mutual TLS
source "$src/test/e2e/mtls.sh"

# --- the upgrade guard against a live (fake) Kubernetes API server
source "$src/test/e2e/live_cluster.sh"

source "$src/test/e2e/self_managed.sh"

source "$src/test/e2e/lifecycle.sh"

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
