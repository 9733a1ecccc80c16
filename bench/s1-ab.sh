#!/usr/bin/env bash
# S1 A/B for sluice (docs/BENCHMARKS.md, "S1 with heap sampling, with 10 recorded streams"):
#   bench/s1-ab.sh OUTDIR RUN...   e.g. bench/s1-ab.sh /tmp/ab off heap pub9 rec off heap pub9 rec
# RUNs: off (defaults), heap (profiling.heap_sampling), pub9 (9 more publishers, 10 streams),
# rec (the same 10 streams, all recorded to fMP4 + FLV), prof (heap sampling, and a 10 s CPU
# profile and a heap profile taken during the run into OUTDIR). Needs release builds of sluice
# and sluice-bench in $CARGO_TARGET_DIR (target), ffmpeg and curl. Ports 19600-19601.
set -u
cd "$(dirname "$(readlink -f "$0")")/.."
T="${CARGO_TARGET_DIR:-target}/release"
OUT=$1; shift
mkdir -p "$OUT"
OUT="$(readlink -f "$OUT")"
CLIP=tests/media/h264-360p25-baseline-noB-aac-10s.flv
for run in "$@"; do
  cfg="$OUT/$run.toml"
  echo '[log]
level = "warn"' > "$cfg"
  case "$run" in
    heap*) printf '[profiling]\nheap_sampling = true\n' >> "$cfg" ;;
    prof*) printf "[api]\ntoken = \"t\"\n[profiling]\nheap_sampling = true\ncpu_profiles = true\nmax_cpu_seconds = 10\n" >> "$cfg" ;;
    rec*) rm -rf "$OUT/rec"; printf '[[record]]\ndir = "%s/rec"\nformats = ["fmp4", "flv"]\n' "$OUT" >> "$cfg" ;;
  esac
  $T/sluice --config "$cfg" --rtmp 127.0.0.1:19600 --http 127.0.0.1:19601 2> "$OUT/$run.log" &
  spid=$!
  sleep 1
  pubs=()
  if [[ $run == rec* || $run == pub9* ]]; then
    for i in 1 2 3 4 5 6 7 8 9; do
      ffmpeg -hide_banner -v error -re -stream_loop -1 -i $CLIP -c copy -f flv rtmp://127.0.0.1:19600/live/extra$i >/dev/null 2>&1 &
      pubs+=($!)
    done
  fi
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [[ $run == prof* ]]; then
    ( sleep 14; curl -s -H 'Authorization: Bearer t' -o "$OUT/cpu.pb" 'http://127.0.0.1:19601/debug/pprof/profile?seconds=10';
      curl -s -H 'Authorization: Bearer t' -o "$OUT/heap.pb.gz" http://127.0.0.1:19601/debug/pprof/heap ) &
  fi
  $T/sluice-bench --publish-url rtmp://127.0.0.1:19600/live/s1 --play-url http://127.0.0.1:19601/live/s1.flv \
    --server-pid $spid --warmup 6 --json "$OUT/$run.json" --clip $CLIP -n 1000 --rate 200 --duration 20 > "$OUT/$run.txt" 2>&1
  load2=$(cut -d' ' -f1-3 /proc/loadavg)
  recs=$(curl -s http://127.0.0.1:19601/api/v1/recordings | python3 -c 'import json,sys; r=json.load(sys.stdin)["recordings"]; print(len(r), sum(x["gaps"] for x in r))' 2>/dev/null)
  for p in "${pubs[@]}"; do kill $p 2>/dev/null; done
  kill $spid; wait $spid 2>/dev/null
  python3 - "$OUT/$run.json" "$run" "$load" "$load2" "$recs" <<'PY'
import json,sys
d=json.load(open(sys.argv[1])); s=d['server']; g=d['groups'][0]
lat=g['latency']
print(f"{sys.argv[2]:6} connected {g['connected']} cpu_s {s['cpu_s']:.2f} cpu_s/GB {s['cpu_s_per_gb']:.2f} Mbit/s {d['delivered_mbit_s']:.0f} rss {s['rss_baseline_kib']/1024:.1f}->{s['rss_peak_kib']/1024:.1f} MiB latency {lat} load {sys.argv[3]} -> {sys.argv[4]} recordings/gaps {sys.argv[5]}")
PY
done
