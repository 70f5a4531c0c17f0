#!/usr/bin/env bash
# Side-by-side load benchmark (issue 9): nginx, HAProxy and Portcullis as reverse proxies in front
# of the same fast backend, on this machine, over loopback. Stops by itself; every process it
# starts is killed on exit. See docs/performance.md for what it measures and why.
#
#   bench/run.sh                          # all four scenarios, 5 x 10 s each (about 5 minutes)
#   BENCH_RUNS=3 BENCH_DURATION=5 bench/run.sh
#   BENCH_SCENARIOS="nginx portcullis-plain" bench/run.sh
#
# Environment (defaults in brackets):
#   BENCH_RUNS [5] measured runs per scenario, interleaved round-robin across scenarios
#   BENCH_DURATION [10] seconds per run          BENCH_WARMUP [3] seconds of warm-up per scenario
#   BENCH_CONNS [50] wrk connections             BENCH_WRK_THREADS [1] wrk threads
#   BENCH_PROXY_CPU [1] core of the proxy under test
#   BENCH_LOAD_CPU [0] core shared by wrk and the backend
#   BENCH_PIN [1] 0 runs everything unpinned (the scheduler places processes)
#   BENCH_BASE_PORT [18080] ports BASE..BASE+9 on 127.0.0.1
#   PORTCULLIS_BIN [target/release/portcullis] built with `cargo build --release -j1` if missing
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
OUT="$BENCH/out"
RUNS=${BENCH_RUNS:-5}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
CONNS=${BENCH_CONNS:-50}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
BASE=${BENCH_BASE_PORT:-18080}
SCENARIOS=${BENCH_SCENARIOS:-"nginx haproxy portcullis-plain portcullis-full"}
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}
PIN=${BENCH_PIN:-1}

BACKEND_PORT=$BASE
declare -A PORT=([nginx]=$((BASE + 1)) [haproxy]=$((BASE + 2)) [portcullis-plain]=$((BASE + 3))
  [portcullis-full]=$((BASE + 4)))
declare -A ADMIN=([portcullis-plain]=$((BASE + 5)) [portcullis-full]=$((BASE + 6)))
declare -A PID=()

for cmd in nginx haproxy wrk taskset curl python3; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] ||
    { echo "bench: $cmd is missing (make deps-bench installs nginx, haproxy and wrk)" >&2; exit 2; }
done
export PATH="$PATH:/usr/sbin"
NCPU=$(nproc)
if [ "$PROXY_CPU" -ge "$NCPU" ] || [ "$LOAD_CPU" -ge "$NCPU" ]; then
  echo "bench: BENCH_PROXY_CPU/BENCH_LOAD_CPU must be below $NCPU" >&2; exit 2
fi

if [ ! -x "$BIN" ]; then
  echo "bench: building $BIN (cargo build --release -j1 -p portcullis)"
  (cd "$ROOT" && cargo build --release -j1 -p portcullis)
fi

TMP=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/logs"

