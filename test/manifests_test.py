#!/usr/bin/python3
"""Renders every kustomize entry point in manifests/ and checks the output's
structure against the binary: webhook paths it serves, policy types, the
policies each overlay enables, RBAC matching the reads the code declares
(hci-admission --help, "reads the cluster"), each webhook's rules against the
rules the policy declares (hci-admission rules), and the Deployment's safety
settings.

  manifests_test.py BINARY SOURCE_DIR
Prints each check as TAP; exit 1 on any failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

binary, src = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(what, ok):
    """One TAP line per check on stdout (Meson records each); failures also on stderr."""
    global passed, failed
    if ok:
        passed += 1
        print(f"ok {passed + failed} - {what}")
    else:
        failed += 1
        print(f"not ok {passed + failed} - {what}")
        print(f"FAIL: {what}", file=sys.stderr)


def size_bytes(text):
    """7MiB, 128Mi, 1G, 512Ki or bytes."""
    m = re.fullmatch(r"(\d+)(B|K|Ki|KiB|M|Mi|MiB|G|Gi|GiB)?", text)
    unit = (m.group(2) or "B").rstrip("B").rstrip("i") or "B"
    return int(m.group(1)) * {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def flag_value(args, name):
    """The value of --NAME=VALUE among a container's args, or None."""
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")), None)


def render(path):
    out = subprocess.run(["kubectl", "kustomize", f"{src}/manifests/{path}"], capture_output=True, text=True)
    check(f"kubectl kustomize {path}: {out.stderr.strip()}", out.returncode == 0)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


if not shutil.which("kubectl"):
    check("kubectl (with kustomize) is installed to render manifests/", False)
    print("1..1")
    sys.exit(1)

# What the binary serves: paths, types, defaults and cluster reads.
help_text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
served = {}  # path -> {"reads": [...]}
current = None
for line in help_text.splitlines():
    m = re.match(r"^  (/(mutate|validate)/[a-z-]+)$", line)
    if m:
        current = m.group(1)
        served[current] = {"reads": []}
    elif current and "reads the cluster:" in line:
        served[current]["reads"] = [r.strip() for r in line.split(":", 1)[1].split(",")]
# The rules each policy declares, as a webhook configuration writes them.
served_rules = json.loads(subprocess.run([binary, "rules"], capture_output=True, text=True, check=True).stdout)
check("every served path declares rules", sorted(served_rules) == sorted(served)
      and all(served_rules[p]["rules"] for p in served_rules))
self_managed_calls = [c.strip() for c in
                      re.search(r"Self-managed certificates.*?uses the cluster: ([^\n]+)", help_text, re.S)
                      .group(1).split(",")]
selector_default = re.search(r'--csi-controller-selector VALUE.*?\(default "([^"]+)"\)', help_text, re.S).group(1)
check("the binary lists its policies in --help", len(served) >= 3)

render("base")
overlays = {"harvester": {"upgrade-guard", "kubevirt-infra-placement", "pvc-cleanup-guard"},
            "guest-cluster": {"csi-controller-placement"}}
