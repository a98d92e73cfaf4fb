#!/usr/bin/env bash
# Builds the container image from the Dockerfile with buildah (no daemon)
# and checks what a cluster would meet on the first day: the image's own
# entrypoint, started from the image's filesystem as its user (65532) with
# a certificate, answers /healthz and one review of each mutating policy
# over TLS verified with --cacert; it runs as non-root; the runtime stage
# holds no compiler; and its size, printed.
#
# Base images (debian:bookworm, debian:bookworm-slim) come from a registry
# when one answers, otherwise they are made here with debootstrap from the
# Debian archive (about a minute) and kept in buildah's storage for the next
# run. Needs root (buildah --isolation chroot, debootstrap).
#
#   scripts/image-test.sh            build and check localhost/hci-admission:test
#   IMAGE=name:tag scripts/image-test.sh
#   DEBIAN_MIRROR=http://... scripts/image-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-localhost/hci-admission:test}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Largest the runtime stage may add to bookworm-slim: the binary and its
# run-time libraries (18 MB measured). A toolchain or a -dev package
# pulled in by mistake is 50 MB or more.
max_added_mb=${MAX_ADDED_MB:-30}

[ "$(id -u)" -eq 0 ] || { echo "image-test: needs root (buildah --isolation chroot, debootstrap)" >&2; exit 2; }
for tool in buildah debootstrap curl jq openssl; do
  command -v "$tool" >/dev/null || { echo "image-test: $tool is missing (scripts/install-deps.sh --image)" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/hci-image-test.XXXXXX)
container=""
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

failed=0
ok() { echo "ok   $1"; }
not_ok() { echo "FAIL $1" >&2; failed=1; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# -- base images ---------------------------------------------------------------
have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# A Debian bookworm root filesystem as the official images have it: minbase,
# the updates and security suites, no package caches; the slim one also
# without documentation, manual pages and translations (and dpkg told not to
# install them again).
make_bases() {
  local rootfs=$work/rootfs
  echo "image-test: no registry answered; making debian:bookworm{,-slim} with debootstrap from $mirror" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  import_base "$rootfs" docker.io/library/debian:bookworm
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  import_base "$rootfs" docker.io/library/debian:bookworm-slim
  rm -rf "$rootfs"
}

import_base() {
  local rootfs=$1 name=$2 ctr
  tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "$name" >/dev/null
  rm -f "$work/rootfs.tar"
  echo "image-test: made $name ($(image_size "$name"))" >&2
}

image_size() { buildah images --format '{{.Size}}' "$1" | head -1; }
# buildah prints sizes for people only ("95.6 MB", decimal units).
image_bytes() {
  image_size "$1" | awk '{ n = $1; u = $2
    m = (u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : 1); printf "%d\n", n * m }'
}

if ! have_image docker.io/library/debian:bookworm || ! have_image docker.io/library/debian:bookworm-slim; then
  if timeout 60 buildah pull --quiet docker.io/library/debian:bookworm >/dev/null 2>&1 &&
    timeout 60 buildah pull --quiet docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
    echo "image-test: base images pulled from docker.io" >&2
  else
    make_bases
  fi
fi

# -- build ---------------------------------------------------------------------
started=$(date +%s)
if ! buildah bud --isolation chroot --pull=never --layers -f Dockerfile -t "$image" . >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "image-test: the image did not build (log above)" >&2
  exit 1
fi
echo "image-test: built $image in $(($(date +%s) - started)) s" >&2

# -- run the entrypoint from the image's filesystem ----------------------------
config() { buildah inspect --type image "$image" | jq -c ".OCIv1.config.$1"; }
user=$(config User | jq -r .)
check "the image runs as user 65532:65532 (config User: $user)" '[ "$user" = "65532:65532" ]'
mapfile -t command < <( (config Entrypoint; config Cmd) | jq -r '.[]?')
check "the entrypoint is the server with --cert-dir=/certs (${command[*]})" \
  '[ "${command[0]:-}" = /usr/local/bin/hci-admission ] && [[ " ${command[*]} " == *" --cert-dir=/certs "* ]]'