# Every process we start is recorded in PID[] and ended here, children first (nginx workers),
# with a bounded wait; nothing outlives the script.
cleanup() {
  local name p c
  for name in "${!PID[@]}"; do
    p=${PID[$name]}
    kill -0 "$p" 2>/dev/null || continue
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
    kill -INT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    local alive=0
    for p in "${PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PID[@]}"; do
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  done
  cp "$TMP"/*.log "$OUT/logs/" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

on_cpu() { # cpu command...: run pinned to one core unless BENCH_PIN=0
  local cpu=$1; shift
  if [ "$PIN" = 1 ]; then exec taskset -c "$cpu" "$@"; else exec "$@"; fi
}

render() { # template -> file, filling the @NAME@ placeholders
  sed -e "s|@TMP@|$TMP|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
    -e "s|@PROXY_PORT@|${2:-0}|g" -e "s|@ADMIN_PORT@|${3:-0}|g" "$BENCH/templates/$1"
}

wait_ready() { # name url [curl args]: poll until 2xx, at most 15 s
  local name=$1 url=$2; shift 2
  for _ in $(seq 1 150); do
    kill -0 "${PID[$name]}" 2>/dev/null ||
      { echo "bench: $name exited early; log:" >&2; cat "$TMP/$name.log" >&2 || true; exit 1; }
    curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $name not ready at $url after 15 s" >&2; exit 1
}

proc_tree() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }

cpu_ticks() { # utime + stime (clock ticks, all threads) of a process and its children
  local total=0 p f
  for p in $(proc_tree "$1"); do
    [ -r "/proc/$p/stat" ] || continue
    read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat")
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

peak_rss_kib() { # VmHWM summed over a process and its children
  local total=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# --- processes ---------------------------------------------------------------------------------
render backend-nginx.conf >"$TMP/backend.conf"
(on_cpu "$LOAD_CPU" nginx -p "$TMP" -c "$TMP/backend.conf") >"$TMP/backend.log" 2>&1 &
PID[backend]=$!
wait_ready backend "http://127.0.0.1:$BACKEND_PORT/"

cp "$ROOT/conf/examples/jwt/hs256.secret" "$TMP/hs256.secret"
TOKEN=$(python3 "$BENCH/mint_jwt.py" "$TMP/hs256.secret" https://issuer.bench bench)

for s in $SCENARIOS; do
  port=${PORT[$s]:-}
  [ -n "$port" ] || { echo "bench: unknown scenario $s" >&2; exit 2; }
  case $s in
    nginx)
      render nginx-proxy.conf "$port" >"$TMP/nginx.conf"
      (on_cpu "$PROXY_CPU" nginx -p "$TMP" -c "$TMP/nginx.conf") >"$TMP/$s.log" 2>&1 &
      ;;
    haproxy)
      render haproxy.cfg "$port" >"$TMP/haproxy.cfg"
      (on_cpu "$PROXY_CPU" haproxy -db -f "$TMP/haproxy.cfg") >"$TMP/$s.log" 2>&1 &
      ;;
    portcullis-*)
      render "$s.yaml" "$port" "${ADMIN[$s]}" >"$TMP/$s.yaml"
      "$BIN" check --config "$TMP/$s.yaml" >"$TMP/$s.check.log" 2>&1 ||
        { cat "$TMP/$s.check.log" >&2; exit 1; }
      (on_cpu "$PROXY_CPU" "$BIN" run --config "$TMP/$s.yaml") >"$TMP/$s.log" 2>&1 &
      ;;
  esac
  PID[$s]=$!
  if [ "$s" = portcullis-full ]; then
    wait_ready "$s" "http://127.0.0.1:$port/" -H "Authorization: Bearer $TOKEN"
  else
    wait_ready "$s" "http://127.0.0.1:$port/"
  fi
done

# --- sanity: is each protection of portcullis-full really on? ----------------------------------
WAF_ACTIVE=null AUTH_ACTIVE=null
if [[ " $SCENARIOS " == *" portcullis-full "* ]]; then
  fp=${PORT[portcullis-full]}
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fp/")
  [ "$code" = 401 ] && AUTH_ACTIVE=true || AUTH_ACTIVE=false
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$fp/search?q=1%27%20OR%20%271%27%3D%271%27%20--%20&x=%3Cscript%3Ealert(1)%3C/script%3E")
  [ "$code" = 403 ] && WAF_ACTIVE=true || WAF_ACTIVE=false
  echo "bench: portcullis-full: auth enforced=$AUTH_ACTIVE, waf blocks an SQLi/XSS probe=$WAF_ACTIVE"
fi

# --- load ----------------------------------------------------------------------------------------
RAW="$OUT/raw-$STAMP.jsonl"
: >"$RAW"
run_wrk() { # scenario seconds -> WRKJSON line
  local s=$1 secs=$2 args=()
  [ "$s" = portcullis-full ] && args=(-H "Authorization: Bearer $TOKEN")
  timeout $((secs + 30)) bash -c '[ "$0" = 1 ] && exec taskset -c "$1" "${@:2}"; exec "${@:2}"' "$PIN" "$LOAD_CPU" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" \
    --timeout 5s --latency -s "$BENCH/report.lua" "${args[@]}" "http://127.0.0.1:${PORT[$s]}/" |
    tee -a "$TMP/wrk.log" | sed -n 's/^WRKJSON //p'
}

for s in $SCENARIOS; do
  echo "bench: warm-up $s (${WARMUP}s)"
  run_wrk "$s" "$WARMUP" >/dev/null
done
HZ=$(getconf CLK_TCK)
for r in $(seq 1 "$RUNS"); do
  for s in $SCENARIOS; do
    c0=$(cpu_ticks "${PID[$s]}"); b0=$(cpu_ticks "${PID[backend]}")
    w=$(run_wrk "$s" "$DURATION")
    c1=$(cpu_ticks "${PID[$s]}"); b1=$(cpu_ticks "${PID[backend]}")
    [ -n "$w" ] || { echo "bench: wrk gave no result for $s" >&2; exit 1; }
    printf '{"scenario":"%s","run":%d,"hz":%d,"proxy_cpu_ticks":%d,"backend_cpu_ticks":%d,"wrk":%s}\n' \
      "$s" "$r" "$HZ" $((c1 - c0)) $((b1 - b0)) "$w" >>"$RAW"
    echo "bench: run $r/$RUNS $s: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["requests"]/d["duration_us"]*1e6), "req/s, p99", d["latency_us"]["p99"], "us")' "$w")"
  done
done

RSS=""
for s in $SCENARIOS backend; do RSS="$RSS\"$s\":$(peak_rss_kib "${PID[$s]}"),"; done
cat >"$OUT/meta-$STAMP.json" <<JSON
{"stamp":"$STAMP","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","runs":$RUNS,"duration_s":$DURATION,
 "warmup_s":$WARMUP,"connections":$CONNS,"wrk_threads":$WRK_THREADS,"proxy_cpu":$PROXY_CPU,
 "load_cpu":$LOAD_CPU,"pinned":$([ "$PIN" = 1 ] && echo true || echo false),"ncpu":$NCPU,"cpu_model":"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)",
 "kernel":"$(uname -r)","loadavg_at_end":"$(cut -d' ' -f1-3 /proc/loadavg)",
 "nginx":"$(nginx -v 2>&1 | sed 's/.*nginx\///')","haproxy":"$(haproxy -v | head -1 | awk '{print $3}')",
 "wrk":"$(wrk -v 2>&1 | head -1 | awk '{print $2}')","portcullis_bin":"$BIN",
 "waf_active":$WAF_ACTIVE,"auth_active":$AUTH_ACTIVE,"peak_rss_kib":{${RSS%,}}}
JSON
python3 "$BENCH/summarize.py" "$RAW" "$OUT/meta-$STAMP.json" "$OUT/results-$STAMP"
cp "$OUT/results-$STAMP.json" "$OUT/latest.json"
cp "$OUT/results-$STAMP.md" "$OUT/latest.md"
cat "$OUT/results-$STAMP.md"
