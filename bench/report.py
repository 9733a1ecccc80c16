#!/usr/bin/env python3
"""Renders docs/BENCHMARKS.md (stdout) from a bench/compare.sh results folder.

usage: report.py RESULTS_DIR [OLD_BENCHMARKS_MD [PLOT_PNG]]
OLD_BENCHMARKS_MD: hand-written notes below the marker line are kept.
PLOT_PNG: where to draw the S1 sweep plot (needs matplotlib; skipped without it).
"""
import json
import os
import re
import sys

out = sys.argv[1]
old_md = sys.argv[2] if len(sys.argv) > 2 else None
plot_png = sys.argv[3] if len(sys.argv) > 3 else None
MARK = "<!-- Notes below this line are hand-written; bench/compare.sh keeps them. -->"
notes = ""
if old_md and os.path.exists(old_md):
    old = open(old_md).read()
    if MARK in old:
        notes = old[old.index(MARK) + len(MARK):].strip("\n")


def kbit(clip):
    return os.path.getsize(clip) * 8 / 10 / 1000 if os.path.exists(clip) else 0


CLIP360 = "tests/media/h264-360p25-baseline-noB-aac-10s.flv"
CLIP180 = "tests/media/h264-180p10-lowrate-aac-10s.flv"
env = open(os.path.join(out, "env.txt")).read().strip().splitlines()
cmds = open(os.path.join(out, "commands.txt")).read().strip().splitlines()
smoke = open(os.path.join(out, "SMOKE")).read().strip() if os.path.exists(os.path.join(out, "SMOKE")) else None
ORDER = ["sluice-http", "sluice-rtmp", "sluice-http-mw", "sluice-rtmp-mw", "sluice-http-ah0", "sluice-rtmp-ah0",
         "nms-http", "nms-rtmp",
         "nginx-rtmp", "xiu-http", "xiu-rtmp"]
SERVER = {"sluice": "sluice", "nms": "node-media-server", "nginx": "nginx-rtmp", "xiu": "xiu"}


def name(run):
    parts = run.split("-")
    srv = SERVER[parts[0]]
    proto = "HTTP-FLV" if parts[1] == "http" else "RTMP"
    if run.endswith("-mw"):
        srv += " (merge_ms 350)"
    if "-mw200" in run:
        srv += " (merge_ms 200)"
    if run.endswith("-ah0"):
        srv += " (max_audio_hold_ms 0)"
    return srv, proto


def f(x, nd=1):
    return f"{x:.{nd}f}"


OLD_SECTIONS = {}
OLD_ENV, OLD_CMDS, OLD_FOLDER = [], [], None
if old_md and os.path.exists(old_md):
    _old = open(old_md).read().split(MARK)[0]
    for _blk in re.split(r"(?m)^(?=## )", _old):
        _m = re.match(r"## (\w+):", _blk)
        if _m:
            OLD_SECTIONS[_m.group(1)] = _blk.split("\nHow to read it:")[0].rstrip("\n") + "\n"
    _m = re.search(r"## Environment\n\n(.*?)\n\n## Exact commands\n\n```\n(.*?)\n```", _old, re.S)
    if _m:
        OLD_ENV = [l[2:] for l in _m.group(1).splitlines() if l.startswith("- ")]
        OLD_CMDS = _m.group(2).splitlines()
    _m = re.search(r"results folder `([^`]*)`", _old)
    OLD_FOLDER = _m.group(1) if _m else None
KEPT = []


def scen_dir(scen):
    return os.path.join(out, scen)


def kept(scen):
    """A scenario this run did not have keeps its section of the previous page, word for word
    (e.g. SCENARIOS="H1 H2 H3" leaves S1..AH0 as the lead's last full run rendered them)."""
    if smoke or os.path.isdir(os.path.join(out, scen)) or scen not in OLD_SECTIONS:
        return False
    KEPT.append(scen)
    sections.append(OLD_SECTIONS[scen])
    return True


def load(scen):
    d = scen_dir(scen)
    res = {}
    for r in ORDER:
        p = os.path.join(d, r + ".json")
        if os.path.exists(p):
            res[r] = json.load(open(p))
    return res


def normal(d):
    return next((g for g in d["groups"] if g["kind"] == "normal"), None)


HEAD = ("| server | proto | connected | TTFF p50 / p99 ms | latency p50 / p99 / max ms | audio latency p50 / p99 ms "
        "| frames recv/sent min / median "
        "| delivered Mbit/s | RSS MiB baseline → peak | RSS KiB per viewer | CPU s | CPU-s per GB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|")


