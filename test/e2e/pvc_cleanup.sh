#!/usr/bin/env bash
# End-to-end: the PVC cleanup guard on Harvester VMs (issue 14) against the
# fake API server: the node driver's and the UI's lists pass, a foreign PVC
# is refused, guest-cluster PVCs are looked up with a label-selector LIST
# (paginated) only when needed, a failed read refuses with 503, and the
# optional restriction on who may set removeAllPersistentVolumeClaims.
#
#   test/e2e/pvc_cleanup.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

trap 'stop_api; cleanup' EXIT
start_api --state "$src/test/fixtures/cluster"
echo "token" >"$work/token"
write_kubeconfig "$work/kubeconfig" "$api_port" token
cluster_args=(--kubeconfig "$work/kubeconfig")
start_server "$work/server.log" --policies pvc-cleanup-guard
guard=/validate/pvc-cleanup-guard
for f in node-driver ui-delete foreign remove-all-false; do
  jq .review "$src/test/fixtures/e2e/vm-pvc-cleanup-$f.json" >"$work/$f.json"
done
lists() { api /_stats | jq .lists; }
message() { jq -r .response.status.message "$work/out"; }
selector_path="/api/v1/namespaces/guests/persistentvolumeclaims?labelSelector=guestcluster.harvesterhci.io/name=rke2-a"

before=$(lists)
expect_status "the node driver's list (own, hotplugged and guest-cluster PVCs) passes" 200 \
  "$(post $guard "$work/node-driver.json")" '"allowed":true'
check "one LIST, of the guest cluster's PVCs in the VM's namespace by label selector" \
  bash -c "[ \$(( \$(api /_stats | jq .lists) - $before )) = 1 ] && api /_stats | jq -e --arg p '$selector_path' '.listed[-1] == \$p' >/dev/null"
before=$(lists)
expect_status "the UI's delete (the VM's own disks) passes" 200 "$(post $guard "$work/ui-delete.json")" '"allowed":true'
check "its own claims need no read" test "$(lists)" = "$before"
expect_status "a detached disk and another guest cluster's PVC: refused" 200 "$(post $guard "$work/foreign.json")" '"code":422'
check "the refusal names both, sorted, and why" \
  bash -c "jq -r .response.status.message '$work/out' | grep -qF 'not its volumes nor PVCs of guest cluster rke2-a: detached-data-disk, pvc-4a6b8c0d'"
jq '.request.oldObject = .request.object' "$work/foreign.json" >"$work/unchanged.json"
before=$(lists)
expect_status "an update leaving both annotations as they were: allowed" 200 "$(post $guard "$work/unchanged.json")" '"allowed":true'
check "... without reading anything" test "$(lists)" = "$before"
expect_status "removeAll other than \"true\": allowed with a warning" 200 "$(post $guard "$work/remove-all-false.json")" \
  'the node driver acts only on'

# Pagination: 600 more PVCs of the guest cluster, the one named on the last page.
control "$(jq -nc '{add: [range(600) as $i | {apiVersion: "v1", kind: "PersistentVolumeClaim",
  metadata: {name: "pvc-many-\($i)", namespace: "guests", labels: {"guestcluster.harvesterhci.io/name": "rke2-a"}}}]}')"
jq '.request.object.metadata.annotations["harvesterhci.io/removedPersistentVolumeClaims"] += ",pvc-many-599"' \
  "$work/node-driver.json" >"$work/many.json"
pages=$(api /_stats | jq .pages)
expect_status "a guest-cluster PVC on the second page is found" 200 "$(post $guard "$work/many.json")" '"allowed":true'
check "the LIST took two pages" test "$(( $(api /_stats | jq .pages) - pages ))" = 2

# A read that fails refuses: a deletion list is at stake.
for failure in 403 500 '"garbage"'; do
  control "{\"fail\": $failure, \"fail_only\": \"persistentvolumeclaims\"}"
  expect_status "PVC list failing with $failure: refused" 200 "$(post $guard "$work/node-driver.json")" '"code":503'
  check "$failure: the reason names the list" bash -c "jq -r .response.status.message '$work/out' | grep -q 'could not read the cluster: list v1 persistentvolumeclaims in guests labelled guestcluster.harvesterhci.io/name=rke2-a'"
done
expect_status "a failing API does not matter when no read is needed" 200 "$(post $guard "$work/ui-delete.json")" '"allowed":true'
control '{"fail": null, "fail_only": null}'
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""

# Who may set removeAllPersistentVolumeClaims: "true".
start_server "$work/restricted.log" --policies pvc-cleanup-guard \
  --pvc-cleanup-remove-all-users 'u-rancher-cc,group:harvester-cleanup'
jq '.request.oldObject.metadata.annotations = {} | .request.object.metadata.annotations = {"harvesterhci.io/removeAllPersistentVolumeClaims": "true"}' \
  "$work/node-driver.json" >"$work/set-remove-all.json"
expect_status "removeAll \"true\" by a user not listed: 403" 200 "$(post $guard "$work/set-remove-all.json")" '"code":403'
check "403 Forbidden names the user" bash -c "jq -r .response.status.message '$work/out' | grep -q 'user \"system:serviceaccount:cattle-system:rancher\" may not set'"
jq '.request.userInfo.username = "u-rancher-cc"' "$work/set-remove-all.json" >"$work/by-cc.json"
expect_status "by the listed user: allowed" 200 "$(post $guard "$work/by-cc.json")" '"allowed":true'
jq '.request.userInfo.groups += ["harvester-cleanup"]' "$work/set-remove-all.json" >"$work/by-group.json"
expect_status "by a member of the listed group: allowed" 200 "$(post $guard "$work/by-group.json")" '"allowed":true'
check "--help documents the flag" bash -c "'$bin' --help | grep -q -- '--pvc-cleanup-remove-all-users'"
stop_api
finish
