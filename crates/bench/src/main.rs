//! `sluice-bench`: see the library docs and `--help`.

use clap::Parser;
use sluice_bench::{raise_fd_limit, run, Args};

fn main() {
    let args = Args::parse();
    let fds = raise_fd_limit();
    if (fds as usize) < args.viewers + 64 {
        eprintln!(
            "warning: open-files limit {fds} is below --viewers {} (+64)",
            args.viewers
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = match rt.block_on(run(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            std::process::exit(1);
        }
    };
    print!("{}", report.human());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("report serialises");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("sluice-bench: {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
