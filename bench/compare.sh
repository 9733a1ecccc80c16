#!/usr/bin/env bash
# Server comparison: sluice against the peer servers in /work/shared/peers (nginx-rtmp,
# node-media-server, xiu when installed), one server at a time, all on 127.0.0.1, driven by
# sluice-bench (crates/bench). Writes <RESULTS>/<stamp>/<scenario>/<run>.{json,txt}, then
# docs/BENCHMARKS.md and docs/bench-s1.png (via bench/report.py).
#
# Scenarios (SCENARIOS="S1 S2 S3 S4 S5 MW AH0", the default, runs all):
#   S1  one 640x360 stream (≈480 kbit/s), 1 000 viewers (HTTP-FLV; RTMP for nginx-rtmp), 20 s,
#       plus a sweep over S1_SWEEP viewer counts ("250 500 1000") for sluice, nginx-rtmp, NMS
#       (and xiu) and the plot docs/bench-s1.png
#   S2  the 180p low-bitrate clip, 10 000 viewers ramped at 1 000/s, 30 s
#   S3  1 000 normal + 200 slow (30 000 B/s, below the stream's bitrate) + 200 stalled, 60 s
#   S4  50 publishers (one stream each) × 20 viewers each, 20 s
#   S5  1 000 RTMP-play viewers, 20 s
#   MW  S1 with sluice's egress merge window at 350 ms, next to nginx-rtmp
#   AH0 S1 with sluice's audio hold off (hub.max_audio_hold_ms = 0), next to nginx-rtmp
#   H1  1 000 classic HLS viewers direct, 30 s: sluice's MPEG-TS variant (and its fMP4 one)
#       against nginx-rtmp's HLS files (hls_fragment 2s, hls_playlist_length 14s) served by the
#       same nginx (bench/nginx-rtmp-hls.conf.template)
#   H2  1 000 LL-HLS viewers of sluice (blocking reload, parts, preload hints), 30 s
#   H3  LL-HLS + classic (TS) viewers, half each, through an nginx proxy_cache tier in front of
#       sluice (bench/nginx-cache.conf.template), at 500 and 2 000 viewers, 30 s: origin
#       requests per segment/part from sluice's /metrics, origin CPU
#   S6  join storms on the 180p low-bitrate clip (small frames: the cost is per write), the tool's
#       viewers spread over 4 event loops (--runtimes 4): 19 000 viewers joining at 2 000/s and at
#       10 000/s (sluice HTTP-FLV and RTMP, nginx-rtmp RTMP); a reconnect storm (10 000 viewers,
#       all dropped and reconnected within 1 s, 10 s in); 19 500 HTTP-FLV viewers with
#       `egress.merge_ms = 200` (latency within the merge window). Not in the default set
#       (SCENARIOS=S6); ≈6 min.
#   I1  50 publishers, no viewers, 20 s, over RTMP, SRT and MPEG-TS/UDP: server CPU per
#       ingested GB and RSS per publisher (sluice only)
#   I2  one SRT publisher, 1 000 HTTP-FLV viewers, 20 s: latency, next to an RTMP publisher
#   (I* are not in the default set either: SCENARIOS="I1 I2"; report.py does not render them,
#   their figures are in the .txt/.json files and written into BENCHMARKS.md by hand.)
#   (H* and S6 are not in the default set: SCENARIOS="H1 H2 H3". The HLS viewers start after
#   H_WARMUP seconds of publishing (16; 3 in smoke runs) during which the tool requests the
#   playlist once, so that the segment windows are full in the RSS baseline.)
#
# Env: SCENARIOS, S1_SWEEP, WARMUP (seconds before the first viewer, 6), SCALE (divide every viewer count by this, for smoke runs; 1),
#      DURATION (override every scenario's duration, for smoke runs), PEERS_DIR
#      (/work/shared/peers), PEERS_HOME (peer state, default $HOME/.cache/sluice-bench-peers),
#      CARGO_TARGET_DIR (target), BASE_PORT (19500; uses BASE_PORT..BASE_PORT+10), H_WARMUP,
#      RESULTS (bench/results), NO_DOCS=1 (leave docs/ alone), ONLY (run names to keep, e.g.
#      "sluice-http nginx-rtmp"; runs: sluice-http sluice-rtmp sluice-http-mw sluice-rtmp-mw
#      sluice-http-ah0 sluice-rtmp-ah0 nms-http nms-rtmp nginx-rtmp xiu-http xiu-rtmp; H runs:
#      sluice-hls sluice-hls-fmp4 nginx-rtmp-hls sluice-llhls sluice-cache). With SCALE != 1 or DURATION set
#      the run is a smoke run: the report is written to the results folder only, marked as such
#      (docs/ is left alone).
# Full run (all scenarios, default settings) on a 2-core machine: ≈20 min without xiu, ≈25 min
# with it (sum of the windows ≈13 min plus ≈15 s per run for start, warm-up, drain and stop).
# Peers are installed (nginx-rtmp: apt; NMS: npm ci) when missing; xiu is skipped unless already
# installed in $PEERS_HOME/xiu (its build takes ~9 min: run peers/xiu/install.sh first).
# nginx-rtmp is started through bench/nginx-wrap.sh, which raises the peer config's
# worker_connections (1024) to 20 000 so that S2 is not capped by configuration.
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"
SCENARIOS="${SCENARIOS:-S1 S2 S3 S4 S5 MW AH0}"
# Seconds of publishing before the first viewer; the RSS baseline is taken at its end. Longer
# than sluice's ring (hub.ring_max_duration_ms, 4 s) so that caches filling up (ours, NMS's and
# xiu's GOP caches) are in the baseline and not charged to the viewers.
WARMUP="${WARMUP:-6}"
S1_SWEEP="${S1_SWEEP:-250 500 1000}"
SCALE="${SCALE:-1}"
DURATION_OVERRIDE="${DURATION:-}"
PEERS_DIR="${PEERS_DIR:-/work/shared/peers}"
export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/sluice-bench-peers}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BASE_PORT="${BASE_PORT:-19500}"
RESULTS="${RESULTS:-bench/results}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS/$STAMP"
SMOKE=0
if [ "$SCALE" != 1 ] || [ -n "$DURATION_OVERRIDE" ]; then SMOKE=1; fi
if [ "$SMOKE" = 1 ]; then H_WARMUP="${H_WARMUP:-3}"; else H_WARMUP="${H_WARMUP:-16}"; fi
mkdir -p "$OUT" "$PEERS_HOME"
CLIP360="tests/media/h264-360p25-baseline-noB-aac-10s.flv"
CLIP180="tests/media/h264-180p10-lowrate-aac-10s.flv"