# A serving certificate for localhost, readable by the image's user (as a
# Kubernetes Secret volume mounts it: files 0644).
certs/make-certs.sh -d 2 "$work/certs" >/dev/null 2>&1
chmod 0755 "$work/certs"
chmod 0644 "$work/certs"/tls.crt "$work/certs"/tls.key

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
container=$(buildah from --pull=never "$image")
buildah run --isolation chroot --user "$user" -v "$work/certs:/certs:ro" "$container" -- \
  "${command[@]}" --port="$port" --bind=127.0.0.1 >"$work/server.log" 2>&1 &
server_pid=$!
url=https://localhost:$port
ready=""
for _ in $(seq 100); do
  if curl -sf --cacert "$work/certs/ca.crt" "$url/healthz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  cat "$work/server.log" >&2
  echo "image-test: the server in the image did not answer /healthz" >&2
  exit 1
fi
ok "/healthz answers over TLS verified with --cacert"

# The server's process, found by the port it listens on.
pid=$(ss -Htlnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status" 2>/dev/null || true)
check "the server process runs as UID 65532 (real, effective, saved, fs: $uids)" '[ "$uids" = "65532 65532 65532 65532" ]'
exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
mnt=$(buildah mount "$container")
# buildah run mounts the image's filesystem at a path of its own: compare
# the running executable with the image's file by content.
check "it is the image's own binary ($exe)" 'cmp -s "/proc/$pid/exe" "$mnt/usr/local/bin/hci-admission"'

review() {  # review PATH FIXTURE -> the AdmissionReview answer
  curl -sS --cacert "$work/certs/ca.crt" -H 'Content-Type: application/json' \
    --data-binary "@$2" "$url$1"
}
# The e2e fixtures hold {path, review, ...}: the review is what is sent.
for fixture in test/fixtures/e2e/csi-no-affinity.json test/fixtures/e2e/kubevirt-no-infra.json; do
  path=$(jq -r .path "$fixture")
  jq -c .review "$fixture" >"$work/review.json"
  answer=$(review "$path" "$work/review.json" || true)
  uid=$(jq -r .review.request.uid "$fixture")
  patch=$(jq -r '.response.patch // empty' <<<"$answer" | base64 -d 2>/dev/null || true)
  check "$path: allowed with a JSON Patch for request $uid (patch: ${patch:0:80})" \
    '[ "$(jq -r .response.uid <<<"$answer")" = "$uid" ] && [ "$(jq -r .response.allowed <<<"$answer")" = true ] &&
     [ "$(jq -r .response.patchType <<<"$answer")" = JSONPatch ] && jq -e "length > 0" <<<"$patch" >/dev/null'
done

# -- what the runtime stage holds ----------------------------------------------
compilers=$(cd "$mnt" && ls -d usr/bin/gcc* usr/bin/g++* usr/bin/cc usr/bin/c++ usr/bin/cpp* usr/bin/clang* \
  usr/bin/x86_64-linux-gnu-g* usr/bin/ld usr/bin/as usr/lib/gcc 2>/dev/null | tr '\n' ' ' || true)
check "the runtime stage holds no compiler, assembler or linker${compilers:+ (found: $compilers)}" '[ -z "$compilers" ]'
dev_packages=$(awk '/^Package: / {p=$2} /^Status: install ok installed/ {print p}' "$mnt/var/lib/dpkg/status" |
  grep -E -- '-dev$|^(gcc|g\+\+|cpp|binutils|clang|meson|ninja-build|make)(-[0-9]+)?$' | tr '\n' ' ' || true)
check "no toolchain or -dev package is installed${dev_packages:+ (found: $dev_packages)}" '[ -z "$dev_packages" ]'
buildah umount "$container" >/dev/null

size=$(image_size "$image")
base=$(image_size docker.io/library/debian:bookworm-slim)
added_mb=$((($(image_bytes "$image") - $(image_bytes docker.io/library/debian:bookworm-slim)) / 1000000))
echo "image-test: $image is $size: debian:bookworm-slim ($base) + ${added_mb} MB"
check "the runtime stage adds at most $max_added_mb MB to bookworm-slim (${added_mb} MB)" '[ "$added_mb" -le "$max_added_mb" ]'

kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null || true
server_pid=""
if [ "$failed" -ne 0 ]; then
  echo "--- server log" >&2
  cat "$work/server.log" >&2
  echo "image-test: FAILED" >&2
  exit 1
fi
echo "image-test: all checks passed"
