#!/usr/bin/env bash
# End-to-end: the upgrade guard's four checks (issue 13) against a fake
# kube-apiserver serving every kind it reads, paginated: concurrent
# upgrades (409, both kinds, not bypassed), single-replica volumes,
# KubeVirt placement and PodDisruptionBudgets (one 422 naming them all),
# for an Upgrade and an UpgradePlan; the bypasses; kinds whose CRD is
# missing (404 counts as none, except Longhorn volumes); fail-closed reads;
# and precheck, in text and JSON.
#
#   test/e2e/upgrade_readiness.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

trap 'stop_api; cleanup' EXIT

mkdir -p "$work/api-state"
cp "$src/test/fixtures/cluster/"*.json "$work/api-state/"
# 1,200 more pods under 100 PDBs and 600 more volumes: three pages each.
start_api --state "$work/api-state" --pods 1200 --pdbs 100 --volumes 600
echo "token" >"$work/token"
write_kubeconfig "$work/kubeconfig" "$api_port" token
cluster_args=(--kubeconfig "$work/kubeconfig")
start_server "$work/server.log" --cluster-read-timeout 5s
guard=/validate/upgrade-guard

# The reviews: an Upgrade, and an UpgradePlan (cluster-scoped, Upgrade V2).
jq .review "$src/test/fixtures/e2e/upgrade-single-replica.json" >"$work/upgrade.json"
jq '.request.kind = {"group":"management.harvesterhci.io","version":"v1beta1","kind":"UpgradePlan"}
  | .request.resource = {"group":"management.harvesterhci.io","version":"v1beta1","resource":"upgradeplans"}
  | del(.request.namespace) | .request.uid = "plan-1"
  | .request.object = {"apiVersion":"management.harvesterhci.io/v1beta1","kind":"UpgradePlan",
      "metadata":{"generateName":"hvst-upgrade-"},"spec":{"version":"v1.8.0"}}' "$work/upgrade.json" >"$work/plan.json"
annotate() { # annotate REVIEW KEY VALUE -> the review with one more annotation
  jq --arg k "$2" --arg v "$3" '.request.object.metadata.annotations[$k] = $v' "$1"
}
message() { jq -r .response.status.message "$work/out"; }
has() { message | grep -qF -- "$1"; }
warned() { jq -r '.response.warnings[]?' "$work/out" | grep -qF -- "$1"; }

# --- every failing check in one refusal, for both kinds
for kind in upgrade plan; do
  expect_status "$kind: refused" 200 "$(post $guard "$work/$kind.json")" '"allowed":false'
  check "$kind: 422 Invalid" test "$(jq -r '.response.status | "\(.code) \(.reason)"' "$work/out")" = "422 Invalid"
  check "$kind: one cause per failed check (3)" test "$(jq '.response.status.details.causes | length' "$work/out")" = 3
  check "$kind: the single-replica wording comes first" \
    bash -c "jq -r .response.status.message '$work/out' | grep -q '^Following PVCs with single-replica volume'"
  check "$kind: names the KubeVirt CR, the control-plane node and the fix" \
    has "KubeVirt harvester-system/kubevirt has no spec.infra.nodePlacement and harvester-1 is the only schedulable control-plane node"
  check "$kind: says to set nodePlacement: {}" has "set spec.infra.nodePlacement: {}"
  check "$kind: a PDB that never allows a disruption" has "team-a/db (minAvailable 1 of 1 pods)"
  check "$kind: two PDBs over one pod, both named" \
    bash -c "jq -r .response.status.message '$work/out' | grep -qF 'team-b/frontend (pod team-b/web-5f7c9d8b6-abcde is also selected by team-b/web' && jq -r .response.status.message '$work/out' | grep -qF 'team-b/web (pod team-b/web-5f7c9d8b6-abcde is also selected by team-b/frontend'"
  check "$kind: #7647 in general: virt-api fits only one node" \
    has "harvester-system/virt-api-pdb (pod harvester-system/virt-api-6c5b8d7f9-4kq2x fits only node harvester-1"
  check "$kind: a Longhorn instance-manager PDB on the wrong node (#3730)" \
    has "longhorn-system/instance-manager-2c4e6a8b0d1f3a5c (longhorn.io/node harvester-2 but its instance manager is on harvester-1"
  check "$kind: instance-manager PDBs of their own node are not judged" \
    bash -c "! jq -r .response.status.message '$work/out' | grep -q 'instance-manager-5b1f0c3e8a9d4f7b\|instance-manager-9e2d7a4c6b1f3e8d'"
  check "$kind: the 100 healthy generated PDBs are not named" bash -c "! jq -r .response.status.message '$work/out' | grep -q 'app-[0-9]*-pdb'"
  check "$kind: a KubeVirt evacuation PDB is a warning" warned "evacuation PDB default/kubevirt-migration-pdb-kubevirt-evacuation-7xk2p: a VM is migrating"
