#!/usr/bin/env bash
# NGINX_BIN for /work/shared/peers/nginx-rtmp/start.sh during benchmarks: the peer's template has
# `worker_connections 1024`, too few for S2 (10 000 viewers). This raises it (and the worker's
# open-files limit) in the rendered config given with -c, then runs the real nginx.
# Env: NGINX_REAL_BIN (nginx on PATH, else /usr/sbin/nginx), NGINX_WORKER_CONNECTIONS (20000).
set -euo pipefail
conf=""
prev=""
for a in "$@"; do
  if [ "$prev" = "-c" ]; then conf="$a"; fi
  prev="$a"
done
n="${NGINX_WORKER_CONNECTIONS:-20000}"
if [ -n "$conf" ] && [ -w "$conf" ] && ! grep -q '^worker_rlimit_nofile' "$conf"; then
  sed -i -e "s/worker_connections [0-9]*;/worker_connections $n;/" \
    -e "/^worker_processes/a worker_rlimit_nofile $n;" "$conf"
fi
exec "${NGINX_REAL_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}" "$@"
