#!/usr/bin/env bash
# The test command: installs the test tools when missing (ffmpeg, ffmpeg 9), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-test-tools.sh)"
export SLUICE_FFMPEG9
cargo test --workspace --all-targets "$@"
