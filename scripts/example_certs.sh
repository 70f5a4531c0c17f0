#!/usr/bin/env bash
# Makes the throw-away certificate conf/examples/tls.yaml refers to (never committed: keys are
# generated on each machine). Idempotent: keeps a certificate that is valid for another day.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/conf/examples/tls"
mkdir -p "$dir"
if [ -s "$dir/cert.pem" ] && openssl x509 -checkend 86400 -noout -in "$dir/cert.pem" >/dev/null 2>&1; then
  exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:*.localhost" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
chmod 600 "$dir/key.pem"
echo "made $dir/cert.pem (self-signed, 30 days)"
