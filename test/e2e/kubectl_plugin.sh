#!/usr/bin/env bash
# End-to-end: hci-admission as a kubectl plugin. A link named
# kubectl-hci_admission on the PATH, called through the real kubectl as
# `kubectl hci-admission ...`: kubectl finds it, the help names the plugin,
# precheck reads the cluster from the kubeconfig kubectl's users have
# (KUBECONFIG, with kubectl's --context; several files merged as kubectl
# merges them), offline and against the fake API.
#
#   test/e2e/kubectl_plugin.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

trap 'stop_api; cleanup' EXIT
if ! command -v kubectl >/dev/null; then
  fail "kubectl is installed (the plugin is called through it)"
  finish
  exit
fi
mkdir -p "$work/plugins"
ln -s "$bin" "$work/plugins/kubectl-hci_admission"
export PATH="$work/plugins:$PATH"
# kubectl's own settings stay out of the user's home.
export HOME=$work KUBECONFIG=$work/no-such-kubeconfig

# run NAME ARGS...: kubectl ARGS with stdout in $work/NAME.out, stderr in
# $work/NAME.err; prints the exit code.
run() {
  local name=$1; shift
  kubectl "$@" >"$work/$name.out" 2>"$work/$name.err"
  echo $?
}
has() { grep -qF -- "$2" "$work/$1.out"; }

check "kubectl plugin list finds kubectl-hci_admission on the PATH" \
  bash -c "kubectl plugin list 2>/dev/null | grep -qx '$work/plugins/kubectl-hci_admission'"
rc=$(run usage hci-admission)
check "kubectl hci-admission: exit 0 with the plugin's commands, not a server error (rc $rc)" \
  bash -c "[ $rc = 0 ] && grep -q '^Usage: kubectl hci-admission COMMAND' '$work/usage.out' &&
           grep -q '^  precheck' '$work/usage.out' && ! grep -q cert-dir '$work/usage.err'"
rc=$(run serverhelp hci-admission --help)
check "kubectl hci-admission --help: the server's help names the plugin too (rc $rc)" \
  bash -c "[ $rc = 0 ] && grep -q '^Usage: kubectl hci-admission --cert-dir DIR' '$work/serverhelp.out' &&
           ! grep -q '^Usage: hci-admission' '$work/serverhelp.out'"
rc=$(run help hci-admission precheck --help)
check "kubectl hci-admission precheck --help names the plugin and kubectl's --context (rc $rc)" \
  bash -c "[ $rc = 0 ] && grep -q '^Usage: kubectl hci-admission precheck' '$work/help.out' &&
           grep -q -- '--context NAME' '$work/help.out'"
rc=$(run badflag hci-admission precheck --no-such-flag)
check "a bad flag: exit 2, the message names the plugin (rc $rc)" \
  bash -c "[ $rc = 2 ] && grep -q 'kubectl hci-admission precheck: unknown flag --no-such-flag' '$work/badflag.err'"
rc=$(run version hci-admission --version)
check "kubectl hci-admission --version (rc $rc)" bash -c "[ $rc = 0 ] && grep -q '^hci-admission [0-9]' '$work/version.out'"
rc=$(run rules hci-admission rules)
check "kubectl hci-admission rules prints each policy's rules as JSON (rc $rc)" \
  bash -c "[ $rc = 0 ] && jq -e '.\"/validate/upgrade-guard\".rules | length > 0' '$work/rules.out' >/dev/null"

rc=$(run offline hci-admission precheck --cluster-state "$src/test/fixtures/cluster")
check "precheck offline through kubectl: refused, exit 1, naming the single-replica PVCs (rc $rc)" \
  bash -c "[ $rc = 1 ] && grep -q '^REFUSED: .*team-a/db' '$work/offline.out'"

# A kubeconfig as kubectl users have them: several contexts, the current
# one not the cluster wanted.
start_api --state "$src/test/fixtures/cluster" --token plugin-token
api_token=plugin-token
echo "plugin-token" >"$work/token"
closed_port=$(free_port)
cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: api-certs/ca.crt
    server: https://127.0.0.1:$api_port
  name: harvester
- cluster:
    certificate-authority: api-certs/ca.crt
    server: https://127.0.0.1:$closed_port
  name: elsewhere
contexts:
- context: {cluster: harvester, user: webhook}
  name: harvester
- context: {cluster: elsewhere, user: webhook}
  name: elsewhere
current-context: elsewhere
users:
- name: webhook
  user:
    tokenFile: token
KUBECONFIG
export KUBECONFIG=$work/kubeconfig
check "kubectl itself reads this kubeconfig (current context elsewhere)" \
  test "$(kubectl config current-context 2>/dev/null)" = elsewhere

rc=$(run live hci-admission precheck --context harvester --output json)
check "precheck --context harvester reads the fake API through \$KUBECONFIG: refused, exit 1 (rc $rc)" \
  bash -c "[ $rc = 1 ] && jq -e '.allowed == false and (.cluster | contains(\"127.0.0.1:$api_port\"))' '$work/live.out' >/dev/null"
check "precheck through kubectl lists the single-replica PVCs it read" \
  bash -c "jq -r '.singleReplicaVolumes[].pvc' '$work/live.out' | grep -qx 'team-a/db'"
