#!/usr/bin/env bash
# Builds the libFuzzer targets in test/fuzz with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian clang) and runs each for SECONDS,
# seeded from the test fixtures. Exit code 1 on the first finding (the
# crashing input is left in build-fuzz/ and named in the output).
#   scripts/fuzz.sh [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "needs clang (apt-get install clang)" >&2; exit 1; }
out=build-fuzz
targets=(review guard http kubeconfig list)
for t in "${targets[@]}"; do mkdir -p "$out/corpus/$t"; done
for f in test/fixtures/e2e/*.json; do
  jq -c .review "$f" >"$out/corpus/review/$(basename "$f")"
  cp "$out/corpus/review/$(basename "$f")" "$out/corpus/guard/"
done
for f in test/fixtures/cluster/*.json test/fixtures/cluster-active-volume.json; do
  jq -c 'if .items then . else {kind: "List", items: [.]} end | .metadata = {continue: "abc"}' "$f" \
    >"$out/corpus/list/$(basename "$f")"
done
cp test/fixtures/self-managed/*.json "$out/corpus/list/"
# Inputs that once found a bug stay in the corpus.
for d in test/fuzz/regressions/*/; do cp "$d"* "$out/corpus/$(basename "$d")/"; done
printf 'POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' \
  >"$out/corpus/http/post"
printf 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$out/corpus/http/chunked"
printf 'apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\ncurrent-context: c\n' \
  >"$out/corpus/kubeconfig/basic"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Iinclude -Iwebhooks -DHCI_ADMISSION_VERSION=\"fuzz\" -DFIXTURE_CLUSTER=\"$PWD/test/fixtures/cluster\")
read -r -a httplib_flags <<<"$(pkg-config --cflags cpp-httplib)"
sources=($(ls src/*.cpp | grep -v src/main.cpp) webhooks/*.cpp)
# The sources once (two at a time), then one link per target.
mkdir -p "$out/obj"
pids=()
for src in "${sources[@]}"; do
  obj="$out/obj/${src//\//_}.o"
  [ "$obj" -nt "$src" ] || { clang++ "${flags[@]}" "${httplib_flags[@]}" -c "$src" -o "$obj" & pids+=($!); }
  if [ ${#pids[@]} -ge 2 ]; then
    for pid in "${pids[@]}"; do wait "$pid"; done
    pids=()
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
rm -f "$out"/obj/src_main.cpp.o
status=0
for target in "${targets[@]}"; do
  clang++ "${flags[@]}" "${httplib_flags[@]}" "test/fuzz/fuzz_$target.cpp" "$out"/obj/*.o -o "$out/fuzz_$target" \
    -lssl -lcrypto -lspdlog -lfmt -lcpp-httplib
  # Findings are written into $out (crash-*, leak-*), not the source tree.
  if (cd "$out" && "./fuzz_$target" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
      "corpus/$target" >"fuzz_$target.log" 2>&1); then
    echo "fuzz_$target: $(grep -E '^(Done|#[0-9]+)' "$out/fuzz_$target.log" | tail -n 1)"
  else
    status=1
    echo "fuzz_$target: FINDING, see $out/fuzz_$target.log"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$out/fuzz_$target.log" | head -n 20 >&2
  fi
done
exit $status
