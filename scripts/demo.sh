#!/usr/bin/env bash
# Quick start: installs dependencies, builds, makes development certificates
# in certs/dev and runs the server on https://localhost:9443 in the
# foreground (Ctrl-C stops it). With no cluster at hand, the guards
# read the sample cluster in test/fixtures/cluster (kubectl JSON); pass
# --kubeconfig FILE to read a real one. Extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
if [ ! -f certs/dev/tls.crt ] || ! openssl x509 -checkend 86400 -noout -in certs/dev/tls.crt >/dev/null; then
  certs/make-certs.sh -d 30 certs/dev >/dev/null
fi
echo "hci-admission on https://localhost:9443 (CA: certs/dev/ca.crt); try the curl examples in README.md" >&2
cluster=(--cluster-state test/fixtures/cluster)
for arg in "$@"; do
  case "$arg" in --kubeconfig*|--cluster-state*) cluster=() ;; esac
done
exec build/hci-admission --cert-dir certs/dev --port 9443 "${cluster[@]}" "$@"
