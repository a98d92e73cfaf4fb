#!/usr/bin/env bash
# The memory attack at full size (the test suite's e2e-memory runs it small):
# CONNECTIONS hostile TLS connections from four local addresses, each sending
# a body just under the 7 MiB limit (fast, slowly or chunked) and holding,
# for SECONDS, while a legitimate client sends 6 KB and 300 KB CSI reviews
# and probes /healthz. Prints the server's idle, peak (VmHWM) and after-the-
# attack RSS (one minute after by default), the peak kernel memory of its
# sockets (ss -tm, sampled), the legitimate client's answers,
# p50/p99 and failures, and then the server's CPU time for five 7 MiB bodies
# sent chunked against the same with Content-Length.
#   bench/hostile_load.sh [CONNECTIONS=1000] [SECONDS=60] [SETTLE=60] [SERVER_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-1000}
seconds=${2:-60}
settle=${3:-60}
shift $(($# < 3 ? $# : 3))
scripts/build.sh >/dev/null
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
certs/make-certs.sh -d 2 "$work/certs" >/dev/null 2>&1
ca="$work/certs/ca.crt"
ulimit -n 8192
build/hci-admission --cert-dir "$work/certs" --port 0 --bind 127.0.0.1 --cluster-state test/fixtures/cluster \
  "$@" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  port=$(grep -o 'serving.*127\.0\.0\.1:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' | head -1 || true)
  [ -n "$port" ] && break
  sleep 0.05
done
jq -c .review test/fixtures/e2e/csi-no-affinity.json >"$work/review.json"
jq -c '.review | .request.object.metadata.annotations.padding = ("x" * 300000)' \
  test/fixtures/e2e/csi-no-affinity.json >"$work/big.json"
for _ in 1 2 3; do
  for f in review big; do
    curl -sS --cacert "$ca" -o /dev/null -H 'Content-Type: application/json' --data-binary "@$work/$f.json" \
      "https://localhost:$port/mutate/csi-controller-placement"
  done
done
python3 test/e2e/hostile_load.py attack --port "$port" --ca "$ca" --pid "$pid" --review "$work/review.json" \
  --big-review "$work/big.json" --path /mutate/csi-controller-placement --connections "$connections" \
  --seconds "$seconds" --settle "$settle" --sources 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 | tee "$work/attack.json" |
  jq -r '"idle RSS \(.rss_idle_mib) MiB, peak \(.rss_peak_mib) MiB, \(.settle_seconds) s after \(.rss_after_mib) MiB; sockets peak \(.socket_peak_mib) MiB",
    "legitimate: \(.legit.reviews) reviews (\(.legit.big_reviews) of 300 KB), \(.legit.failed) failed, p50 \(.legit.p50_ms) ms, p99 \(.legit.p99_ms) ms, max \(.legit.max_ms) ms; /healthz \(.legit.healthz_ok) ok, \(.legit.healthz_failed) failed",
    "hostile: \(.hostile.opened) connections opened, \(.hostile.mib_sent) MiB sent, \(.hostile.cut_off) cut off, answers \(.hostile.answers)"'
curl -sS --cacert "$ca" "https://localhost:$port/metrics" |
  grep -E '^hci_admission_(requests_held_back_total|connections_timed_out_total|buffered_bytes) '
python3 test/e2e/hostile_load.py cpu --port "$port" --ca "$ca" --pid "$pid" --count 5 |
  jq -r '"CPU for \(.bodies) bodies of \(.body_bytes) bytes: Content-Length \(.content_length_cpu_s) s, chunked \(.chunked_cpu_s) s (\(.ratio)x)"'