# The tool paces its publisher on a ~25 ms tick; later than this means the tool was held up.
STALL_MS = 60


def table(res):
    rows = [HEAD]
    for r, d in res.items():
        g = normal(d)
        s = d.get("server") or {}
        srv, proto = name(r)
        conn = sum(x["connected"] for x in d["groups"])
        total = sum(x["viewers"] for x in d["groups"])
        al = g.get("audio_latency") or {}
        rows.append(
            "| {} | {} | {}/{} | {} / {} | {} / {} / {} | {} / {} | {} / {} | {} | {} → {} | **{}** | {} | **{}** |".format(
                srv, proto, conn, total,
                f(g["ttff"]["p50_ms"]), f(g["ttff"]["p99_ms"]),
                f(g["latency"]["p50_ms"]), f(g["latency"]["p99_ms"]), f(g["latency"]["max_ms"]),
                f(al.get("p50_ms", 0)) if al.get("samples") else "-",
                f(al.get("p99_ms", 0)) if al.get("samples") else "-",
                f(g["ratio_min"], 3), f(g["ratio_median"], 3),
                f(d["delivered_mbit_s"], 0),
                f(s.get("rss_baseline_kib", 0) / 1024), f(s.get("rss_peak_kib", 0) / 1024),
                f(s.get("rss_per_viewer_kib", 0)), f(s.get("cpu_s", 0), 2), f(s.get("cpu_s_per_gb", 0), 2),
            )
        )
        ended = {k: v for k, v in g["ended"].items() if k != "end of test" and not k.endswith("(after unpublish)")}
        if ended:
            rows.append(f"| | | normal viewers ended early: {ended} | | | | | | | | | |")
        late = (d.get("publisher") or {}).get("max_late_ms", 0)
        if late > STALL_MS:
            rows.append(f"| | | the tool's publisher ran up to {late} ms late in this run (the tool's own runtime was "
                        "held up that long): its latency figures include that | | | | | | | | | |")
    return "\n".join(rows)


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def ratios(res):
    """sluice/peer for RSS per viewer and CPU-s per GB, sluice on the peer's protocol when run."""
    sl = {name(r)[1]: d for r, d in res.items() if r.startswith("sluice")}
    out_ = []
    for r, d in res.items():
        if r.startswith("sluice") or not sl:
            continue
        srv, proto = name(r)
        sd = sl.get(proto) or next(iter(sl.values()))
        sname = next(k for k, v in sl.items() if v is sd)
        a, b = sd.get("server") or {}, d.get("server") or {}
        out_.append(f"vs {srv} ({sname} against {proto}): RSS/viewer ×{ratio(a.get('rss_per_viewer_kib', 0), b.get('rss_per_viewer_kib', 0))}, "
                    f"CPU-s/GB ×{ratio(a.get('cpu_s_per_gb', 0), b.get('cpu_s_per_gb', 0))}")
    if not out_:
        return ""
    return "\n**sluice / peer, same run** (below 1 = sluice uses less): " + "; ".join(out_) + ".\n"


def setting(res, k, default="?"):
    for d in res.values():
        return d["settings"].get(k, default)
    return default


sections = []

# ---- S1
s1 = load("S1")
if not s1 and kept("S1"):
    pass
elif s1:
    sections.append(f"""## S1: fan-out of one stream

One publisher sends `{CLIP360}` (H.264 baseline 640×360 25 fps + AAC, 10 s, ≈{kbit(CLIP360):.0f} kbit/s) over
RTMP in real time, looped. {setting(s1, 'viewers')} viewers join at {setting(s1, 'rate')} viewers/s and play for
the rest of the {setting(s1, 'duration')} s window; HTTP-FLV where the server has it, RTMP for nginx-rtmp (no
HTTP-FLV in the Debian module). Everything runs on 127.0.0.1, one server at a time.

{table(s1)}
{ratios(s1)}""")

