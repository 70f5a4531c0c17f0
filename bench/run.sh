#!/usr/bin/env bash
# Side-by-side load benchmark (issue 9): nginx, HAProxy and Portcullis as reverse proxies in front
# of the same fast backend, on this machine, over loopback. Stops by itself; every process it
# starts is killed on exit. See docs/performance.md for what it measures and why.
#
#   bench/run.sh                          # every scenario, 3 x 8 s each (about 10 minutes)
#   BENCH_RUNS=5 BENCH_DURATION=10 BENCH_SCENARIOS=get bench/run.sh   # the original four + modsec
#   BENCH_SCENARIOS="nginx portcullis-plain tls" bench/run.sh          # names and groups mixed
#
# Scenarios (each its own proxy process, so CPU time and peak RSS are per scenario):
#   get:  nginx haproxy pingora-bare portcullis-plain portcullis-full nginx-modsec   GET / (13-byte
#         answer); pingora-bare is a minimal Pingora proxy with nothing of Portcullis in it
#         (crates/portcullis-proxy/examples/bare_pingora.rs): the framework's own floor
#   post: post-nginx post-portcullis-full post-nginx-modsec                POST of 2 KB JSON
#   size: 1k-nginx 1k-haproxy 1k-portcullis-plain 128k-nginx 128k-haproxy 128k-portcullis-plain
#   tls:  tls-new-nginx tls-new-portcullis-plain (a full handshake per request)
#         tls-ka-nginx tls-ka-portcullis-plain   (TLS keep-alive)
#         tls-resume-nginx tls-resume-portcullis-plain (a new connection per request that
#         resumes the TLS session: openssl s_time -reuse, one connection at a time)
#   rate: rate-nginx rate-portcullis-plain       (oha at BENCH_RATE req/s, latency corrected)
#   all:  all of the above (default). nginx-modsec scenarios are skipped, with a warning, when the
#   ModSecurity module or CRS is not installed; rate scenarios when oha is not (make deps-bench).
#
# Environment (defaults in brackets):
#   BENCH_SCENARIOS [all] scenario and group names, space separated
#   BENCH_RUNS [3] measured runs per scenario, interleaved round-robin across scenarios
#   BENCH_DURATION [8] seconds per run           BENCH_WARMUP [2] seconds of warm-up per scenario
#   BENCH_CONNS [50] client connections          BENCH_WRK_THREADS [1] wrk threads
#   BENCH_RATE [2000] requests/s of the fixed-rate (rate-*) scenarios, well below saturation
#   BENCH_PROXY_CPU [1] core of the proxy under test
#   BENCH_LOAD_CPU [0] core shared by the load generator and the backend
#   BENCH_PIN [1] 0 runs everything unpinned (the scheduler places processes)
#   BENCH_BASE_PORT [18080] ports BASE..BASE+50 on 127.0.0.1
#   PORTCULLIS_BIN [target/release/portcullis] built with `cargo build --release -j2` if missing
#   BARE_PINGORA_BIN [target/release/examples/bare_pingora] built likewise if missing
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
OUT="$BENCH/out"
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-50}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
RATE=${BENCH_RATE:-2000}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
BASE=${BENCH_BASE_PORT:-18080}
BACKEND_PORT=$BASE
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}
BARE_BIN=${BARE_PINGORA_BIN:-$ROOT/target/release/examples/bare_pingora}
PIN=${BENCH_PIN:-1}
MODSEC_SO=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf

# --- scenarios: name -> kind of proxy process, workload ------------------------------------------
declare -A KIND=() WORK=() PORT=() ADMIN=() PID=()
ALL=()
def() { KIND[$1]=$2; WORK[$1]=$3; PORT[$1]=$((BASE + 1 + ${#ALL[@]})); ADMIN[$1]=$((BASE + 26 + ${#ALL[@]})); ALL+=("$1"); }
def nginx nginx get
def haproxy haproxy get
def portcullis-plain portcullis-plain get
def portcullis-full portcullis-full auth
def nginx-modsec nginx-modsec auth
def post-nginx nginx post
def post-portcullis-full portcullis-full post
def post-nginx-modsec nginx-modsec post
for size in 1k 128k; do
  def "$size-nginx" nginx "$size"; def "$size-haproxy" haproxy "$size"
  def "$size-portcullis-plain" portcullis-plain "$size"
done
def tls-new-nginx nginx-tls tls-new
def tls-new-portcullis-plain portcullis-tls tls-new
def tls-ka-nginx nginx-tls tls-ka
def tls-ka-portcullis-plain portcullis-tls tls-ka
def tls-resume-nginx nginx-tls tls-resume
def tls-resume-portcullis-plain portcullis-tls tls-resume
def rate-nginx nginx rate
def rate-portcullis-plain portcullis-plain rate
def pingora-bare pingora-bare get
declare -A GROUP=(
  [get]="nginx haproxy pingora-bare portcullis-plain portcullis-full nginx-modsec"
  [post]="post-nginx post-portcullis-full post-nginx-modsec"
  [size]="1k-nginx 1k-haproxy 1k-portcullis-plain 128k-nginx 128k-haproxy 128k-portcullis-plain"
  [tls]="tls-new-nginx tls-new-portcullis-plain tls-ka-nginx tls-ka-portcullis-plain tls-resume-nginx tls-resume-portcullis-plain"
  [rate]="rate-nginx rate-portcullis-plain"
  [all]="${ALL[*]}"
)

export PATH="$PATH:/usr/sbin"
have_modsec() { [ -f "$MODSEC_SO" ] && [ -f "$CRS_SETUP" ]; }
SCENARIOS=() SKIPPED=()
for word in ${BENCH_SCENARIOS:-all}; do
  names=${GROUP[$word]:-$word}
  for s in $names; do
    [ -n "${KIND[$s]:-}" ] || { echo "bench: unknown scenario or group $s (groups: ${!GROUP[*]})" >&2; exit 2; }
    [[ " ${SCENARIOS[*]} " == *" $s "* ]] && continue
    if [ "${KIND[$s]}" = nginx-modsec ] && ! have_modsec; then
      echo "bench: skipping $s: $MODSEC_SO or $CRS_SETUP missing (make deps-bench installs them)" >&2
      SKIPPED+=("$s"); continue
    fi
    if [ "${WORK[$s]}" = rate ] && ! command -v oha >/dev/null 2>&1; then
      echo "bench: skipping $s: oha is missing (make deps-bench: cargo install --locked oha)" >&2
      SKIPPED+=("$s"); continue
    fi
    SCENARIOS+=("$s")
  done
done
[ "${#SCENARIOS[@]}" -gt 0 ] || { echo "bench: no scenario to run" >&2; exit 2; }
wants() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
wants_kind() { local s; for s in "${SCENARIOS[@]}"; do [ "${KIND[$s]}" = "$1" ] && return 0; done; return 1; }

for cmd in nginx haproxy wrk taskset curl python3 openssl; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "bench: $cmd is missing (make deps-bench installs nginx, haproxy and wrk)" >&2; exit 2; }
done
NCPU=$(nproc)
if [ "$PROXY_CPU" -ge "$NCPU" ] || [ "$LOAD_CPU" -ge "$NCPU" ]; then
  echo "bench: BENCH_PROXY_CPU/BENCH_LOAD_CPU must be below $NCPU" >&2; exit 2
fi

if [ ! -x "$BIN" ]; then
  echo "bench: building $BIN (cargo build --release -j2 -p portcullis)"
  (cd "$ROOT" && cargo build --release -j2 -p portcullis)
fi
if wants_kind pingora-bare && [ ! -x "$BARE_BIN" ]; then
  echo "bench: building $BARE_BIN (cargo build --release -j2 -p portcullis-proxy --example bare_pingora)"
  (cd "$ROOT" && cargo build --release -j2 -p portcullis-proxy --example bare_pingora)
fi

TMP=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/logs"
LOADGEN=""

# Every process we start is recorded in PID[] (and LOADGEN, the wrk or oha running now: run_load
# runs in this shell, not in a $(...) subshell, so that it is known here) and ended here, children
# first (nginx workers), with a bounded wait; nothing outlives the script.
cleanup() {
  local name p c
  if [ -n "$LOADGEN" ]; then kill -TERM "$LOADGEN" 2>/dev/null || true; fi
  for name in "${!PID[@]}"; do
    p=${PID[$name]}
    kill -0 "$p" 2>/dev/null || continue
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
    kill -INT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    local alive=0
    for p in "${PID[@]}" $LOADGEN; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PID[@]}" $LOADGEN; do
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

render() { # template [port admin name listen-opts] -> stdout, with the @...@ placeholders filled
  sed -e "s|@TMP@|$TMP|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
    -e "s|@PROXY_PORT@|${2:-0}|g" -e "s|@ADMIN_PORT@|${3:-0}|g" -e "s|@NAME@|${4:-x}|g" \
    -e "s|@LISTEN_OPTS@|${5:-}|g" "$BENCH/templates/$1"
}

url_of() { # scenario -> the URL the load generator asks
  local s=$1 scheme=http path=/
  case ${WORK[$s]} in
    tls-*) scheme=https ;;
    post) path=/api/v1/orders ;;
    1k | 128k) path=/static/${WORK[$s]} ;;
  esac
  echo "$scheme://127.0.0.1:${PORT[$s]}$path"
}

