#!/usr/bin/env bash
# E1: origin–edge fan-out (docs/SCALING.md). One origin (127.0.0.2) gets the publisher; two
# edges (127.0.0.3, 127.0.0.4) pull the stream from it over RTMP on their first viewer; N
# HTTP-FLV viewers per edge (default 1 000), ramped at 200/s, DURATION s (20). Two sluice-bench
# processes: A publishes to the origin and plays on edge 1, B plays on edge 2 (--no-publish).
# Each tool samples its edge's CPU and RSS (its report: CPU-s per GB, RSS per viewer, latency);
# this script samples the origin's CPU (/proc) and egress (sluice_sent_bytes_total), which
# should stay at two streams' worth however many viewers the edges have.
#
# Env: N (1000), DURATION (20), WARMUP (6), BASE_PORT (19600; uses BASE_PORT..+5), OUT
# (bench/results/e1-<stamp>), CARGO_TARGET_DIR (target). Needs release builds of sluice and
# sluice-bench (built when missing). Prints a summary; the tools' reports stay in $OUT.
# The failover gap over 10 kills is measured by `SLUICE_LONG=1 cargo test --test edge
# long_failover_gaps` (not under this load).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
N="${N:-1000}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-6}"
P="${BASE_PORT:-19600}"
OUT="${OUT:-bench/results/e1-$(date -u +%Y%m%dT%H%M%SZ)}"
CLIP="$ROOT/tests/media/h264-360p25-baseline-noB-aac-10s.flv"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BENCH="$CARGO_TARGET_DIR/release/sluice-bench"
if [ ! -x "$SLUICE" ] || [ ! -x "$BENCH" ]; then
  cargo build --release -p sluice -p sluice-bench >&2
fi
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

O_RTMP="127.0.0.2:$P" O_HTTP="127.0.0.2:$((P + 1))"
E1_RTMP="127.0.0.3:$((P + 2))" E1_HTTP="127.0.0.3:$((P + 3))"
E2_RTMP="127.0.0.4:$((P + 4))" E2_HTTP="127.0.0.4:$((P + 5))"
printf '[log]\nlevel = "warn"\n' > "$OUT/origin.toml"
printf '[log]\nlevel = "warn"\n[[edge]]\napp = "live"\norigins = ["rtmp://%s"]\n' "$O_RTMP" > "$OUT/edge.toml"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start() { # name config rtmp http
  "$SLUICE" --config "$2" --rtmp "$3" --http "$4" > "$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do curl -sf "http://$4/metrics" > /dev/null && return 0; sleep 0.1; done
  echo "$1 did not start" >&2; exit 2
}
start origin "$OUT/origin.toml" "$O_RTMP" "$O_HTTP"; ORIGIN=${PIDS[0]}
start edge1 "$OUT/edge.toml" "$E1_RTMP" "$E1_HTTP"; EDGE1=${PIDS[1]}
start edge2 "$OUT/edge.toml" "$E2_RTMP" "$E2_HTTP"; EDGE2=${PIDS[2]}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sent() { curl -s "http://$1/metrics" | awk '/^sluice_sent_bytes_total /{print $2}'; }
HZ=$(getconf CLK_TCK)
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(date +%s.%N); C0=$(ticks "$ORIGIN"); S0=$(sent "$O_HTTP")

# Mid-run: the origin should list exactly two edge connections.
( sleep "$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN{print w + d / 2}')"
  curl -s "http://$O_HTTP/metrics" | awk '/^sluice_connections[{].*role="edge"/{n+=$2} END{print n+0}' > "$OUT/edges-mid.txt" ) &
"$BENCH" --no-publish --publish-url "rtmp://$O_RTMP/live/e1" --play-url "http://$E2_HTTP/live/e1.flv" \
  --server-pid "$EDGE2" --warmup "$WARMUP" --clip "$CLIP" -n "$N" --rate 200 --duration "$DURATION" \
  --json "$OUT/edge2.json" > "$OUT/edge2.txt" 2>&1 &
B=$!
"$BENCH" --publish-url "rtmp://$O_RTMP/live/e1" --play-url "http://$E1_HTTP/live/e1.flv" \
  --server-pid "$EDGE1" --warmup "$WARMUP" --clip "$CLIP" -n "$N" --rate 200 --duration "$DURATION" \
  --json "$OUT/edge1.json" > "$OUT/edge1.txt" 2>&1 || echo "tool A failed" >&2
wait "$B" || echo "tool B failed" >&2

T1=$(date +%s.%N); C1=$(ticks "$ORIGIN"); S1=$(sent "$O_HTTP")
EDGES_AT_ORIGIN=$(cat "$OUT/edges-mid.txt" 2>/dev/null || echo "?")
{
  echo "E1: 1 origin, 2 edges, $N HTTP-FLV viewers per edge, ${DURATION} s (+${WARMUP} s warm-up), clip $(basename "$CLIP")"
  echo "load average before: $LOAD0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  awk -v t0="$T0" -v t1="$T1" -v c0="$C0" -v c1="$C1" -v s0="$S0" -v s1="$S1" -v hz="$HZ" -v e="$EDGES_AT_ORIGIN" 'BEGIN {
    secs = t1 - t0; cpu = (c1 - c0) / hz; mb = (s1 - s0) / 1e6;
    printf "origin: %.2f CPU-s over %.1f s, sent %.1f MB (%.2f Mbit/s average), edge connections at the origin mid-run: %s\n", cpu, secs, mb, mb * 8 / secs, e
  }'
  for x in edge1 edge2; do echo "--- $x (sluice-bench report)"; cat "$OUT/$x.txt"; done
} | tee "$OUT/summary.txt"
