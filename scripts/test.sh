#!/usr/bin/env bash
# Runs every test: installs dependencies, builds, then the unit tests
# (Catch2) and the end-to-end tests (the real binary over TLS with curl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
set +e
meson test -C build --print-errorlogs --no-rebuild
status=$?
set -e
# One closing line that any CI reads: "N passed, N failed".
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r["result"] != "SKIP":
        bad += 1
print(f"tests: {ok} passed, {bad} failed")
PY
exit $status
