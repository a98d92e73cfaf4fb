#!/usr/bin/env bash
# End-to-end: self-managed certificates. Two replicas share a CA
# kept in a Secret on a (fake) Kubernetes API server, inject it into the
# webhook configurations, renew the serving certificate and switch to a new
# CA, while a client that trusts only the configurations' caBundle (as
# kube-apiserver does) calls them without a single failure.
#
#   test/e2e/self_managed.sh BINARY SOURCE_DIR
set -uo pipefail

source "$(dirname "$0")/lib.sh"

api_token=sm-token
start_api --state "$src/test/fixtures/self-managed/webhook-configurations.json" --token sm-token
echo sm-token >"$work/sm-token"
write_kubeconfig "$work/sm-kubeconfig" "$api_port" sm-token

vwc=/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/hci-admission-upgrade-guard
mwc=/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/hci-admission-kubevirt-infra-placement
secret=/api/v1/namespaces/hci-admission/secrets/hci-admission-tls
sm_flags=(--kubeconfig "$work/sm-kubeconfig" --policies kubevirt-infra-placement
  --self-managed-certs hci-admission/hci-admission-tls
  --self-managed-webhooks "validating/hci-admission-upgrade-guard,mutating/hci-admission-kubevirt-infra-placement,mutating/hci-admission-csi-controller-placement"
  --self-managed-dns-names localhost --self-managed-ca-validity 30s --self-managed-cert-validity 12s
  --self-managed-trust-delay 3s --self-managed-check-interval 1s --cert-reload-interval 200ms --shutdown-delay 0s)

# sm_launch NAME: a replica with its own (empty) --cert-dir; sets sm_pid_NAME.
sm_launch() {
  mkdir -p "$work/sm-$1"
  "$bin" --cert-dir "$work/sm-$1" --port 0 --bind 127.0.0.1 "${sm_flags[@]}" >"$work/sm-$1.log" 2>&1 &
  printf -v "sm_pid_$1" '%s' $!
}
sm_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
trap 'sm_stop "${sm_pid_a:-}"; sm_stop "${sm_pid_b:-}"; sm_stop "${sm_pid_c:-}"; stop_api; cleanup' EXIT

# Two replicas at once: they race to create the Secret.
sm_launch a
sm_launch b
port_a=$(serving_port "$work/sm-a.log" 200) || exit 1
port_b=$(serving_port "$work/sm-b.log" 200) || exit 1
check "self-managed: the Secret was created once" \
  bash -c "api /_stats | jq -e '[.writes[] | select(.method == \"POST\" and .code == 201)] | length == 1' >/dev/null"
api "$secret" >"$work/sm-secret.json"
check "self-managed: the Secret is a TLS Secret with CA, signer and serving pair" \
  jq -e '.type == "kubernetes.io/tls" and (.data | has("tls.crt") and has("tls.key") and has("ca.crt") and has("signer.crt") and has("signer.key"))' "$work/sm-secret.json" >/dev/null
api "$vwc" | jq -r '.webhooks[0].clientConfig.caBundle' | base64 -d >"$work/sm-bundle.pem"
check "self-managed: the validating webhook's caBundle is the Secret's CA" \
  test "$(jq -r '.data["ca.crt"]' "$work/sm-secret.json" | base64 -d)" = "$(cat "$work/sm-bundle.pem")"
check "self-managed: every webhook of the mutating configuration has it, the stale one replaced" \
  bash -c "api '$mwc' | jq -e --arg b \"\$(jq -r '.data[\"ca.crt\"]' '$work/sm-secret.json')\" '[.webhooks[].clientConfig.caBundle == \$b] | all and length == 2' >/dev/null"
check "self-managed: other fields and annotations of the configuration are kept" \
  bash -c "api '$mwc' | jq -e '.metadata.annotations.note == \"kept\" and .webhooks[0].timeoutSeconds == 5 and .webhooks[0].clientConfig.service.path == \"/mutate/kubevirt-infra-placement\"' >/dev/null"
for r in a b; do
  p=$([ $r = a ] && echo "$port_a" || echo "$port_b")
  check "self-managed: replica $r is verified by the injected caBundle (curl --cacert)" \
    test "$(curl -sS --cacert "$work/sm-bundle.pem" -o /dev/null -w '%{http_code}' "https://localhost:$p/readyz")" = 200
