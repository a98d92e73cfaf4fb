#!/usr/bin/env bash
# End-to-end: mutual TLS with --client-ca-file and --client-allowed-names.
#
#   test/e2e/mtls.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

mkdir -p "$work/mtls"
client_cert() { # client_cert CA_NAME CN: signs a client certificate (clientAuth) with CA_NAME
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$work/mtls/$2.key" -out "$work/mtls/$2.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$work/mtls/ext"
  openssl x509 -req -in "$work/mtls/$2.csr" -CA "$work/mtls/$1.crt" -CAkey "$work/mtls/$1.key" -CAcreateserial \
    -days 2 -extfile "$work/mtls/ext" -out "$work/mtls/$2.crt" 2>/dev/null
}
for ca_name in client-ca other-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$ca_name" \
    -keyout "$work/mtls/$ca_name.key" -out "$work/mtls/$ca_name.crt" 2>/dev/null
done
client_cert client-ca kube-apiserver
client_cert client-ca intruder
client_cert other-ca stranger
start_server "$work/mtls.log" --client-ca-file "$work/mtls/client-ca.crt" --client-allowed-names kube-apiserver
as() { # as NAME CURL_ARGS...: prints the HTTP status, or 000 when TLS failed
  local who=$1; shift
  curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' ${who:+--cert "$work/mtls/$who.crt" --key "$work/mtls/$who.key"} \
    "$@" 2>/dev/null || true
}
check "mtls: probes need no client certificate (/healthz)" test "$(as "" "$(url /healthz)")" = 200
check "mtls: probes need no client certificate (/readyz)" test "$(as "" "$(url /readyz)")" = 200
check "mtls: a review without a client certificate is 401" \
  test "$(as "" -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 401
check "mtls: the 401 says what is needed" grep -q 'client certificate signed by a CA in --client-ca-file' "$work/out"
check "mtls: the allowed client is served" \
  test "$(as kube-apiserver -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 200
check "mtls: a client of the right CA with another name is 403" \
  test "$(as intruder -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 403
check "mtls: the 403 names the certificate" grep -q 'intruder' "$work/out"
check "mtls: a certificate of another CA fails the handshake" \
  test "$(as stranger -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 000
check "mtls: /metrics needs the client certificate too" test "$(as "" "$(url /metrics)")" = 401
check "mtls: the server is still serving" \
  test "$(as kube-apiserver -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 200
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
start_server "$work/mtls-any.log" --client-ca-file "$work/mtls/client-ca.crt"
check "mtls: without --client-allowed-names any certificate of the CA is served" \
  test "$(as intruder -H 'Content-Type: application/json' --data-binary "@$work/good.json" "$(url $csi)")" = 200
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
startup_error "mtls: a client CA file that does not exist" "client-ca-file" --cert-dir "$work/certs" "${cluster_args[@]}" \
  --client-ca-file /nowhere.pem
startup_error "mtls: allowed names without a CA" "needs --client-ca-file" --cert-dir "$work/certs" \
  --client-allowed-names x
finish
