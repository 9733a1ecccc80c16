//! sluice-bench: a load tool for live FLV servers. One publisher sends an FLV clip over RTMP in
//! real time (looped, timestamps kept increasing); N viewers play it over HTTP-FLV,
//! WebSocket-FLV or RTMP, ramped at a given rate, some of them slow or stalled if asked. It
//! reports TTFF, per-frame end-to-end latency, frames received against frames sent, delivered
//! throughput and, given the server's pid, its RSS and CPU. Works against any server that
//! takes an RTMP publish and serves the stream back (sluice, nginx-rtmp, node-media-server,
//! xiu): only URLs are configured.
//!
//! Costs on the client side: per viewer one task, one read buffer (`--read-buf`, 16 KiB) and a
//! 10 KiB latency histogram; HTTP/WS viewers parse tags in place with no per-frame allocation
//! (RTMP viewers use [`sluice_rtmp::ClientSession`], which reassembles each message).
//! The tool shares the machine with the server, so on small machines its own CPU use is part
//! of what latency measures.

pub mod clip;
pub mod frames;
pub mod hist;
pub mod hls;
pub mod http;
pub mod m3u8;
pub mod metrics;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod scan;
pub mod ts_publisher;
pub mod url;
pub mod viewer;

use clip::Clip;
use report::{Report, ServerStats};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use url::Url;
use viewer::{Kind, Mode, ViewerSetup};

/// Command line / library settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sluice-bench", version, about)]
pub struct Args {
    /// FLV clip to publish (looped).
    #[arg(
        long,
        default_value = "tests/media/h264-360p25-baseline-noB-aac-10s.flv"
    )]
    pub clip: PathBuf,
    /// RTMP URL to publish to: rtmp://host:port/app/stream.
    #[arg(long, default_value = "rtmp://127.0.0.1:19350/live/bench")]
    pub publish_url: String,
    /// URL viewers play: http://…(.flv) for HTTP-FLV, ws://… for WebSocket-FLV, rtmp://… for
    /// RTMP. `{i}` becomes the viewer index.
    #[arg(long, default_value = "http://127.0.0.1:18000/live/bench.flv")]
    pub play_url: String,
    /// Number of viewers (including slow and stalled ones).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub viewers: usize,
    /// Viewers started per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds from the first viewer until the publisher stops.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds of publishing before the first viewer (RSS baseline is taken at its end).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds viewers keep reading after the publisher stopped, for frames in flight.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// How many of the viewers read slowly.
    #[arg(long, default_value_t = 0)]
    pub slow: usize,
    /// Read budget of a slow viewer, bytes/s.
    #[arg(long, default_value_t = 16_000)]
    pub slow_rate: u64,
    /// How many of the viewers stop reading once the server answered.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Read buffer per viewer, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub read_buf: usize,
    /// Seconds allowed for connecting and the server's answer.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Server process to sample RSS and CPU of (Linux /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Tokio worker threads for the tool.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Number of streams: one publisher each, `{s}` in both URLs becomes the stream index
    /// (0-based); viewer `i` plays stream `i % streams`.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// How viewers play: `hls` (classic: playlist polled every half target duration, new
    /// segments fetched), `llhls` (blocking reload, parts, preload hints), `flv`; `auto` takes
    /// `hls` for a `.m3u8` URL, else `flv`.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// Viewers only: another process publishes (to spread many viewers over several tool
    /// processes). Latency then needs the playlist's PROGRAM-DATE-TIME.
    #[arg(long)]
    pub no_publish: bool,
    /// Prometheus text URL of the server (sluice's `/metrics`): `sluice_hls_requests_total`
    /// is read before the first viewer and after the drain, `sluice_hls_held_requests`
    /// sampled every 250 ms; deltas go into the report.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Seconds one HLS request may take (blocking reloads are held by the server).
    #[arg(long, default_value_t = 10.0)]
    pub hls_timeout: f64,
    /// Spread the viewers over this many single-threaded runtimes, each on its own thread
    /// with its own epoll (0: all on the main runtime's `--threads` workers). One event loop
    /// reading ~20,000 sockets adds seconds to the latency tail by itself; several loops,
    /// like several tool processes, do not.
    #[arg(long, default_value_t = 0)]
    pub runtimes: usize,
    /// Reconnect storm: this many seconds after the first viewer started, every normal FLV or
    /// RTMP viewer drops its connection and connects again, the drops spread over
    /// `--reconnect-within` seconds. The report gives the time until each is live again.
    #[arg(long)]
    pub reconnect_at: Option<f64>,
    /// Span of the reconnect storm, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub reconnect_within: f64,
}

