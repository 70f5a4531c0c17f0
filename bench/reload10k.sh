#!/usr/bin/env bash
# Reload of a 10k-route config under load (issue 9: "reload of a 10k-route config completes in
# under a second without a latency spike visible at p99"). Loopback only; stops by itself; every
# process it starts is killed on exit. See docs/performance.md for what it measures and why.
#
#   bench/reload10k.sh                                  # 10 000 routes, 2 x 30 s at 1000 req/s
#   RELOAD_ROUTES=2000 RELOAD_DURATION=10 bench/reload10k.sh
#
# What it does: generates a config of RELOAD_ROUTES routes in four shapes (exact hosts, one host
# with many path prefixes, regex paths, wildcard hosts) plus a marker route whose direct response
# names the config generation, checks it with `portcullis check`, starts an nginx backend and the
# release gateway (directory watch on; the gateway pinned to one core, nginx, oha and the driver
# to the other, as bench/run.sh does), writes every later generation aside, then drives
# `GET /svcNNNN/items` (a route in the middle of the table) with oha at a fixed rate (open loop,
# latency-corrected), twice:
#   1. baseline: RELOAD_DURATION seconds without reloads;
#   2. reloads:  RELOAD_DURATION seconds while bench/reload_driver.py renames RELOAD_COUNT
#      pre-written configs into the watched directory (atomic, as a ConfigMap update is), evenly
#      spaced; after each, it polls the marker route until it answers the new generation.
# In both runs the driver polls the marker at the same cadence over one keep-alive connection, and
# no config is generated inside the measured window (that used to compete with the gateway).
# It reports each reload's duration as the gateway logs it (`elapsed_ms` of `config reloaded`,
# the same time `portcullis_config_reload_duration_seconds` observes), the time from the rename to
# the new routes answering (includes `reload_debounce`), p50/p99/p99.9 and errors of both runs,
# and writes bench/out/reload10k-STAMP.json.
#
# Environment (defaults in brackets):
#   RELOAD_ROUTES [10000]   RELOAD_DURATION [30] seconds per run   RELOAD_COUNT [10] reloads
#   RELOAD_RATE [1000] req/s   RELOAD_CONNS [20] oha connections
#   RELOAD_DEBOUNCE [100ms] server.reload_debounce of the generated config
#   RELOAD_BASE_PORT [28080] ports BASE..BASE+2 on 127.0.0.1
#   RELOAD_PIN [1] pin with taskset (0: no pinning)   RELOAD_PROXY_CPU [1]   RELOAD_LOAD_CPU [0]
#   PORTCULLIS_BIN [target/release/portcullis] built with `cargo build --release -j2` if missing
# Needs nginx, oha, curl, python3, taskset (make deps-bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
OUT="$BENCH/out"
ROUTES=${RELOAD_ROUTES:-10000}
DURATION=${RELOAD_DURATION:-30}
COUNT=${RELOAD_COUNT:-10}
RATE=${RELOAD_RATE:-1000}
CONNS=${RELOAD_CONNS:-20}
DEBOUNCE=${RELOAD_DEBOUNCE:-100ms}
BASE=${RELOAD_BASE_PORT:-28080}
BACKEND_PORT=$BASE PROXY_PORT=$((BASE + 1)) ADMIN_PORT=$((BASE + 2))
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}
PIN=${RELOAD_PIN:-1}
PROXY_CPU=${RELOAD_PROXY_CPU:-1}
LOAD_CPU=${RELOAD_LOAD_CPU:-0}

export PATH="$PATH:/usr/sbin"
for cmd in nginx oha curl python3 taskset; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "reload10k: $cmd is missing (make deps-bench installs nginx and oha)" >&2; exit 2; }
done
[ "$ROUTES" -ge 8 ] || { echo "reload10k: RELOAD_ROUTES must be at least 8" >&2; exit 2; }
if [ ! -x "$BIN" ]; then
  echo "reload10k: building $BIN (cargo build --release -j2 -p portcullis)"
  (cd "$ROOT" && cargo build --release -j2 -p portcullis)
fi

TMP=$(mktemp -d /tmp/portcullis-reload.XXXXXX)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT" "$TMP/conf"
declare -A PID=()
LOADGEN=""