sweep_dir = os.path.join(out, "S1-sweep")
if os.path.isdir(sweep_dir):
    pts = {}
    for fn in sorted(os.listdir(sweep_dir)):
        if not fn.endswith(".json"):
            continue
        run, n = fn[:-5].rsplit("-", 1)
        d = json.load(open(os.path.join(sweep_dir, fn)))
        s = d.get("server") or {}
        pts.setdefault(run, []).append((int(d["settings"]["viewers"]), s.get("rss_peak_kib", 0) / 1024,
                                         s.get("cpu_s_per_gb", 0), s.get("rss_per_viewer_kib", 0),
                                         sum(g["connected"] for g in d["groups"])))
    ns = sorted({p[0] for v in pts.values() for p in v})
    rows = ["| server | proto | " + " | ".join(f"{n} viewers: peak RSS MiB / KiB per viewer / CPU-s per GB" for n in ns) + " |",
            "|---|---|" + "---|" * len(ns)]
    for run in [r for r in ORDER if r in pts]:
        by = {p[0]: p for p in pts[run]}
        cells = []
        for n in ns:
            p = by.get(n)
            cells.append(f"{f(p[1])} / {f(p[3])} / {f(p[2], 2)}" + ("" if p[4] == n else f" ({p[4]} connected)") if p else "-")
        srv, proto = name(run)
        rows.append(f"| {srv} | {proto} | " + " | ".join(cells) + " |")
    plot_note = ""
    if plot_png:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
            for run in [r for r in ORDER if r in pts]:
                p = sorted(pts[run])
                label = " ".join(name(run))
                ax1.plot([x[0] for x in p], [x[1] for x in p], marker="o", label=label)
                ax2.plot([x[0] for x in p], [x[2] for x in p], marker="o", label=label)
            ax1.set(xlabel="viewers", ylabel="peak RSS (MiB)", title="S1: server RSS")
            ax2.set(xlabel="viewers", ylabel="CPU-s per GB delivered", title="S1: server CPU per GB")
            for ax in (ax1, ax2):
                ax.grid(True, alpha=0.3)
                ax.set_ylim(bottom=0)
            ax1.legend(fontsize=8)
            if smoke:
                fig.suptitle(f"SMOKE RUN ({smoke}): not real figures", color="red")
            fig.tight_layout()
            fig.savefig(plot_png, dpi=100)
            plot_note = f"\n![S1 sweep: RSS and CPU-s/GB against viewers]({os.path.basename(plot_png)})\n"
        except ImportError:
            plot_note = "\n(plot skipped: matplotlib missing)\n"
    sections.append(f"""### S1 sweep over viewer counts

Same setup as S1 with {', '.join(map(str, ns))} viewers, one run per cell (the largest count reuses the S1 run
when it matches).

""" + "\n".join(rows) + "\n" + plot_note)

# ---- S2
s2 = load("S2")
if not s2 and kept("S2"):
    pass
elif s2:
    sections.append(f"""## S2: many viewers of a low-bitrate stream

`{CLIP180}` (≈{kbit(CLIP180):.0f} kbit/s), {setting(s2, 'viewers')} viewers ramped at {setting(s2, 'rate')}/s,
{setting(s2, 'duration')} s window (read buffer {setting(s2, 'read_buf')} B per viewer in the tool). Server and tool each
get the machine's hard open-files limit.

{table(s2)}
{ratios(s2)}""")

# ---- S3
s3 = load("S3")
if not s3 and kept("S3"):
    pass
