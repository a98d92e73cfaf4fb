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
import json, re, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    out = r.get("stdout", "")
    m = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
    f = re.search(r"test cases:\s+(\d+) \|\s+(\d+) passed \|\s+(\d+) failed", out)
    e = re.search(r"^\w+: (\d+) passed, (\d+) failed", out, re.M)
    if m:
        ok += int(m.group(1))
    elif f:
        ok += int(f.group(2)); bad += int(f.group(3))
    elif e:
        ok += int(e.group(1)); bad += int(e.group(2))
    elif r["result"] in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r["result"] != "SKIP":
        bad += 1
    if r["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and not (f or e):
        bad = max(bad, 1)
print(f"tests: {ok} passed, {bad} failed")
PY