for overlay, expected_policies in overlays.items():
    docs = render(f"overlays/{overlay}")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    dep = by_kind["Deployment"][0]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    self_managed = any(a.startswith("--self-managed-certs=") for a in args)
    managed = [a.split("=", 1)[1] for a in args if a.startswith("--self-managed-webhooks=")]
    for kind in ("Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"):
        check(f"{overlay}: has a {kind}", kind in by_kind)

    # Memory: what the server may hold under load, in the process and in
    # its sockets' kernel buffers, fits the pod's limit (README, "Memory
    # under hostile load").
    limit = size_bytes(dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])
    budget = size_bytes(flag_value(args, "max-buffered-size") or "32MiB")
    conns = int(flag_value(args, "max-connections") or 1024)
    need = (12 << 20) + budget + conns * ((48 << 10) + (40 << 10)) + (8 << 20)
    check(f"{overlay}: memory limit {limit >> 20} MiB holds idle + budget + connections ({need >> 20} MiB)",
          need <= limit)
    if not self_managed:
        for kind in ("Certificate", "Issuer"):
            check(f"{overlay}: has a cert-manager {kind}", kind in by_kind)

    # Webhooks: every path served by the binary, with the right type and settings.
    paths = set()
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for config in by_kind.get(kind, []):
            if self_managed:
                wanted = ("validating/" if kind.startswith("Validating") else "mutating/") + config["metadata"]["name"]
                check(f"{overlay}: the server keeps the caBundle of {config['metadata']['name']}",
                      managed and wanted in managed[0].split(","))
                check(f"{overlay}: {config['metadata']['name']} has no cert-manager annotation",
                      "cert-manager.io/inject-ca-from" not in config["metadata"].get("annotations", {}))
            else:
                check(f"{overlay}: {config['metadata']['name']} gets its CA from cert-manager",
                      config["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
                      == "hci-admission/hci-admission-serving")
            for hook in config["webhooks"]:
                name = hook["name"]
                path = hook["clientConfig"]["service"]["path"]
                paths.add(path)
                check(f"{overlay}/{name}: path {path} is served by the binary", path in served)
                check(f"{overlay}/{name}: kind matches the policy type",
                      path.startswith("/validate/") == (kind == "ValidatingWebhookConfiguration"))
                check(f"{overlay}/{name}: service is hci-admission/hci-admission:443",
                      hook["clientConfig"]["service"] == {"name": "hci-admission", "namespace": "hci-admission",
                                                          "path": path, "port": 443})
                check(f"{overlay}/{name}: sideEffects None", hook["sideEffects"] == "None")
                check(f"{overlay}/{name}: admissionReviewVersions v1, v1beta1",
                      hook["admissionReviewVersions"] == ["v1", "v1beta1"])
                check(f"{overlay}/{name}: small timeoutSeconds", 1 <= hook["timeoutSeconds"] <= 15)
                # matchConditions exactly as the policy declares them (none for most).
                declared_conditions = served_rules.get(path, {}).get("matchConditions", [])
                check(f"{overlay}/{name}: matchConditions are the ones {path} declares",
                      hook.get("matchConditions", []) == declared_conditions)
                check(f"{overlay}/{name}: failurePolicy Fail for validating, Ignore for mutating",
                      hook["failurePolicy"] == ("Fail" if path.startswith("/validate/") else "Ignore"))
                check(f"{overlay}/{name}: its own namespace is excluded (no self-deadlock)",
                      {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["hci-admission"]}
                      in hook["namespaceSelector"]["matchExpressions"])
                # Exactly the rules the policy declares (hci-admission rules), in the same order.
                check(f"{overlay}/{name}: rules are the ones {path} declares ({served_rules.get(path, {}).get('rules')})",
                      hook["rules"] == served_rules.get(path, {}).get("rules"))
                if path == "/mutate/csi-controller-placement":
                    selector = dict(kv.split("=") for kv in selector_default.split(","))
                    check(f"{overlay}/{name}: objectSelector is the controller selector",
                          hook.get("objectSelector", {}).get("matchLabels") == selector)
                    check(f"{overlay}/{name}: reinvocationPolicy IfNeeded", hook.get("reinvocationPolicy") == "IfNeeded")
    registered = {p.rsplit("/", 1)[1] for p in paths}
    check(f"{overlay}: registers exactly {sorted(expected_policies)}", registered == expected_policies)

    # The Deployment enables exactly the registered policies, safely.
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    enabled = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--policies=")]
    check(f"{overlay}: --policies matches the webhooks", enabled and set(enabled[0].split(",")) == registered)
    check(f"{overlay}: 3 replicas", dep["spec"]["replicas"] == 3)
    check(f"{overlay}: spread across nodes", pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname")
    check(f"{overlay}: readiness on /readyz", c["readinessProbe"]["httpGet"]["path"] == "/readyz")
    check(f"{overlay}: liveness on /healthz", c["livenessProbe"]["httpGet"]["path"] == "/healthz")
    check(f"{overlay}: probes over HTTPS",
          c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS" == c["livenessProbe"]["httpGet"]["scheme"])
    sc = c["securityContext"]
    check(f"{overlay}: non-root", pod["securityContext"]["runAsNonRoot"] is True)
    check(f"{overlay}: read-only root filesystem", sc["readOnlyRootFilesystem"] is True)
    check(f"{overlay}: no privilege escalation", sc["allowPrivilegeEscalation"] is False)
    check(f"{overlay}: all capabilities dropped", sc["capabilities"]["drop"] == ["ALL"])
    check(f"{overlay}: seccomp RuntimeDefault", pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault")
    delay = [a for a in c["args"] if a.startswith("--shutdown-delay=")]
    check(f"{overlay}: the shutdown delay fits the grace period",
          delay and int(delay[0].split("=")[1].rstrip("s")) + 10 <= pod["terminationGracePeriodSeconds"])
    if self_managed:
        check(f"{overlay}: --cert-dir is a writable in-memory volume",
              "--cert-dir=/certs" in c["args"] and c["volumeMounts"][0]["mountPath"] == "/certs"
              and not c["volumeMounts"][0].get("readOnly") and pod["volumes"][0]["emptyDir"]["medium"] == "Memory")
        names = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--self-managed-dns-names=")]
        check(f"{overlay}: the serving certificate names the service",
              names and "hci-admission.hci-admission.svc" in names[0].split(","))
        check(f"{overlay}: the service account token is mounted (the server calls the API)",
              pod.get("automountServiceAccountToken", True) is not False)
    else:
        check(f"{overlay}: the TLS Secret is mounted at --cert-dir",
              "--cert-dir=/certs" in c["args"] and c["volumeMounts"][0]["mountPath"] == "/certs"
              and pod["volumes"][0]["secret"]["secretName"] == "hci-admission-tls")
        cert = [x for x in by_kind["Certificate"] if x["spec"]["secretName"] == "hci-admission-tls"]
        check(f"{overlay}: the serving certificate names the service",
              cert and "hci-admission.hci-admission.svc" in cert[0]["spec"]["dnsNames"])
    check(f"{overlay}: the PDB keeps all but one replica", by_kind["PodDisruptionBudget"][0]["spec"]["maxUnavailable"] == 1)

    # RBAC: exactly the reads the enabled policies declare, nothing more.
    granted = set()
    for kind in ("ClusterRole", "Role"):
        for role in by_kind.get(kind, []):
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for res in rule["resources"]:
                        for verb in rule["verbs"]:
                            granted.add(f"{verb} {res}" + (f".{group}" if group else "")
                                        + (f" in {role['metadata']['namespace']}" if kind == "Role" else ""))
    declared = set()
    for policy in registered:
        for read in next(v["reads"] for p, v in served.items() if p.endswith("/" + policy)):
            declared.add(read.replace("in the Longhorn namespace", "in longhorn-system")
                         .replace("in the KubeVirt namespace", "in harvester-system")
                         .replace("in the upgrade namespace", "in harvester-system"))
    if self_managed:
        secret_ns = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--self-managed-certs=")).split("/")[0]
        declared |= {call.replace("in the Secret's namespace", f"in {secret_ns}") for call in self_managed_calls}
        # get/update/patch are held to the objects named in the flags.
        secret_name = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--self-managed-certs=")).split("/")[1]
        configs = {x.split("/")[1] for x in managed[0].split(",")} if managed else set()
        for kind in ("ClusterRole", "Role"):
            for role in by_kind.get(kind, []):
                for rule in role["rules"]:
                    if set(rule["verbs"]) & {"get", "update", "patch"} and (
                            "secrets" in rule["resources"] or any("webhookconfigurations" in r for r in rule["resources"])):
                        allowed = {secret_name} if "secrets" in rule["resources"] else configs
                        check(f"{overlay}: {role['metadata']['name']} limits {rule['verbs']} {rule['resources']} "
                              f"to the objects in the flags", rule.get("resourceNames")
                              and set(rule["resourceNames"]) <= allowed)
    check(f"{overlay}: RBAC grants exactly what the code reads ({sorted(granted)} vs {sorted(declared)})",
          granted == declared)
    bindings = by_kind.get("ClusterRoleBinding", []) + by_kind.get("RoleBinding", [])
    check(f"{overlay}: RBAC is bound to the hci-admission service account only",
          all(b["subjects"] == [{"kind": "ServiceAccount", "name": "hci-admission", "namespace": "hci-admission"}]
              for b in bindings))


# Monitoring: the component added to each overlay (as an operator's own
# kustomization would) must find the Service, its port and the CA, name the
# serving certificate, and the alerts must name the Deployment's objects.
# Without it, nothing needs the Prometheus Operator's CRDs.
for overlay in overlays:
    plain = render(f"overlays/{overlay}")
    check(f"{overlay}: no monitoring.coreos.com object unless the monitoring component is added",
          not any(d["apiVersion"].startswith("monitoring.coreos.com/") for d in plain))
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            f.write("resources:\n- " + os.path.relpath(f"{src}/manifests/overlays/{overlay}", tmp) + "\n"
                    "components:\n- " + os.path.relpath(f"{src}/manifests/components/monitoring", tmp) + "\n")
        out = subprocess.run(["kubectl", "kustomize", tmp], capture_output=True, text=True)
    check(f"{overlay} + monitoring: renders ({out.stderr.strip()})", out.returncode == 0)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    service, dep = by_kind["Service"][0], by_kind["Deployment"][0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    monitor = by_kind.get("ServiceMonitor", [{}])[0]
    endpoint = monitor.get("spec", {}).get("endpoints", [{}])[0]
    check(f"{overlay} + monitoring: the ServiceMonitor selects the Service",
          monitor and monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
          and service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"])
    check(f"{overlay} + monitoring: it scrapes a port the Service has, over HTTPS, at /metrics",
          endpoint.get("port") in [p["name"] for p in service["spec"]["ports"]]
          and endpoint.get("scheme") == "https" and endpoint.get("path") == "/metrics")
    if flag_value(c["args"], "self-managed-certs"):
        secret = flag_value(c["args"], "self-managed-certs").split("/")[1]
        names = flag_value(c["args"], "self-managed-dns-names").split(",")
    else:
        secret = dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
        names = next(x for x in by_kind["Certificate"] if x["spec"]["secretName"] == secret)["spec"]["dnsNames"]
    tls = endpoint.get("tlsConfig", {})
    check(f"{overlay} + monitoring: TLS verified with ca.crt of the serving Secret {secret}",
          tls.get("ca", {}).get("secret") == {"name": secret, "key": "ca.crt"}
          and monitor["metadata"]["namespace"] == service["metadata"]["namespace"])
    check(f"{overlay} + monitoring: the TLS server name {tls.get('serverName')} is on the certificate ({names})",
          tls.get("serverName") in names)
    rules = by_kind.get("PrometheusRule", [{}])[0].get("spec", {}).get("groups", [])
    exprs = " ".join(r["expr"] for g in rules for r in g["rules"])
    for name in (f'namespace="{dep["metadata"]["namespace"]}"', f'deployment="{dep["metadata"]["name"]}"',
                 f'container="{c["name"]}"', f'job="{service["metadata"]["name"]}"'):
        check(f"{overlay} + monitoring: the alerts name {name} as rendered", name in exprs)
    dashboards = [x for x in by_kind.get("ConfigMap", []) if x["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    check(f"{overlay} + monitoring: one Grafana dashboard ConfigMap in cattle-dashboards",
          len(dashboards) == 1 and dashboards[0]["metadata"]["namespace"] == "cattle-dashboards")
    board = json.loads(next(iter(dashboards[0]["data"].values()))) if dashboards else {}
    check(f"{overlay} + monitoring: the dashboard is JSON with a uid, and every query names the data source variable",
          board.get("uid") and all(t["datasource"]["uid"] == "${datasource}"
                                   for p in board["panels"] for t in p.get("targets", [])))

print(f"1..{passed + failed}")
print(f"manifests: {passed} passed, {failed} failed", file=sys.stderr)
sys.exit(1 if failed else 0)