elif s3:
    rows = ["| server | proto | normal: connected, latency p50 / p99 ms, frames recv/sent min | slow: connected, latency (lag) p50 / p99 / max ms, frames median, recv/sent median | stalled: how they ended |",
            "|---|---|---|---|---|"]
    rss_lines = []
    for r, d in s3.items():
        gs = {g["kind"]: g for g in d["groups"]}
        n, sl, st = gs.get("normal"), gs.get("slow"), gs.get("stalled")
        srv, proto = name(r)
        nc = f"{n['connected']}/{n['viewers']}, {f(n['latency']['p50_ms'])} / **{f(n['latency']['p99_ms'])}**, {f(n['ratio_min'], 3)}" if n else "-"
        sc = (f"{sl['connected']}/{sl['viewers']}, {f(sl['latency']['p50_ms'])} / {f(sl['latency']['p99_ms'])} / {f(sl['latency']['max_ms'])}, "
              f"{sl['frames_median']}, {f(sl['ratio_median'], 3)}") if sl else "-"
        tc = ", ".join(f"{k}: {v}" for k, v in st["ended"].items()) if st else "-"
        lp = os.path.join(out, "S3", r + ".server.log")
        if os.path.exists(lp):
            secs = []
            for l in open(lp, errors="replace"):
                l = re.sub(r"\x1b\[[0-9;]*m", "", l)
                # HTTP viewers log "viewer closed"; RTMP connections "connection closed" with role="viewer".
                is_viewer = "viewer closed" in l or ("connection closed" in l and 'role="viewer"' in l)
                if is_viewer and "reason=slow_viewer" in l:
                    m = re.search(r"secs=([0-9.]+)", l)
                    secs.append(float(m.group(1)) if m else 0)
            tc += (f"; sluice's log: {len(secs)} viewers closed with reason slow_viewer"
                   + (f", {min(secs):.1f}–{max(secs):.1f} s after connecting" if secs else ""))
        rows.append(f"| {srv} | {proto} | {nc} | {sc} | {tc} |")
        s = d.get("server") or {}
        smp = s.get("samples") or []
        if r.startswith("sluice") and smp and "ramp_end_s" in s:
            ramp_end = s["ramp_end_s"]
            after = [x for x in smp if x["t_s"] >= ramp_end]
            if after:
                ref = after[0]["rss_kib"]
                lo, hi = min(x["rss_kib"] for x in after), max(x["rss_kib"] for x in after)
                dev = max(hi - ref, ref - lo) / ref * 100 if ref else 0
                series = []
                t_next = s["window_start_s"]
                for x in smp:
                    if x["t_s"] >= t_next:
                        series.append(f"{x['t_s'] - s['window_start_s']:.0f} s: {x['rss_kib'] / 1024:.1f}")
                        t_next += 5
                rss_lines.append(
                    f"- {srv} {proto}: RSS {ref / 1024:.1f} MiB when the last viewer had been started "
                    f"({ramp_end - s['window_start_s']:.1f} s into the window), then {lo / 1024:.1f}–{hi / 1024:.1f} MiB: "
                    f"at most **{dev:.1f} %** away ({'within' if dev <= 10 else 'outside'} ±10 %). "
                    f"RSS MiB every 5 s from the first viewer: {', '.join(series)}.")
    sections.append(f"""## S3: slow and stalled viewers next to normal ones

`{CLIP360}` (≈{kbit(CLIP360):.0f} kbit/s); {setting(s3, 'viewers')} viewers started at {setting(s3, 'rate')}/s
in {setting(s3, 'duration')} s: {setting(s3, 'slow')} of them read at most {setting(s3, 'slow_rate')} B/s (below the stream's
bitrate), {setting(s3, 'stalled')} stop reading once the server has answered, the rest are normal; the slow and
stalled ones are spread evenly over the ramp. sluice runs with `hub.slow_timeout_ms = 10000` (the
default): a viewer whose socket accepts nothing for 10 s is cut off. "lag" of slow viewers is the
end-to-end latency of the frames they did receive. A stalled viewer can only see a close
by reading, so at the end of the test it drains its socket: "closed by server (seen when draining
at the end)" means the server had closed it (for servers that end viewers when the publisher
leaves, the "(after unpublish)" suffix makes that ambiguous); "end of test" means it was still open.

{table(s3)}
{ratios(s3)}
Per class:

""" + "\n".join(rows) + "\n\n" + "\n".join(rss_lines) + "\n")

# ---- S4
s4 = load("S4")
if not s4 and kept("S4"):
    pass
elif s4:
    sections.append(f"""## S4: many streams

{setting(s4, 'streams')} publishers, each sending `{CLIP360}` as its own stream, and {setting(s4, 'viewers')} viewers
spread evenly over them (viewer i plays stream i mod {setting(s4, 'streams')}), started at {setting(s4, 'rate')}/s,
{setting(s4, 'duration')} s window. Frames received/sent is per viewer against its own stream's publisher.

{table(s4)}
{ratios(s4)}""")

# ---- S5
s5 = load("S5")
if not s5 and kept("S5"):
    pass
elif s5:
    sections.append(f"""## S5: RTMP play

As S1 ({setting(s5, 'viewers')} viewers at {setting(s5, 'rate')}/s, {setting(s5, 'duration')} s) but every viewer plays over RTMP.

{table(s5)}
{ratios(s5)}""")

# ---- MW
mw = load("MW")
if not mw and kept("MW"):
    pass
elif mw:
    sections.append(f"""## MW: S1 with a 350 ms merge window

sluice with `[egress] merge_ms = 350` (frames for a viewer are written in batches of up to 350 ms,
fewer and larger writes), next to nginx-rtmp in the same run; otherwise as S1
({setting(mw, 'viewers')} viewers, {setting(mw, 'duration')} s).

{table(mw)}
{ratios(mw)}""")

# ---- AH0
ah0 = load("AH0")
if not ah0 and kept("AH0"):
    pass
elif ah0:
    sections.append(f"""## AH0: S1 with every frame written as it arrives

sluice with `[hub] max_audio_hold_ms = 0`: audio is not held for the next video frame, so every
frame, audio or video, wakes the viewers and costs a write (about 68 per viewer-second instead of
about 25 with this clip). This is what the audio column of S1 costs: audio latency comes down to
video's, CPU goes up. Next to nginx-rtmp in the same run; otherwise as S1
({setting(ah0, 'viewers')} viewers, {setting(ah0, 'duration')} s).

{table(ah0)}
{ratios(ah0)}""")

