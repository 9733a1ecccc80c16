//! Reads the server's Prometheus text (sluice's `/metrics`): HLS request counters before and
//! after a run (the origin's work behind a cache tier) and the held-requests gauge over it.

use crate::http::Conn;
use crate::url::Url;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counter lines kept from a scrape, by series (`name{labels}`).
pub type Series = BTreeMap<String, f64>;

/// Series of `sluice_hls_*` in a Prometheus text body.
pub fn parse(text: &str) -> Series {
    text.lines()
        .filter(|l| l.starts_with("sluice_hls_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// GETs `url` (one request on its own connection) and parses it.
pub async fn scrape(url: &str) -> Result<Series, String> {
    let u = Url::parse(url)?;
    let mut c = Conn::new(&u.authority);
    let r = c
        .get(&u.path, true, Duration::from_secs(5))
        .await
        .map_err(|e| format!("metrics {url}: {e}"))?;
    if r.status != 200 {
        return Err(format!("metrics {url}: status {}", r.status));
    }
    Ok(parse(&String::from_utf8_lossy(&r.body)))
}

/// Samples `sluice_hls_held_requests` every 250 ms until aborted.
pub fn spawn_held(url: String) -> (Arc<Mutex<Vec<f64>>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let s = samples.clone();
    let h = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if let Ok(m) = scrape(&url).await {
                if let (Some(v), Ok(mut g)) = (m.get("sluice_hls_held_requests"), s.lock()) {
                    g.push(*v);
                }
            }
        }
    });
    (samples, h)
}

/// What the server's counters say about a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OriginStats {
    /// Increase of each `sluice_hls_requests_total{…}` series over the run (zeros left out).
    pub requests: BTreeMap<String, f64>,
    /// Largest `sluice_hls_held_requests` seen.
    pub held_max: f64,
    /// Mean of the same over the samples.
    pub held_mean: f64,
    /// Samples behind the two.
    pub held_samples: usize,
}

impl OriginStats {
    /// From the scrapes before and after and the held-gauge samples.
    pub fn new(before: &Series, after: &Series, held: &[f64]) -> OriginStats {
        let requests = after
            .iter()
            .filter(|(k, _)| k.starts_with("sluice_hls_requests_total"))
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, d)| *d != 0.0)
            .collect();
        OriginStats {
            requests,
            held_max: held.iter().copied().fold(0.0, f64::max),
            held_mean: if held.is_empty() {
                0.0
            } else {
                held.iter().sum::<f64>() / held.len() as f64
            },
            held_samples: held.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas() {
        let a = parse(
            "# HELP x\nsluice_hls_requests_total{variant=\"fmp4\",kind=\"part\",status=\"200\"} 5\n\
             sluice_hls_held_requests 0\nother 1\n",
        );
        let b = parse(
            "sluice_hls_requests_total{variant=\"fmp4\",kind=\"part\",status=\"200\"} 12\n\
             sluice_hls_requests_total{variant=\"ts\",kind=\"segment\",status=\"200\"} 3\n\
             sluice_hls_held_requests 7\n",
        );
        let o = OriginStats::new(&a, &b, &[1.0, 3.0]);
        assert_eq!(o.requests.len(), 2);
        assert_eq!(
            o.requests["sluice_hls_requests_total{variant=\"fmp4\",kind=\"part\",status=\"200\"}"],
            7.0
        );
        assert_eq!((o.held_max, o.held_mean), (3.0, 2.0));
    }
}
