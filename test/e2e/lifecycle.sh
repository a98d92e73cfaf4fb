#!/usr/bin/env bash
# End-to-end: certificate rotation and SIGTERM under steady load.
#
#   test/e2e/lifecycle.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

cluster_args=(--cluster-state "$src/test/fixtures/cluster")
secret="$work/secret"
mkdir -p "$secret/..2026_11_22_a"
cp "$work/certs/tls.crt" "$work/certs/tls.key" "$secret/..2026_11_22_a/"
# The layout the kubelet gives a Secret volume: files behind a ..data symlink.
ln -s ..2026_11_22_a "$secret/..data"
ln -s ..data/tls.crt "$secret/tls.crt"
ln -s ..data/tls.key "$secret/tls.key"

"$bin" --cert-dir "$secret" --port 0 --bind 127.0.0.1 "${cluster_args[@]}" --cert-reload-interval 300ms \
  --shutdown-delay 2s >"$work/lifecycle.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(ss -ltnp 2>/dev/null | grep "pid=$server_pid," | grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "lifecycle server did not start" >&2; cat "$work/lifecycle.log" >&2; exit 1; }

"$py" "$raw" load "$port" "$ca" "$work/good.json" /mutate/csi-controller-placement 9 4 "$work/load.json" \
  >"$work/load.out" 2>&1 &
load_pid=$!
sleep 1.5

# Rotate: a new certificate from the same CA, swapped in as the kubelet does.
"$src/certs/make-certs.sh" -c "$work/certs" -d 2 "$work/rotated" >/dev/null 2>&1
mkdir -p "$secret/..2026_11_22_b" && cp "$work/rotated/tls.crt" "$work/rotated/tls.key" "$secret/..2026_11_22_b/"
ln -s ..2026_11_22_b "$secret/..data_tmp" && mv -T "$secret/..data_tmp" "$secret/..data"
new_serial=$(openssl x509 -in "$work/rotated/tls.crt" -noout -serial | cut -d= -f2)
served_serial=""
for _ in $(seq 1 40); do
  served_serial=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | cut -d= -f2)
  [ "$served_serial" = "$new_serial" ] && break
  sleep 0.1
done
check "a rotated certificate is served to new connections within seconds" test "$served_serial" = "$new_serial"
check "a rotated certificate is verified by clients trusting the CA" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "https://localhost:$port/healthz")" = 200
sleep 2

# SIGTERM: not ready at once, still serving for --shutdown-delay, then the
# listener closes, requests in flight finish, exit 0.
kill -TERM "$server_pid"
sleep 0.3
check "not ready right after SIGTERM" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "https://localhost:$port/readyz")" = 503
check "still serving during the shutdown delay" \
  test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$work/good.json" "https://localhost:$port/mutate/csi-controller-placement")" = 200
wait "$server_pid"
rc=$?
server_pid=""
check "exits 0 after SIGTERM" test "$rc" = 0
wait "$load_pid"
check "the load ran through rotation and shutdown: $(cat "$work/load.out")" \
  bash -c "jq -e '.ok > 100' '$work/load.json' >/dev/null"
# "Before the listener closes" by the server's own clock: its log line.
closed_at=$(grep 'closing the listener' "$work/lifecycle.log" | cut -d' ' -f1 |
  "$py" -c 'import sys, datetime; print(datetime.datetime.fromisoformat(sys.stdin.read().strip().rstrip("Z")).replace(tzinfo=datetime.timezone.utc).timestamp())')
check "zero failed requests before the listener closed: $(tail -n +2 "$work/load.out" | tr '\n' ' ')" \
  bash -c "jq -e --argjson t '$closed_at' '[.failures[] | select(.[0] < \$t)] | length == 0' '$work/load.json' >/dev/null"
check "the load saw both certificates" bash -c "jq -e '.serials | length >= 2' '$work/load.json' >/dev/null"
check "the listener closed: later connections refused" bash -c "jq -e '.refused > 0' '$work/load.json' >/dev/null"
check "reload and shutdown were logged" \
  bash -c "grep -q 'stopping: not ready' '$work/lifecycle.log'"
finish