# ---- S6: join storms
def s6load():
    d = scen_dir("S6")
    res = {}
    if os.path.isdir(d):
        for p in sorted(os.listdir(d)):
            if p.endswith(".json"):
                res[p[:-5]] = json.load(open(os.path.join(d, p)))
    return res


s6 = s6load()
if not s6 and kept("S6"):
    pass
elif s6:
    def pick(suffix):
        return {r: d for r, d in s6.items() if r.endswith(suffix)}
    rec_rows = ["| server | viewers | live again | drop → live p50 / p99 / max ms | over 2 s | frames missed |",
                "|---|---|---|---|---|---|"]
    for r, d in pick("-reconnect").items():
        g = normal(d) or {}
        x = g.get("reconnect") or {}
        q = x.get("recover") or {}
        rec_rows.append(f"| {name(r)[0]} ({name(r)[1]}) | {x.get('viewers', 0)} | {x.get('live_again', 0)} | "
                        f"{f(q.get('p50_ms', 0))} / {f(q.get('p99_ms', 0))} / {f(q.get('max_ms', 0))} | "
                        f"**{x.get('over_2s', 0)}** | {x.get('missed_frames', 0)} |")
    loads = ", ".join(f"{r} {load_note('S6', r)}" for r in s6)
    sections.append(f"""## S6: join storms

The 180p low-bitrate clip ({f(kbit(CLIP180), 0)} kbit/s, 10 fps: small frames, so the cost is per write, not
per byte), {setting(s6, 'duration')} s from the first viewer. The tool's viewers are spread over
{setting(s6, 'runtimes')} event loops, each on its own thread with its own epoll (`--runtimes`): one loop
reading ~20,000 sockets adds seconds to the tail by itself. Targets: every viewer playing, time to first
frame p99 ≤ 1 s, RSS ≤ 2.5 KiB per viewer; after a reconnect storm every viewer live again within 2 s;
with `merge_ms = 200`, video latency p50 ≤ 150 ms and p99 ≤ 300 ms.

Joining at 2,000/s:

{table(pick('-2000'))}
{ratios(pick('-2000'))}
Joining at 10,000/s:

{table(pick('-10000'))}
{ratios(pick('-10000'))}
Reconnect storm: {setting(pick('-reconnect'), 'viewers')} viewers joined at 2,000/s; {setting(pick('-reconnect'), 'reconnect_at')} s in,
each drops its connection and connects again, the drops spread over {setting(pick('-reconnect'), 'reconnect_within')} s.
"Live again" is the first frame the publisher sent after the new connection was accepted.

{chr(10).join(rec_rows)}

{table(pick('-reconnect'))}

Merge window 200 ms, {setting(pick('-mw200'), 'viewers')} viewers at 2,000/s:

{table(pick('-mw200'))}

Load average (1/5/15 min) when each run started: {loads}.
""")

# ---- H1..H3: HLS
H_NAMES = {"sluice-hls": ("sluice", "HLS MPEG-TS (classic)"), "sluice-hls-fmp4": ("sluice", "HLS fMP4 (classic)"),
           "nginx-rtmp-hls": ("nginx-rtmp + nginx", "HLS MPEG-TS files"), "sluice-llhls": ("sluice", "LL-HLS fMP4")}


def hload(scen, names):
    d = scen_dir(scen)
    res = {}
    for r in names:
        p = os.path.join(d, r + ".json")
        if os.path.exists(p):
            res[r] = json.load(open(p))
    return res


def hg(d):
    g = normal(d) or {}
    return g, (g.get("hls") or {})


def origin_counts(d):
    """{(variant, kind): requests} from sluice's counters over the run (all statuses)."""
    out_ = {}
    for k, v in ((d.get("origin") or {}).get("requests") or {}).items():
        m = dict(re.findall(r'(\w+)="([^"]*)"', k))
        key = (m.get("variant", "?"), m.get("kind", "?"))
        out_[key] = out_.get(key, 0) + v
    return out_


