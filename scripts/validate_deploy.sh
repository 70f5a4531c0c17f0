#!/usr/bin/env bash
# Offline validation of deploy/: every kustomization renders with `kubectl kustomize`, every
# rendered object passes `kubernetes-validate --strict`, the alert rules pass `promtool check
# rules` (when promtool is installed), every portcullis_* metric named by the dashboard and the
# alerts exists in the gateway's source, and every gateway config a ConfigMap carries passes
# `portcullis check`. Exits non-zero on the first class of failure found, after reporting all of
# that class.
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
# Where metric names are defined (registry metrics, auth counters, rate-limit families).
METRIC_SOURCES=(
  crates/portcullis-proxy/src/metrics.rs
  crates/portcullis-proxy/src/admin.rs
  crates/portcullis-auth/src/metrics.rs
)
# Kinds that kubernetes-validate has no schema for and that we accept (Prometheus Operator CRDs;
# their rule expressions are checked with promtool below).
CRD_KINDS="monitoring.coreos.com/v1/PodMonitor monitoring.coreos.com/v1/PrometheusRule"

say() { printf '%s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
if grep -v "Couldn't find schema for kind \(PodMonitor\|PrometheusRule\) with api version monitoring.coreos.com/v1 " "$work/kv" | grep -q .; then
  cat "$work/kv" >&2
  fail "kubernetes-validate reported warnings (only $CRD_KINDS may lack a schema)"
fi
say "kubernetes-validate --strict: ${#rendered[@]} renderings valid for Kubernetes $K8S_VERSION"

# --- rendered objects: CRDs, rules, configs, metric names ---------------------------------------
"$PY" - "$work" "$DASHBOARD" "$CRD_KINDS" "${rendered[@]}" -- "${METRIC_SOURCES[@]}" <<'EOF'
import json, os, re, sys
import yaml

work, dashboard, crd_kinds, *rest = sys.argv[1:]
sep = rest.index("--")
renderings, sources = rest[:sep], rest[sep + 1:]
crd_kinds = set(crd_kinds.split())
errors = []

defined = set()
for path in sources:
    defined |= set(re.findall(r'"(portcullis_[a-z0-9_]+)"', open(path).read()))
if len(defined) < 10:
    sys.exit(f"FAIL: found only {len(defined)} metric names in {sources}: has the source moved?")

def check_metrics(where, text):
    for name in sorted(set(re.findall(r"\bportcullis_[a-z0-9_]+", text))):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in defined and base not in defined:
            errors.append(f"{where}: metric {name} is not exported by the gateway")

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
for r in renderings:
    name = os.path.basename(r)[:-5]
    for doc in yaml.safe_load_all(open(r)):
        if not doc:
            continue
        kind, api = doc.get("kind"), doc.get("apiVersion", "")
        meta = doc.get("metadata", {})
        if "/" in api and api.split("/")[0].endswith("coreos.com"):
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
            for key, text in doc.get("data", {}).items():
                open(os.path.join(d, key), "w").write(text)
print(f"dashboard: {len(exprs)} queries; metric names checked against {len(defined)} exported names")
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
# adds those names, mapped to TEST-NET-1 addresses (RFC 5737); nothing else changes.
for d in "$work"/config-*; do
  [ -d "$d" ] || continue
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

say "deploy: ok"
