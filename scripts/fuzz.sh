#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# (default 30 s each, all targets). Installs cargo-fuzz when missing. Uses the stable toolchain
# with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). New inputs the fuzzer finds stay in
# fuzz/corpus/<target>/ (untracked; commit the interesting ones); a crash fails the script and
# leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
shift || true
say() { echo "fuzz.sh: $*" >&2; }

# libfuzzer-sys compiles libFuzzer (C++): needs a C++ compiler.
if ! command -v c++ >/dev/null; then
  say "installing g++ (libFuzzer is C++)"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2 || true
  as_root apt-get install -y -qq --no-install-recommends g++ >&2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi
# Build all targets first (the shared dependencies once), then run each.
start=$(date +%s)
if [ "$#" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do cargo fuzz build "$t"; done
else
  cargo fuzz build
fi
say "built ${#TARGETS[@]} targets in $(( $(date +%s) - start )) s"
for t in "${TARGETS[@]}"; do
  # New inputs go to a scratch dir (first corpus argument); the committed seeds are only read.
  mkdir -p "target/corpus-new/$t" "corpus/$t"
  log="target/fuzz-$t.log"
  if ! cargo fuzz run "$t" "target/corpus-new/$t" "corpus/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    say "$t: FAILED; the input is in fuzz/artifacts/$t/ (full log: fuzz/$log)"
    exit 1
  fi
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  say "$t: ${SECS} s, ${runs} runs, no crash"
done
say "all ${#TARGETS[@]} targets ran ${SECS} s each without a crash ($(( $(date +%s) - start )) s in all)"