curl_args() { # scenario -> the headers (and body) of the scenario's request, as curl arguments
  case ${WORK[$1]} in
    auth) echo "-H@$TMP/auth.hdr" ;;
    post) echo "-H@$TMP/auth.hdr -H@$TMP/json.hdr --data-binary @$TMP/post.json" ;;
    tls-*) echo "-k" ;;
  esac
}

wait_ready() { # scenario: poll the scenario's own request until 2xx, at most 15 s
  local s=$1 url; url=$(url_of "$s")
  for _ in $(seq 1 150); do
    kill -0 "${PID[$s]}" 2>/dev/null ||
      { echo "bench: $s exited early; log:" >&2; cat "$TMP/$s.log" "$TMP/$s.error.log" >&2 2>/dev/null || true; exit 1; }
    # shellcheck disable=SC2046
    curl -fsS -o /dev/null --max-time 1 $(curl_args "$s") "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $s not ready at $url after 15 s" >&2; exit 1
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

# --- inputs: token, bodies, files, certificate ----------------------------------------------------
cp "$ROOT/conf/examples/jwt/hs256.secret" "$TMP/hs256.secret"
TOKEN=$(python3 "$BENCH/mint_jwt.py" "$TMP/hs256.secret" https://issuer.bench bench)
echo "Authorization: Bearer $TOKEN" >"$TMP/auth.hdr"
echo "Content-Type: application/json" >"$TMP/json.hdr"
# The 2 KB JSON order of the WAF micro-benchmark (crates/portcullis-waf/benches/inspect.rs), and
# the same order with an SQL injection in one field for the probes.
python3 - "$TMP" <<'PY'
import json, sys
items = [{"sku": f"SKU-{i:05}", "name": f"Widget number {i}", "qty": i, "price": 19.99,
          "tags": ["blue", "metal"], "note": "Deliver to the back door, ring twice"} for i in range(15)]
order = {"customer": {"id": "c-123", "email": "mary@example.com"}, "items": items}
open(sys.argv[1] + "/post.json", "w").write(json.dumps(order, separators=(",", ":")))
order["items"][3]["note"] = "1' OR '1'='1' UNION SELECT password FROM users -- "
open(sys.argv[1] + "/post-sqli.json", "w").write(json.dumps(order, separators=(",", ":")))
PY
# nginx workers run as an unprivileged user when the bench runs as root: they may pass through the
# temporary directory (not list it) and read www/, nothing else.
mkdir -p "$TMP/www/static"
head -c 1024 /dev/zero | tr '\0' 'a' >"$TMP/www/static/1k"
head -c 131072 /dev/zero | tr '\0' 'b' >"$TMP/www/static/128k"
chmod 711 "$TMP"; chmod -R go=rX "$TMP/www"; chmod 600 "$TMP/hs256.secret"
if wants_kind nginx-tls || wants_kind portcullis-tls; then
  mkdir -p "$TMP/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" >"$TMP/openssl.log" 2>&1
  chmod 600 "$TMP/tls/key.pem"
fi
if wants_kind nginx-modsec; then render modsecurity.conf >"$TMP/modsecurity.conf"; fi

# --- processes ---------------------------------------------------------------------------------
render backend-nginx.conf >"$TMP/backend.conf"
(on_cpu "$LOAD_CPU" nginx -p "$TMP" -c "$TMP/backend.conf") >"$TMP/backend.log" 2>&1 &
PID[backend]=$!
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$BACKEND_PORT/" 2>/dev/null && break
  kill -0 "${PID[backend]}" 2>/dev/null || { cat "$TMP/backend.log" >&2; exit 1; }
  sleep 0.1
done

for s in "${SCENARIOS[@]}"; do
  kind=${KIND[$s]} port=${PORT[$s]}
  case $kind in
    nginx*)
      : >"$TMP/$s.main.conf"; : >"$TMP/$s.server.conf"; opts=""
      if [ "$kind" = nginx-modsec ]; then
        echo "load_module $MODSEC_SO;" >"$TMP/$s.main.conf"
        printf 'modsecurity on;\nmodsecurity_rules_file %s;\n' "$TMP/modsecurity.conf" >"$TMP/$s.server.conf"
      elif [ "$kind" = nginx-tls ]; then
        opts="ssl "
        cat >"$TMP/$s.server.conf" <<EOF
ssl_certificate $TMP/tls/cert.pem;
ssl_certificate_key $TMP/tls/key.pem;
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:SSL:10m;
ssl_session_timeout 1h;
EOF
      fi
      render nginx-proxy.conf "$port" 0 "$s" "$opts" >"$TMP/$s.conf"
      (on_cpu "$PROXY_CPU" nginx -p "$TMP" -c "$TMP/$s.conf") >"$TMP/$s.log" 2>&1 &
      ;;
    haproxy)
      render haproxy.cfg "$port" 0 "$s" >"$TMP/$s.cfg"
      (on_cpu "$PROXY_CPU" haproxy -db -f "$TMP/$s.cfg") >"$TMP/$s.log" 2>&1 &
      ;;
    pingora-bare)
      (on_cpu "$PROXY_CPU" "$BARE_BIN" "127.0.0.1:$port" "127.0.0.1:$BACKEND_PORT") >"$TMP/$s.log" 2>&1 &
      ;;
    portcullis-*)
      render "$kind.yaml" "$port" "${ADMIN[$s]}" "$s" >"$TMP/$s.yaml"
      "$BIN" check --config "$TMP/$s.yaml" >"$TMP/$s.check.log" 2>&1 ||
        { cat "$TMP/$s.check.log" >&2; exit 1; }
      (on_cpu "$PROXY_CPU" "$BIN" run --config "$TMP/$s.yaml") >"$TMP/$s.log" 2>&1 &
      ;;
  esac
  PID[$s]=$!
  wait_ready "$s"
