#!/usr/bin/env bash
# Side-by-side benchmark as a picture: runs ../shared/bench/compare.py (wrk,
# HTTPS keep-alive POSTs of a CSI controller pod AdmissionReview) against
# build/hci-admission on /mutate/csi-controller-placement and the three
# references (nginx fixed answer = TLS+HTTP limit, Go net/http, Node.js https),
# keeps the text in bench/results/compare-YYYYMMDD.txt and draws
# bench/results/compare.png with bench/chart.py.
#
#   bench/chart.sh            # CONNS=1,16,64,256 ROUNDS=2 SECONDS_PER_RUN=6
#   CONNS=1,16 ROUNDS=1 SECONDS_PER_RUN=2 bench/chart.sh   # quick plumbing check
#
# Time: (number of CONNS) x ROUNDS x SECONDS_PER_RUN x 4 targets, plus ~10-60 s
# to build the Go peer and start everything; the defaults take
# 4 x 2 x 6 x 4 = 192 s, a little over 3 minutes.
# Run it on a quiet machine: wrk, the server and the references share the
# cores, so anything else running shows up in the figures.
#
# Other settings: THREADS=N passes --threads N to hci-admission (default one
# per core) and sets the nginx limit's workers to match; LIMIT_WORKERS (default
# THREADS, else auto = one per core); SERVER_ARGS adds hci-admission flags
# (e.g. --max-connections-per-client 2048 for CONNS above 512); BODY is the
# AdmissionReview to send (compare.py's default: fixtures/pod-create.json, a
# harvester-csi-driver controller pod); COMPARE is compare.py's path; PYTHON is
# the python with matplotlib for chart.py.
set -euo pipefail
cd "$(dirname "$0")/.."

compare=${COMPARE:-../shared/bench/compare.py}
conns=${CONNS:-1,16,64,256}
rounds=${ROUNDS:-2}
seconds=${SECONDS_PER_RUN:-6}
threads=${THREADS:-}
limit_workers=${LIMIT_WORKERS:-${threads:-auto}}

if [ ! -x build/hci-admission ]; then
  echo "build/hci-admission not found; build it first: meson setup build && ninja -C build" >&2
  exit 1
fi
if [ ! -f "$compare" ]; then
  echo "compare.py not found at $compare (set COMPARE=path/to/compare.py)" >&2
  exit 1
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import matplotlib' 2>/dev/null; then
  python=/usr/bin/python3 # Debian's python3-matplotlib lives here, behind pyenv & co.
  "$python" -c 'import matplotlib' 2>/dev/null || apt-get install -y -qq python3-matplotlib >/dev/null
fi

server="build/hci-admission --cert-dir {certdir} --port {port} --bind 127.0.0.1 --log-level warn${threads:+ --threads $threads}${SERVER_ARGS:+ $SERVER_ARGS}"
n_conns=$(tr ',' '\n' <<<"$conns" | grep -c .)
echo "about $((n_conns * rounds * seconds * 4)) s of load (+ start-up): conns=$conns rounds=$rounds" \
  "seconds=$seconds limit-workers=$limit_workers" >&2

mkdir -p bench/results
out=bench/results/compare-$(date +%Y%m%d).txt
python3 -u "$compare" --server "$server" --path /mutate/csi-controller-placement \
  ${BODY:+--body "$BODY"} --conns "$conns" --rounds "$rounds" --seconds "$seconds" \
  --limit-workers "$limit_workers" | tee "$out"

"$python" bench/chart.py "$out" bench/results/compare.png \
  --title "hci-admission vs. reference webhooks: HTTPS keep-alive POST AdmissionReview (wrk)" >/dev/null
echo "results: $out"
echo "chart:   bench/results/compare.png"