# Children first (nginx worker), bounded wait, then SIGKILL: nothing outlives the script.
cleanup() {
  local p c
  for p in $LOADGEN "${PID[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
    kill -INT "$p" 2>/dev/null || true # Portcullis: fast shutdown, no drain
    kill -TERM "$p" 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    local alive=0
    for p in $LOADGEN "${PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $LOADGEN "${PID[@]}"; do
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  done
  cp "$TMP/gateway.log" "$OUT/reload10k-$STAMP.gateway.log" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- config: RELOAD_ROUTES routes; generation G only changes the marker route's answer ----------
gen_config() { # generation file: the config of that generation
  python3 - "$ROUTES" "$1" "$PROXY_PORT" "$ADMIN_PORT" "$BACKEND_PORT" "$DEBOUNCE" \
    >"$2" <<'PY'
import sys
n, gen, port, admin, backend, debounce = sys.argv[1:]
n, q = int(n), int(n) // 4
print(f"""server: {{ threads: 1, watch_config: true, reload_debounce: {debounce} }}
admin: {{ address: "127.0.0.1:{admin}" }}
access_log: {{ enabled: false }}
listeners: [{{ name: public, address: "127.0.0.1:{port}" }}]
upstreams:
  backend: {{ backends: [{{ address: "127.0.0.1:{backend}" }}] }}
routes:
  - name: marker
    match: {{ hosts: [marker.bench], path_exact: /generation }}
    direct_response: {{ status: 200, body: "{gen}" }}""")
shapes = [
    # one host per tenant
    lambda i: f"{{ hosts: [t{i:05}.example.com], path_prefix: /api }}",
    # one big ingress host with many services
    lambda i: f"{{ hosts: [api.example.com], path_prefix: /svc{i:05}, methods: [GET, POST] }}",
    # regex paths
    lambda i: f"{{ hosts: [re.example.com], path_regex: '/r{i}/[0-9]+' }}",
    # wildcard hosts
    lambda i: f"{{ hosts: ['*.w{i}.example.net'], path_prefix: /v1 }}",
]
for i in range(n - 1):
    print(f"  - {{ name: r{i}, upstream: backend, match: {shapes[i % 4](i // 4)} }}")
PY
}

on_cpu() { # cpu command...: exec'd pinned to one core unless RELOAD_PIN=0 (call it in a subshell
  # or with &, so that $! is the process itself)
  local cpu=$1; shift
  if [ "$PIN" = 1 ]; then exec taskset -c "$cpu" "$@"; else exec "$@"; fi
}

# --- processes -----------------------------------------------------------------------------------
sed -e "s|@TMP@|$TMP|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$BENCH/templates/backend-nginx.conf" \
  >"$TMP/backend.conf"
on_cpu "$LOAD_CPU" nginx -p "$TMP" -c "$TMP/backend.conf" >"$TMP/backend.log" 2>&1 &
PID[backend]=$!

gen_config 1 "$TMP/conf/gateway.yaml"
echo "reload10k: $(grep -c '^  - ' "$TMP/conf/gateway.yaml") routes, $(wc -c <"$TMP/conf/gateway.yaml") bytes"
t0=$(date +%s%N)
"$BIN" check --config "$TMP/conf" >"$TMP/check.log" 2>&1 ||
  { echo "reload10k: portcullis check failed:" >&2; cat "$TMP/check.log" >&2; exit 1; }
CHECK_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "reload10k: portcullis check: ok in $CHECK_MS ms"

t0=$(date +%s%N)
on_cpu "$PROXY_CPU" "$BIN" run --config "$TMP/conf" >"$TMP/gateway.log" 2>&1 &
PID[gateway]=$!

marker() { curl -fsS --max-time 1 -H 'Host: marker.bench' "http://127.0.0.1:$PROXY_PORT/generation" 2>/dev/null || true; }
wait_marker() { # generation: poll (20 ms) until the marker route answers it, at most 20 s
  for _ in $(seq 1 1000); do
    [ "$(marker)" = "$1" ] && return 0
    kill -0 "${PID[gateway]}" 2>/dev/null || { echo "reload10k: gateway exited:" >&2; cat "$TMP/gateway.log" >&2; exit 1; }
    sleep 0.02
  done
  echo "reload10k: generation $1 not served after 20 s" >&2; exit 1
}
wait_marker 1
START_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$BACKEND_PORT/" 2>/dev/null && break
  sleep 0.1
done
TARGET_HOST=api.example.com
TARGET_PATH=/svc$(printf %05d $((ROUTES / 8)))/items
URL="http://127.0.0.1:$PROXY_PORT$TARGET_PATH"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Host: $TARGET_HOST" "$URL")
[ "$code" = 200 ] || { echo "reload10k: $TARGET_HOST$TARGET_PATH answered $code, not 200" >&2; exit 1; }
echo "reload10k: gateway serving after $START_MS ms (start + first build); load target $TARGET_HOST$TARGET_PATH"

run_load() { # name seconds: oha at RATE req/s into $TMP/NAME.json (summary line)
  on_cpu "$LOAD_CPU" oha --no-tui --output-format json -z "$2s" -q "$RATE" -c "$CONNS" --latency-correction \
    --disable-compression -w -t 5s -H "Host: $TARGET_HOST" "$URL" >"$TMP/$1.oha.json" 2>>"$TMP/oha.log" &
  LOADGEN=$!
}
finish_load() { # name
  wait "$LOADGEN" || true
  LOADGEN=""
  python3 "$BENCH/oha_json.py" "$TMP/$1.oha.json" >"$TMP/$1.json"
}

# Every later generation is written now, outside the watched directory: the measured window then
# holds renames only, no config generation competing with the gateway for the CPU.
mkdir -p "$TMP/staged"
for gen in $(seq 2 $((COUNT + 1))); do gen_config "$gen" "$TMP/staged/$gen.yaml"; done

# One driver process per run (bench/reload_driver.py): renames and marker polls over one
# keep-alive connection; the baseline run polls at the same cadence without renaming.
LOAD_AVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "reload10k: baseline, $DURATION s at $RATE req/s without reloads"
run_load baseline "$DURATION"
(on_cpu "$LOAD_CPU" python3 "$BENCH/reload_driver.py" "$TMP" "$COUNT" "$DURATION" "$PROXY_PORT" --dry)
finish_load baseline

echo "reload10k: $DURATION s at $RATE req/s with $COUNT reloads"
reloaded_before=$(grep -c '"config reloaded"' "$TMP/gateway.log" || true)
run_load reloads "$DURATION"
(on_cpu "$LOAD_CPU" python3 "$BENCH/reload_driver.py" "$TMP" "$COUNT" "$DURATION" "$PROXY_PORT") ||
  { kill -0 "${PID[gateway]}" 2>/dev/null || { echo "reload10k: gateway exited:" >&2; cat "$TMP/gateway.log" >&2; }; exit 1; }
finish_load reloads
LOAD_AVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Reload durations as the gateway measured them, and its own counters.
grep '"config reloaded"' "$TMP/gateway.log" | tail -n +$((reloaded_before + 1)) |
  sed -n 's/.*"elapsed_ms":\([0-9]*\).*/\1/p' >"$TMP/elapsed.txt"
grep '"config reloaded"' "$TMP/gateway.log" | tail -n +$((reloaded_before + 1)) |
  sed -n 's/.*"load_ms":\([0-9]*\).*"build_ms":\([0-9]*\).*/\1 \2/p' >"$TMP/phases.txt"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$TMP/metrics.txt"
RSS_KIB=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[gateway]}/status")

