#!/usr/bin/env bash
# Installs the real peers the tests drive, when missing, and prints nothing else on stdout but
# `export` lines for them:
#   - ffmpeg/ffprobe from Debian (apt-get; needs root or sudo);
#   - ffmpeg 9 (static, speaks Enhanced RTMP/FLV for HEVC) from the PyPI wheel imageio-ffmpeg==0.8.1,
#     which ships the binary inside the wheel. Debian 12's ffmpeg 5.1 cannot put HEVC in FLV.
# State goes to $SLUICE_TOOLS (default ~/.cache/sluice-tools). Usage: eval "$(scripts/setup-test-tools.sh)"
set -euo pipefail
TOOLS="${SLUICE_TOOLS:-${HOME:?}/.cache/sluice-tools}"
mkdir -p "$TOOLS"
say() { echo "setup-test-tools: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else say "need root for: $*"; return 1; fi; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2 || true
  as_root apt-get install -y -qq --no-install-recommends "$@" >&2
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  say "installing Debian ffmpeg"
  apt_install ffmpeg
fi

FF9="$TOOLS/ffmpeg9/bin/ffmpeg9"
if [ ! -x "$FF9" ]; then
  say "installing ffmpeg 9 from PyPI imageio-ffmpeg==0.8.1"
  PY="${PYTHON:-python3}"
  if ! "$PY" -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
  rm -rf "$TOOLS/ffmpeg9"
  mkdir -p "$TOOLS/ffmpeg9/bin"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TOOLS/ffmpeg9/pkg" imageio-ffmpeg==0.8.1 >&2 2>/dev/null \
    || "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --break-system-packages \
         --target "$TOOLS/ffmpeg9/pkg" imageio-ffmpeg==0.8.1 >&2
  BINS=("$TOOLS"/ffmpeg9/pkg/imageio_ffmpeg/binaries/ffmpeg-*)
  [ -f "${BINS[0]}" ] || { say "the wheel has no ffmpeg binary for this platform"; exit 1; }
  chmod +x "${BINS[0]}"
  ln -sfn "${BINS[0]}" "$FF9"
fi
"$FF9" -hide_banner -version >/dev/null || { say "$FF9 does not run"; exit 1; }

echo "export SLUICE_FFMPEG9='$FF9'"