# Tool and server are separate processes; each gets this limit (hard limit 20 000 here).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-files limit: $(ulimit -n)" >&2
if [[ " $SCENARIOS " == *" S2 "* ]] && [ "$(ulimit -n)" -lt $(( 10000 / SCALE + 256 )) ]; then
  echo "warning: open-files limit $(ulimit -n) is too low for S2's $(( 10000 / SCALE )) viewers" >&2
fi

cargo build --release -q -p sluice -p sluice-bench
# The revision the binaries were built from (the tree may be edited while the runs go on).
SLUICE_REV="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates || echo ' + uncommitted changes')"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BENCH="$CARGO_TARGET_DIR/release/sluice-bench"

# sluice configs: default (slow_timeout_ms spelled out: stalled viewers are cut after 10 s) and
# the 350 ms merge window.
cat > "$OUT/sluice.toml" <<'TOML'
[hub]
slow_timeout_ms = 10000
TOML
cat > "$OUT/sluice-mw350.toml" <<'TOML'
[hub]
slow_timeout_ms = 10000

[egress]
merge_ms = 350
TOML
cat > "$OUT/sluice-mw200.toml" <<'TOML'
[hub]
slow_timeout_ms = 10000

[egress]
merge_ms = 200
TOML
cat > "$OUT/sluice-ah0.toml" <<'TOML'
[hub]
slow_timeout_ms = 10000
max_audio_hold_ms = 0
TOML

