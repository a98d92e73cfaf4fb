#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS, seeded from the test fixtures and
# the inputs that once found a bug (test/fuzz/regressions). The targets
# are built by Meson with -Dfuzz=true (scripts/test.sh's sanitizer build,
# build-asan/, by default). Exit code 1 on the first finding; the input is
# left in BUILD/fuzz-run/ and named in the output.
#   scripts/fuzz.sh [SECONDS=60] [BUILD=build-asan]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${2:-build-asan}
out=$build/fuzz-run
targets=(review guard http kubeconfig list drain json)
for t in "${targets[@]}"; do
  [ -x "$build/test/fuzz/fuzz_$t" ] || { echo "fuzz_$t: not built; configure $build with -Dfuzz=true" >&2; exit 2; }
  mkdir -p "$out/corpus/$t"
done
for f in test/fixtures/e2e/*.json; do
  jq -c .review "$f" >"$out/corpus/review/$(basename "$f")"
  cp "$out/corpus/review/$(basename "$f")" "$out/corpus/guard/"
  cp "$out/corpus/review/$(basename "$f")" "$out/corpus/json/"
done
for f in test/fixtures/cluster/*.json test/fixtures/cluster-active-volume.json; do
  jq -c 'if .items then . else {kind: "List", items: [.]} end | .metadata = {continue: "abc"}' "$f" \
    >"$out/corpus/list/$(basename "$f")"
done
cp test/fixtures/self-managed/*.json "$out/corpus/list/"
# The sample cluster as arrays of objects (each under -max_len): the drain
# blockers, and the volumes and upgrades.
jq -cs '[.[] | .items[] | del(.spec.containers)]' \
  test/fixtures/cluster/{nodes,pods,poddisruptionbudgets,instancemanagers,kubevirt}.json >"$out/corpus/drain/blockers.json"
jq -cs '[.[] | if .items then .items[] else . end]' test/fixtures/cluster/{nodes,volumes,upgrades}.json \
  test/fixtures/cluster-upgrade-in-progress.json >"$out/corpus/drain/upgrades.json"
# Inputs that once found a bug stay in the corpus.
for d in test/fuzz/regressions/*/; do cp "$d"* "$out/corpus/$(basename "$d")/"; done
printf 'POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' \
  >"$out/corpus/http/post"
printf 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$out/corpus/http/chunked"
printf 'apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\ncurrent-context: c\n' \
  >"$out/corpus/kubeconfig/basic"
# One target per core at a time (two on the 2-core machine: 6 targets of
# 20 s take 60 s instead of 120 s).
jobs=${FUZZ_JOBS:-$(nproc)}
run_target() {
  # Findings are written into $out (crash-*, leak-*), not the source tree.
  (cd "$out" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "../test/fuzz/fuzz_$1" \
    -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    "corpus/$1" >"fuzz_$1.log" 2>&1)
}
declare -A pids
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$target" &
  pids[$target]=$!
done
status=0
for target in "${targets[@]}"; do
  if wait "${pids[$target]}"; then
    echo "fuzz_$target: $(grep -E '^(Done|#[0-9]+)' "$out/fuzz_$target.log" | tail -n 1)"
  else
    status=1
    echo "fuzz_$target: FINDING, see $out/fuzz_$target.log"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$out/fuzz_$target.log" | head -n 20 >&2
  fi
done
exit $status
