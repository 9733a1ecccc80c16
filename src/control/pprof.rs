//! Profiles from a running server, in pprof's protobuf format (open with `go tool pprof` or
//! `pprof -top`):
//!
//! - `GET /debug/pprof/heap`: jemalloc's sampled heap profile (`jemalloc_pprof`, gzipped
//!   protobuf). Needs the binary's jemalloc (built with profiling) and `profiling.heap_sampling`
//!   on: jemalloc samples one allocation per 512 KiB on average from then on.
//! - `GET /debug/pprof/profile?seconds=N`: a CPU profile of the next N seconds (`pprof-rs`,
//!   SIGPROF at `profiling.cpu_frequency`), N cut to `profiling.max_cpu_seconds`; one at a time.
//!   Only with `profiling.cpu_profiles` on: pprof-rs allocates its sample table (~270 MiB RSS
//!   at S1) at the first profile and keeps it for the life of the process. The profile carries
//!   addresses and the executable mappings, not names: pprof symbolizes them with the binary.
//!
//! Both are behind `api.token`, and refused while no token is set: a profile shows the
//! server's internals and a CPU profile costs CPU.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Response;
use crate::session::Ctx;

/// Whether a CPU profile runs now (the profiler is process-wide).
static CPU_BUSY: AtomicBool = AtomicBool::new(false);

/// Turns jemalloc's heap sampling on when `profiling.heap_sampling` says so (at start).
/// Returns why it could not be turned on, if it could not.
pub fn init(config: &crate::config::ProfilingConfig) -> Result<(), String> {
    if !config.heap_sampling {
        return Ok(());
    }
    heap::activate()
}

/// Answers `/debug/pprof/…`; `None` for other paths.
pub async fn answer(
    ctx: &Ctx,
    method: &str,
    path: &str,
    query: Option<&str>,
    authorization: Option<&str>,
) -> Option<Response> {
    let what = path.strip_prefix("/debug/pprof/")?;
    if ctx.config.api.token.is_empty() {
        return Some(Response::error(
            "403 Forbidden",
            "profiles need api.token to be set",
        ));
    }
    if !super::api::authorized(&ctx.config.api.token, authorization) {
        let mut r = Response::error("401 Unauthorized", "missing or invalid bearer token");
        r.headers.push(("WWW-Authenticate", "Bearer"));
        return Some(r);
    }
    if method != "GET" {
        return Some(super::not_allowed("GET"));
    }
    Some(match what {
        "heap" => match heap::dump().await {
            Ok(bytes) => protobuf(bytes, "heap.pb.gz", None),
            Err(e) => Response::error("503 Service Unavailable", e),
        },
        "profile" if !ctx.config.profiling.cpu_profiles => Response::error(
            "404 Not Found",
            "CPU profiles are off: set profiling.cpu_profiles = true (its sample table, ~270 MiB, stays allocated after the first profile)",
        ),
        "profile" => {
            let cfg = &ctx.config.profiling;
            let asked = crate::access::auth::query_param(query, "seconds")
                .map(|s| s.parse::<u64>().map_err(|_| s));
            let secs = match asked {
                None => 30,
                Some(Ok(n)) if n > 0 => n,
                Some(_) => {
                    return Some(Response::error(
                        "400 Bad Request",
                        "seconds must be a positive whole number",
                    ))
                }
            };
            let secs = secs.min(cfg.max_cpu_seconds);
            match cpu(secs, cfg.cpu_frequency).await {
                Ok(bytes) => protobuf(bytes, "profile.pb", Some(secs)),
                Err((status, e)) => Response::error(status, e),
            }
        }
        _ => Response::error(
            "404 Not Found",
            "profiles: /debug/pprof/heap, /debug/pprof/profile?seconds=N",
        ),
    })
}

fn protobuf(bytes: Vec<u8>, name: &'static str, secs: Option<u64>) -> Response {
    let mut r = Response {
        status: "200 OK",
        content_type: "application/octet-stream",
        body: Cow::Owned(bytes),
        headers: Vec::new(),
    };
    r.headers.push((
        "Content-Disposition",
        if name == "heap.pb.gz" {
            "attachment; filename=\"heap.pb.gz\""
        } else {
            "attachment; filename=\"profile.pb\""
        },
    ));
    if let Some(s) = secs {
        // The duration actually profiled (a request for more is cut to the cap).
        r.headers.push(("X-Profile-Seconds", leak_secs(s)));
    }
    r
}

/// Header values are `&'static str`; seconds are capped (≤ 3600), so the few distinct values
/// are kept once each.
fn leak_secs(s: u64) -> &'static str {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashMap<u64, &'static str>>> = Mutex::new(None);
    let mut m = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    m.get_or_insert_with(HashMap::new)
        .entry(s)
        .or_insert_with(|| Box::leak(s.to_string().into_boxed_str()))
}

