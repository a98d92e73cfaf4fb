# Sourced by the end-to-end scripts: the binary and source folder from the
# arguments, a work folder, fresh certificates, checks reported as TAP (one
# "ok N - what" line each, which Meson records per check), and starting
# the server. Each script ends with `finish`.
#   source lib.sh BINARY SOURCE_DIR
bin=$(realpath "$1")
src=$(realpath "$2")
py=/usr/bin/python3
work=$(mktemp -d)
server_pid=""
passed=0
failed=0

cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# TAP goes to fd 7, the original stdout; everything else the scripts and
# their commands print goes to stderr, so it cannot be taken for TAP.
exec 7>&1 1>&2
# One TAP line: a description may hold newlines (a command's output), which
# would end it early.
tap() {
  local line="$*"
  line=${line//$'\n'/ }
  printf '%s\n' "${line:0:2000}" >&7
}
pass() { passed=$((passed + 1)); tap "ok $((passed + failed)) - $*"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*" >&2
  tap "not ok $((passed + failed)) - $*"
}
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# The TAP plan, and the exit code: non-zero when a check failed.
finish() {
  echo "1..$((passed + failed))" >&7
  echo "$(basename "$0" .sh): $passed passed, $failed failed" >&2
  [ "$failed" -eq 0 ]
}

"$src/certs/make-certs.sh" -d 2 "$work/certs" >/dev/null 2>&1 || { echo "cannot make certificates" >&2; exit 1; }
ca="$work/certs/ca.crt"

# How the server reads the cluster unless a test says otherwise: offline.
cluster_args=(--cluster-state "$src/test/fixtures/cluster")

# serving_port LOG [TRIES]: waits (0.05 s a try, 100 tries) for the server
# writing LOG to say it serves, prints its port; fails, showing LOG, if not.
serving_port() {
  local p=""
  for _ in $(seq 1 "${2:-100}"); do
    p=$(grep 'serving' "$1" | grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.05
  done
  echo "server did not start ($1):" >&2
  cat "$1" >&2
  return 1
}

# start_server LOG ARGS...: starts on a free port, sets $port and $server_pid.
start_server() {
  local log=$1; shift
  "$bin" --cert-dir "$work/certs" --port 0 --bind 127.0.0.1 "${cluster_args[@]}" "$@" >"$log" 2>&1 &
  server_pid=$!
  port=$(serving_port "$log") || exit 1
}

url() { echo "https://localhost:$port$1"; }

# free_port: a port nothing listens on now (for a process that cannot pick
# its own; another may take it before that process binds).
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# metric NAME: the value of one series on /metrics (NAME with its labels)
metric() { curl -sS --cacert "$ca" "$(url /metrics)" | awk -v n="$1" '$1 == n {print $2}'; }

# post PATH FILE [CONTENT_TYPE]: prints "STATUS" and leaves the body in $work/out
post() {
  curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H "Content-Type: ${3:-application/json}" \
    --data-binary "@$2" "$(url "$1")"
}


# The review most checks send: a CSI controller pod without affinity.
csi=/mutate/csi-controller-placement
good="$src/test/fixtures/e2e/csi-no-affinity.json"
jq .review "$good" >"$work/good.json"
raw="$src/test/e2e/raw_client.py"

# expect_status WHAT WANT STATUS [BODY_PATTERN]: STATUS is WANT and $work/out has the pattern
expect_status() {
  if [ "$3" = "$2" ] && { [ -z "${4:-}" ] || grep -q -- "$4" "$work/out"; }; then pass "$1"
  else fail "$1: want $2${4:+ with '$4'}, got $3: $(head -c 300 "$work/out")"; fi
}

# startup_error WHAT PATTERN ARGS...: the binary exits non-zero with one line naming the problem
startup_error() {
  local what=$1 pattern=$2; shift 2
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q -- "$pattern"; then pass "$what"
  else fail "$what: rc=$rc output: $out"; fi
}

# The fake kube-apiserver (test/fake_apiserver.py): its certificates,
# starting and stopping it, and calling it.
api_pid=""
api_token=""
make_api_certs() { "$src/certs/make-certs.sh" -s kubernetes -n default -d 2 "$work/api-certs" >/dev/null 2>&1; }
stop_api() { [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null; api_pid=""; }
# start_api ARGS...: makes its certificates and starts it with ARGS; sets
# api_pid and api_port (exported, with api and control, for bash -c checks).
start_api() {
  make_api_certs
  "$py" "$src/test/fake_apiserver.py" --certs "$work/api-certs" "$@" >"$work/api.log" 2>&1 &
  api_pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/api.log" && break; sleep 0.05; done
  api_port=$(sed -n 's/listening on //p' "$work/api.log")
  [ -n "$api_port" ] || { echo "fake API server did not start" >&2; cat "$work/api.log" >&2; exit 1; }
  export api_port api_token work
}
# api PATH [CURL ARGS...]: one call, sending $api_token when set;
# control JSON: its /_control endpoint (failures, delays, objects).
api() {
  curl -sS --cacert "$work/api-certs/ca.crt" ${api_token:+-H "Authorization: Bearer $api_token"} \
    "https://localhost:$api_port$1" "${@:2}"
}
control() { api /_control -H 'Content-Type: application/json' -d "$1" >/dev/null; }
export -f api control
# write_kubeconfig FILE PORT TOKEN_FILE: a kubeconfig for the fake API
# server on PORT, its CA and token file named relative to the kubeconfig.
write_kubeconfig() {
  cat >"$1" <<KUBECONFIG
# written the way kubectl writes them
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: api-certs/ca.crt
    server: https://127.0.0.1:$2
  name: harvester
contexts:
- context:
    cluster: harvester
    user: "webhook"
  name: harvester
current-context: harvester
preferences: {}
users:
- name: webhook
  user:
    tokenFile: $3
KUBECONFIG
}
