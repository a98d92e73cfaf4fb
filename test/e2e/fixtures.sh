#!/usr/bin/env bash
# End-to-end: every AdmissionReview fixture in test/fixtures/e2e sent over
# verified TLS; each returned patch is applied with python3-jsonpatch (an
# implementation independent of ours), compared with the expected object, and
# sent back to check that no further patch comes.
#
#   test/e2e/fixtures.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

start_server "$work/server.log"

# --- the fixture table
apply_patch() { # apply_patch OBJECT_FILE PATCH_FILE -> patched object on stdout
  "$py" -c 'import json, sys, jsonpatch
obj = json.load(open(sys.argv[1])); patch = json.load(open(sys.argv[2]))
print(json.dumps(jsonpatch.apply_patch(obj, patch)))' "$1" "$2"
}

for fixture in "$src"/test/fixtures/e2e/*.json; do
  name=$(basename "$fixture" .json)
  path=$(jq -r .path "$fixture")
  jq .review "$fixture" >"$work/review.json"
  status=$(post "$path" "$work/review.json")
  if [ "$status" != 200 ]; then fail "$name: HTTP $status: $(cat "$work/out")"; continue; fi
  resp="$work/out"
  check "$name: response echoes apiVersion" \
    test "$(jq -r .apiVersion "$resp")" = "$(jq -r .review.apiVersion "$fixture")"
  check "$name: response kind is AdmissionReview" test "$(jq -r .kind "$resp")" = AdmissionReview
  check "$name: response echoes uid" \
    test "$(jq -r .response.uid "$resp")" = "$(jq -r .review.request.uid "$fixture")"
  check "$name: allowed" test "$(jq -r .response.allowed "$resp")" = "$(jq -r .expect.allowed "$fixture")"
  code=$(jq -r '.expect.code // empty' "$fixture")
  if [ -n "$code" ]; then
    check "$name: status.code $code" test "$(jq -r .response.status.code "$resp")" = "$code"
  fi
  message=$(jq -r '.expect.message // empty' "$fixture")
  if [ -n "$message" ]; then
    check "$name: message has '$message'" bash -c "jq -r .response.status.message '$resp' | grep -qF -- '$message'"
  fi
  warning=$(jq -r '.expect.warning // empty' "$fixture")
  if [ -n "$warning" ]; then
    check "$name: warning mentions '$warning'" \
      bash -c "jq -r '.response.warnings[]?' '$resp' | grep -qF -- '$warning'"
  fi
  if [ "$(jq -r .expect.patched "$fixture")" = true ]; then
    check "$name: patchType is JSONPatch" test "$(jq -r .response.patchType "$resp")" = JSONPatch
    jq -r .response.patch "$resp" | base64 -d >"$work/patch.json"
    jq .review.request.object "$fixture" >"$work/object.json"
    if apply_patch "$work/object.json" "$work/patch.json" >"$work/patched.json" 2>"$work/err"; then
      pass "$name: patch applies"
      check "$name: patched object is the expected one" \
        test "$(jq -S . "$work/patched.json")" = "$(jq -S .expect.object "$fixture")"
      # Idempotence, as with reinvocationPolicy: IfNeeded.
      jq --slurpfile o "$work/patched.json" '.review | .request.object = $o[0] | .request.uid = "again"' \
        "$fixture" >"$work/again.json"
      post "$path" "$work/again.json" >/dev/null
      check "$name: no patch for its own output" \
        test "$(jq -r '.response.patch // "none"' "$work/out")" = none
    else
      fail "$name: patch does not apply: $(cat "$work/err")"
    fi
  else
    check "$name: no patch" test "$(jq -r '.response.patch // "none"' "$resp")" = none
    check "$name: no patchType" test "$(jq -r '.response.patchType // "none"' "$resp")" = none
  fi
done

finish