done

# --- sanity: right answer size for every scenario, and are the protections really on? ----------
for s in "${SCENARIOS[@]}"; do
  # shellcheck disable=SC2046
  got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' $(curl_args "$s") "$(url_of "$s")")
  case ${WORK[$s]} in 1k) want="200 1024" ;; 128k) want="200 131072" ;; *) want="200 13" ;; esac
  [ "$got" = "$want" ] || { echo "bench: $s answered '$got', expected '$want'" >&2; exit 1; }
done
PROBES=""
probe() { # label expected-status curl-args...: record whether the answer had that status
  local label=$1 want=$2 code; shift 2
  code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  echo "bench: probe $label: got $code, want $want"
  PROBES="$PROBES\"$label\":$([ "$code" = "$want" ] && echo true || echo false),"
}
SQLI_QUERY="/search?q=1%27%20OR%20%271%27%3D%271%27%20--%20&x=%3Cscript%3Ealert(1)%3C/script%3E"
for s in portcullis-full post-portcullis-full nginx-modsec post-nginx-modsec; do
  wants "$s" || continue
  base="http://127.0.0.1:${PORT[$s]}"
  if [ "${KIND[$s]}" = portcullis-full ]; then probe "$s: no token -> 401" 401 "$base/"; fi
  if [ "${WORK[$s]}" = post ]; then
    probe "$s: SQLi in JSON body -> 403" 403 -H "@$TMP/auth.hdr" -H "@$TMP/json.hdr" \
      --data-binary "@$TMP/post-sqli.json" "$base/api/v1/orders"
  else
    probe "$s: SQLi/XSS query -> 403" 403 -H "@$TMP/auth.hdr" "$base$SQLI_QUERY"
  fi
