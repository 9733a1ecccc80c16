//! The `sluice` binary: runs the server with built-in defaults, a TOML file and flags.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice::access::auth::{signed_query, Action};
use sluice::config::{Config, LogFormat, DEFAULT_TOML};
use sluice::control::metrics::AllocatorStats;

// jemalloc: steady RSS under many connections (arenas return freed pages) and stats for /metrics.
// Build with `--no-default-features` for the system allocator (heap profilers such as valgrind's
// dhat only see malloc).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: profiling compiled in and ready, sampling inactive until
/// `profiling.heap_sampling` turns it on (src/control/pprof.rs); one sample per 2^19 bytes.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

/// jemalloc's allocated and resident bytes (refreshed by advancing its stats epoch).
#[cfg(not(feature = "jemalloc"))]
fn jemalloc_stats() -> Option<AllocatorStats> {
    None
}

/// jemalloc's allocated and resident bytes (refreshed by advancing its stats epoch).
#[cfg(feature = "jemalloc")]
fn jemalloc_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

/// Live H.264/H.265 + AAC streaming server: RTMP in; HTTP-FLV, WebSocket-FLV and RTMP out.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// RTMP listen address (overrides rtmp.listen).
    #[arg(long, value_name = "ADDR")]
    rtmp: Option<SocketAddr>,
    /// HTTP listen address (overrides http.listen).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// TOML configuration file; fields not given keep their defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Print the full default configuration, with a comment on every field, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Print a signed, expiring query (`expires=…&sign=…`) and URLs for publish or play (see
    /// `auth.secret`).
    Sign {
        /// The `auth.secret` of the server.
        #[arg(long)]
        secret: String,
        /// App name, e.g. `live`.
        #[arg(long)]
        app: String,
        /// Stream name, e.g. `cam`.
        #[arg(long)]
        stream: String,
        /// Seconds the signature stays valid.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Sign for playing (default: for publishing).
        #[arg(long)]
        play: bool,
        /// Host printed in the URLs (ports come from the flags below).
        #[arg(long, default_value = "localhost")]
        host: String,
        /// RTMP port printed in the URLs.
        #[arg(long, default_value_t = 1935)]
        rtmp_port: u16,
        /// HTTP port printed in the URLs.
        #[arg(long, default_value_t = 8080)]
        http_port: u16,
    },
}

fn sign(cmd: Cmd) -> ExitCode {
    let Cmd::Sign {
        secret,
        app,
        stream,
        ttl,
        play,
        host,
        rtmp_port,
        http_port,
    } = cmd;
    for (what, name) in [("app", &app), ("stream", &stream)] {
        if let Err(e) = sluice::session::names::validate(what, name) {
            eprintln!("sluice sign: {e}");
            return ExitCode::from(2);
        }
    }
    if secret.is_empty() {
        eprintln!("sluice sign: --secret must not be empty");
        return ExitCode::from(2);
    }
    let action = if play { Action::Play } else { Action::Publish };
    let q = signed_query(&secret, action, &app, &stream, Duration::from_secs(ttl));
    println!("{q}");
    println!("rtmp://{host}:{rtmp_port}/{app}/{stream}?{q}");
    if play {
        println!("http://{host}:{http_port}/{app}/{stream}.flv?{q}");
        println!("ws://{host}:{http_port}/{app}/{stream}.flv?{q}");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(cmd) = args.command {
        return sign(cmd);
    }
    if args.print_config {
        print!("{DEFAULT_TOML}");
        return ExitCode::SUCCESS;
    }
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluice: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(a) = args.rtmp {
        config.rtmp.listen = a;
    }
    if let Some(a) = args.http {
        config.http.listen = a;
    }
    sluice::control::metrics::set_allocator_stats(jemalloc_stats);
    if let Err(e) = init_logging(&config) {
        eprintln!("sluice: {e}");
        return ExitCode::from(2);
    }
    match sluice::control::pprof::init(&config.profiling) {
        Ok(()) if config.profiling.heap_sampling => tracing::info!("jemalloc heap sampling on"),
        Ok(()) => {}
        Err(e) => tracing::warn!("profiling.heap_sampling: {e}"),
    }
    // Before the runtimes: every connection is a file, and distributions start a process at a
    // soft limit of 1,024 open files.
    let kernel = sluice::net::limits::KernelLimits::raise_and_read();
    for warning in sluice::net::limits::warnings(&config.limits, &kernel, !config.edge.is_empty()) {
        tracing::warn!("{warning}");
    }
    let threads = match config.runtime.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // The listeners and the first connections on one worker; the rest of the threads take
    // connections once it is busy (src/placement.rs). With spilling off, one pool of them all.
    let rts = sluice::net::placement::runtimes(threads, config.runtime.spill_busy_percent > 0);
    let (rt, spill) = match rts {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spill_handle = spill.as_ref().map(|rt| rt.handle().clone());
    let code = rt.block_on(async move {
        let server = match sluice::Server::start_with_spill(config, spill_handle).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sluice: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown(Duration::from_secs(3)).await;
        ExitCode::SUCCESS
    });
    // Connections still open past the grace are dropped with their runtime.
    if let Some(spill) = spill {
        spill.shutdown_timeout(Duration::from_millis(500));
    }
    code
}

fn init_logging(config: &Config) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| format!("invalid config: log.level = {:?}: {e}", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