HHEAD = ("| server | variant | connected | stalls (viewers) | stall time s | skipped | playback latency p50 / p99 ms "
         "| arrival latency p50 / p99 ms | requests | errors | delivered Mbit/s | RSS MiB baseline → peak | RSS KiB per viewer "
         "| CPU s | CPU-s per GB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def hrow(r, d, label=None):
    g, h = hg(d)
    s = d.get("server") or {}
    srv, var = label or H_NAMES.get(r, (r, ""))
    conn = sum(x["connected"] for x in d["groups"])
    total = sum(x["viewers"] for x in d["groups"])
    pl, al = h.get("playback_latency") or {}, h.get("arrival_latency") or {}
    lat = (f"{f(pl.get('p50_ms', 0))} / {f(pl.get('p99_ms', 0))}" if pl.get("samples") else "n/a")
    if h.get("no_origin"):
        lat += f" ({h['no_origin']} units without a media time)"
    arr = f"{f(al.get('p50_ms', 0))} / {f(al.get('p99_ms', 0))}" if al.get("samples") else "n/a"
    reqs = ", ".join(f"{k} {v}" for k, v in (h.get("requests") or {}).items())
    errs = ", ".join(f"{k}: {v}" for k, v in (h.get("errors") or {}).items()) or "-"
    return ("| {} | {} | {}/{} | **{}** ({}) | {} | {} | **{}** | {} | {} | {} | {} | {} → {} | **{}** | {} | **{}** |".format(
        srv, var, conn, total, h.get("stalls", 0), h.get("viewers_stalled", 0), f(h.get("stall_ms", 0) / 1000, 2),
        h.get("skipped", 0), lat, arr, reqs, errs, f(d["delivered_mbit_s"], 0),
        f(s.get("rss_baseline_kib", 0) / 1024), f(s.get("rss_peak_kib", 0) / 1024), f(s.get("rss_per_viewer_kib", 0)),
        f(s.get("cpu_s", 0), 2), f(s.get("cpu_s_per_gb", 0), 2)) if s else
        "| {} | {} | {}/{} | **{}** ({}) | {} | {} | **{}** | {} | {} | {} | {} | - | - | - | - |".format(
        srv, var, conn, total, h.get("stalls", 0), h.get("viewers_stalled", 0), f(h.get("stall_ms", 0) / 1000, 2),
        h.get("skipped", 0), lat, arr, reqs, errs, f(d["delivered_mbit_s"], 0)))


def load_note(scen, r):
    p = os.path.join(scen_dir(scen), r + ".load")
    return open(p).read().strip() if os.path.exists(p) else "?"


h1 = hload("H1", ["sluice-hls", "sluice-hls-fmp4", "nginx-rtmp-hls"])
if not h1 and kept("H1"):
    pass
elif h1:
    rows = [HHEAD] + [hrow(r, d) for r, d in h1.items()]
    rat = ""
    a, b = h1.get("sluice-hls"), h1.get("nginx-rtmp-hls")
    if a and b and a.get("server") and b.get("server"):
        sa, sb = a["server"], b["server"]
        rat = (f"\n**sluice / nginx-rtmp + nginx, same run** (MPEG-TS against MPEG-TS; below 1 = sluice uses less): "
               f"CPU-s/GB ×{ratio(sa['cpu_s_per_gb'], sb['cpu_s_per_gb'])}, RSS/viewer ×{ratio(sa['rss_per_viewer_kib'], sb['rss_per_viewer_kib'])}.\n")
    loads = ", ".join(f"{r} {load_note('H1', r)}" for r in h1)
    sections.append(f"""## H1: classic HLS viewers, direct

`{CLIP360}` published over RTMP; {setting(h1, 'viewers')} classic HLS viewers (sluice-bench `--mode hls`)
join at {setting(h1, 'rate')}/s and play for the rest of the {setting(h1, 'duration')} s window: each loads the
playlist, starts three segments from the end, reloads the playlist every half target duration
and fetches every new segment once on one keep-alive connection. sluice serves its MPEG-TS variant
(`/live/h1/ts/index.m3u8`; its fMP4 variant as a second row when run) from memory; nginx-rtmp
writes 2 s MPEG-TS fragments and a 14 s playlist to disk (`hls_fragment 2s; hls_playlist_length
14s`) and the same nginx worker serves them (sendfile, no access log; bench/nginx-rtmp-hls.conf.template).
The viewers start after {setting(h1, 'warmup')} s of publishing, during which the tool requested the playlist
once, so each server's segment window is full in the RSS baseline. Load average (1/5/15 min) at
the start of each run: {loads}.

{chr(10).join(rows)}
{rat}""")

h2 = hload("H2", ["sluice-llhls"])
if not h2 and kept("H2"):
    pass
elif h2:
    rows = [HHEAD] + [hrow(r, d) for r, d in h2.items()]
    extra = []
    for r, d in h2.items():
        s, o = d.get("server") or {}, d.get("origin") or {}
        held = o.get("held_max", 0)
        if s and held:
            grow = s["rss_peak_kib"] - s["rss_baseline_kib"]
            extra.append(f"- held requests at the server (`sluice_hls_held_requests`): max **{held:.0f}**, mean {o.get('held_mean', 0):.0f}; "
                         f"RSS growth {grow / 1024:.1f} MiB / max held = **{grow / held:.2f} KiB per held request** (an upper bound: "
                         f"it includes each viewer's two keep-alive connections and everything else a viewer costs).")
    sections.append(f"""## H2: LL-HLS viewers

{setting(h2, 'viewers')} LL-HLS viewers of sluice (`--mode llhls`, fMP4, 200 ms parts, 2 s segments) at
{setting(h2, 'rate')}/s, {setting(h2, 'duration')} s window. Each loads the playlist and the init segment, starts at the
independent part at or before PART-HOLD-BACK behind the live edge, then holds a blocking reload
(`_HLS_msn`/`_HLS_part` of the next part) on one connection and fetches each new part, or the
preload hint as soon as it is the next part (as hls.js does), on a second. **Playback latency**
is wall clock minus the playhead's media time (program-date-time plus part offsets), sampled as
each part starts playing: what hls.js shows as live latency. **Arrival latency** is a part's last
byte minus its media start (PDT + offset): its duration plus the server's delay. Load average
at the start: {load_note('H2', 'sluice-llhls')}.

{chr(10).join(rows)}
{chr(10).join(extra)}
""")

h3d = scen_dir("H3")
if not os.path.isdir(h3d) and kept("H3"):
    pass
elif os.path.isdir(h3d):
    rows = ["| viewers | process | variant | connected | stalls (viewers) | playback latency p50 / p99 ms | requests at the cache | distinct segments / parts fetched |",
            "|---|---|---|---|---|---|---|---|"]
    orows = ["| viewers | origin requests: playlist (fMP4 / TS) | init | parts | TS segments | **origin requests per part** | **origin requests per segment** | origin CPU s | origin CPU s per viewer | origin RSS MiB baseline → peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    cpus = {}
    for v in ("500", "2000"):
        a = os.path.join(h3d, f"sluice-cache-{v}.json")
        b = os.path.join(h3d, f"sluice-cache-{v}-b.json")
        if not os.path.exists(a):
            continue
        da = json.load(open(a))
        db = json.load(open(b)) if os.path.exists(b) else None
        total = sum(x["viewers"] for x in da["groups"]) + (sum(x["viewers"] for x in db["groups"]) if db else 0)
        for lab, d, var in (("A (publisher)", da, "LL-HLS fMP4"), ("B (--no-publish)", db, "classic MPEG-TS")):
            if not d:
                continue
            g, h = hg(d)
            pl = h.get("playback_latency") or {}
            reqs = ", ".join(f"{k} {n}" for k, n in (h.get("requests") or {}).items())
            rows.append(f"| {total} | {lab} | {var} | {g.get('connected', 0)}/{g.get('viewers', 0)} | {h.get('stalls', 0)} ({h.get('viewers_stalled', 0)}) | "
                        f"{f(pl.get('p50_ms', 0))} / {f(pl.get('p99_ms', 0))} | {reqs} | {h.get('distinct_segments', 0)} / {h.get('distinct_parts', 0)} |")
        oc = origin_counts(da)
        parts_distinct = (hg(da)[1].get("distinct_parts") or 0)
        segs_distinct = (hg(db)[1].get("distinct_segments") or 0) if db else 0
        op = oc.get(("fmp4", "part"), 0)
        osg = oc.get(("ts", "segment"), 0)
        s = da.get("server") or {}
        cpus[v] = (s.get("cpu_s", 0), total)
        orows.append(f"| {total} | {oc.get(('fmp4', 'playlist'), 0):.0f} / {oc.get(('ts', 'playlist'), 0):.0f} | "
                     f"{oc.get(('fmp4', 'init'), 0) + oc.get(('ts', 'init'), 0):.0f} | {op:.0f} (for {parts_distinct} distinct) | {osg:.0f} (for {segs_distinct} distinct) | "
                     f"**{ratio(op, parts_distinct)}** | **{ratio(osg, segs_distinct)}** | {f(s.get('cpu_s', 0), 2)} | "
                     f"{f(s.get('cpu_s', 0) / max(total, 1) * 1000, 2)} ms | {f(s.get('rss_baseline_kib', 0) / 1024)} → {f(s.get('rss_peak_kib', 0) / 1024)} |")
    flat = ""
    if "500" in cpus and "2000" in cpus and cpus["500"][0]:
        flat = (f"\nOrigin CPU at {cpus['2000'][1]} viewers / at {cpus['500'][1]} viewers: "
                f"**×{cpus['2000'][0] / cpus['500'][0]:.2f}** for ×{cpus['2000'][1] / max(cpus['500'][1], 1):.0f} the viewers.\n")
    loads = ", ".join(f"{v}: {load_note('H3', 'sluice-cache-' + v)}" for v in ("500", "2000"))
    sections.append(f"""## H3: through an nginx cache tier

An nginx (one worker, `proxy_cache` + `proxy_cache_lock`, cache key `$scheme$proxy_host$request_uri`,
freshness from sluice's `Cache-Control`; bench/nginx-cache.conf.template) in front of sluice. Half
the viewers play LL-HLS (fMP4 parts, blocking reloads, preload hints; tool process A, which also
publishes and samples sluice), half classic HLS on the MPEG-TS variant (process B, `--no-publish`),
all through the cache, {setting({'a': json.load(open(os.path.join(h3d, os.listdir(h3d)[0])))} if os.listdir(h3d) else {}, 'duration')} s window. The origin's requests are the increase of sluice's
`sluice_hls_requests_total{{variant,kind,status}}` over the run; "per part/segment" divides them
by the distinct parts/segments the viewers fetched. Origin CPU is sluice's alone (the cache
tier's is not counted). Load average at the start: {loads}.

{chr(10).join(rows)}

Origin (sluice) work:

{chr(10).join(orows)}
{flat}""")

banner = ""
if smoke:
    banner = (f"\n> **SMOKE RUN ({smoke})**: scaled-down settings to check that the scripts work. "
              "These are not benchmark figures.\n")

print(f"""# Benchmarks

Generated by `bench/compare.sh` (results folder `{out}`); rerun it to refresh this page
(`SCENARIOS` selects scenarios; all by default).
{banner}
""" + "\n".join(sections) + """
How to read it:
- **connected**: viewers the server accepted / viewers started (all classes).
- **TTFF**: from the viewer starting its TCP connect to the first complete coded video frame.
- **latency**: per video frame, from the publisher handing it to its socket to a viewer having read
  the whole tag (**audio latency**: the same per AAC frame); frames are matched by body (length + first 64 bytes), so servers that rewrite
  timestamps are measured the same way. Frames replayed from a GOP cache (sent before the viewer
  connected) are not counted as latency. The tool runs on the same 2 cores as the server, so at
  1 000 viewers part of the latency is the tool's own scheduling. TTFF, latency and frames columns
  are of the normal viewers. A run whose publisher fell more than 60 ms behind its schedule is
  marked under its row: the tool's runtime was held up that long (in S2 by its own 10,000
  viewers, for every server alike; elsewhere it stays within 25–30 ms unless the machine stalls
  the tool).
- **frames recv/sent**: per viewer, coded video frames received / frames the publisher sent from
  the viewer's first frame to the end (1.000 = nothing lost or skipped).
- **RSS per viewer**: (peak RSS − RSS with the publisher but no viewer) / viewers connected, from
  `/proc/PID/status` `VmRSS` every 250 ms. For nginx-rtmp the worker process is sampled (1 worker).
- **CPU-s per GB**: server `utime + stime` (from `/proc/PID/stat`, `sysconf(_SC_CLK_TCK)`) over the
  window, per 10⁹ bytes the viewers read.
- **sluice / peer**: sluice's figure divided by the peer's, from the same run of `compare.sh`,
  sluice on the peer's protocol (RTMP against nginx-rtmp, HTTP-FLV against NMS/xiu HTTP-FLV).

## Environment

""" + "\n".join(f"- {e}" for e in env) + (
    f"\n- sections {', '.join(KEPT)} are kept from the previous page (results folder `{OLD_FOLDER}`); that run's environment:\n"
    + "\n".join(f"  - {e}" for e in OLD_ENV) if KEPT else "") + """

## Exact commands

```
""" + "\n".join(cmds + ([c for c in OLD_CMDS if c.split(" ")[0] in KEPT] if KEPT else [])) + """
```

Run with `bench/compare.sh` (env `SCENARIOS`, `S1_SWEEP`, `SCALE`, `DURATION`, `PEERS_HOME`,
`CARGO_TARGET_DIR`, `BASE_PORT`; see the script header). The load tool alone:
`sluice-bench --help` (crate `crates/bench`); its CI smoke test (`cargo test -p sluice-bench`)
runs 200 HTTP-FLV viewers for 10 s against an in-process sluice and checks delivery.

""" + MARK + "\n\n" + notes)
