#!/usr/bin/env bash
# The format check (clang-format, .clang-format) over every C++ file, and
# clang-tidy (.clang-tidy) over the sources of the server and the policies,
# using the compile commands of BUILD (default build/). Any finding fails.
# One line per check goes to BUILD/lint-summary.txt for scripts/test.sh.
#   scripts/lint.sh [BUILD=build]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
status=0
summary=$build/lint-summary.txt
: >"$summary"
mapfile -t cpp < <(git ls-files '*.cpp' '*.hpp')
if clang-format --dry-run --Werror "${cpp[@]}" 2>"$build/format.log"; then
  echo "format: ${#cpp[@]} files clean" | tee -a "$summary"
else
  status=1
  echo "format: $(grep -c 'error:' "$build/format.log") lines differ from .clang-format; clang-format -i fixes them:" |
    tee -a "$summary"
  grep 'error:' "$build/format.log" | cut -d: -f1 | sort -u | head -n 20
fi
mapfile -t sources < <(git ls-files 'src/*.cpp' 'webhooks/*.cpp')
# GCC's compile commands: clang-tidy would warn about the GCC-only flags.
if run-clang-tidy -quiet -p "$build" -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option "${sources[@]}" \
    >"$build/tidy.log" 2>&1; then
  echo "clang-tidy: ${#sources[@]} files clean" | tee -a "$summary"
else
  status=1
  # Colour codes off, each finding once (a header's findings repeat per file).
  sed -i 's/\x1b\[[0-9;]*m//g' "$build/tidy.log"
  echo "clang-tidy: $(grep -E '(error|warning): ' "$build/tidy.log" | sort -u | wc -l) findings:" | tee -a "$summary"
  grep -E '(error|warning): ' "$build/tidy.log" | sort -u | head -n 40
fi
exit $status
