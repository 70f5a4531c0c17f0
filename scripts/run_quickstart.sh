#!/usr/bin/env bash
# Starts the two demo backends of conf/quickstart.yaml and runs the gateway in the foreground.
# Ctrl-C stops everything.
set -euo pipefail
bin=${1:-target/release/portcullis}
config=${2:-conf/quickstart.yaml}
here=$(cd "$(dirname "$0")" && pwd)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
python3 "$here/demo_backend.py" 9001 blue & pids+=($!)
python3 "$here/demo_backend.py" 9002 green & pids+=($!)
"$bin" check --config "$config"
cat <<'TRY'

Portcullis is starting on http://127.0.0.1:8080 (admin on 127.0.0.1:9901). Try:

  curl -s localhost:8080/api/hello                 # proxied, 3:1 between blue and green
  curl -s --http2-prior-knowledge localhost:8080/  # h2c
  curl -si localhost:8080/maintenance              # direct response from the gateway
  curl -si localhost:8080/old-docs                 # redirect
  curl -s localhost:9901/metrics | grep portcullis_requests_total
  curl -s localhost:9901/readyz
  kill -HUP $(pgrep -x portcullis)                 # reload conf/ without dropping a request

The JSON access log follows on stdout. Ctrl-C stops the gateway and the demo backends.

TRY
"$bin" run --config "$config" &
gw=$!
pids+=("$gw")
wait "$gw"