done
stats=$(api /_stats)
check "every kind was listed, pods and volumes over several pages" \
  bash -c "jq -e '[.listed[]] | (map(select(test(\"/pods$\"))) | length) > 0 and (map(select(test(\"/upgradeplans$\"))) | length) > 0' <<<'$stats' >/dev/null && [ \$(jq .pages <<<'$stats') -ge 20 ]"
check "namespaced kinds are listed in their namespace only" \
  bash -c "jq -e '.listed | index(\"/apis/longhorn.io/v1beta2/namespaces/longhorn-system/instancemanagers\") and index(\"/apis/kubevirt.io/v1/namespaces/harvester-system/kubevirts\") and index(\"/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades\")' <<<'$stats' >/dev/null"

# --- the bypasses
annotate "$work/upgrade.json" hci-admission.io/skip-checks "pod-disruption-budgets" >"$work/skip-pdb.json"
before=$(api /_stats | jq .lists)
expect_status "skip-checks pod-disruption-budgets: still refused for the rest" 200 "$(post $guard "$work/skip-pdb.json")" '"allowed":false'
check "skip-checks: no PDB in the message" bash -c "! jq -r .response.status.message '$work/out' | grep -q PodDisruptionBudgets"
check "skip-checks: a warning names the skipped check" warned "check pod-disruption-budgets skipped"
check "skip-checks: pods, PDBs and instance managers are not read (5 lists, not 8)" \
  test "$(( $(api /_stats | jq .lists) - before ))" = 5
annotate "$work/upgrade.json" hci-admission.io/skip-checks " kubevirt-placement , pod-disruption-budgets ," |
  jq '.request.object.metadata.annotations["harvesterhci.io/skipSingleReplicaDetachedVol"] = "true"' >"$work/skip-all.json"
expect_status "skip-checks both + skipSingleReplicaDetachedVol: allowed (no attached single-replica volume)" 200 \
  "$(post $guard "$work/skip-all.json")" '"allowed":true'
check "both skipped checks are warned about" \
  bash -c "[ \$(jq -r '.response.warnings[]' '$work/out' | grep -c 'skipped (hci-admission.io/skip-checks)') = 2 ]"
annotate "$work/upgrade.json" hci-admission.io/skip-checks "pod-disruption-budgets,single-replica-volumes,drains" >"$work/skip-bad.json"
expect_status "skip-checks with unknown names: refused" 200 "$(post $guard "$work/skip-bad.json")" '"code":422'
check "unknown names are listed with the valid ones" \
  has 'names unknown checks "single-replica-volumes", "drains"; the checks it can skip are kubevirt-placement, pod-disruption-budgets'
annotate "$work/plan.json" harvesterhci.io/skipWebhook "true" >"$work/plan-skip-webhook.json"
expect_status "skipWebhook bypasses checks 1-3 for an UpgradePlan too" 200 "$(post $guard "$work/plan-skip-webhook.json")" '"allowed":true'
check "skipWebhook says what it bypassed" warned "bypassed: harvesterhci.io/skipWebhook"

# --- concurrent upgrades: 409 first, for either kind, whatever the annotations
control "$(jq -c '{add: [.]}' "$src/test/fixtures/cluster-upgrade-in-progress.json")"
for review in plan upgrade plan-skip-webhook skip-all; do
  expect_status "an UpgradePlan in progress: $review refused" 200 "$(post $guard "$work/$review.json")" '"allowed":false'
  check "$review: 409 Conflict" test "$(jq -r '.response.status | "\(.code) \(.reason)"' "$work/out")" = "409 Conflict"
  check "$review: names the plan and its phase" has "upgradeplan hvst-upgrade-v2-9d3lp (phase NodeUpgrading)"
  check "$review: nothing else is reported" bash -c "! jq -r .response.status.message '$work/out' | grep -q 'PVCs\|KubeVirt\|PodDisruption'"
done
control '{"remove": ["hvst-upgrade-v2-9d3lp"]}'
control '{"add": [{"apiVersion": "harvesterhci.io/v1beta1", "kind": "Upgrade", "metadata": {"name": "hvst-upgrade-x2v9c",
  "namespace": "harvester-system", "labels": {"harvesterhci.io/upgradeState": "UpgradingNodes"}}, "spec": {"version": "v1.5.1"}}]}'