done

# What each TLS listener negotiates with OpenSSL's default client (wrk's): version, cipher, group.
TLSINFO=""
for s in "${SCENARIOS[@]}"; do
  case ${KIND[$s]} in nginx-tls | portcullis-tls) ;; *) continue ;; esac
  info=$(openssl s_client -connect "127.0.0.1:${PORT[$s]}" -servername localhost </dev/null 2>/dev/null |
    sed -n -e 's/^New, \(.*\)$/\1/p' -e 's/^\(Server Temp Key\|Peer signature type\): /\1 /p' |
    awk '{ printf "%s%s", (NR > 1 ? " | " : ""), $0 }')
  echo "bench: $s negotiates: $info"
  TLSINFO="$TLSINFO\"$s\":\"$info\","
done

# --- load ----------------------------------------------------------------------------------------
RAW="$OUT/raw-$STAMP.jsonl"
: >"$RAW"
pinned() { # run the load generator on the load core (unless BENCH_PIN=0), bounded in time
  local secs=$1; shift
  if [ "$PIN" = 1 ]; then set -- taskset -c "$LOAD_CPU" "$@"; fi
  timeout $((secs + 30)) "$@" &
  LOADGEN=$!
  wait "$LOADGEN"
  LOADGEN=""
}
run_load() { # scenario seconds -> $TMP/load.json: one line of JSON in wrk's shape (report.lua)
  local s=$1 secs=$2 args=() url script="$BENCH/report.lua"
  url=$(url_of "$s")
  : >"$TMP/load.json"
  case ${WORK[$s]} in
    rate)
      pinned "$secs" oha --no-tui --output-format json -z "${secs}s" -q "$RATE" -c "$CONNS" \
        --latency-correction --disable-compression -w -t 5s "$url" >"$TMP/oha.json" 2>>"$TMP/oha.log"
      python3 "$BENCH/oha_json.py" "$TMP/oha.json" >"$TMP/load.json" 2> >(tee -a "$TMP/oha.log" >&2)
      return
      ;;
    tls-resume)
      local t0 t1
      t0=$(date +%s%3N)
      pinned "$secs" openssl s_time -connect "127.0.0.1:${PORT[$s]}" -reuse -www / -time "$secs" \
        >"$TMP/s_time.out" 2>&1
      t1=$(date +%s%3N)
      cat "$TMP/s_time.out" >>"$TMP/s_time.log"
      python3 "$BENCH/s_time_json.py" "$TMP/s_time.out" $((t1 - t0)) >"$TMP/load.json"
      return
      ;;
    auth) args=(-H "Authorization: Bearer $TOKEN") ;;
    post) args=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json")
      script="$BENCH/post.lua" ;;
    tls-new) args=(-H "Connection: close") ;;
  esac
  BENCH_BODY_FILE="$TMP/post.json" BENCH_DIR="$BENCH" pinned "$secs" wrk -t"$WRK_THREADS" \
    -c"$CONNS" -d"${secs}s" --timeout 5s --latency -s "$script" "${args[@]}" "$url" \
    >"$TMP/wrk.out"
  cat "$TMP/wrk.out" >>"$TMP/wrk.log"
  sed -n 's/^WRKJSON //p' "$TMP/wrk.out" >"$TMP/load.json"
}

