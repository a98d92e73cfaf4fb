#!/usr/bin/env bash
# Builds the libFuzzer targets in test/fuzz with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian clang) and runs each for SECONDS,
# seeded from the test fixtures. Exit code 1 on the first finding.
#   scripts/fuzz.sh [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "needs clang (apt-get install clang)" >&2; exit 1; }
out=build-fuzz
mkdir -p "$out"/corpus/{review,http,kubeconfig}
for f in test/fixtures/e2e/*.json; do jq -c .review "$f" >"$out/corpus/review/$(basename "$f")"; done
printf 'POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' \
  >"$out/corpus/http/post"
printf 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$out/corpus/http/chunked"
printf 'apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\ncurrent-context: c\n' \
  >"$out/corpus/kubeconfig/basic"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Iinclude -Iwebhooks -DHCI_ADMISSION_VERSION=\"fuzz\")
read -r -a httplib_flags <<<"$(pkg-config --cflags cpp-httplib)"
sources=(src/admission.cpp src/json_patch.cpp src/json_scan.cpp src/review_codec.cpp src/logging.cpp
  src/cluster_view.cpp src/cli.cpp src/kube_client.cpp src/tls.cpp src/http_parser.cpp webhooks/*.cpp)
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
for target in review http kubeconfig; do
  clang++ "${flags[@]}" "${httplib_flags[@]}" "test/fuzz/fuzz_$target.cpp" "$out"/obj/*.o -o "$out/fuzz_$target" \
    -lssl -lcrypto -lspdlog -lfmt -lcpp-httplib
  echo "fuzz_$target: $("$out/fuzz_$target" -max_total_time="$seconds" -max_len=16384 "$out/corpus/$target" 2>&1 | tail -n 1)"
done