impl Args {
    /// Defaults, as with no flags.
    pub fn defaults() -> Args {
        <Args as clap::Parser>::parse_from(["sluice-bench"])
    }

    /// The mode viewers use (`auto` resolved from the play URL).
    pub fn mode(&self) -> Mode {
        match self.mode {
            Mode::Auto
                if self
                    .play_url
                    .split('?')
                    .next()
                    .is_some_and(|p| p.ends_with(".m3u8")) =>
            {
                Mode::Hls
            }
            Mode::Auto => Mode::Flv,
            m => m,
        }
    }

    fn kind_of(&self, i: usize) -> Kind {
        // Spread stalled viewers evenly over the ramp, then slow ones over the rest.
        let hit = |i: usize, k: usize, n: usize| n > 0 && (i * k) / n != ((i + 1) * k) / n;
        if hit(i, self.stalled, self.viewers) {
            return Kind::Stalled;
        }
        let j = i - (i * self.stalled) / self.viewers;
        if hit(j, self.slow, self.viewers - self.stalled) {
            Kind::Slow {
                bytes_per_s: self.slow_rate,
            }
        } else {
            Kind::Normal
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Where one publisher sends.
enum Target {
    Rtmp(Url),
    Ts(ts_publisher::TsTarget),
}

/// Runs a benchmark and returns its report. Errors when the publish fails; viewer failures are
/// part of the report.
pub async fn run(args: &Args) -> Result<Report, String> {
    if args.slow + args.stalled > args.viewers {
        return Err("--slow + --stalled is more than --viewers".into());
    }
    let streams = args.streams.max(1);
    if streams > 1 && !(args.publish_url.contains("{s}") && args.play_url.contains("{s}")) {
        return Err("--streams above 1 needs {s} in --publish-url and --play-url".into());
    }
    let clip = Arc::new(Clip::load(&args.clip)?);
    let mut publish_urls = Vec::with_capacity(streams);
    for k in 0..streams {
        let raw = args.publish_url.replace("{s}", &k.to_string());
        if let Some(t) = ts_publisher::TsTarget::parse(&raw) {
            publish_urls.push(Target::Ts(t?));
            continue;
        }
        let u = Url::parse(&raw)?;
        u.rtmp_parts()?;
        if u.proto != url::Proto::Rtmp {
            return Err("--publish-url must be rtmp://, srt:// or udp://".into());
        }
        publish_urls.push(Target::Rtmp(u));
    }
    Url::parse(&args.play_url.replace("{i}", "0").replace("{s}", "0"))?;
    // One frame table per stream: each publisher's sends are matched on their own.
    let tables: Vec<Arc<frames::FrameTable>> =
        (0..streams).map(|_| Arc::new(clip.frame_table())).collect();
    let table = tables[0].clone();
    let t0 = table.t0;
    let sampler = args.server_pid.map(|pid| procstat::spawn(pid, t0));
    let before_publish = args.server_pid.and_then(procstat::read);
    let publishing_since = Instant::now();

    let (stop_pub_tx, stop_pub_rx) = watch::channel(false);
    let mut publishers = Vec::with_capacity(streams);
    let publish_urls = if args.no_publish {
        Vec::new()
    } else {
        publish_urls
    };
    for (k, publish_url) in publish_urls.into_iter().enumerate() {
        let (started_tx, mut started_rx) = watch::channel(false);
        let table = tables[k].clone();
        let clip = clip.clone();
        let stop_pub_rx = stop_pub_rx.clone();
        let publisher = tokio::spawn(async move {
            match &publish_url {
                Target::Rtmp(u) => {
                    publisher::publish(u, &clip, &table, started_tx, stop_pub_rx).await
                }
                Target::Ts(t) => {
                    ts_publisher::publish(t, &clip, &table, started_tx, stop_pub_rx).await
                }
            }
        });
        let started =
            tokio::time::timeout(Duration::from_secs(15), started_rx.wait_for(|s| *s)).await;
        if !matches!(started, Ok(Ok(_))) {
            return match publisher.await {
                Ok(Err(e)) => Err(e),
                _ => Err(format!("publish of stream {k} did not start within 15 s")),
            };
        }
        publishers.push(publisher);
    }
    tokio::time::sleep(secs(args.warmup)).await;

    let ramp_start = tokio::time::Instant::now();
    let window_start = Instant::now();
    let window_start_s = t0.elapsed().as_secs_f64();
    let base = sampler
        .as_ref()
        .and_then(|(s, _)| s.lock().ok().and_then(|g| g.last()))
        .or_else(|| {
            args.server_pid
                .and_then(procstat::read)
                .map(|(rss_kib, cpu_s)| procstat::Sample {
                    t_s: window_start_s,
                    rss_kib,
                    cpu_s,
                })
        });

    let mode = args.mode();
    let end = ramp_start + secs(args.duration);
    let hls_shared = matches!(mode, Mode::Hls | Mode::Llhls).then(|| {
        Arc::new(hls::HlsShared::new(
            (!args.no_publish).then(|| table.clone()),
            end.into_std(),
            secs(args.hls_timeout),
        ))
    });
    let metrics_before = match &args.metrics_url {
        Some(u) => Some(metrics::scrape(u).await?),
        None => None,
    };
    let held = args
        .metrics_url
        .as_ref()
        .map(|u| metrics::spawn_held(u.clone()));
    let setup = Arc::new(ViewerSetup {
        play_url: args.play_url.replace("{s}", "{stream}"),
        read_buf: args.read_buf,
        connect_timeout: secs(args.connect_timeout),
        mode,
        hls: hls_shared,
        reconnect: args.reconnect_at.map(|at| viewer::Reconnect {
            at: ramp_start + secs(at),
            within: secs(args.reconnect_within),
            of: args.viewers,
        }),
    });
    let pool = RuntimePool::new(args.runtimes);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(args.viewers);
    for i in 0..args.viewers {
        let at = ramp_start + secs(i as f64 / args.rate.max(0.001));
        if at > end {
            break;
        }
        tokio::time::sleep_until(at).await;
        handles.push(pool.spawn(
            i,
            viewer::run(
                i,
                i % streams,
                args.kind_of(i),
                setup.clone(),
                tables[i % streams].clone(),
                stop_rx.clone(),
            ),
        ));
    }
    tokio::time::sleep_until(end).await;
    // Taken before the publishers are told to stop: a fast server may end its viewers before
    // the publisher tasks have returned.
    let unpublished = Instant::now();
    let published_s = publishing_since.elapsed().as_secs_f64();
    let window_pub_s = window_start.elapsed().as_secs_f64();
    let _ = stop_pub_tx.send(true);
    let mut pub_stats = publisher::PublishStats::default();
    for publisher in publishers {
        let s = match publisher.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("publisher task: {e}")),
        };
        pub_stats.video_frames += s.video_frames;
        pub_stats.tags += s.tags;
        pub_stats.bytes += s.bytes;
        pub_stats.loops = pub_stats.loops.max(s.loops);
        pub_stats.max_late_ms = pub_stats.max_late_ms.max(s.max_late_ms);
    }
    tokio::time::sleep(secs(args.drain)).await;
    let frames_sent: u64 = tables.iter().map(|t| t.sent_total()).sum();
    let sent_of: Vec<u64> = tables.iter().map(|t| t.sent_total()).collect();
    let window_s = window_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(mut r) => {
                // Servers may end their viewers when the publisher leaves: expected, not a failure.
                if r.connected && r.ended_at >= unpublished && r.end != viewer::END_OF_TEST {
                    r.end = format!("{} {}", r.end, viewer::AFTER_UNPUBLISH);
                }
                results.push(r)
            }
            Err(e) => return Err(format!("viewer task: {e}")),
        }
    }

    let mut groups = Vec::new();
    for kind in ["normal", "slow", "stalled"] {
        let rs: Vec<&viewer::ViewerResult> =
            results.iter().filter(|r| r.kind.name() == kind).collect();
        if !rs.is_empty() {
            let sent: Vec<u64> = rs.iter().map(|r| sent_of[r.id % streams]).collect();
            groups.push(report::group(kind, &rs, &sent));
        }
    }
    let delivered_bytes: u64 = results.iter().map(|r| r.bytes).sum();
    let origin = match (&args.metrics_url, metrics_before, held) {
        (Some(u), Some(before), Some((samples, task))) => {
            task.abort();
            let after = metrics::scrape(u).await?;
            let held = samples.lock().map(|g| g.clone()).unwrap_or_default();
            Some(metrics::OriginStats::new(&before, &after, &held))
        }
        _ => None,
    };
    let connected = results.iter().filter(|r| r.connected).count();
    // The publishers send at a steady rate: the window's share of what they sent.
    let ingested_bytes =
        (pub_stats.bytes as f64 * (window_pub_s / published_s.max(1e-9)).min(1.0)) as u64;
    let server = match (args.server_pid, sampler) {
        (Some(pid), Some((samples, task))) => {
            let last = procstat::read(pid);
            task.abort();
            let g = samples.lock().map_err(|_| "sampler poisoned")?;
            base.map(|b| {
                let peak = g
                    .peak_since(window_start_s)
                    .unwrap_or(b.rss_kib)
                    .max(last.map_or(0, |l| l.0));
                let cpu_s = last.map_or(g.last().map_or(b.cpu_s, |s| s.cpu_s), |l| l.1) - b.cpu_s;
                ServerStats {
                    pid,
                    rss_baseline_kib: b.rss_kib,
                    rss_peak_kib: peak,
                    rss_per_viewer_kib: (peak.saturating_sub(b.rss_kib)) as f64
                        / connected.max(1) as f64,
                    cpu_s,
                    cpu_s_per_gb: if delivered_bytes > 0 {
                        cpu_s / (delivered_bytes as f64 / 1e9)
                    } else {
                        0.0
                    },
                    samples: g.all.clone(),
                    window_start_s,
                    ramp_end_s: window_start_s + args.viewers as f64 / args.rate.max(0.001),
                    rss_before_publish_kib: before_publish.map_or(0, |b| b.0),
                    rss_per_publisher_kib: before_publish.map_or(0.0, |p| {
                        b.rss_kib.saturating_sub(p.0) as f64 / streams as f64
                    }),
                    ingested_bytes,
                    cpu_s_per_ingest_gb: if ingested_bytes > 0 {
                        cpu_s / (ingested_bytes as f64 / 1e9)
                    } else {
                        0.0
                    },
                }
            })
        }
        _ => None,
    };
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("clip", args.clip.display().to_string()),
        ("publish_url", args.publish_url.clone()),
        ("play_url", args.play_url.clone()),
        ("viewers", args.viewers.to_string()),
        ("rate", args.rate.to_string()),
        ("duration", args.duration.to_string()),
        ("warmup", args.warmup.to_string()),
        ("drain", args.drain.to_string()),
        ("slow", args.slow.to_string()),
        ("slow_rate", args.slow_rate.to_string()),
        ("stalled", args.stalled.to_string()),
        ("read_buf", args.read_buf.to_string()),
        ("streams", streams.to_string()),
        ("ambiguous_clip_frames", table.ambiguous.to_string()),
        ("mode", format!("{mode:?}").to_lowercase()),
        ("no_publish", args.no_publish.to_string()),
        ("runtimes", args.runtimes.to_string()),
        (
            "reconnect_at",
            args.reconnect_at.map_or("-".into(), |a| a.to_string()),
        ),
        ("reconnect_within", args.reconnect_within.to_string()),
    ] {
        settings.insert(k.to_owned(), v);
    }
    Ok(Report {
        settings,
        window_s,
        frames_sent,
        publisher: pub_stats,
        groups,
        delivered_bytes,
        delivered_mbit_s: delivered_bytes as f64 * 8.0 / 1e6 / window_s.max(1e-9),
        server,
        origin,
    })
}

