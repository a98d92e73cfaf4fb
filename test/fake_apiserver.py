#!/usr/bin/python3
"""A stand-in for kube-apiserver in tests: a real HTTPS server (its own CA)
answering the real LIST paths in the real list format, with pagination
(limit/continue), bearer-token checks, and failures and delays on demand.

  fake_apiserver.py --certs DIR [--port N] [--state FILE_OR_DIR]
                    [--volumes N] [--nodes N] [--pods N] [--pdbs N] [--token T]
                    [--missing RESOURCE,...]

Lists the kinds the upgrade guard reads (nodes, pods, poddisruptionbudgets,
Longhorn volumes and instancemanagers, kubevirts, upgrades, upgradeplans);
--missing makes some answer 404 as when their CRD is not installed.

Prints "listening on PORT" once ready. Control, over the same TLS port:
  POST /_control  {"fail": 401|403|404|500|503|"garbage"|"close"|"notalist"|null,
                   "fail_only": RESOURCE|null (fail only lists of that resource),
                   "delay": seconds, "expire_continue": bool, "tokens": [..],
                   "add": [objects], "remove": [names], "missing": [resources]}
  GET  /_stats    {"lists": N, "pages": N, "listed": [paths of the last 50 lists],
                   "authorizations": [...], "writes": [...]}

Single objects, as the server's self-managed certificates use them:
Secrets (GET, POST, PUT with resourceVersion conflicts) and webhook
configurations (GET, PATCH with JSON Patch), seeded from --state.
"""
import argparse
import base64
import glob
import gzip
import json
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
CONTROL = {"fail": None, "fail_only": None, "delay": 0.0, "expire_continue": False, "tokens": None}
# (group, resource) -> kind, for LIST
RESOURCES = {("", "nodes"): "Node", ("", "pods"): "Pod", ("policy", "poddisruptionbudgets"): "PodDisruptionBudget",
             ("longhorn.io", "volumes"): "Volume", ("longhorn.io", "instancemanagers"): "InstanceManager",
             ("kubevirt.io", "kubevirts"): "KubeVirt", ("harvesterhci.io", "upgrades"): "Upgrade",
             ("management.harvesterhci.io", "upgradeplans"): "UpgradePlan",
             ("", "persistentvolumeclaims"): "PersistentVolumeClaim"}
MISSING = set()  # resources answered with 404, as without their CRD
STATS = {"lists": 0, "pages": 0, "listed": [], "authorizations": [], "writes": []}
OBJECTS = {}  # (group, kind) -> list of objects
SINGLES = {}  # API path -> object, for GET/POST/PUT/PATCH of one object
RESOURCE_VERSION = [20000]
SINGLE_KINDS = {("", "Secret"): "secrets", ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
                "validatingwebhookconfigurations", ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
                "mutatingwebhookconfigurations"}
PAGE_CACHE = {}


def volume(i, replicas, state, ns, pvc):
    name = f"pvc-{i:08d}-5d4e-4a9b-9c3f-{i:012d}"
    kube = {"namespace": ns, "pvcName": pvc, "pvName": name, "pvStatus": "Bound", "lastPVCRefAt": "",
            "lastPodRefAt": "", "workloadsStatus": [{"podName": f"{pvc}-0", "podStatus": "Running",
                                                     "workloadName": pvc, "workloadType": "StatefulSet"}]}
    return {
        "apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
        "metadata": {"name": name, "namespace": "longhorn-system", "uid": f"0000-{i}", "resourceVersion": str(1000 + i),
                     "generation": 3, "creationTimestamp": "2026-01-02T03:04:05Z",
                     "labels": {"longhornvolume": name, "recurring-job-group.longhorn.io/default": "enabled"},
                     "finalizers": ["longhorn.io"]},
        "spec": {"numberOfReplicas": replicas, "size": "10737418240", "frontend": "blockdev", "dataEngine": "v1",
                 "accessMode": "rwo", "migratable": False, "encrypted": False, "dataLocality": "disabled",
                 "staleReplicaTimeout": 30, "nodeID": "" if state == "detached" else "node-1",
                 "replicaAutoBalance": "ignored", "revisionCounterDisabled": True, "snapshotDataIntegrity": "ignored",
                 "backupCompressionMethod": "lz4", "unmapMarkSnapChainRemoved": "ignored",
                 "diskSelector": [], "nodeSelector": [], "fromBackup": "", "image": "longhornio/longhorn-engine:v1.8.1"},
        "status": {"state": state, "robustness": "healthy" if state == "attached" else "unknown",
                   "currentNodeID": "" if state == "detached" else "node-1", "actualSize": 1048576 * (i % 97),
                   "frontendDisabled": False, "lastBackup": "", "expansionRequired": False,
                   "kubernetesStatus": kube, "ownerID": "node-1", "shareState": "", "currentImage": "longhornio/longhorn-engine:v1.8.1",
                   "conditions": [{"type": t, "status": "False", "reason": "", "message": "",
                                   "lastProbeTime": "", "lastTransitionTime": "2026-01-02T03:04:05Z"}
                                  for t in ("TooManySnapshots", "Scheduled", "Restore", "WaitForBackingImage")]},
    }


