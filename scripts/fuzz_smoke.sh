#!/usr/bin/env bash
# Runs every cargo-fuzz target of every crate (crates/*/fuzz) for a bounded time each and exits
# non-zero when one crashes; the reproducer stays under that crate's fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS  seconds per target (default 15; `make fuzz` uses 600)
#   FUZZ_TARGETS  space-separated target names to run (default: all)
#   JOBS          build jobs (default 1)
#
# Installs cargo-fuzz when missing. cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain provide them. All fuzz crates build into one target directory
# (target/fuzz): they share most dependencies, so each further crate costs only what is its own.
# The config target's corpus is seeded with the shipped conf/ files, the auth target's with a few
# well-formed credentials, at run time (corpora are not committed).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
FUZZ_TARGETS="${FUZZ_TARGETS:-}"
JOBS="${JOBS:-1}"
TARGET_DIR="$ROOT/target/fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="$JOBS"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked -j "$JOBS" cargo-fuzz
fi

seed() {
  local dir="$1" target="$2"
  case "$target" in
    config_load)
      mkdir -p "$dir/corpus/$target"
      cp conf/*.yaml conf/examples/*.yaml "$dir/corpus/$target/"
      ;;
    auth_credentials)
      # First byte: route (bits 0-1), signed (4), ES256 / X-API-Key (8), set alg (16), fill claims (32).
      local c="$dir/corpus/$target" claims='{"scope":"read write","realm_access":{"roles":["admin"]},"tenant":"a","client_id":"shop","plan":"pro"}'
      mkdir -p "$c"
      printf '\x34{"alg":"HS256","typ":"JWT"}\xff%s' "$claims" >"$c/seed-hs256"
      printf '\x3d{"alg":"ES256","kid":"ec1"}\xff%s' "$claims" >"$c/seed-es256"
      printf '\x08fuzz-api-key-0001' >"$c/seed-api-key"
      ;;
  esac
}

status=0
for dir in crates/*/fuzz; do
  [ -f "$dir/Cargo.toml" ] || continue
  for target in $(cd "$dir" && cargo fuzz list); do
    if [ -n "$FUZZ_TARGETS" ] && [[ " $FUZZ_TARGETS " != *" $target "* ]]; then
      continue
    fi
    seed "$dir" "$target"
    echo "fuzz $dir $target (${FUZZ_SECONDS}s)"
    # -timeout: one input running this long is a hang, reported like a crash.
    if ! (cd "$dir" && cargo fuzz run --target-dir "$TARGET_DIR" "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=4096); then
      echo "fuzz target $dir/$target failed; reproducer under $dir/artifacts/$target/" >&2
      status=1
    fi
  done
done
exit "$status"
