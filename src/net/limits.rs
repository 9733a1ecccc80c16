//! What the kernel caps: open files (`RLIMIT_NOFILE`), the listeners' accept queue
//! (`net.core.somaxconn`) and, for an edge pulling from its origin, local ports
//! (`net.ipv4.ip_local_port_range`). Checked once at start against `[limits]`; a deployment
//! that cannot reach its own settings is told which kernel setting to raise.

use crate::config::LimitsConfig;

/// Files the process holds besides its connections (listeners, epoll, eventfds, logs, the
/// allocator's and the runtime's own), left out of the open-files budget.
pub const OWN_FILES: u64 = 64;

/// What the kernel allows this process, as read at start (`None` where unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelLimits {
    /// Soft `RLIMIT_NOFILE` after raising it (open files, connections included).
    pub nofile: Option<u64>,
    /// `net.core.somaxconn`: the kernel's cap on a listen backlog.
    pub somaxconn: Option<u32>,
    /// Ports in `net.ipv4.ip_local_port_range`: outgoing connections to one origin address.
    pub local_ports: Option<u32>,
}

impl KernelLimits {
    /// Raises the soft open-files limit to the hard one, then reads the three limits.
    pub fn raise_and_read() -> KernelLimits {
        KernelLimits {
            nofile: raise_nofile().ok(),
            somaxconn: somaxconn(),
            local_ports: local_ports(),
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a connection is a file; distributions
/// start processes at a soft 1,024). Returns the soft limit now in force.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which is valid for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` through the pointer, which is valid for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// `net.core.somaxconn`, the most a listen backlog can be (`None` off Linux or when unreadable).
pub fn somaxconn() -> Option<u32> {
    read_proc("/proc/sys/net/core/somaxconn")?
        .trim()
        .parse()
        .ok()
}

/// How many ports `net.ipv4.ip_local_port_range` gives outgoing connections.
pub fn local_ports() -> Option<u32> {
    parse_port_range(&read_proc("/proc/sys/net/ipv4/ip_local_port_range")?)
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `"32768\t60999\n"` → 28,232 ports.
fn parse_port_range(s: &str) -> Option<u32> {
    let mut it = s.split_whitespace().map(|p| p.parse::<u32>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some(hi.checked_sub(lo)? + 1)
}

/// The backlog the listeners get: `limits.listen_backlog` (at least 1), capped by the kernel's
/// `somaxconn`, which would cap it silently anyway.
pub fn listen_backlog(setting: u32, somaxconn: Option<u32>) -> u32 {
    let b = setting.max(1);
    somaxconn.map_or(b, |m| b.min(m.max(1)))
}

/// What the kernel's limits will cap below the settings, one sentence each naming the setting,
/// the numbers and what to raise. Empty when nothing does. Local ports matter only to a node
/// that opens connections to origins (`pulls`): a server that only accepts needs none.
pub fn warnings(limits: &LimitsConfig, k: &KernelLimits, pulls: bool) -> Vec<String> {
    let mut out = Vec::new();
    let max = limits.max_connections as u64;
    // RLIM_INFINITY: no cap.
    if let Some(nofile) = k.nofile.filter(|n| *n != libc::RLIM_INFINITY) {
        let room = nofile.saturating_sub(OWN_FILES);
        if room < max {
            out.push(format!(
                "open files limit (RLIMIT_NOFILE) is {nofile}: at most about {room} connections, \
                 below limits.max_connections = {max}; past it accept fails with EMFILE. Raise \
                 the hard limit (`ulimit -Hn`, systemd LimitNOFILE=, /etc/security/limits.conf) \
                 or lower limits.max_connections"
            ));
        }
    }
    if let Some(somaxconn) = k.somaxconn {
        if somaxconn < limits.listen_backlog {
            out.push(format!(
                "net.core.somaxconn is {somaxconn}: the listen backlog is capped below \
                 limits.listen_backlog = {}; a join storm beyond it drops SYNs and clients \
                 retry after 1, 3, 7 s. Raise it with `sysctl -w net.core.somaxconn={}`",
                limits.listen_backlog, limits.listen_backlog
            ));
        }
    }
    if let Some(ports) = k.local_ports.filter(|_| pulls) {
        if u64::from(ports) < max {
            out.push(format!(
                "net.ipv4.ip_local_port_range gives {ports} local ports, below \
                 limits.max_connections = {max}: an edge cannot open more connections than \
                 that to one origin address. Widen it (e.g. `sysctl -w \
                 net.ipv4.ip_local_port_range=\"1024 65535\"`) if this node pulls from an origin"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, listen_backlog: u32) -> LimitsConfig {
        LimitsConfig {
            max_connections,
            listen_backlog,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn a_low_nofile_limit_is_named_with_its_numbers() {
        let k = KernelLimits {
            nofile: Some(1024),
            ..KernelLimits::default()
        };
        let w = warnings(&limits(50_000, 4096), &k, true);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("RLIMIT_NOFILE) is 1024"), "{}", w[0]);
        assert!(w[0].contains("about 960 connections"), "{}", w[0]);
        assert!(w[0].contains("limits.max_connections = 50000"), "{}", w[0]);
    }

    #[test]
    fn the_margin_for_own_files_counts() {
        let k = KernelLimits {
            nofile: Some(20_000),
            ..KernelLimits::default()
        };
        assert!(warnings(&limits(19_936, 4096), &k, true).is_empty());
        assert_eq!(warnings(&limits(19_937, 4096), &k, true).len(), 1);
        let unlimited = KernelLimits {
            nofile: Some(libc::RLIM_INFINITY),
            ..KernelLimits::default()
        };
        assert!(warnings(&limits(10_000_000, 4096), &unlimited, true).is_empty());
    }

    #[test]
    fn somaxconn_below_the_backlog_warns() {
        let k = KernelLimits {
            somaxconn: Some(128),
            ..KernelLimits::default()
        };
        let w = warnings(&limits(1000, 4096), &k, true);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("somaxconn is 128"), "{}", w[0]);
        assert!(w[0].contains("limits.listen_backlog = 4096"), "{}", w[0]);
        let enough = KernelLimits {
            somaxconn: Some(4096),
            ..KernelLimits::default()
        };
        assert!(warnings(&limits(1000, 4096), &enough, true).is_empty());
    }

    #[test]
    fn few_local_ports_warn_and_unknown_limits_do_not() {
        let k = KernelLimits {
            local_ports: Some(28_232),
            ..KernelLimits::default()
        };
        let w = warnings(&limits(50_000, 4096), &k, true);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("28232 local ports"), "{}", w[0]);
        assert!(warnings(&limits(50_000, 4096), &KernelLimits::default(), true).is_empty());
        // A node that pulls from no origin opens no outgoing connections: no warning.
        assert!(warnings(&limits(50_000, 4096), &k, false).is_empty());
    }

    #[test]
    fn every_limit_low_gives_three_warnings() {
        let k = KernelLimits {
            nofile: Some(1024),
            somaxconn: Some(128),
            local_ports: Some(100),
        };
        assert_eq!(warnings(&limits(50_000, 4096), &k, true).len(), 3);
    }

    #[test]
    fn port_range_and_backlog_clamp() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 65535"), Some(64_512));
        assert_eq!(parse_port_range("9 1"), None);
        assert_eq!(parse_port_range("x"), None);
        assert_eq!(listen_backlog(4096, Some(128)), 128);
        assert_eq!(listen_backlog(4096, None), 4096);
        assert_eq!(listen_backlog(0, Some(4096)), 1);
        assert_eq!(listen_backlog(16, Some(0)), 1);
    }
}
