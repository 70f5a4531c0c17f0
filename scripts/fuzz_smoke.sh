#!/usr/bin/env bash
# Runs every cargo-fuzz target of every crate for a bounded time (FUZZ_SECONDS, default 15
# each) and exits non-zero when one crashes. Installs cargo-fuzz when missing. cargo-fuzz needs
# nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
JOBS="${JOBS:-1}"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="$JOBS"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked -j "$JOBS" cargo-fuzz
fi

status=0
for dir in crates/*/fuzz; do
  [ -f "$dir/Cargo.toml" ] || continue
  for target in $(cd "$dir" && cargo fuzz list); do
    echo "fuzz $dir $target (${FUZZ_SECONDS}s)"
    if ! (cd "$dir" && cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096); then
      echo "fuzz target $dir/$target failed; reproducer under $dir/artifacts/$target/" >&2
      status=1
    fi
  done
done
exit "$status"