done
check "self-managed: a missing webhook configuration is logged once, not an error" \
  bash -c "[ \$(cat '$work/sm-a.log' '$work/sm-b.log' | grep -c 'webhook configuration not found.*csi-controller-placement') -le 2 ] && grep -q 'webhook configuration not found' '$work/sm-a.log'"
check "self-managed: the key file is private" test "$(stat -c %a "$work/sm-a/tls.key")" = 600

# As kube-apiserver: trust only the caBundle, re-read at most 1 s ago,
# through two serving-certificate renewals and a switch of CA; an API
# outage in the middle leaves the served certificates alone.
jq .review "$src/test/fixtures/e2e/kubevirt-placement-empty.json" >"$work/sm-review.json"
"$py" "$raw" apiserver "$port_a,$port_b" "$api_port" "$work/api-certs/ca.crt" "$mwc" "$work/sm-review.json" \
  /mutate/kubevirt-infra-placement 40 1 "$work/sm-load.json" "$work/sm-token" >"$work/sm-load.out" 2>&1 &
load_pid=$!
sleep 14
control '{"fail": 503}'
sleep 2
check "self-managed: an API outage is logged, the replica keeps serving" \
  bash -c "grep -q 'pass failed' '$work/sm-a.log' && curl -sf --cacert '$work/sm-bundle.pem' -o /dev/null 'https://localhost:$port_a/healthz'"
control '{"fail": null}'
wait "$load_pid"
check "self-managed: no failed call through renewals and a CA switch: $(head -1 "$work/sm-load.out")" \
  bash -c "jq -e '.failures | length == 0' '$work/sm-load.json' >/dev/null && jq -e '.ok > 200' '$work/sm-load.json' >/dev/null"
check "self-managed: the serving certificate was renewed (several seen)" \
  jq -e '.serials | length >= 3' "$work/sm-load.json" >/dev/null
check "self-managed: the CA was switched (two issuers seen)" jq -e '.issuers | length >= 2' "$work/sm-load.json" >/dev/null
check "self-managed: old and new CA were trusted together during the switch" \
  jq -e '.bundle_sizes | index(2) != null' "$work/sm-load.json" >/dev/null
api "$mwc" | jq -r '.webhooks[0].clientConfig.caBundle' | base64 -d >"$work/sm-bundle.pem"
check "self-managed: no expired CA is left in the caBundle" \
  bash -c "csplit -s -z -f '$work/sm-ca-' '$work/sm-bundle.pem' '/BEGIN CERTIFICATE/' '{*}' && for f in '$work'/sm-ca-*; do openssl x509 -in \"\$f\" -noout -checkend 0 >/dev/null || exit 1; done"
check "self-managed: the switch was logged" grep -q 'the new CA signs serving certificates from now on' "$work/sm-a.log" "$work/sm-b.log"

# A replica started later takes what the Secret holds: no new CA.
posts_before=$(api /_stats | jq '[.writes[] | select(.method == "POST")] | length')
sm_launch c
port_c=$(serving_port "$work/sm-c.log" 200) || exit 1
api "$secret" | jq -r '.data["tls.crt"]' | base64 -d >"$work/sm-secret-tls.crt"
check "self-managed: a later replica serves the Secret's certificate" \
  test "$(openssl s_client -connect "127.0.0.1:$port_c" -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint)" = \
  "$(openssl x509 -in "$work/sm-secret-tls.crt" -noout -fingerprint)"
check "self-managed: a later replica creates nothing" \
  test "$(api /_stats | jq '[.writes[] | select(.method == "POST")] | length')" = "$posts_before"
for r in a b c; do pid_var=sm_pid_$r; sm_stop "${!pid_var}"; done
sm_pid_a="" sm_pid_b="" sm_pid_c=""

# Without access to the API the server does not start half-configured.
startup_error "self-managed without cluster access" "needs the Kubernetes API" --cert-dir "$work/sm-a" \
  --self-managed-certs hci-admission/x
startup_error "self-managed with a malformed Secret name" "NAMESPACE/NAME" --cert-dir "$work/sm-a" \
  --self-managed-certs just-a-name
startup_error "self-managed flags without --self-managed-certs" "need --self-managed-certs" --cert-dir "$work/sm-a" \
  --self-managed-trust-delay 5s
stop_api
finish
