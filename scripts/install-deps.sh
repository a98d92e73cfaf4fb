#!/usr/bin/env bash
# Installs what hci-admission needs to build, run and test, from Debian
# packages. Does nothing when everything is already there.
#   scripts/install-deps.sh            build, run, test (the README's test command)
#   scripts/install-deps.sh --image    also what scripts/image-test.sh needs
#   scripts/install-deps.sh --bench    also what bench/ needs (wrk, matplotlib)
set -euo pipefail

packages=(
  # build
  g++ meson ninja-build pkg-config
  libcpp-httplib-dev libssl-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libsimdjson-dev catch2
  # run and test
  openssl curl jq python3 python3-jsonpatch python3-prometheus-client python3-yaml ca-certificates iproute2
  # the monitoring component's test (test/e2e/monitoring.sh): Prometheus and promtool
  prometheus
  # fuzzing (libFuzzer with ASan and UBSan)
  clang libclang-rt-14-dev
  # lint (scripts/lint.sh)
  clang-format clang-tidy
)
for arg in "$@"; do
  case $arg in
    --image) packages+=(buildah debootstrap) ;;
    --bench) packages+=(wrk python3-matplotlib nginx-light nodejs golang-go valgrind) ;;
    *) echo "usage: $0 [--image] [--bench]" >&2; exit 2 ;;
  esac
done
# A CEL implementation for the matchConditions test (test/cel_test.mjs):
# cel-js from the npm registry, pinned, with the machine's Node.js, into
# .deps/ (no Debian package evaluates CEL).
cel=.deps/cel/node_modules/@marcbachmann/cel-js/package.json
if [ ! -f "$(dirname "$0")/../$cel" ]; then
  echo "installing: @marcbachmann/cel-js@8.0.0 (npm) into .deps/cel" >&2
  npm install --silent --no-audit --no-fund --prefix "$(dirname "$0")/../.deps/cel" @marcbachmann/cel-js@8.0.0 >/dev/null
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