expect_status "a v1 Upgrade in progress refuses an UpgradePlan with 409" 200 "$(post $guard "$work/plan.json")" '"code":409'
check "names the Upgrade and its state" has "upgrade harvester-system/hvst-upgrade-x2v9c (state UpgradingNodes)"
check "the finished Upgrade in the cluster is not named" bash -c "! jq -r .response.status.message '$work/out' | grep -q hvst-upgrade-7kq2m"
control '{"remove": ["hvst-upgrade-x2v9c"]}'
expect_status "after it: back to 422" 200 "$(post $guard "$work/plan.json")" '"code":422'

# --- kinds only optional components provide: 404 counts as none
control '{"missing": ["upgradeplans", "upgrades", "kubevirts", "instancemanagers"]}'
expect_status "CRDs missing (404): still answered" 200 "$(post $guard "$work/upgrade.json")" '"code":422'
check "no KubeVirt CRD: kubevirt-placement passes" bash -c "! jq -r .response.status.message '$work/out' | grep -q 'KubeVirt harvester-system'"
check "no InstanceManager CRD: instance-manager PDBs cannot be judged, nothing said" \
  bash -c "! jq -r .response.status.message '$work/out' | grep -q 'instance-manager-2c4e'"
check "the other PDBs are still judged" has "team-a/db (minAvailable 1 of 1 pods)"
control '{"missing": ["volumes"]}'
expect_status "no Longhorn volumes CRD: fails closed" 200 "$(post $guard "$work/upgrade.json")" '"code":503'
check "503 says volumes could not be listed" has "could not read the cluster: list longhorn.io/v1beta2 volumes in longhorn-system: HTTP 404"
control '{"missing": []}'

# --- every other read failure fails closed, naming the read
for resource in pods poddisruptionbudgets upgradeplans kubevirts instancemanagers upgrades; do
  control "{\"fail\": 500, \"fail_only\": \"$resource\"}"
  expect_status "$resource failing with 500: refused" 200 "$(post $guard "$work/upgrade.json")" '"code":503'
  check "$resource: the reason names the list" has " $resource"
done
control '{"fail": 403, "fail_only": "upgradeplans"}'
expect_status "403 on upgradeplans is not 'not installed': 503" 200 "$(post $guard "$work/plan-skip-webhook.json")" '"code":503'
control '{"fail": null, "fail_only": null}'

# --- precheck: every check with its objects, text and JSON
precheck() { "$bin" precheck "$@" >"$work/precheck.out" 2>&1; echo $?; }
check "precheck live: refused, exit 1" test "$(precheck --kubeconfig "$work/kubeconfig")" = 1
check "precheck prints each check's result" \
  bash -c "grep -q '^check concurrent-upgrades: passed' '$work/precheck.out' && grep -q '^check kubevirt-placement: failed' '$work/precheck.out' && grep -q '^check pod-disruption-budgets: failed' '$work/precheck.out'"
check "precheck lists each blocking PDB with its reason" grep -qE '^  ! team-a/db: minAvailable 1 of 1 pods' "$work/precheck.out"
check "precheck --output json: exit 1" test "$(precheck --kubeconfig "$work/kubeconfig" --output json)" = 1
check "precheck JSON: allowed false, 422, six PDBs, the CR, the volumes" \
  jq -e '.allowed == false and .status.code == 422
    and (.checks[] | select(.name == "pod-disruption-budgets") | .result == "failed" and (.objects | length) == 6)
    and (.checks[] | select(.name == "kubevirt-placement") | .objects[0].name == "harvester-system/kubevirt")
    and (.singleReplicaVolumes | length) > 10' "$work/precheck.out"
check "precheck JSON with the skips: allowed, exit 0" \
  test "$(precheck --kubeconfig "$work/kubeconfig" --output json --skip-single-replica-detached-vol true --skip-checks kubevirt-placement,pod-disruption-budgets)" = 0
check "precheck JSON: skipped checks say so" \
  jq -e '[.checks[] | select(.result == "skipped") | .name] == ["kubevirt-placement", "pod-disruption-budgets"]' "$work/precheck.out"
check "precheck: an unknown --output exits 2" test "$(precheck --kubeconfig "$work/kubeconfig" --output yaml)" = 2
check "precheck: an unknown check to skip refuses, exit 1" test "$(precheck --kubeconfig "$work/kubeconfig" --skip-checks drains)" = 1
control "$(jq -c '{add: [.]}' "$src/test/fixtures/cluster-upgrade-in-progress.json")"
check "precheck with an upgrade in progress: exit 1" test "$(precheck --kubeconfig "$work/kubeconfig" --skip-webhook)" = 1
check "precheck says which upgrade" grep -q "REFUSED: cannot proceed until the upgrade in progress completes: upgradeplan hvst-upgrade-v2-9d3lp" "$work/precheck.out"
check "the server still serves" test "$(post /mutate/csi-controller-placement "$work/good.json")" = 200
stop_api
finish
