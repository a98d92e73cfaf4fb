# Sourced by the end-to-end scripts: the binary and source folder from the
# arguments, a work folder, fresh certificates, pass/fail counting, and
# starting the server.
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

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
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

# metric NAME: the value of one series on /metrics (NAME with its labels)
metric() { curl -sS --cacert "$ca" "$(url /metrics)" | awk -v n="$1" '$1 == n {print $2}'; }

# post PATH FILE [CONTENT_TYPE]: prints "STATUS" and leaves the body in $work/out
post() {
  curl -sS --cacert "$ca" -o "$work/out" -w '%{http_code}' -H "Content-Type: ${3:-application/json}" \
    --data-binary "@$2" "$(url "$1")"
}

