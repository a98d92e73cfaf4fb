#!/usr/bin/python3
"""The monitoring component (manifests/components/monitoring) as Prometheus
and Grafana read it, for test/e2e/monitoring.sh.

  prometheus_check.py rules COMPONENT OUT.yml
      The PrometheusRule's groups as a Prometheus rule file.
  prometheus_check.py rule-tests COMPONENT FIXTURE OUT.yml
      FIXTURE (promtool test rules) with each expected alert's untemplated
      annotations (its runbook line) filled in from the rule.
  prometheus_check.py scrape-config COMPONENT TARGET CA TWIN RULES OUT.yml
      A Prometheus configuration scraping TARGET as the ServiceMonitor says
      (scheme, path, TLS server name; the CA file CA), every second, plus
      TWIN (kubelet and kube-state-metrics, see `twin`).
  prometheus_check.py twin SERVER_PID DEPLOYMENT_YAML LIMIT_SCALE
      Prints "listening on PORT" (a free port it holds), then serves what
      the kubelet's cAdvisor and kube-state-metrics would say about the
      server's pod: its working set (the process's RSS, read live), its
      memory limit (the Deployment's, times LIMIT_SCALE), and whether the
      Deployment has a replica available (the process is alive). Neither
      can run here.
  prometheus_check.py dashboard COMPONENT PROMETHEUS_URL
  prometheus_check.py alerts COMPONENT PROMETHEUS_URL PROVOKED
      Evaluate every dashboard query (Grafana's variables substituted) or
      every alert expression through Prometheus's HTTP API. Print one
      "PASS what" or "FAIL what" line per check.
"""
import json
import os
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

# Series that exist only in modes the test does not run: the self-managed
# certificates (--self-managed-certs) need a writable Secret and webhook
# configurations.
ONLY_SELF_MANAGED = "hci_admission_self_managed_cert_"
GRAFANA_VARIABLES = {"$namespace": "hci-admission", "$pod": ".*", "$__rate_interval": "1m"}


def load(component, name):
    with open(os.path.join(component, name)) as f:
        return yaml.safe_load(f)


def alert_rules(component):
    return [r for g in load(component, "prometheusrule.yaml")["spec"]["groups"] for r in g["rules"] if "alert" in r]


def query(prometheus, promql):
    """Prometheus's answer to an instant query: (status, result or error)."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    return body["status"], body.get("data", {}).get("result", body.get("error"))


def verdict(ok, what):
    print(("PASS " if ok else "FAIL ") + " ".join(what.split()))


def rules_file(component, out):
    with open(out, "w") as f:
        yaml.safe_dump({"groups": load(component, "prometheusrule.yaml")["spec"]["groups"]}, f, sort_keys=False)


def rule_tests(component, fixture, out):
    static = {r["alert"]: {k: v for k, v in r.get("annotations", {}).items() if "{{" not in v}
              for r in alert_rules(component)}
    with open(fixture) as f:
        tests = yaml.safe_load(f)
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            for alert in case.get("exp_alerts", []):
                alert.setdefault("exp_annotations", {}).update(static[case["alertname"]])
    with open(out, "w") as f:
        yaml.safe_dump(tests, f, sort_keys=False)


def scrape_config(component, target, ca, twin, rules, out):
    endpoint = load(component, "servicemonitor.yaml")["spec"]["endpoints"][0]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [rules],
        "scrape_configs": [
            {"job_name": "hci-admission", "scheme": endpoint["scheme"], "metrics_path": endpoint["path"],
             "tls_config": {"ca_file": ca, "server_name": endpoint["tlsConfig"]["serverName"]},
             # What the Prometheus Operator adds from the Service's endpoints.
             "static_configs": [{"targets": [target],
                                 "labels": {"namespace": "hci-admission", "pod": "hci-admission-0"}}]},
            {"job_name": "kubelet-and-kube-state-metrics", "honor_labels": True,
             "static_configs": [{"targets": [twin]}]},
        ],
    }
    with open(out, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def quantity_bytes(quantity):
    """A Kubernetes memory quantity in binary units (128Mi) as bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)


