#!/usr/bin/env bash
# End-to-end: TLS versions and ciphers, health and readiness, every bad-input
# case, pipelining, 100-continue, the decision log line, and the README's curl
# examples run as written; the real binary over TLS verified by curl (--cacert).
#
#   test/e2e/http.sh BINARY SOURCE_DIR
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

# --- bad input: clear answers, and the server keeps serving
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

finish