python3 - "$TMP" "$OUT/reload10k-$STAMP.json" <<PY
import json, sys
tmp, out = sys.argv[1:]
base = json.load(open(f"{tmp}/baseline.json"))
rel = json.load(open(f"{tmp}/reloads.json"))
elapsed = [int(x) for x in open(f"{tmp}/elapsed.txt").read().split()]
visible = [int(x) for x in open(f"{tmp}/visible.txt").read().split()]
phases = [tuple(int(v) for v in l.split()) for l in open(f"{tmp}/phases.txt") if l.strip()]
metrics = {}
for line in open(f"{tmp}/metrics.txt"):
    if line.startswith("portcullis_config_reload"):
        k, v = line.rsplit(" ", 1)
        metrics[k] = float(v)
report = {
    "stamp": "$STAMP", "routes": $ROUTES, "rate": $RATE, "conns": $CONNS, "duration_s": $DURATION,
    "reloads_requested": $COUNT, "reload_debounce": "$DEBOUNCE",
    "check_ms": $CHECK_MS, "start_to_serving_ms": $START_MS, "peak_rss_kib": $RSS_KIB,
    "load_avg_before": "$LOAD_AVG_BEFORE", "load_avg_after": "$LOAD_AVG_AFTER", "nproc": $(nproc),
    "reload_elapsed_ms": elapsed, "reload_load_build_ms": phases, "write_to_served_ms": visible,
    "metrics": metrics, "baseline": base, "reloads": rel,
}
json.dump(report, open(out, "w"), indent=1)
def row(name, r):
    l, e = r["latency_us"], r["errors"]
    return (f"| {name} | {r['requests']} | {l['p50']} | {l['p99']} | {l['p999']} | {l['max']} | "
            f"{e['read'] + e['connect'] + e['timeout']} | {e['status']} |")
print()
print(f"reload durations (gateway's elapsed_ms, {len(elapsed)} reloads): {elapsed}")
if elapsed:
    s = sorted(elapsed)
    print(f"  min {s[0]} ms, median {s[len(s)//2]} ms, max {s[-1]} ms")
if phases:
    print(f"  of which load (parse + validate) / build (runtime), ms: {phases}")
print(f"write -> new routes served (includes reload_debounce $DEBOUNCE): {visible} ms")
n_ok = metrics.get('portcullis_config_reloads_total{result="ok"}')
n_failed = metrics.get('portcullis_config_reloads_total{result="failed"}', 0)
print(f"reloads_total: ok={n_ok}, failed={n_failed}; "
      f"duration histogram sum {metrics.get('portcullis_config_reload_duration_seconds_sum', 0):.3f} s "
      f"over {metrics.get('portcullis_config_reload_duration_seconds_count', 0):.0f}")
print()
print("| run | requests | p50 µs | p99 µs | p99.9 µs | max µs | errors | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
print(row("baseline (no reload)", base))
print(row(f"with {len(elapsed)} reloads", rel))
print()
print(f"check {$CHECK_MS} ms; start to serving {$START_MS} ms; peak RSS {$RSS_KIB // 1024} MiB; "
      f"load average before $LOAD_AVG_BEFORE, after $LOAD_AVG_AFTER ({$(nproc)} CPUs)")
print(f"report: {out}")
ok = len(elapsed) == $COUNT and n_failed == 0
sys.exit(0 if ok else 1)
PY