def twin(server_pid, deployment, limit_scale):
    with open(deployment) as f:
        limit = quantity_bytes(yaml.safe_load(f)["spec"]["template"]["spec"]["containers"][0]
                               ["resources"]["limits"]["memory"]) * int(limit_scale)
    labels = 'namespace="hci-admission",pod="hci-admission-0",container="hci-admission"'

    def rss():
        try:
            with open(f"/proc/{server_pid}/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            now = rss()
            lines = [f'kube_pod_container_resource_limits{{{labels},resource="memory",unit="byte"}} {limit}',
                     'kube_deployment_status_replicas_available{namespace="hci-admission",deployment="hci-admission"} '
                     f'{0 if now is None else 1}']
            if now is not None:
                lines.append(f"container_memory_working_set_bytes{{{labels}}} {now}")
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def grafana_to_promql(expr):
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard(component, prometheus):
    with open(os.path.join(component, "dashboard.json")) as f:
        board = json.load(f)
    targets = [(p["title"], t) for p in board["panels"] for t in p.get("targets", [])]
    verdict(len(targets) >= 20, f"dashboard: {len(targets)} queries in {len(board['panels'])} panels")
    for title, target in targets:
        promql = grafana_to_promql(target["expr"])
        status, result = query(prometheus, promql)
        what = f"dashboard: {title} / {target.get('legendFormat') or target['refId']}"
        if status != "success":
            verdict(False, f"{what}: Prometheus refused it: {result} ({promql})")
        elif ONLY_SELF_MANAGED in promql:
            verdict(True, f"{what}: parses (self-managed certificates only)")
        else:
            verdict(len(result) > 0, f"{what}: {len(result)} series ({promql})")
    # Template variables: label_values(SELECTOR, LABEL) through the series API.
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = grafana_to_promql(variable["definition"])
        selector, label = definition[len("label_values("):-1].rsplit(",", 1)
        url = f"{prometheus}/api/v1/series?" + urllib.parse.urlencode({"match[]": selector})
        with urllib.request.urlopen(url, timeout=10) as r:
            values = {s.get(label.strip()) for s in json.load(r)["data"]} - {None}
        verdict(bool(values), f"dashboard: variable ${variable['name']} has values {sorted(values)}")


def alerts(component, prometheus, provoked):
    provoked = set(filter(None, provoked.split(",")))
    rules = alert_rules(component)
    names = {r["alert"] for r in rules}
    verdict(provoked <= names, f"alerts: the test provokes only alerts that exist ({sorted(provoked - names)})")
    for rule in rules:
        name = rule["alert"]
        verdict("runbook" in rule.get("annotations", {}) and rule.get("labels", {}).get("severity"),
                f"alerts: {name} has a severity and a runbook line")
        status, result = query(prometheus, rule["expr"])
        if status != "success":
            verdict(False, f"alerts: {name}: Prometheus refused its expression: {result}")
        elif name in provoked:
            verdict(len(result) > 0, f"alerts: {name} (provoked) returns {len(result)} series")
        else:
            verdict(len(result) == 0, f"alerts: {name} (not provoked) returns nothing: {result}")
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules?type=alert", timeout=10) as r:
        loaded = {rule["name"]: rule for g in json.load(r)["data"]["groups"] for rule in g["rules"]}
    for name in sorted(names):
        rule = loaded.get(name, {})
        verdict(rule.get("health") == "ok",
                f"alerts: Prometheus evaluates {name} without error ({rule.get('health')} {rule.get('lastError', '')})")
        want = {"pending", "firing"} if name in provoked else {"inactive"}
        verdict(rule.get("state") in want, f"alerts: {name} is {rule.get('state')} (want {'/'.join(sorted(want))})")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"rules": rules_file, "rule-tests": rule_tests, "scrape-config": scrape_config, "twin": twin,
     "dashboard": dashboard, "alerts": alerts}[command](*args)
