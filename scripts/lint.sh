#!/usr/bin/env bash
# The format check (clang-format, .clang-format) over every C++ file, and
# clang-tidy (.clang-tidy) over the sources of the server and the policies,
# using the compile commands of BUILD (default build/). Any finding fails.
#   scripts/lint.sh [BUILD=build]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
status=0
mapfile -t cpp < <(git ls-files '*.cpp' '*.hpp')
if clang-format --dry-run --Werror "${cpp[@]}" 2>"$build/format.log"; then
  echo "format: ${#cpp[@]} files clean"
else
  status=1
  echo "format: $(grep -c 'error:' "$build/format.log") lines differ from .clang-format; clang-format -i fixes them:"
  grep 'error:' "$build/format.log" | cut -d: -f1 | sort -u | head -n 20
fi
mapfile -t sources < <(git ls-files 'src/*.cpp' 'webhooks/*.cpp')
# GCC's compile commands: clang-tidy would warn about the GCC-only flags.
if run-clang-tidy -quiet -p "$build" -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option "${sources[@]}" \
    >"$build/tidy.log" 2>&1; then
  echo "clang-tidy: ${#sources[@]} files clean"
else
  status=1
  echo "clang-tidy: $(grep -c 'error: ' "$build/tidy.log") findings:"
  grep -E '(error|warning): ' "$build/tidy.log" | sort -u | head -n 40
fi
exit $status
