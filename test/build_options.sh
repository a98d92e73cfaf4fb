#!/usr/bin/env bash
# The build options, as they combine: `-Dfuzz=true -Dtests=false` builds
# the fuzz targets (it once configured without a word and built none), and
# `-Dfuzz=true` without clang stops the configure with a message saying
# so. Configure only, each in a folder of its own: seconds, no compiling.
# TAP, one line per check.
#   test/build_options.sh SOURCE_DIR
set -uo pipefail
src=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# setup NAME CXX ARGS...: meson setup into $work/NAME with that compiler;
# its output in $work/NAME.log; prints the exit code.
setup() {
  local name=$1 cxx=$2; shift 2
  CXX=$cxx meson setup "$work/$name" "$src" "$@" >"$work/$name.log" 2>&1
  echo $?
}

if command -v clang++ >/dev/null; then
  rc=$(setup fuzz-only clang++ -Dtests=false -Dfuzz=true)
  targets=$(meson introspect --targets "$work/fuzz-only" 2>/dev/null | jq -r '.[].name' | sort | tr '\n' ' ')
  if [ "$rc" = 0 ] && [[ " $targets" == *" fuzz_review "* && " $targets" == *" fuzz_kubeconfig "* ]] &&
    [[ " $targets" != *" unit-tests "* ]]; then
    ok "-Dtests=false -Dfuzz=true (clang): the fuzz targets, no unit tests (targets: $targets)"
  else
    not_ok "-Dtests=false -Dfuzz=true (clang): rc $rc, targets: $targets; $(tail -n 3 "$work/fuzz-only.log")"
  fi
else
  skip "-Dtests=false -Dfuzz=true builds the fuzz targets" "no clang++"
fi

if command -v g++ >/dev/null; then
  rc=$(setup fuzz-gcc g++ -Dtests=false -Dfuzz=true)
  if [ "$rc" != 0 ] && grep -q 'ERROR: .*-Dfuzz=true needs clang' "$work/fuzz-gcc.log"; then
    ok "-Dfuzz=true with GCC: the configure stops, saying it needs clang"
  else
    not_ok "-Dfuzz=true with GCC: rc $rc; $(tail -n 3 "$work/fuzz-gcc.log")"
  fi
else
  skip "-Dfuzz=true with GCC stops the configure" "no g++"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