/// A CPU profile of the next `secs` seconds, encoded.
async fn cpu(secs: u64, frequency: u32) -> Result<Vec<u8>, (&'static str, String)> {
    if CPU_BUSY.swap(true, Ordering::AcqRel) {
        return Err((
            "409 Conflict",
            "a CPU profile is already running".to_string(),
        ));
    }
    struct Busy;
    impl Drop for Busy {
        fn drop(&mut self) {
            CPU_BUSY.store(false, Ordering::Release);
        }
    }
    let _busy = Busy;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency as i32)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| ("503 Service Unavailable", format!("cpu profiler: {e}")))?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    // Not symbolized here: backtrace's symbolizer parses the binary's debug info and keeps it
    // cached for the life of the process (~280 MiB RSS for the release binary). Addresses and
    // the executable mappings go out instead; pprof symbolizes them with the binary, as it
    // does jemalloc's heap profiles.
    let report = guard
        .report()
        .build_unresolved()
        .map_err(|e| ("500 Internal Server Error", format!("cpu profile: {e}")))?;
    drop(guard);
    let bytes = encode_unresolved(&report, frequency, secs);
    Ok(bytes)
}

/// The executable file mappings of this process: (start, end, file offset, path).
fn executable_mappings() -> Vec<(u64, u64, u64, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?;
            let offset = u64::from_str_radix(it.next()?, 16).ok()?;
            let path = it.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            Some((a, b, offset, path.to_string()))
        })
        .collect()
}

/// A pprof `Profile` of raw addresses: samples (count, CPU ns), one location per address, the
/// mappings pprof needs to symbolize them against the binaries.
fn encode_unresolved(r: &pprof::UnresolvedReport, frequency: u32, secs: u64) -> Vec<u8> {
    use pprof::protos::{Label, Location, Mapping, Message, Profile, Sample, ValueType};
    use std::collections::HashMap;
    let mut strings: Vec<String> = vec![String::new()];
    let mut index: HashMap<String, i64> = HashMap::new();
    let mut s = |x: &str| -> i64 {
        if let Some(&i) = index.get(x) {
            return i;
        }
        strings.push(x.to_string());
        index.insert(x.to_string(), strings.len() as i64 - 1);
        strings.len() as i64 - 1
    };
    let maps = executable_mappings();
    let mapping: Vec<Mapping> = maps
        .iter()
        .enumerate()
        .map(|(i, (a, b, off, path))| Mapping {
            id: i as u64 + 1,
            memory_start: *a,
            memory_limit: *b,
            file_offset: *off,
            filename: s(path),
            ..Mapping::default()
        })
        .collect();
    let period = 1_000_000_000 / i64::from(frequency.max(1));
    let (samples_s, count_s, cpu_s, ns_s, thread_s) = (
        s("samples"),
        s("count"),
        s("cpu"),
        s("nanoseconds"),
        s("thread"),
    );
    let mut locations: HashMap<u64, u64> = HashMap::new();
    let mut location: Vec<Location> = Vec::new();
    let mut sample = Vec::with_capacity(r.data.len());
    for (frames, count) in &r.data {
        let mut ids = Vec::with_capacity(frames.frames.len());
        for f in frames.frames.iter() {
            let addr = f.ip() as u64;
            let next = location.len() as u64 + 1;
            let id = *locations.entry(addr).or_insert(next);
            if id == next {
                let mapping_id = maps
                    .iter()
                    .position(|(a, b, _, _)| (*a..*b).contains(&addr))
                    .map_or(0, |i| i as u64 + 1);
                location.push(Location {
                    id,
                    mapping_id,
                    address: addr,
                    ..Location::default()
                });
            }
            ids.push(id);
        }
        let thread =
            String::from_utf8_lossy(&frames.thread_name[..frames.thread_name_length]).into_owned();
        sample.push(Sample {
            location_id: ids,
            value: vec![*count as i64, *count as i64 * period],
            label: vec![Label {
                key: thread_s,
                str: s(&thread),
                ..Label::default()
            }],
        });
    }
    let profile = Profile {
        sample_type: vec![
            ValueType {
                ty: samples_s,
                unit: count_s,
            },
            ValueType {
                ty: cpu_s,
                unit: ns_s,
            },
        ],
        sample,
        mapping,
        location,
        string_table: strings,
        period_type: Some(ValueType {
            ty: cpu_s,
            unit: ns_s,
        }),
        period,
        duration_nanos: (secs * 1_000_000_000) as i64,
        ..Profile::default()
    };
    profile.encode_to_vec()
}

#[cfg(feature = "jemalloc")]
mod heap {
    /// Turns sampling on.
    pub fn activate() -> Result<(), String> {
        let ctl = jemalloc_pprof::PROF_CTL
            .as_ref()
            .ok_or("jemalloc was not started with profiling (prof:true); not the sluice binary?")?;
        let mut ctl = ctl
            .try_lock()
            .map_err(|_| "the profiler is busy".to_string())?;
        ctl.activate().map_err(|e| e.to_string())
    }

    /// The heap profile, gzipped pprof protobuf.
    pub async fn dump() -> Result<Vec<u8>, String> {
        let ctl = jemalloc_pprof::PROF_CTL.as_ref().ok_or(
            "heap profiling is not available (jemalloc without profiling, or not the sluice binary)",
        )?;
        let mut ctl = ctl.clone().lock_owned().await;
        if !ctl.activated() {
            return Err("heap sampling is off: set profiling.heap_sampling = true".into());
        }
        // Writes jemalloc's dump to a temporary file and converts it: off the runtime.
        tokio::task::spawn_blocking(move || ctl.dump_pprof())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

#[cfg(not(feature = "jemalloc"))]
mod heap {
    pub fn activate() -> Result<(), String> {
        Err("built without jemalloc: no heap profiles".into())
    }

    pub async fn dump() -> Result<Vec<u8>, String> {
        Err("built without jemalloc: no heap profiles".into())
    }
}
