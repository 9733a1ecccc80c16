#!/usr/bin/env bash
# S1 comparison: one publisher (the baseline clip, looped in real time) and $VIEWERS viewers for
# $DURATION s against sluice and each peer server in /work/shared/peers, one server at a time,
# all on 127.0.0.1. Writes bench/results/<stamp>/<run>.{json,txt} and docs/BENCHMARKS.md.
#
# Env: VIEWERS (1000), DURATION (20), RATE (200 viewers/s), PEERS_DIR (/work/shared/peers),
#      PEERS_HOME (peer state, default $HOME/.cache/sluice-bench-peers), CARGO_TARGET_DIR (target),
#      RUNS ("sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http"), BASE_PORT (19380).
# Peers are installed (nginx-rtmp: apt; NMS: npm ci) when missing; xiu is skipped unless already
# installed in $PEERS_HOME/xiu (its build takes ~9 min: run peers/xiu/install.sh first).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"
VIEWERS="${VIEWERS:-1000}"
DURATION="${DURATION:-20}"
RATE="${RATE:-200}"
PEERS_DIR="${PEERS_DIR:-/work/shared/peers}"
export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/sluice-bench-peers}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http}"
BASE_PORT="${BASE_PORT:-19380}"
CLIP="tests/media/h264-360p25-baseline-noB-aac-10s.flv"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="bench/results/$STAMP"
mkdir -p "$OUT" "$PEERS_HOME"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((VIEWERS * 2 + 256)) ] || echo "warning: ulimit -n $(ulimit -n) is low for $VIEWERS viewers" >&2

cargo build --release -q -p sluice -p sluice-bench
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BENCH="$CARGO_TARGET_DIR/release/sluice-bench"

# Ports: sluice RTMP/HTTP, nginx RTMP/stat, NMS RTMP/HTTP, xiu RTMP/HTTP/API.
P=$BASE_PORT
S_RTMP=$P S_HTTP=$((P + 1)) NG_RTMP=$((P + 2)) NG_STAT=$((P + 3))
NMS_RTMP=$((P + 4)) NMS_HTTP=$((P + 5)) XIU_RTMP=$((P + 6)) XIU_HTTP=$((P + 7)) XIU_API=$((P + 8))

SERVER_PID=""
STOP_CMD=()
cleanup() {
  if [ ${#STOP_CMD[@]} -gt 0 ]; then "${STOP_CMD[@]}" >/dev/null 2>&1 || true; fi
  STOP_CMD=()
}
trap cleanup EXIT

start_server() { # name -> sets SERVER_PID, STOP_CMD, PUB, PLAY
  local name="$1"
  case "$name" in
    sluice-*)
      for port in "$S_RTMP" "$S_HTTP"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          echo "port $port is in use already: pick another BASE_PORT" >&2; return 2
        fi
      done
      "$SLUICE" --rtmp "127.0.0.1:$S_RTMP" --http "127.0.0.1:$S_HTTP" > "${TMPDIR:-/tmp}/sluice-bench-$STAMP.log" 2>&1 &
      SERVER_PID=$!
      STOP_CMD=(kill "$SERVER_PID")
      for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S_HTTP") 2>/dev/null && break; sleep 0.1; done
      kill -0 "$SERVER_PID" 2>/dev/null || { echo "sluice did not start" >&2; return 2; }
      PUB="rtmp://127.0.0.1:$S_RTMP/live/s1"
      if [ "$name" = sluice-http ]; then PLAY="http://127.0.0.1:$S_HTTP/live/s1.flv"; else PLAY="rtmp://127.0.0.1:$S_RTMP/live/s1"; fi
      ;;
    nginx-rtmp)
      [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || "$PEERS_DIR/nginx-rtmp/install.sh" >&2
      NGINX_RTMP_PORT=$NG_RTMP NGINX_STAT_PORT=$NG_STAT "$PEERS_DIR/nginx-rtmp/start.sh" >&2
      STOP_CMD=("$PEERS_DIR/nginx-rtmp/stop.sh")
      # The single worker does the RTMP work; the master only supervises.
      SERVER_PID="$(pgrep -P "$(cat "$PEERS_HOME/nginx-rtmp/nginx.pid")" | head -1)"
      PUB="rtmp://127.0.0.1:$NG_RTMP/live/s1"
      PLAY="rtmp://127.0.0.1:$NG_RTMP/live/s1"
      ;;
    nms-http)
      NMS_RTMP_PORT=$NMS_RTMP NMS_HTTP_PORT=$NMS_HTTP "$PEERS_DIR/node-media-server/start.sh" >&2
      STOP_CMD=("$PEERS_DIR/node-media-server/stop.sh")
      SERVER_PID="$(cat "$PEERS_HOME/node-media-server/nms.pid")"
      PUB="rtmp://127.0.0.1:$NMS_RTMP/live/s1"
      PLAY="http://127.0.0.1:$NMS_HTTP/live/s1.flv"
      ;;
    xiu-http)
      [ -x "$PEERS_HOME/xiu/install/bin/xiu" ] || return 1
      XIU_RTMP_PORT=$XIU_RTMP XIU_HTTP_PORT=$XIU_HTTP XIU_API_PORT=$XIU_API "$PEERS_DIR/xiu/start.sh" >&2
      STOP_CMD=("$PEERS_DIR/xiu/stop.sh")
      SERVER_PID="$(cat "$PEERS_HOME/xiu/xiu.pid")"
      PUB="rtmp://127.0.0.1:$XIU_RTMP/live/s1"
      PLAY="http://127.0.0.1:$XIU_HTTP/live/s1.flv"
      ;;
    *) echo "unknown run $name" >&2; return 1 ;;
  esac
}

CMDS=()
for run in $RUNS; do
  rc=0; start_server "$run" || rc=$?
  if [ "$rc" = 1 ]; then echo "skip $run (not installed)" >&2; continue; fi
  if [ "$rc" != 0 ]; then exit "$rc"; fi
  sleep 1
  cmd=("$BENCH" --clip "$CLIP" --publish-url "$PUB" --play-url "$PLAY" -n "$VIEWERS" --rate "$RATE"
       --duration "$DURATION" --server-pid "$SERVER_PID" --json "$OUT/$run.json")
  echo "== $run: ${cmd[*]}" >&2
  CMDS+=("$run: ${cmd[*]/#$CARGO_TARGET_DIR/target}")
  "${cmd[@]}" | tee "$OUT/$run.txt" || echo "$run: sluice-bench failed" | tee "$OUT/$run.txt"
  cleanup
  sleep 1
done

# Versions and machine, for the doc.
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "sluice: $(git rev-parse --short HEAD) (release build)"
  echo "nginx-rtmp: $(dpkg-query -W -f='${Package} ${Version}; ' nginx-light libnginx-mod-rtmp 2>/dev/null | sed 's/; $//' || echo n/a)"
  echo "node-media-server: $(cd "$PEERS_HOME/node-media-server" 2>/dev/null && node -p 'require("node-media-server/package.json").version + " on node " + process.version' 2>/dev/null || echo n/a)"
  echo "xiu: $([ -x "$PEERS_HOME/xiu/install/bin/xiu" ] && echo 0.14.0 || echo 'not installed, skipped')"
} > "$OUT/env.txt"
printf '%s\n' "${CMDS[@]}" > "$OUT/commands.txt"
python3 bench/report.py "$OUT" docs/BENCHMARKS.md > "$OUT/BENCHMARKS.md"
cp "$OUT/BENCHMARKS.md" docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md and $OUT" >&2