def pod(i, app, ns, replicas_node):
    """A pod of a Deployment as the API returns it, at its usual size."""
    name = f"{app}-7d9f8c6b5-{i:05d}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"pod-{i}", "resourceVersion": str(50000 + i),
                     "creationTimestamp": "2026-01-02T03:04:05Z", "generateName": f"{app}-7d9f8c6b5-",
                     "labels": {"app": app, "pod-template-hash": "7d9f8c6b5", "tier": "backend"},
                     "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-02T03:04:05Z"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-7d9f8c6b5",
                                          "uid": f"rs-{app}", "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"nodeName": replicas_node, "serviceAccountName": "default", "restartPolicy": "Always",
                 "containers": [{"name": "app", "image": f"registry.example/{app}:1.2.3",
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                 "env": [{"name": "MODE", "value": "production"}],
                                 "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}]}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                                 {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                 "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}]},
        "status": {"phase": "Running", "podIP": f"10.52.{i // 250 % 250}.{i % 250}", "hostIP": "10.0.0.1", "qosClass": "Burstable",
                   "startTime": "2026-01-02T03:04:05Z",
                   "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-02T03:04:06Z"}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "started": True,
                                          "image": f"registry.example/{app}:1.2.3", "imageID": "sha256:" + "ab" * 32,
                                          "containerID": "containerd://" + "cd" * 32,
                                          "state": {"running": {"startedAt": "2026-01-02T03:04:06Z"}}}]},
    }


