#!/usr/bin/env bash
# Installs the real peers the tests drive, when missing, and prints nothing else on stdout but
# `export` lines for them:
#   - ffmpeg/ffprobe from Debian (apt-get; needs root or sudo);
#   - ffmpeg 9 (static, speaks Enhanced RTMP/FLV for HEVC) from the PyPI wheel imageio-ffmpeg==0.8.1,
#     which ships the binary inside the wheel. Debian 12's ffmpeg 5.1 cannot put HEVC in FLV;
#   - the Python prometheus_client (a real Prometheus text-format parser for the metrics test);
#   - Debian's chromium, node/npm, and playwright-core from npm (the console's browser test).
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

PY="${PYTHON:-python3}"
PYLIB="$TOOLS/py"
if ! PYTHONPATH="$PYLIB" "$PY" -c 'import prometheus_client' 2>/dev/null; then
  say "installing prometheus_client from PyPI"
  if ! "$PY" -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
    --target "$PYLIB" prometheus_client==0.26.0 >&2 2>/dev/null \
    || "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
         --break-system-packages --target "$PYLIB" prometheus_client==0.26.0 >&2
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian chromium"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing Debian nodejs and npm"
  apt_install nodejs npm
fi
PW="$TOOLS/node/node_modules/playwright-core"
if [ ! -f "$PW/package.json" ]; then
  say "installing playwright-core from npm"
  mkdir -p "$TOOLS/node"
  npm install --prefix "$TOOLS/node" --no-audit --no-fund --silent playwright-core@1.57.0 >&2
fi

echo "export SLUICE_FFMPEG9='$FF9'"
echo "export SLUICE_PYTHONPATH='$PYLIB'"
echo "export SLUICE_NODE_PATH='$TOOLS/node/node_modules'"
echo "export SLUICE_CHROMIUM='/usr/bin/chromium'"
