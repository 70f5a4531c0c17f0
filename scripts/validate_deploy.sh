#!/usr/bin/env bash
# Offline validation of deploy/: every kustomization renders with `kubectl kustomize`, every
# rendered object passes `kubernetes-validate --strict`, the alert rules pass `promtool check
# rules` (when promtool is installed), every portcullis_* metric named by the dashboard and the
# alerts is exported by a running gateway's /metrics, every DaemonSet's termination grace period
# covers preStop + drain, every gateway config a ConfigMap carries passes `portcullis check`, and
# the systemd unit passes `systemd-analyze verify` (when available). Exits non-zero on the first
# class of failure found, after reporting all of that class.
#
# Environment:
#   K8S_VERSION      Kubernetes version to validate against (default 1.34.0)
#   PORTCULLIS_BIN   the portcullis binary (default target/debug/portcullis, built if missing)
#   DEPLOY_VENV      virtualenv for kubernetes-validate (default .venv-deploy)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
K8S_VERSION=${K8S_VERSION:-1.34.0}
KV_VERSION=1.37.0
VENV=${DEPLOY_VENV:-$ROOT/.venv-deploy}
BIN=${PORTCULLIS_BIN:-$ROOT/target/debug/portcullis}
KUSTOMIZE_ROOT=deploy/kubernetes
DASHBOARD=deploy/grafana/portcullis.json
UNIT=deploy/systemd/portcullis.service
# Kinds that kubernetes-validate has no schema for and that we accept: Prometheus Operator CRDs
# (their rule expressions are checked with promtool below) and cert-manager's.
CRD_KINDS="monitoring.coreos.com/v1/PodMonitor monitoring.coreos.com/v1/PrometheusRule
  cert-manager.io/v1/Certificate cert-manager.io/v1/Issuer cert-manager.io/v1/ClusterIssuer"