# Ports: sluice RTMP/HTTP, nginx RTMP/stat, NMS RTMP/HTTP, xiu RTMP/HTTP/API.
P=$BASE_PORT
S_RTMP=$P S_HTTP=$((P + 1)) NG_RTMP=$((P + 2)) NG_STAT=$((P + 3))
NMS_RTMP=$((P + 4)) NMS_HTTP=$((P + 5)) XIU_RTMP=$((P + 6)) XIU_HTTP=$((P + 7)) XIU_API=$((P + 8))
NG_HLS_HTTP=$((P + 9)) CACHE_HTTP=$((P + 10))
# Ingest scenarios (I1, I2): sluice's SRT port and 50 MPEG-TS/UDP ports from UDP_BASE.
S_SRT=$((P + 11)) UDP_BASE=$((P + 20))
{
  printf '[hub]\nslow_timeout_ms = 10000\n\n[srt]\nlisten = "127.0.0.1:%s"\nlatency_ms = 120\n' "$S_SRT"
  for i in $(seq 0 49); do
    printf '\n[[ingest.udp]]\nlisten = "127.0.0.1:%s"\nstream = "live/in-udp-%s"\n' "$((UDP_BASE + i))" "$i"
  done
} > "$OUT/sluice-ingest.toml"

SERVER_PID=""
STOP_CMD=()
CACHE_UP=0
cleanup() {
  if [ "$CACHE_UP" = 1 ]; then bench/nginx-hls.sh stop cache || true; CACHE_UP=0; fi
  if [ ${#STOP_CMD[@]} -gt 0 ]; then
    "${STOP_CMD[@]}" >/dev/null 2>&1 || true
    # sluice is ours: wait for it to exit so its ports are free for the next run.
    if [ "${STOP_CMD[0]}" = kill ]; then
      for _ in $(seq 50); do kill -0 "${STOP_CMD[1]}" 2>/dev/null || break; sleep 0.1; done
      kill -9 "${STOP_CMD[1]}" 2>/dev/null || true
    fi
    # Peers too: let the measured process finish exiting (freeing its memory) before the next
    # run starts, so it does not share the machine with it.
    if [ -n "$SERVER_PID" ]; then
      for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  STOP_CMD=()
}
trap cleanup EXIT

have_xiu() { [ -x "$PEERS_HOME/xiu/install/bin/xiu" ]; }

# start_server RUN STREAM -> sets SERVER_PID, STOP_CMD, PUB, PLAY. RUN is <server>-<proto>[-mw]
# with server sluice|nginx|nms|xiu and proto http|rtmp. Returns 1 when the server is not
# installed (skipped), 2 on a failed start.
start_server() {
  local run="$1" stream="$2" conf="$OUT/sluice.toml"
  METRICS=""
  case "$run" in
    sluice-*)
      case "$run" in
        *-mw) conf="$OUT/sluice-mw350.toml" ;;
        *-mw200) conf="$OUT/sluice-mw200.toml" ;;
        *-ah0) conf="$OUT/sluice-ah0.toml" ;;
        sluice-in-*) conf="$OUT/sluice-ingest.toml" ;;
      esac
      for port in "$S_RTMP" "$S_HTTP"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          echo "port $port is in use already: pick another BASE_PORT" >&2; return 2
        fi
      done
      "$SLUICE" --config "$conf" --rtmp "127.0.0.1:$S_RTMP" --http "127.0.0.1:$S_HTTP" \
        > "$SERVER_LOG" 2>&1 &
      SERVER_PID=$!
      STOP_CMD=(kill "$SERVER_PID")
      for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S_HTTP") 2>/dev/null && break; sleep 0.1; done
      kill -0 "$SERVER_PID" 2>/dev/null || { echo "sluice did not start" >&2; return 2; }
      PUB="rtmp://127.0.0.1:$S_RTMP/live/$stream"
      METRICS="http://127.0.0.1:$S_HTTP/metrics"
      case "$run" in
        sluice-hls) PLAY="http://127.0.0.1:$S_HTTP/live/$stream/ts/index.m3u8" ;;
        sluice-hls-fmp4|sluice-llhls) PLAY="http://127.0.0.1:$S_HTTP/live/$stream/index.m3u8" ;;
        sluice-cache)
          bench/nginx-hls.sh start cache "$CACHE_HTTP" "$S_HTTP" > /dev/null || return 2
          CACHE_UP=1
          PLAY="http://127.0.0.1:$CACHE_HTTP/live/$stream/index.m3u8"
          PLAY_TS="http://127.0.0.1:$CACHE_HTTP/live/$stream/ts/index.m3u8"
          ;;
        sluice-http*) PLAY="http://127.0.0.1:$S_HTTP/live/$stream.flv" ;;
        sluice-in-*) PLAY="http://127.0.0.1:$S_HTTP/live/$stream.flv" ;;
        *) PLAY="rtmp://127.0.0.1:$S_RTMP/live/$stream" ;;
      esac
      case "$run" in
        sluice-in-srt*) PUB="srt://127.0.0.1:$S_SRT?streamid=#!::r=live/$stream,m=publish" ;;
        sluice-in-udp)
          # The [[ingest.udp]] listeners name the streams: live/in-udp-{s}.
          PUB="udp://127.0.0.1:$UDP_BASE+{s}"
          PLAY="http://127.0.0.1:$S_HTTP/live/in-udp-{s}.flv" ;;
      esac
      ;;
    nginx-rtmp-hls)
      [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || "$PEERS_DIR/nginx-rtmp/install.sh" >&2
      SERVER_PID="$(bench/nginx-hls.sh start rtmp-hls "$NG_RTMP" "$NG_HLS_HTTP")" || return 2
      STOP_CMD=(bench/nginx-hls.sh stop rtmp-hls)
      PUB="rtmp://127.0.0.1:$NG_RTMP/live/$stream"
      PLAY="http://127.0.0.1:$NG_HLS_HTTP/hls/$stream.m3u8"
      ;;
    nginx-rtmp)
      [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || "$PEERS_DIR/nginx-rtmp/install.sh" >&2
      NGINX_BIN="$ROOT/bench/nginx-wrap.sh" NGINX_RTMP_PORT=$NG_RTMP NGINX_STAT_PORT=$NG_STAT \
        "$PEERS_DIR/nginx-rtmp/start.sh" >&2 || return 2
      STOP_CMD=("$PEERS_DIR/nginx-rtmp/stop.sh")
      # The single worker does the RTMP work; the master only supervises.
      SERVER_PID="$(pgrep -P "$(cat "$PEERS_HOME/nginx-rtmp/nginx.pid")" | head -1)"
      PUB="rtmp://127.0.0.1:$NG_RTMP/live/$stream"
      PLAY="rtmp://127.0.0.1:$NG_RTMP/live/$stream"
      ;;
    nms-*)
      NMS_RTMP_PORT=$NMS_RTMP NMS_HTTP_PORT=$NMS_HTTP "$PEERS_DIR/node-media-server/start.sh" >&2 || return 2
      STOP_CMD=("$PEERS_DIR/node-media-server/stop.sh")
      SERVER_PID="$(cat "$PEERS_HOME/node-media-server/nms.pid")"
      PUB="rtmp://127.0.0.1:$NMS_RTMP/live/$stream"
      case "$run" in
        nms-http) PLAY="http://127.0.0.1:$NMS_HTTP/live/$stream.flv" ;;
        *) PLAY="rtmp://127.0.0.1:$NMS_RTMP/live/$stream" ;;
      esac
      ;;
    xiu-*)
      have_xiu || return 1
      XIU_RTMP_PORT=$XIU_RTMP XIU_HTTP_PORT=$XIU_HTTP XIU_API_PORT=$XIU_API "$PEERS_DIR/xiu/start.sh" >&2 || return 2
      STOP_CMD=("$PEERS_DIR/xiu/stop.sh")
      SERVER_PID="$(cat "$PEERS_HOME/xiu/xiu.pid")"
      PUB="rtmp://127.0.0.1:$XIU_RTMP/live/$stream"
      case "$run" in
        xiu-http) PLAY="http://127.0.0.1:$XIU_HTTP/live/$stream.flv" ;;
        *) PLAY="rtmp://127.0.0.1:$XIU_RTMP/live/$stream" ;;
      esac
      ;;
    *) echo "unknown run $run" >&2; return 1 ;;
  esac
}