for s in "${SCENARIOS[@]}"; do
  echo "bench: warm-up $s (${WARMUP}s)"
  run_load "$s" "$WARMUP"
done
HZ=$(getconf CLK_TCK)
for r in $(seq 1 "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    c0=$(cpu_ticks "${PID[$s]}"); b0=$(cpu_ticks "${PID[backend]}")
    run_load "$s" "$DURATION"
    w=$(cat "$TMP/load.json")
    c1=$(cpu_ticks "${PID[$s]}"); b1=$(cpu_ticks "${PID[backend]}")
    [ -n "$w" ] || { echo "bench: no load result for $s" >&2; exit 1; }
    printf '{"scenario":"%s","kind":"%s","workload":"%s","run":%d,"hz":%d,"proxy_cpu_ticks":%d,"backend_cpu_ticks":%d,"wrk":%s}\n' \
      "$s" "${KIND[$s]}" "${WORK[$s]}" "$r" "$HZ" $((c1 - c0)) $((b1 - b0)) "$w" >>"$RAW"
    echo "bench: run $r/$RUNS $s: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["requests"]/d["duration_us"]*1e6), "req/s, p99", d["latency_us"]["p99"], "us, errors", sum(d["errors"].values()))' "$w")"
  done
done

RSS=""
for s in "${SCENARIOS[@]}" backend; do RSS="$RSS\"$s\":$(peak_rss_kib "${PID[$s]}"),"; done
SKIP=""
for s in "${SKIPPED[@]}"; do SKIP="$SKIP\"$s\","; done
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || true; }
cat >"$OUT/meta-$STAMP.json" <<JSON
{"stamp":"$STAMP","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","runs":$RUNS,"duration_s":$DURATION,
 "warmup_s":$WARMUP,"connections":$CONNS,"wrk_threads":$WRK_THREADS,"rate":$RATE,"proxy_cpu":$PROXY_CPU,
 "load_cpu":$LOAD_CPU,"pinned":$([ "$PIN" = 1 ] && echo true || echo false),"ncpu":$NCPU,"cpu_model":"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)",
 "kernel":"$(uname -r)","loadavg_at_end":"$(cut -d' ' -f1-3 /proc/loadavg)",
 "nginx":"$(nginx -v 2>&1 | sed 's/.*nginx\///')","haproxy":"$(haproxy -v | head -1 | awk '{print $3}')",
 "wrk":"$(wrk -v 2>&1 | head -1 | awk '{print $2}')","oha":"$(oha --version 2>/dev/null | awk '{print $2}')",
 "openssl":"$(openssl version | awk '{print $2}')","libmodsecurity3":"$(pkgver libmodsecurity3)",
 "modsecurity_crs":"$(pkgver modsecurity-crs)","portcullis_bin":"$BIN","bare_pingora_bin":"$BARE_BIN",
 "scenarios":[$(printf '"%s",' "${SCENARIOS[@]}" | sed 's/,$//')],"skipped":[${SKIP%,}],
 "probes":{${PROBES%,}},"tls":{${TLSINFO%,}},"peak_rss_kib":{${RSS%,}}}
JSON
# The plot needs matplotlib: Debian's python3-matplotlib, which a python3 earlier on PATH (pyenv,
# a venv) may not see.
PY=python3
if ! python3 -c 'import matplotlib' 2>/dev/null && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  PY=/usr/bin/python3
fi
"$PY" "$BENCH/summarize.py" "$RAW" "$OUT/meta-$STAMP.json" "$OUT/results-$STAMP"
for ext in json md png; do
  [ -f "$OUT/results-$STAMP.$ext" ] && cp "$OUT/results-$STAMP.$ext" "$OUT/latest.$ext"
done
cat "$OUT/results-$STAMP.md"