def pdb(app, ns, replicas):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": f"{app}-pdb", "namespace": ns, "uid": f"pdb-{app}", "resourceVersion": "777",
                         "generation": 1, "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}},
            "status": {"currentHealthy": replicas, "desiredHealthy": replicas - 1, "disruptionsAllowed": 1,
                       "expectedPods": replicas, "observedGeneration": 1,
                       "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                                       "message": "", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}


def load_state(path):
    files = sorted(glob.glob(os.path.join(path, "*.json"))) if os.path.isdir(path) else [path]
    for f in files:
        doc = json.load(open(f))
        items = doc["items"] if "items" in doc else [doc]
        for o in items:
            if "kind" not in o and doc.get("kind", "").endswith("List") and doc["kind"] != "List":
                o = dict(o, kind=doc["kind"][:-4], apiVersion=doc["apiVersion"])
            add(o)


def single_path(group, resource, ns, name):
    base = f"/apis/{group}/v1" if group else "/api/v1"
    return f"{base}/namespaces/{ns}/{resource}/{name}" if ns else f"{base}/{resource}/{name}"


def stamp(o):
    RESOURCE_VERSION[0] += 1
    o["metadata"]["resourceVersion"] = str(RESOURCE_VERSION[0])
    o["metadata"].setdefault("uid", str(uuid.uuid4()))
    o["metadata"].setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def add(o):
    group = o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else ""
    if (group, o["kind"]) in SINGLE_KINDS:
        stamp(o)
        SINGLES[single_path(group, SINGLE_KINDS[(group, o["kind"])], o["metadata"].get("namespace", ""),
                            o["metadata"]["name"])] = o
        return
    OBJECTS.setdefault((group, o["kind"]), []).append(o)


def selected(o, selector):
    """An equality-based labelSelector, as kube-apiserver applies it."""
    labels = o["metadata"].get("labels") or {}
    for req in filter(None, (r.strip() for r in selector.split(","))):
        if "!=" in req:
            k, v = (x.strip() for x in req.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "=" in req:
            k, v = (x.strip() for x in req.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif req.startswith("!"):
            if req[1:] in labels:
                return False
        elif req not in labels:
            return False
    return True


def page(group, kind, version, ns, limit, offset, gzipped=False, selector=""):
    key = (group, kind, ns, limit, offset, gzipped, selector)
    with LOCK:
        if key in PAGE_CACHE:
            return PAGE_CACHE[key]
    items = [o for o in OBJECTS.get((group, kind), []) if (not ns or o["metadata"].get("namespace") == ns)
             and selected(o, selector)]
    chunk = items[offset:offset + limit] if limit else items[offset:]
    meta = {"resourceVersion": "12345"}
    if limit and offset + limit < len(items):
        meta["continue"] = base64.b64encode(json.dumps({"offset": offset + limit, "rv": 12345}).encode()).decode()
    api_version = f"{group}/{version}" if group else version
    body = json.dumps({"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": chunk},
                      separators=(",", ":")).encode()
    if gzipped:
        body = gzip.compress(body, compresslevel=6)
    with LOCK:
        PAGE_CACHE[key] = body
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply(self, code, body, content_type="application/json", encoding=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        # Head and body in one write: two small writes meet Nagle and
        # delayed ACKs and cost 40 ms per answer.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.flush_headers()

    def status(self, code, reason, message):
        self.reply(code, json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": message, "reason": reason, "code": code}).encode())

    def do_POST(self):
        if self.path == "/_control":
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with LOCK:
                for o in body.pop("add", []):
                    add(o)
                gone = set(body.pop("remove", []))
                for kind in OBJECTS:
                    OBJECTS[kind] = [o for o in OBJECTS[kind] if o["metadata"]["name"] not in gone]
                if "missing" in body:
                    MISSING.clear()
                    MISSING.update(body.pop("missing"))
                PAGE_CACHE.clear()
                CONTROL.update(body)
            return self.reply(200, b"{}")
        self.write("POST")

    def do_PUT(self):
        self.write("PUT")

    def do_PATCH(self):
        self.write("PATCH")

    def refused(self):
        """Delay, token check and injected failures, as for every API call."""
        with LOCK:
            control = dict(CONTROL)
        if control["fail_only"] and control["fail_only"] not in urlparse(self.path).path.split("/"):
            control["fail"] = None
        with LOCK:
            STATS["pages"] += 1
            STATS["authorizations"].append(self.headers.get("Authorization", ""))
            del STATS["authorizations"][:-20]
        if control["delay"]:
            time.sleep(control["delay"])
        tokens = control["tokens"]
        if tokens is not None and self.headers.get("Authorization", "") not in [f"Bearer {t}" for t in tokens]:
            self.status(401, "Unauthorized", "Unauthorized")
            return True
        fail = control["fail"]
        if fail == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fail == "garbage":
            self.reply(200, b"<html>this is not the API server</html>", "text/html")
            return True
        if fail == "notalist":
            self.reply(200, b'{"kind":"Status","apiVersion":"v1"}')
            return True
        if isinstance(fail, int):
            reasons = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalError", 503: "ServiceUnavailable"}
            self.status(fail, reasons.get(fail, "Unknown"),
                        f'volumes.longhorn.io is {reasons.get(fail, "failing").lower()} (injected by the test)')
            return True
        return False

    def write(self, method):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.refused():
            return
        path = urlparse(self.path).path
        code, answer = self.apply(method, path, body)
        with LOCK:
            STATS["writes"].append({"method": method, "path": path, "code": code})
        if isinstance(answer, str):
            reasons = {404: "NotFound", 409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid", 400: "BadRequest",
                       405: "MethodNotAllowed"}
            return self.status(code, reasons.get(code, "Unknown"), answer)
        self.reply(code, json.dumps(answer).encode())

    def apply(self, method, path, body):
        try:
            doc = json.loads(body)
        except ValueError as e:
            return 400, f"the body is not JSON: {e}"
        with LOCK:
            if method == "POST":  # create into a collection: /api/v1/namespaces/NS/secrets
                parts = path.strip("/").split("/")
                if len(parts) != 5 or parts[:3] != ["api", "v1", "namespaces"] or parts[4] != "secrets":
                    return 405, f"POST is not supported on {path}"
                if self.headers.get("Content-Type") != "application/json":
                    return 415, "create wants application/json"
                name = doc.get("metadata", {}).get("name", "")
                target = f"{path}/{name}"
                if not name or doc["metadata"].get("namespace", parts[3]) != parts[3]:
                    return 400, "the object needs a name and the collection's namespace"
                if target in SINGLES:
                    return 409, f'secrets "{name}" already exists'
                doc["metadata"]["namespace"] = parts[3]
                doc["metadata"].pop("resourceVersion", None)
                stamp(doc)
                SINGLES[target] = doc
                return 201, doc
            current = SINGLES.get(path)
            if current is None:
                return 404, f"{path} not found"
            if method == "PUT":
                if self.headers.get("Content-Type") != "application/json":
                    return 415, "update wants application/json"
                if doc.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
                    return 409, ("Operation cannot be fulfilled: the object has been modified; "
                                 "please apply your changes to the latest version and try again")
                doc["metadata"]["uid"] = current["metadata"]["uid"]
                doc["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"]
                stamp(doc)
                SINGLES[path] = doc
                return 200, doc
            if method == "PATCH":
                if self.headers.get("Content-Type") != "application/json-patch+json":
                    return 415, "only application/json-patch+json patches here"
                import jsonpatch
                try:
                    patched = jsonpatch.apply_patch(current, doc)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                    return 422, f"the patch does not apply: {e}"
                stamp(patched)
                SINGLES[path] = patched
                return 200, patched
        return 405, f"{method} is not supported"

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/_stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS).encode())
        if self.refused():
            return
        with LOCK:
            single = SINGLES.get(url.path)
            single = json.dumps(single).encode() if single else None
        if single:
            return self.reply(200, single)
        if url.path.startswith("/api/v1/namespaces/") and "/secrets/" in url.path or \
                "webhookconfigurations/" in url.path:
            return self.status(404, "NotFound", f"{url.path.rsplit('/', 1)[-1]} not found")
        with LOCK:
            control = dict(CONTROL)
        parts = url.path.strip("/").split("/")
        # /api/v1/nodes | /apis/G/V/volumes | /apis/G/V/namespaces/NS/volumes
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        ns = ""
        if len(rest) == 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if len(rest) != 1:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        if (group, rest[0]) not in RESOURCES or rest[0] in MISSING:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        q = parse_qs(url.query)
        limit = int(q.get("limit", ["0"])[0])
        offset = 0
        if "continue" in q:
            if control["expire_continue"]:
                with LOCK:
                    CONTROL["expire_continue"] = False
                return self.status(410, "Expired", "The provided continue parameter is too old")
            offset = json.loads(base64.b64decode(q["continue"][0]))["offset"]
        else:
            with LOCK:
                STATS["lists"] += 1
                STATS["listed"].append(url.path + (f"?labelSelector={q['labelSelector'][0]}" if "labelSelector" in q else ""))
                del STATS["listed"][:-50]
        # Like kube-apiserver (APIResponseCompression), large lists are sent
        # gzipped to clients that accept it.
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        body = page(group, RESOURCES[(group, rest[0])], version, ns, limit, offset, gzipped,
                    q.get("labelSelector", [""])[0])
        self.reply(200, body, encoding="gzip" if gzipped else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state")
    ap.add_argument("--volumes", type=int, default=0, help="generate N volumes, 1 in 50 single-replica detached")
    ap.add_argument("--nodes", type=int, default=0)
    ap.add_argument("--pods", type=int, default=0, help="generate N Running, Ready pods in 200 namespaces")
    ap.add_argument("--pdbs", type=int, default=0, help="generate N PDBs (maxUnavailable 1) over the pods' apps")
    ap.add_argument("--missing", default="", help="resources answered with 404 (comma-separated)")
    ap.add_argument("--token")
    a = ap.parse_args()
    MISSING.update(r for r in a.missing.split(",") if r)
    if a.state:
        load_state(a.state)
    for i in range(a.nodes):
        labels = {"kubernetes.io/hostname": f"node-{i}", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
        if i < 3:
            labels["node-role.kubernetes.io/control-plane"] = "true"
        add({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}", "labels": labels}})
    # Apps of 10 replicas each, spread over the nodes; the first --pdbs apps
    # have a PDB.
    apps = max(1, (a.pods + 9) // 10)
    for i in range(a.pods):
        app = i % apps
        add(pod(i, f"app-{app}", f"ns-{app % 200}", f"node-{i % max(1, a.nodes)}"))
    for app in range(min(a.pdbs, apps) if a.pods else 0):
        add(pdb(f"app-{app}", f"ns-{app % 200}", len(range(app, a.pods, apps))))
    for i in range(a.volumes):
        single = i % 50 == 0
        add(volume(i, 1 if single else 3, "detached" if single else "attached", f"ns-{i % 7}", f"data-{i}"))
    if a.token:
        CONTROL["tokens"] = [a.token]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(a.certs, "tls.crt"), os.path.join(a.certs, "tls.key"))
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
