#!/usr/bin/env bash
# Soak test (issue 7): the release gateway with auth, rate limits (local and Redis-shared) and the
# WAF on, under bounded mixed traffic for SOAK_SECONDS, with config reloads along the way. Reports
# status counts, unexpected errors, latency percentiles and memory over time; exits non-zero when
# the gateway died, an unexpected error exceeded the bound or memory was not flat. Loopback only;
# every process it starts is ended on exit. What it checks and why: docs/operations.md#soak-test.
#
#   scripts/soak.sh                          # make soak: 300 s
#   SOAK_SECONDS=600 scripts/soak.sh
#
# Environment (defaults in brackets):
#   SOAK_SECONDS [300]  traffic time         SOAK_RATE [1200] target requests/s, all classes
#   SOAK_INTERVAL [10]  seconds per report line (and per wrk run)
#   SOAK_SAMPLE [5]     seconds between samples of RSS, /proc fds and /metrics
#   SOAK_WARMUP [min(30, SOAK_SECONDS/4)] seconds left out of the memory judgement
#   SOAK_RSS_GROWTH_MIB [8]  largest accepted RSS growth after warm-up (medians of the first and
#                       last quarter)
#   SOAK_MAX_ERRORS_PER_100K [1]  unexpected responses and socket errors accepted
#   SOAK_RELOADS [4]    config reloads during the run (SIGHUP and YAML edits, alternately)
#   PORTCULLIS_BIN      use this binary instead of building target/release/portcullis
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench/out"
export PATH="$PATH:/usr/sbin"

for cmd in nginx wrk redis-server python3 curl; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "soak: $cmd is missing (make deps-bench installs nginx and wrk; redis-server comes with make deps-test)" >&2; exit 2; }
done

BIN=${PORTCULLIS_BIN:-}
if [ -z "$BIN" ]; then
  echo "soak: cargo build --release -j 2 -p portcullis"
  (cd "$ROOT" && cargo build --release -j 2 -p portcullis)
  BIN="$ROOT/target/release/portcullis"
fi

TMP=$(mktemp -d /tmp/portcullis-soak.XXXXXX)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
declare -A PID=()

# Ends every process in PID[] (the driver first, so its wrk children go with it), bounded, then
# keeps the logs next to the report.
cleanup() {
  local rc=$? name p
  trap - EXIT INT TERM
  for name in driver gateway nginx redis; do
    p=${PID[$name]:-}
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || continue
    case $name in
      gateway) kill -INT "$p" 2>/dev/null || true ;;     # fast shutdown, no drain
      *) kill -TERM "$p" 2>/dev/null || true ;;
    esac
  done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PID[@]}"; do
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  done
  mkdir -p "$OUT/soak-logs-$STAMP"
  cp "$TMP"/*.log "$TMP/conf/soak.yaml" "$OUT/soak-logs-$STAMP/" 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() { # name url: poll until 2xx, at most 15 s
  local name=$1 url=$2
  for _ in $(seq 1 150); do
    kill -0 "${PID[$name]}" 2>/dev/null ||
      { echo "soak: $name exited early; log:" >&2; cat "$TMP/$name.log" >&2 || true; exit 1; }
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "soak: $name not ready at $url after 15 s" >&2; exit 1
}

read -r B1 B2 PORT ADMIN REDIS < <(python3 "$ROOT/bench/soak.py" ports 5)
PORTS=(port="$PORT" admin="$ADMIN" redis="$REDIS" backends="$B1,$B2")
python3 "$ROOT/bench/soak.py" prepare "$TMP" "${PORTS[@]}"

redis-server --bind 127.0.0.1 --port "$REDIS" --save '' --appendonly no \
  --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PID[redis]=$!
for _ in $(seq 1 100); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
    "$REDIS" 2>/dev/null && break
  sleep 0.1
done

nginx -p "$TMP" -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1 &
PID[nginx]=$!
wait_ready nginx "http://127.0.0.1:$B1/healthz"

"$BIN" check --config "$TMP/conf/soak.yaml" >"$TMP/check.log" 2>&1 ||
  { cat "$TMP/check.log" >&2; exit 1; }
# The access log (stdout) is produced and thrown away: the path is exercised, the disk spared.
"$BIN" run --config "$TMP/conf/soak.yaml" >/dev/null 2>"$TMP/gateway.log" &
PID[gateway]=$!
wait_ready gateway "http://127.0.0.1:$ADMIN/readyz"
echo "soak: gateway pid ${PID[gateway]} on 127.0.0.1:$PORT (admin $ADMIN), backends $B1 $B2, redis $REDIS"

export SOAK_BIN_DESC="$BIN, tree $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates Cargo.lock || echo '+local changes')"
set +e
python3 "$ROOT/bench/soak.py" drive "$TMP" "${PORTS[@]}" pid="${PID[gateway]}" out="$OUT" &
PID[driver]=$!
wait "${PID[driver]}"
rc=$?
set -e
if grep -q '"level":"ERROR"\|panicked' "$TMP/gateway.log" 2>/dev/null; then
  echo "soak: the gateway's log has errors (kept in bench/out/soak-logs-$STAMP/gateway.log):" >&2
  grep -m 3 '"level":"ERROR"\|panicked' "$TMP/gateway.log" >&2 || true
  echo "soak: $(grep -c '"level":"ERROR"\|panicked' "$TMP/gateway.log") such lines" >&2
fi
exit "$rc"
