#!/usr/bin/env bash
# Starts or stops an nginx for bench/compare.sh's H scenarios, with its state in
# $PEERS_HOME/<name>/ (config rendered from a template here, logs, pid, files):
#   nginx-hls.sh start rtmp-hls RTMP_PORT HTTP_PORT   nginx-rtmp writing HLS, served by itself
#   nginx-hls.sh start cache HTTP_PORT ORIGIN_PORT    proxy_cache tier in front of an origin
#   nginx-hls.sh stop rtmp-hls|cache
# start prints the worker's pid (one worker) once both ports answer.
# Env: PEERS_HOME ($HOME/.cache/sluice-bench-peers), NGINX_RTMP_MODULE (Debian's path),
#      NGINX_REAL_BIN (nginx on PATH, else /usr/sbin/nginx).
set -euo pipefail
HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
PEERS_HOME="${PEERS_HOME:-$HOME/.cache/sluice-bench-peers}"
NGINX="${NGINX_REAL_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"
cmd="$1" kind="$2"
home="$PEERS_HOME/nginx-$kind"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
render() {
  local text kv
  text="$(cat "$1")"
  for kv in "${@:3}"; do text="${text//@${kv%%=*}@/"${kv#*=}"}"; done
  printf '%s\n' "$text" > "$2"
}
# Run as root (containers), nginx's worker would be nobody and could not write under $HOME.
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;  # bench/nginx-hls.sh: run as root, files under \$HOME"
case "$cmd" in
  start)
    mkdir -p "$home/logs" "$home/run" "$home/tmp"
    ports=()
    case "$kind" in
      rtmp-hls)
        rm -rf "$home/hls"; mkdir -p "$home/hls"
        render "$HERE/nginx-rtmp-hls.conf.template" "$home/nginx.conf" RTMP_PORT="$3" HTTP_PORT="$4" \
          USER_LINE="$USER_LINE" HLS_ROOT="$home" RTMP_MODULE="${NGINX_RTMP_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}"
        ports=("$3" "$4") ;;
      cache)
        rm -rf "$home/cache"; mkdir -p "$home/cache"
        render "$HERE/nginx-cache.conf.template" "$home/nginx.conf" HTTP_PORT="$3" ORIGIN_PORT="$4" \
          USER_LINE="$USER_LINE" CACHE_DIR="$home/cache"
        ports=("$3") ;;
      *) echo "unknown kind $kind" >&2; exit 2 ;;
    esac
    for p in "${ports[@]}"; do port_open "$p" && { echo "port $p is in use already" >&2; exit 1; }; done
    "$NGINX" -p "$home/" -c "$home/nginx.conf" -e "$home/logs/error.log" -t -q
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    "$NGINX" -p "$home/" -c "$home/nginx.conf" -e "$home/logs/error.log" > "$home/logs/stderr.log" 2>&1 &
    for _ in $(seq 100); do
      ok=1; for p in "${ports[@]}"; do port_open "$p" || ok=0; done
      [ "$ok" = 1 ] && [ -s "$home/run/nginx.pid" ] && break
      sleep 0.1
    done
    master="$(cat "$home/run/nginx.pid")"
    for _ in $(seq 50); do w="$(pgrep -P "$master" | head -1 || true)"; [ -n "$w" ] && break; sleep 0.1; done
    [ -n "${w:-}" ] || { echo "nginx-$kind did not start (see $home/logs)" >&2; exit 1; }
    echo "$w"
    ;;
  stop)
    [ -s "$home/run/nginx.pid" ] || exit 0
    master="$(cat "$home/run/nginx.pid")"
    kill "$master" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$master" 2>/dev/null || true
    rm -f "$home/run/nginx.pid"
    ;;
  *) echo "usage: $0 start|stop rtmp-hls|cache ..." >&2; exit 2 ;;
esac
