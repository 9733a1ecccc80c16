#!/usr/bin/env bash
# Installs the real peers the tests drive, when missing, and prints nothing else on stdout but
# `export` lines for them:
#   - ffmpeg/ffprobe from Debian (apt-get; needs root or sudo);
#   - ffmpeg 9 (static, speaks Enhanced RTMP/FLV for HEVC) from the PyPI wheel imageio-ffmpeg==0.8.1,
#     which ships the binary inside the wheel. Debian 12's ffmpeg 5.1 cannot put HEVC in FLV;
#   - the Python prometheus_client (a real Prometheus text-format parser for the metrics test);
#   - Debian's chromium, node/npm, and playwright-core from npm (the console's and hls.js tests);
#   - Debian's curl and openssl (the HTTP push and HTTPS/HTTP2 tests);
#   - Debian's nginx, the binary only (the HTTP cache in front of HLS, tests/hls_cache.rs, which
#     runs its own instance): the system service is stopped and disabled if the package started
#     it. The same package nginx-rtmp's peer (bench/) installs nginx-light on top of.
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

# curl (HTTP push, HTTP/2 over TLS) and openssl (the HTTPS test's self-signed certificate).
if ! command -v curl >/dev/null || ! command -v openssl >/dev/null; then
  say "installing Debian curl and openssl"
  apt_install curl openssl ca-certificates
fi

# iproute2 (`ip netns`): the multicast ingest test runs in a network namespace it creates.
if ! command -v ip >/dev/null; then
  say "installing Debian iproute2"
  apt_install iproute2
fi

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

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$NGINX" ]; then
  say "installing Debian nginx"
  apt_install nginx
  NGINX=/usr/sbin/nginx
  # Only the tests' own instances run: stop and disable the service where the package started
  # it (systemd, or sysvinit/none in a container, where policy-rc.d usually kept it down).
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now nginx >&2 2>&1 || true
  else
    if command -v service >/dev/null; then as_root service nginx stop >&2 2>&1 || true; fi
    if command -v update-rc.d >/dev/null; then as_root update-rc.d nginx disable >&2 2>&1 || true; fi
  fi
fi
"$NGINX" -v 2>/dev/null || { say "$NGINX does not run"; exit 1; }

echo "export SLUICE_FFMPEG9='$FF9'"
echo "export SLUICE_PYTHONPATH='$PYLIB'"
echo "export SLUICE_NODE_PATH='$TOOLS/node/node_modules'"
echo "export SLUICE_CHROMIUM='/usr/bin/chromium'"
echo "export SLUICE_NGINX='$NGINX'"