scaled() { local n=$(( $1 / SCALE )); [ "$n" -ge 1 ] || n=1; echo "$n"; }
dur() { echo "${DURATION_OVERRIDE:-$1}"; }

CMDS=()
# bench SCENARIO RUN FILE STREAM TOOL-ARGS... : one server, one sluice-bench run.
# With SECOND=(TOOL-ARGS...) set, a second tool process runs viewers only (--no-publish) next to
# the first, on $PLAY_TS, writing FILE-b.json (viewers spread over two processes).
# WITH_METRICS=1 passes --metrics-url (sluice's /metrics) to the first process.
SECOND=()
WITH_METRICS=0
bench() {
  local scen="$1" run="$2" file="$3" stream="$4"; shift 4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $run "* ]]; then return 0; fi
  mkdir -p "$OUT/$scen"
  SERVER_LOG="$OUT/$scen/$file.server.log"  # sluice's log (viewer close reasons), for report.py
  local rc=0; start_server "$run" "$stream" || rc=$?
  if [ "$rc" = 1 ]; then echo "skip $run (not installed)" >&2; return 0; fi
  if [ "$rc" != 0 ]; then echo "$scen $run: server did not start" >&2; cleanup; return 0; fi
  sleep 1
  local warm="$WARMUP"
  case "$scen" in H*) warm="$H_WARMUP" ;; esac
  local cmd=("$BENCH" --publish-url "$PUB" --play-url "$PLAY" --server-pid "$SERVER_PID"
             --warmup "$warm" --json "$OUT/$scen/$file.json" "$@")
  if [ "$WITH_METRICS" = 1 ] && [ -n "${METRICS:-}" ]; then cmd+=(--metrics-url "$METRICS"); fi
  echo "== $scen $file: ${cmd[*]}" >&2
  CMDS+=("$scen $file: ${cmd[*]/#$CARGO_TARGET_DIR/target}")
  local second_pid=""
  cut -d' ' -f1-3 /proc/loadavg > "$OUT/$scen/$file.load"
  if [ ${#SECOND[@]} -gt 0 ]; then
    # Started with the first; its own warm-up (no publish) ends when the first's does.
    local cmd2=("$BENCH" --no-publish --publish-url "$PUB" --play-url "$PLAY_TS" --warmup "$warm"
                --json "$OUT/$scen/$file-b.json" "${SECOND[@]}")
    echo "== $scen $file-b: ${cmd2[*]}" >&2
    CMDS+=("$scen $file-b: ${cmd2[*]/#$CARGO_TARGET_DIR/target}")
    "${cmd2[@]}" > "$OUT/$scen/$file-b.txt" 2>&1 &
    second_pid=$!
  fi
  "${cmd[@]}" > "$OUT/$scen/$file.txt" 2>&1 || echo "$scen $file: sluice-bench failed" >> "$OUT/$scen/$file.txt"
  if [ -n "$second_pid" ]; then
    wait "$second_pid" || echo "$scen $file-b: sluice-bench failed" >> "$OUT/$scen/$file-b.txt"
    cat "$OUT/$scen/$file-b.txt" >&2
  fi
  cat "$OUT/$scen/$file.txt" >&2
  cleanup
  sleep 2
}

T0=$(date +%s)
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
for scen in $SCENARIOS; do
  case "$scen" in
    S1)
      n=$(scaled 1000)
      for run in sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http; do
        bench S1 "$run" "$run" s1 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
      done
      for v in $S1_SWEEP; do
        n=$(scaled "$v")
        for run in sluice-http nms-http nginx-rtmp xiu-http; do
          if [ "$v" = 1000 ] && [ -f "$OUT/S1/$run.json" ]; then
            mkdir -p "$OUT/S1-sweep"; cp "$OUT/S1/$run.json" "$OUT/S1-sweep/$run-$v.json"; continue
          fi
          bench S1-sweep "$run" "$run-$v" s1 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
        done
      done
      ;;
    S2)
      n=$(scaled 10000)
      for run in sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http; do
        bench S2 "$run" "$run" s2 --clip "$CLIP180" -n "$n" --rate 1000 --duration "$(dur 30)" \
          --read-buf 8192 --connect-timeout 20
      done
      ;;
    S3)
      n=$(scaled 1000) slow=$(scaled 200) stalled=$(scaled 200)
      for run in sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http; do
        bench S3 "$run" "$run" s3 --clip "$CLIP360" -n $((n + slow + stalled)) --slow "$slow" \
          --slow-rate 30000 --stalled "$stalled" --rate 200 --duration "$(dur 60)"
      done
      ;;
    S4)
      streams=$(scaled 50)
      for run in sluice-http sluice-rtmp nms-http nginx-rtmp xiu-http; do
        bench S4 "$run" "$run" 's4-{s}' --clip "$CLIP360" --streams "$streams" -n $((streams * 20)) \
          --rate 200 --duration "$(dur 20)"
      done
      ;;
    S5)
      n=$(scaled 1000)
      for run in sluice-rtmp nms-rtmp nginx-rtmp xiu-rtmp; do
        bench S5 "$run" "$run" s5 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
      done
      ;;
    MW)
      n=$(scaled 1000)
      for run in sluice-http-mw sluice-rtmp-mw nginx-rtmp; do
        bench MW "$run" "$run" mw --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
      done
      ;;
    AH0)
      n=$(scaled 1000)
      for run in sluice-http-ah0 sluice-rtmp-ah0 nginx-rtmp; do
        bench AH0 "$run" "$run" ah0 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
      done
      ;;
    H1)
      n=$(scaled 1000)
      WITH_METRICS=1
      for run in sluice-hls sluice-hls-fmp4 nginx-rtmp-hls; do
        [ "$SMOKE" = 1 ] && [ "$run" = sluice-hls-fmp4 ] && continue
        bench H1 "$run" "$run" h1 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 30)" --mode hls
      done
      WITH_METRICS=0
      ;;
    H2)
      n=$(scaled 1000)
      WITH_METRICS=1
      bench H2 sluice-llhls sluice-llhls h2 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 30)" --mode llhls
      WITH_METRICS=0
      ;;
    H3)
      WITH_METRICS=1
      for v in 500 2000; do
        n=$(scaled "$v"); half=$(( n / 2 )); [ "$half" -ge 1 ] || half=1
        SECOND=(--clip "$CLIP360" -n "$(( n - half ))" --rate 200 --duration "$(dur 30)" --mode hls)
        bench H3 sluice-cache "sluice-cache-$v" h3 --clip "$CLIP360" -n "$half" --rate 200 \
          --duration "$(dur 30)" --mode llhls
        SECOND=()
      done
      WITH_METRICS=0
      ;;
    S6)
      n=$(scaled 19000) nr=$(scaled 10000) nm=$(scaled 19500)
      S6_ARGS=(--clip "$CLIP180" --duration "$(dur 20)" --read-buf 4096 --connect-timeout 20 --runtimes 4)
      for rate in 2000 10000; do
        for run in sluice-http sluice-rtmp nginx-rtmp; do
          [ "$run" = sluice-rtmp ] && [ "$rate" = 10000 ] && continue
          bench S6 "$run" "$run-$rate" s6 -n "$n" --rate "$rate" "${S6_ARGS[@]}"
        done
      done
      for run in sluice-http nginx-rtmp; do
        bench S6 "$run" "$run-reconnect" s6 -n "$nr" --rate 2000 "${S6_ARGS[@]}" \
          --reconnect-at 10 --reconnect-within 1
      done
      bench S6 sluice-http-mw200 sluice-http-mw200 s6 -n "$nm" --rate 2000 "${S6_ARGS[@]}"
      ;;
    I1)
      # 50 publishers of the 360p clip, no viewers: server CPU per ingested byte and RSS per
      # publisher, over RTMP, SRT (srt-tokio caller in the tool, 1316-byte messages) and
      # MPEG-TS over UDP (7 packets per datagram); the TS is muxed by the tool from the clip.
      streams=$(scaled 50)
      for run in sluice-in-rtmp sluice-in-srt sluice-in-udp; do
        bench I1 "$run" "$run" 'in-{s}' --clip "$CLIP360" --streams "$streams" -n 0 \
          --duration "$(dur 20)"
      done
      ;;
    I2)
      # One SRT publisher, 1 000 HTTP-FLV viewers: latency from the tool's send of a frame (as
      # TS over SRT) to its arrival over HTTP-FLV; next to the same over RTMP.
      n=$(scaled 1000)
      for run in sluice-in-srt-flv sluice-in-rtmp-flv; do
        bench I2 "$run" "$run" i2 --clip "$CLIP360" -n "$n" --rate 200 --duration "$(dur 20)"
      done
      ;;
    *) echo "unknown scenario $scen" >&2; exit 2 ;;
  esac