check "the fake API, which answers only the kubeconfig's token, was listed" \
  bash -c "api /_stats | jq -e '.lists > 0' >/dev/null"
rc=$(run kubecontext hci-admission precheck --kube-context harvester --output json)
check "--kube-context is the same as --context (rc $rc)" \
  bash -c "[ $rc = 1 ] && jq -e '.cluster | contains(\"127.0.0.1:$api_port\")' '$work/kubecontext.out' >/dev/null"
rc=$(run current hci-admission precheck)
check "without --context, the kubeconfig's current context: its cluster does not answer, refused (rc $rc)" \
  bash -c "[ $rc = 1 ] && grep -q '^REFUSED: cannot reach the cluster\\|^REFUSED: .*$closed_port' '$work/current.out'"

# $KUBECONFIG with several files, merged as kubectl merges them: the first
# file to name a cluster, user or context gives it whole, current-context
# comes from the first file that sets one, a file that does not exist is
# skipped, and each file's relative paths are its own folder's. The real
# kubectl says what the merge is, and reaches the fake API with it; precheck
# must land where kubectl does. Wrong merges point at the closed port or
# send a token the fake API refuses.
mkdir -p "$work/kc1" "$work/kc2"
echo "plugin-token" >"$work/kc1/token"
cp "$work/api-certs/ca.crt" "$work/kc2/ca.crt"
cat >"$work/kc1/config" <<KUBECONFIG
apiVersion: v1
kind: Config
contexts:
- context: {cluster: api, user: webhook}
  name: harvester
users:
- name: webhook
  user:
    tokenFile: token
KUBECONFIG
cat >"$work/kc2/config" <<KUBECONFIG
apiVersion: v1
kind: Config
current-context: harvester
clusters:
- cluster:
    certificate-authority: ca.crt
    server: https://127.0.0.1:$api_port
  name: api
- cluster:
    certificate-authority: ca.crt
    server: https://127.0.0.1:$closed_port
  name: elsewhere
contexts:
- context: {cluster: elsewhere, user: webhook}
  name: harvester
users:
- name: webhook
  user:
    token: not-the-token
KUBECONFIG
export KUBECONFIG=$work/no-such-kubeconfig:$work/kc1/config:$work/kc2/config
kubectl config view --minify -o json >"$work/minify.json" 2>"$work/minify.err"
check "kubectl merges the list: current context harvester from the second file, its context from the first" \
  bash -c "[ \"\$(kubectl config current-context)\" = harvester ] &&
           jq -e '.contexts[0].context.cluster == \"api\" and .users[0].user.tokenFile == \"token\"
                  and .clusters[0].cluster.server == \"https://127.0.0.1:$api_port\"' '$work/minify.json' >/dev/null"
check "kubectl reaches the fake API with the merged kubeconfig (the first file's token, the second's CA)" \
  bash -c "kubectl get --raw /api/v1/nodes 2>&1 | jq -e '.items | length > 0' >/dev/null"
lists_before=$(api /_stats | jq .lists)
rc=$(run merged hci-admission precheck --output json)
kubectl_server=$(jq -r '.clusters[0].cluster.server' "$work/minify.json")
check "precheck reads the merged \$KUBECONFIG where kubectl does ($kubectl_server, context harvester): refused, exit 1 (rc $rc)" \
  bash -c "[ $rc = 1 ] && jq -e --arg s '$kubectl_server' '.allowed == false and
             (.cluster | startswith(\"the Kubernetes API at \" + \$s + \" (\")) and
             (.cluster | endswith(\", context harvester)\")) and
             (.singleReplicaVolumes | length > 0)' '$work/merged.out' >/dev/null &&
           [ \"\$(api /_stats | jq .lists)\" -gt $lists_before ]"
rc=$(KUBECONFIG=$work/no-such-kubeconfig:$work/also-missing run nofile hci-admission precheck)
check "a \$KUBECONFIG naming no file that exists: refused, saying so (rc $rc)" \
  bash -c "[ $rc = 1 ] && grep -q 'names no file that exists' '$work/nofile.out'"

# Most kubectl users have no KUBECONFIG: kubectl reads ~/.kube/config, and
# so does the plugin.
unset KUBECONFIG
rc=$(run nothing hci-admission precheck)
check "no KUBECONFIG and no ~/.kube/config: exit 2, saying where it looked (rc $rc)" \
  bash -c "[ $rc = 2 ] && grep -q 'no cluster: .*~/.kube/config' '$work/nothing.err'"
mkdir -p "$work/.kube" "$work/.kube/api-certs"
cp "$work/api-certs/ca.crt" "$work/.kube/api-certs/ca.crt"
cp "$work/token" "$work/.kube/token"
cp "$work/kubeconfig" "$work/.kube/config"
check "kubectl itself reads ~/.kube/config" test "$(kubectl config current-context 2>/dev/null)" = elsewhere
rc=$(run home hci-admission precheck --context harvester --output json)
check "precheck --context harvester reads ~/.kube/config as kubectl does: refused, exit 1 (rc $rc)" \
  bash -c "[ $rc = 1 ] && jq -e '.cluster | contains(\"127.0.0.1:$api_port\")' '$work/home.out' >/dev/null"
finish
