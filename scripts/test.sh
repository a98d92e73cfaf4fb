#!/usr/bin/env bash
# Runs every test: installs dependencies, builds, then
#   1. the unit tests (Catch2, one Meson test per area), the end-to-end tests
#      (the real binary over TLS with curl, one Meson test per area) and the
#      manifest test, on the release build (build/, GCC);
#   2. the same suite on a clang build with AddressSanitizer and
#      UndefinedBehaviorSanitizer (build-asan/, compiled beside step 1),
#      where any finding fails, with the format check and clang-tidy
#      (scripts/lint.sh) beside it (--quick: beside step 1);
#      that build also holds the libFuzzer targets (-Dfuzz=true), so the
#      sources are compiled twice, not three times;
#   3. each libFuzzer target for FUZZ_SECONDS (default 12: seven targets,
#      two at a time, take four rounds, 48 s; six of 15 s took three, 45 s),
#      seeded from the fixtures (scripts/fuzz.sh).
# --quick runs step 1 only. The closing line, "tests: N passed, N failed",
# is counted from Meson's own logs: every check of a TAP test (end-to-end,
# manifests) and every other Meson test counts once, and each fuzz target.
#   scripts/test.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" = "--quick" ] && quick=true
scripts/install-deps.sh
scripts/build.sh >/dev/null
set +e
builds=(build)
if ! $quick; then
  # The sanitizer build compiles, at low priority, beside the release
  # suite, whose end-to-end tests mostly wait on sockets; the format check
  # and clang-tidy run beside the sanitizer suite for the same reason.
  # Measured in clean CI runs on 2 cores: build, suite, lint, sanitizer
  # build, suite one after the other (lint beside the release suite) 15 min
  # 33 s; the sanitizer build and lint both beside the release suite 17 min
  # 27 s (they only slowed each other).
  # -O1 with line tables only (-g1), the sanitizers' usual setting: at
  # -O2 -g this build took 10 min 53 s on the 2-core machine, 5 min 21 s so.
  asan_options=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
    -Dbuildtype=plain -Doptimization=1 -Ddebug=false -Dcpp_args=-g1)
  # An older build-asan/ made with GCC cannot switch compilers in place.
  if [ -f build-asan/build.ninja ] && ! grep -q clang build-asan/meson-info/intro-compilers.json 2>/dev/null; then
    rm -rf build-asan
  fi
  (
    if [ -f build-asan/build.ninja ]; then
      meson configure build-asan "${asan_options[@]}" >/dev/null
    else
      CXX=clang++ meson setup build-asan "${asan_options[@]}" >/dev/null
    fi
    nice -n 10 ninja -C build-asan >build/asan-build.log 2>&1
  ) &
  asan_build_pid=$!
else
  nice -n 10 scripts/lint.sh build >build/lint.out 2>&1 &
  lint_pid=$!
fi
# Four at a time: the end-to-end tests mostly wait on sockets and sleeps
# (on 2 cores the release suite took 3 min 6 s two at a time, 2 min 35 s
# three or four at a time). The sanitizer suite is CPU-bound: two at a time.
meson test -C build --print-errorlogs --no-rebuild --num-processes 4
status=$?
if ! $quick; then
  wait $asan_build_pid
  asan_build=$?
  nice -n 10 scripts/lint.sh build >build/lint.out 2>&1 &
  lint_pid=$!
  if [ $asan_build -ne 0 ]; then
    grep -E 'error|FAILED' build/asan-build.log | head -n 20 >&2
    status=$asan_build
  else
    # meson test sets ASAN_OPTIONS and UBSAN_OPTIONS to halt on the first
    # finding; a server that halts fails the end-to-end checks around it.
    meson test -C build-asan --print-errorlogs --no-rebuild --timeout-multiplier 3
    asan_status=$?
    [ $asan_status -ne 0 ] && status=$asan_status
    builds+=(build-asan)
  fi
fi
wait $lint_pid
lint_status=$?
cat build/lint.out
[ $lint_status -ne 0 ] && status=$lint_status
if ! $quick; then
  mkdir -p build-asan/fuzz-run
  scripts/fuzz.sh "${FUZZ_SECONDS:-12}" build-asan | tee build-asan/fuzz-run/summary.txt
  fuzz_status=${PIPESTATUS[0]}
  [ "$fuzz_status" -ne 0 ] && status=$fuzz_status
fi
set -e
FUZZ_STATUS=${fuzz_status:-0} LINT_STATUS=$lint_status QUICK=$quick python3 - "${builds[@]}" <<'PY'
import json, os, re, sys
import xml.etree.ElementTree as ET
ok = bad = 0
for build in sys.argv[1:]:
    # Meson's JUnit log holds a test case per TAP check and per other test.
    suites = ET.parse(f"{build}/meson-logs/testlog.junit.xml").getroot()
    cases = sum(int(s.get("tests")) for s in suites)
    failures = sum(int(s.get("failures")) + int(s.get("errors")) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    # A test that died before its plan, or timed out, may list no failing
    # case: its result in the JSON log still counts.
    results = [json.loads(line)["result"] for line in open(f"{build}/meson-logs/testlog.json")]
    broken = sum(r not in ("OK", "EXPECTEDFAIL", "SKIP") for r in results)
    ok += cases - failures - skipped
    bad += max(failures, broken)
# The format check and clang-tidy count as one test each.
lint = open("build/lint-summary.txt").read().splitlines() if os.path.exists("build/lint-summary.txt") else []
ok += sum(l.endswith("clean") for l in lint)
bad += sum(not l.endswith("clean") for l in lint)
if os.environ["LINT_STATUS"] != "0" and all(l.endswith("clean") for l in lint):
    bad += 1
if os.environ["QUICK"] != "true":
    summary = "build-asan/fuzz-run/summary.txt"
    lines = open(summary).read().splitlines() if os.path.exists(summary) else []
    ok += sum(bool(re.match(r"fuzz_\w+: Done", l)) for l in lines)
    bad += sum("FINDING" in l for l in lines)
    # Fuzzing that failed without a finding (targets missing) fails too.
    if os.environ["FUZZ_STATUS"] != "0" and not any("FINDING" in l for l in lines):
        bad += 1
        print("fuzz: the targets did not build or run; see the output above")
    if "build-asan" not in sys.argv[1:]:
        bad += 1
        print("sanitizer build failed; see the output above")
print(f"tests: {ok} passed, {bad} failed")
PY
exit $status