done
echo "all runs: $(( $(date +%s) - T0 )) s" >&2

# Versions and machine, for the doc.
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "sluice: $SLUICE_REV (release build)"
  echo "load average before the runs: $LOAD0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx-rtmp: $(dpkg-query -W -f='${Package} ${Version}; ' nginx-light libnginx-mod-rtmp 2>/dev/null | sed 's/; $//' || echo n/a) (worker_connections raised to 20000 by bench/nginx-wrap.sh)"
  echo "node-media-server: $(cd "$PEERS_HOME/node-media-server" 2>/dev/null && node -p 'require("node-media-server/package.json").version + " on node " + process.version' 2>/dev/null || echo n/a)"
  echo "xiu: $(have_xiu && echo 0.14.0 || echo 'not installed, skipped')"
  echo "open-files limit (server and tool): $(ulimit -n)"
  echo "wall time of all runs: $(( $(date +%s) - T0 )) s"
} > "$OUT/env.txt"
printf '%s\n' "${CMDS[@]}" > "$OUT/commands.txt"
echo "$SCENARIOS" > "$OUT/scenarios.txt"
[ "$SMOKE" = 1 ] && echo "SCALE=$SCALE DURATION=${DURATION_OVERRIDE:-default}" > "$OUT/SMOKE"

# Plot (matplotlib, installed into a venv under $OUT/.. when missing).
PY=python3
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  VENV="${BENCH_VENV:-$HOME/.cache/sluice-bench-venv}"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv "$VENV" >&2 && "$VENV/bin/pip" install -q matplotlib >&2 || echo "matplotlib install failed: no plot" >&2
  fi
  [ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
fi
if [ "$SMOKE" = 1 ] || [ "${NO_DOCS:-0}" = 1 ]; then
  "$PY" bench/report.py "$OUT" docs/BENCHMARKS.md "$OUT/bench-s1.png" > "$OUT/BENCHMARKS.md"
  echo "smoke run: wrote $OUT/BENCHMARKS.md (docs/ left alone)" >&2
else
  "$PY" bench/report.py "$OUT" docs/BENCHMARKS.md docs/bench-s1.png > "$OUT/BENCHMARKS.md"
  cp "$OUT/BENCHMARKS.md" docs/BENCHMARKS.md
  echo "wrote docs/BENCHMARKS.md and $OUT" >&2
fi