/// Viewer tasks' runtimes: the caller's, or `n` single-threaded ones on their own threads
/// (viewer `i` on runtime `i % n`), stopped when the pool is dropped.
struct RuntimePool {
    handles: Vec<tokio::runtime::Handle>,
    stop: Option<watch::Sender<bool>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RuntimePool {
    fn new(n: usize) -> RuntimePool {
        let (tx, rx) = watch::channel(false);
        let mut pool = RuntimePool {
            handles: Vec::with_capacity(n),
            stop: Some(tx),
            threads: Vec::with_capacity(n),
        };
        for k in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("viewer runtime");
            pool.handles.push(rt.handle().clone());
            let mut rx = rx.clone();
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("viewers-{k}"))
                    .spawn(move || {
                        rt.block_on(async move {
                            let _ = rx.wait_for(|s| *s).await;
                        });
                        // Tasks still there (none after a normal run) are dropped here.
                        rt.shutdown_background();
                    })
                    .expect("viewer thread"),
            );
        }
        pool
    }

    fn spawn<F>(&self, i: usize, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handles.len() {
            0 => tokio::spawn(f),
            n => self.handles[i % n].spawn(f),
        }
    }
}

impl Drop for RuntimePool {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Raises the soft open-files limit to the hard limit (thousands of viewers need it).
pub fn raise_fd_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            let want = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                l = want;
            }
        }
    }
    l.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_spread() {
        for (n, slow, stalled) in [
            (40, 10, 10),
            (7, 3, 4),
            (10, 0, 0),
            (5, 5, 0),
            (1000, 1, 999),
        ] {
            let a = Args {
                viewers: n,
                slow,
                stalled,
                ..Args::defaults()
            };
            let kinds: Vec<Kind> = (0..n).map(|i| a.kind_of(i)).collect();
            let count = |k: &str| kinds.iter().filter(|x| x.name() == k).count();
            assert_eq!(
                (count("slow"), count("stalled")),
                (slow, stalled),
                "{n} {slow} {stalled}"
            );
        }
    }
}