say() { printf '%s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  # TERM, not INT: background jobs of a non-interactive shell start with SIGINT ignored.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------------
command -v kubectl >/dev/null 2>&1 ||
  fail "kubectl not found: install kubectl >= 1.27 (it embeds kustomize); the project's machine image ships it"
if [ ! -x "$VENV/bin/kubernetes-validate" ] ||
   [ "$("$VENV/bin/kubernetes-validate" --version 2>/dev/null)" != "$KV_VERSION" ]; then
  say "installing kubernetes-validate $KV_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
PY="$VENV/bin/python"   # has PyYAML (a dependency of kubernetes-validate)
if [ ! -x "$BIN" ]; then
  say "building $BIN"
  cargo build -j1 -p portcullis
fi

# --- render ------------------------------------------------------------------------------------
rendered=()
while IFS= read -r k; do
  dir=$(dirname "$k")
  # Components render only inside a kustomization that includes them.
  if grep -q '^kind: Component' "$k"; then continue; fi
  name=${dir#"$KUSTOMIZE_ROOT"/}
  out="$work/${name//\//_}.yaml"
  kubectl kustomize "$dir" >"$out" 2>"$work/err" || { cat "$work/err" >&2; fail "kubectl kustomize $dir"; }
  say "rendered $dir ($(grep -c '^kind:' "$out") objects)"
  rendered+=("$out")
done < <(find "$KUSTOMIZE_ROOT" -name kustomization.yaml | sort)
[ ${#rendered[@]} -gt 0 ] || fail "no kustomization under $KUSTOMIZE_ROOT"

# Every component must be used by some overlay, or it is never validated.
while IFS= read -r k; do
  comp=$(basename "$(dirname "$k")")
  grep -rqs "components/$comp" "$KUSTOMIZE_ROOT"/overlays || fail "component $(dirname "$k") is used by no overlay"
done < <(grep -rl '^kind: Component' "$KUSTOMIZE_ROOT" --include=kustomization.yaml)

# --- schema validation -------------------------------------------------------------------------
if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${rendered[@]}" >"$work/kv" 2>&1; then
  cat "$work/kv" >&2
  fail "kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
fi
# Unknown kinds only warn; accept the listed CRDs and nothing else.
allowed=()
for k in $CRD_KINDS; do allowed+=(-e "Couldn't find schema for kind ${k##*/} with api version ${k%/*} "); done
if grep -vF "${allowed[@]}" "$work/kv" | grep -q .; then
  cat "$work/kv" >&2
  fail "kubernetes-validate reported warnings (only $(echo $CRD_KINDS) may lack a schema)"
fi
say "kubernetes-validate --strict: ${#rendered[@]} renderings valid for Kubernetes $K8S_VERSION"

# --- a live gateway's /metrics --------------------------------------------------------------
# The dashboard and the alerts may only use metrics a real gateway exports. Start the built binary
# on loopback with every feature that adds metric families (TLS listener, rate limit, WAF, abuse,
# API-key auth, a pool with a dead backend for connect failures and retries), send a few requests
# so the labelled counters get their first samples, reload once (SIGHUP), and keep /metrics.
command -v openssl >/dev/null 2>&1 || fail "openssl not found: needed for a test certificate"
command -v curl >/dev/null 2>&1 || fail "curl not found: needed to query the test gateway"
# A throw-away self-signed certificate: the live gateway's TLS listener, and the stand-in for the
# cert-manager Secret when the ConfigMaps are checked below.
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=portcullis.test -addext subjectAltName=DNS:portcullis.test \
  -keyout "$work/tls/tls.key" -out "$work/tls/tls.crt" >/dev/null 2>&1 ||
  fail "openssl could not make a test certificate"
cp "$work/tls/tls.crt" "$work/tls/ca.crt"

live=$work/live
mkdir -p "$live/www" "$live/conf"
echo ok >"$live/www/index.html"
# Five distinct free loopback ports, all held open until chosen so none repeats.
read -r p_admin p_http p_https p_backend p_dead < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
# `printf %s test | portcullis hash-key`
key_hash=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
cat >"$live/conf/gateway.yaml" <<YAML
server: { threads: 1, grace_period: 1s, graceful_shutdown_timeout: 1s, watch_config: false }
admin: { address: "127.0.0.1:$p_admin" }
access_log: { enabled: true }
listeners:
  - { name: public, address: "127.0.0.1:$p_http" }
  - name: https
    address: "127.0.0.1:$p_https"
    tls:
      certificates: [{ cert_file: "$work/tls/tls.crt", key_file: "$work/tls/tls.key" }]
upstreams:
  backend:
    backends: [{ address: "127.0.0.1:$p_backend" }]
    health_check: { type: http, path: /, interval: 1s, timeout: 1s }
  flaky:
    backends: [{ address: "127.0.0.1:$p_dead" }, { address: "127.0.0.1:$p_backend" }]
    retries: 1
abuse:
  rules:
    - { name: flood, counter: requests, more_than: 100000, within: 1m, ban_for: 1m }
routes:
  - name: limited
    match: { path_prefix: /limited }
    upstream: backend
    rate_limit:
      - { name: per-ip, key: client_ip, limits: ["1/m burst 1"] }
  - name: waf
    match: { path_prefix: /waf }
    upstream: backend
    waf: { mode: block }
  - name: keyed
    match: { path_prefix: /keyed }
    upstream: backend
    auth:
      api_keys: { keys: [{ consumer: ci, hash: "$key_hash" }] }
  - name: flaky
    match: { path_prefix: /flaky }
    upstream: flaky
  - name: open
    match: { path_prefix: / }
    upstream: backend
YAML
python3 -m http.server --bind 127.0.0.1 --directory "$live/www" "$p_backend" >"$live/backend.log" 2>&1 &
pids+=($!)
"$BIN" run --config "$live/conf/gateway.yaml" >"$live/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
live_fail() { tail -n 30 "$live/gateway.log" >&2; fail "live gateway: $*"; }
ready=
for _ in $(seq 100); do
  kill -0 "$gw" 2>/dev/null || live_fail "exited during start"
  if curl -fsS -o /dev/null "http://127.0.0.1:$p_admin/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || live_fail "/readyz not 200 after 20s"
get() { curl -s -o /dev/null -w '%{http_code} ' "$@" || true; }
codes=$(
  get "http://127.0.0.1:$p_http/"
  get "http://127.0.0.1:$p_http/limited"; get "http://127.0.0.1:$p_http/limited"
  get "http://127.0.0.1:$p_http/waf?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
  get "http://127.0.0.1:$p_http/waf?id=1%27%20OR%20%271%27%3D%271"
  get "http://127.0.0.1:$p_http/keyed"; get -H "X-API-Key: test" "http://127.0.0.1:$p_http/keyed"
  for _ in 1 2 3 4; do get "http://127.0.0.1:$p_http/flaky"; done
  get -k "https://127.0.0.1:$p_https/"
)
kill -HUP "$gw"
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$p_admin/metrics" >"$live/metrics" 2>/dev/null || true
  grep -q '^portcullis_config_reloads_total{' "$live/metrics" && break
  sleep 0.2
done
kill -INT "$gw" 2>/dev/null || true   # fast shutdown (the gateway installs its own handler)
wait "$gw" 2>/dev/null || true
kill -TERM "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
pids=()
grep -q '^portcullis_build_info' "$live/metrics" || live_fail "no /metrics output"
say "live gateway: $(grep -c '^portcullis_' "$live/metrics") samples from /metrics (responses: $codes)"

# --- rendered objects: CRDs, rules, configs, metric names, drain budget ---------------------------------------
"$PY" - "$work" "$DASHBOARD" "$CRD_KINDS" "$live/metrics" "${rendered[@]}" <<'EOF'
import json, os, re, sys
import yaml

work, dashboard, crd_kinds, metrics, *renderings = sys.argv[1:]
crd_kinds = set(crd_kinds.split())
errors = []

# Names with at least one sample in the live gateway's /metrics (histograms as _bucket, _sum and
# _count; a family with only # HELP / # TYPE lines does not count).
exported = set(re.findall(r"^(portcullis_[a-z0-9_]+)[{ ]", open(metrics).read(), re.M))
if len(exported) < 10:
    sys.exit(f"FAIL: only {len(exported)} portcullis_* samples in the live /metrics output")

def check_metrics(where, text):
    for name in sorted(set(re.findall(r"\bportcullis_[a-z0-9_]+", text))):
        if name in exported:
            continue
        if any(name + suffix in exported for suffix in ("_bucket", "_sum", "_count")):
            errors.append(f"{where}: {name} is a histogram: use {name}_bucket, _sum or _count")
        else:
            errors.append(f"{where}: metric {name} is not in a running gateway's /metrics")

def seconds(text):
    """A config duration ("15s", "1m30s", "500ms") in seconds; None if it is not one."""
    text = str(text).strip()
    if not re.fullmatch(r"(\d+(ms|s|m|h|d))+", text):
        return None
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * unit[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", text))

# Dashboard: valid JSON, every panel target has an expression, every metric exists.
try:
    dash = json.load(open(dashboard))
except ValueError as e:
    sys.exit(f"FAIL: {dashboard}: not valid JSON: {e}")
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            if not t.get("expr"):
                errors.append(f"{dashboard}: panel {p.get('title')!r} has a target without expr")
            exprs.append(t.get("expr", ""))
walk(dash.get("panels", []))
if not exprs:
    errors.append(f"{dashboard}: no queries")
check_metrics(dashboard, "\n".join(exprs) + json.dumps(dash.get("templating", {})))

configs, rules = 0, 0
drain, daemonsets = {}, {}
for r in renderings:
    name = os.path.basename(r)[:-5]
    for doc in yaml.safe_load_all(open(r)):
        if not doc:
            continue
        kind, api = doc.get("kind"), doc.get("apiVersion", "")
        meta = doc.get("metadata", {})
        group = api.split("/")[0] if "/" in api else ""
        if "." in group and not group.endswith(".k8s.io"):
            if f"{api}/{kind}" not in crd_kinds:
                errors.append(f"{name}: unexpected custom resource {api} {kind}")
            if not meta.get("name") or not isinstance(doc.get("spec"), dict):
                errors.append(f"{name}: {kind} without metadata.name or spec")
        if kind == "PrometheusRule":
            rules += 1
            out = os.path.join(work, f"rules-{name}-{meta['name']}.yaml")
            yaml.safe_dump(doc["spec"], open(out, "w"))
            check_metrics(f"{name}: PrometheusRule/{meta['name']}", yaml.safe_dump(doc["spec"]))
        if kind == "ConfigMap" and meta.get("name", "").startswith("portcullis-config"):
            configs += 1
            d = os.path.join(work, f"config-{name}")
            os.makedirs(d)
            server = {}
            for key, text in doc.get("data", {}).items():
                open(os.path.join(d, key), "w").write(text)
                server.update((yaml.safe_load(text) or {}).get("server") or {})
            drain[name] = server
        if kind == "DaemonSet":
            daemonsets[name] = doc["spec"]["template"]["spec"]

# terminationGracePeriodSeconds must cover preStop sleep + grace_period + graceful_shutdown_timeout
# + 2 s (Pingora's runtimes get 1 s more), or the kubelet's SIGKILL cuts the drain short.
for name, pod in daemonsets.items():
    server = drain.get(name, {})
    grace = seconds(server.get("grace_period", "5s"))
    shutdown = seconds(server.get("graceful_shutdown_timeout", "10s"))
    if grace is None or shutdown is None:
        errors.append(f"{name}: cannot read server.grace_period / graceful_shutdown_timeout")
        continue
    for c in pod["containers"]:
        pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
        need = pre + grace + shutdown + 2
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        if tgps <= need:
            errors.append(f"{name}: terminationGracePeriodSeconds {tgps} <= preStop {pre}s + "
                          f"grace_period {grace:g}s + graceful_shutdown_timeout {shutdown:g}s + 2s")
        else:
            print(f"drain budget ({name}): preStop {pre}s + {grace:g}s + {shutdown:g}s + 2s < {tgps}s")
print(f"dashboard: {len(exprs)} queries; metric names checked against {len(exported)} names in a live /metrics")
print(f"extracted {configs} gateway configs and {rules} rule groups files")
if errors:
    print("\n".join(f"FAIL: {e}" for e in errors), file=sys.stderr)
    sys.exit(1)
EOF

if command -v promtool >/dev/null 2>&1; then
  for f in "$work"/rules-*.yaml; do
    [ -e "$f" ] || continue
    promtool check rules "$f" >"$work/promtool" 2>&1 || { cat "$work/promtool" >&2; fail "promtool check rules ($(basename "$f"))"; }
  done
  say "promtool check rules: ok"
else
  say "promtool not installed: rule expressions not compiled (apt-get install prometheus for promtool)"
fi

# --- gateway configs ---------------------------------------------------------------------------
# Backends are cluster DNS names (*.cluster.local) that cannot resolve off-cluster, and `check`
# resolves every backend name. So each check runs in a private mount namespace whose /etc/hosts
# adds those names, mapped to TEST-NET-1 addresses (RFC 5737).
# `check` also reads every certificate and key. Files under /etc/portcullis/tls/ (where the
# overlays mount cert-manager's Secret: tls.crt, tls.key, ca.crt) are read from the test
# certificate made above instead: those paths are rewritten in the extracted copy only.
for d in "$work"/config-*; do
  [ -d "$d" ] || continue
  if grep -rqs '/etc/portcullis/tls/' "$d"; then
    sed -i "s#/etc/portcullis/tls/#$work/tls/#g" "$d"/*
    say "$(basename "$d"): /etc/portcullis/tls/* read from a test certificate"
  fi
  hosts="$work/hosts-$(basename "$d")"
  cat /etc/hosts >"$hosts"
  i=10
  for n in $(grep -rhoE '[A-Za-z0-9.-]+\.cluster\.local' "$d" | sort -u); do
    echo "192.0.2.$i $n" >>"$hosts"; i=$((i + 1))
  done
  # shellcheck disable=SC2016
  inner='mount --bind "$1" /etc/hosts && exec "$2" check --config "$3"'
  if unshare --mount true 2>/dev/null; then
    run=(unshare --mount sh -c "$inner" sh)
  elif unshare --user --map-root-user --mount true 2>/dev/null; then
    run=(unshare --user --map-root-user --mount sh -c "$inner" sh)
  else
    fail "cannot create a mount namespace (unshare) to map cluster DNS names for portcullis check"
  fi
  label=${d#"$work"/config-}
  if ! out=$("${run[@]}" "$hosts" "$BIN" "$d/" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "portcullis check on the ConfigMap of $label"
  fi
  say "portcullis check ($label): ${out#"$d/": }"
done

# --- Dockerfile: every COPY source from the build context exists -------------------------------
while read -r src; do
  [ -e "$src" ] || fail "deploy/docker/Dockerfile copies $src, which does not exist"
done < <(awk '$1 == "COPY" && $0 !~ /--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' deploy/docker/Dockerfile)
say "Dockerfile: COPY sources present"

# --- systemd unit ------------------------------------------------------------------------------
# `systemd-analyze verify` also checks that ExecStart's binary exists: verify a copy that runs the
# built binary instead of /usr/local/bin/portcullis; nothing else changes.
[ -f "$UNIT" ] || fail "$UNIT is missing"
if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s#/usr/local/bin/portcullis#$BIN#g" "$UNIT" >"$work/portcullis.service"
  if ! systemd-analyze verify "$work/portcullis.service" >"$work/unit" 2>&1 || grep -q . "$work/unit"; then
    cat "$work/unit" >&2
    fail "systemd-analyze verify $UNIT"
  fi
  say "systemd-analyze verify: $UNIT ok"
else
  say "systemd-analyze not installed: $UNIT not verified (apt-get install systemd)"
fi

say "deploy: ok"
