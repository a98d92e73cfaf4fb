#!/usr/bin/env bash
# Makes a CA and a serving certificate for hci-admission with OpenSSL.
#
#   certs/make-certs.sh [-s SERVICE] [-n NAMESPACE] [-d DAYS] [-c CA_DIR] OUT_DIR
#
# With -c, the serving certificate is signed by the CA already in CA_DIR
# (ca.crt, ca.key) instead of a new one: a rotation clients keep trusting.
# Writes OUT_DIR/{ca.crt,ca.key,tls.crt,tls.key} (the layout of a Kubernetes
# TLS Secret plus the CA) and prints the base64 caBundle for the webhook
# configurations as the last line. The serving certificate's SANs are
# SERVICE.NAMESPACE.svc (what kube-apiserver checks), its .cluster.local
# form, and localhost, 127.0.0.1 and ::1 for local use. Keys are ECDSA P-256:
# the cheapest handshake for the API server.
set -euo pipefail

service=hci-admission
namespace=hci-admission
days=365
ca_dir=""
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while getopts "s:n:d:c:h" opt; do
  case "$opt" in
    s) service=$OPTARG ;;
    n) namespace=$OPTARG ;;
    d) days=$OPTARG ;;
    c) ca_dir=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
out=$1
[[ "$days" =~ ^[1-9][0-9]*$ ]] || { echo "make-certs: -d wants a number of days, got '$days'" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed" >&2; exit 1; }

mkdir -p "$out"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "$ca_dir" ]; then
  [ -f "$ca_dir/ca.crt" ] && [ -f "$ca_dir/ca.key" ] || { echo "make-certs: no ca.crt and ca.key in $ca_dir" >&2; exit 1; }
  [ "$(realpath "$ca_dir")" = "$(realpath "$out")" ] || cp "$ca_dir/ca.crt" "$ca_dir/ca.key" "$out/"
else
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
    -subj "/CN=hci-admission CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

cat > "$work/leaf.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$out/tls.key" -out "$work/leaf.csr" \
  -subj "/CN=${service}.${namespace}.svc" 2>/dev/null
openssl x509 -req -in "$work/leaf.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -CAcreateserial -CAserial "$work/ca.srl" -days "$days" \
  -extfile "$work/leaf.ext" -out "$out/tls.crt" 2>/dev/null
chmod 644 "$out/ca.crt" "$out/tls.crt"

echo "wrote $out/ca.crt $out/tls.crt $out/tls.key (SANs: ${service}.${namespace}.svc, localhost, 127.0.0.1, ::1; $days days)" >&2
echo "caBundle:" >&2
base64 -w0 < "$out/ca.crt"
echo
