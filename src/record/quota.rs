//! Disk quotas: per stream (the files of one stream under one rule) and total (every recording
//! file below one directory, including what was there at start). Checked before each write,
//! from the writer's thread: a full quota deletes the oldest closed files, or refuses.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::config::{QuotaAction, RecordFormat};

/// The accounting of one directory.
pub struct Quota {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Closed files, oldest first: path, bytes, stream key (`None`: found at start).
    closed: VecDeque<(PathBuf, u64, Option<String>)>,
    /// Bytes of every file, open or closed.
    total: u64,
    /// Bytes per stream key, open or closed.
    per_stream: HashMap<String, u64>,
    /// Files deleted to make room.
    deleted: u64,
}

/// The limits a write is checked against (the rule's).
#[derive(Clone, Copy)]
pub struct Limits {
    pub stream: u64,
    pub total: u64,
    pub action: QuotaAction,
}

impl Quota {
    /// The accounting of `dir`, counting the recording files already below it.
    pub fn scan(dir: &Path) -> Quota {
        let mut found = Vec::new();
        walk(dir, &mut found, 0);
        found.sort_by_key(|(_, _, t)| *t);
        let mut s = State::default();
        for (p, len, _) in found {
            s.total += len;
            s.closed.push_back((p, len, None));
        }
        if s.total > 0 {
            tracing::info!(dir = %dir.display(), files = s.closed.len(), bytes = s.total, "recording files found at start count towards total_quota_bytes");
        }
        Quota {
            dir: dir.to_path_buf(),
            state: Mutex::new(s),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for `n` more bytes of `key`'s open file: Ok when they fit (after deleting the
    /// oldest closed files, if that is the action), else why not.
    pub fn reserve(&self, key: &str, n: u64, l: Limits) -> Result<(), String> {
        let mut s = self.lock();
        loop {
            let mine = s.per_stream.get(key).copied().unwrap_or(0);
            let over_stream = mine + n > l.stream;
            let over_total = s.total + n > l.total;
            if !over_stream && !over_total {
                break;
            }
            let (what, limit) = if over_stream {
                ("stream_quota_bytes", l.stream)
            } else {
                ("total_quota_bytes", l.total)
            };
            if l.action == QuotaAction::Stop {
                return Err(format!("{what} ({limit}) reached"));
            }
            // The oldest closed file that frees room for this quota.
            let i = s
                .closed
                .iter()
                .position(|(_, _, k)| !over_stream || k.as_deref() == Some(key));
            let Some(i) = i else {
                return Err(format!(
                    "{what} ({limit}) reached with no closed file left to delete"
                ));
            };
            let (path, len, k) = s.closed.remove(i).expect("index from position");
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), bytes = len, "recording deleted for {what}")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "recording could not be deleted for {what}; no longer counted")
                }
            }
            s.total = s.total.saturating_sub(len);
            if let Some(k) = k {
                if let Some(v) = s.per_stream.get_mut(&k) {
                    *v = v.saturating_sub(len);
                }
            }
            s.deleted += 1;
        }
        s.total += n;
        *s.per_stream.entry(key.to_string()).or_default() += n;
        Ok(())
    }

    /// `key`'s file at `path` is closed with `len` bytes (as reserved): it may now be deleted.
    pub fn closed(&self, key: &str, path: PathBuf, len: u64) {
        self.lock()
            .closed
            .push_back((path, len, Some(key.to_string())));
    }

    /// Bytes written to a file that was then lost (an error): forget them.
    pub fn forget(&self, key: &str, len: u64) {
        let mut s = self.lock();
        s.total = s.total.saturating_sub(len);
        if let Some(v) = s.per_stream.get_mut(key) {
            *v = v.saturating_sub(len);
        }
    }

    /// (bytes counted, files deleted for room).
    pub fn usage(&self) -> (u64, u64) {
        let s = self.lock();
        (s.total, s.deleted)
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, SystemTime)>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let p = e.path();
        if m.is_dir() {
            walk(&p, out, depth + 1);
        } else if m.is_file()
            && p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                [RecordFormat::Fmp4, RecordFormat::Flv, RecordFormat::Ts]
                    .iter()
                    .any(|f| f.extension() == x)
            })
        {
            out.push((p, m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_oldest_or_stops() {
        let d = std::env::temp_dir().join(format!("sluice-quota-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let q = Quota::scan(&d);
        let l = Limits {
            stream: 100,
            total: 150,
            action: QuotaAction::DeleteOldest,
        };
        let a = d.join("a.mp4");
        std::fs::write(&a, [0u8; 60]).unwrap();
        q.reserve("x", 60, l).unwrap();
        q.closed("x", a.clone(), 60);
        q.reserve("x", 30, l).unwrap();
        // 60 + 30 + 30 > 100: a.mp4 goes.
        q.reserve("x", 30, l).unwrap();
        assert!(!a.exists());
        assert_eq!(q.usage(), (60, 1));
        // The open file alone over the quota: refused.
        assert!(q
            .reserve("x", 50, l)
            .unwrap_err()
            .contains("no closed file"));
        // Another stream counts towards the total.
        q.reserve("y", 90, l).unwrap();
        assert!(q
            .reserve("y", 10, l)
            .unwrap_err()
            .contains("total_quota_bytes"));
        let stop = Limits {
            action: QuotaAction::Stop,
            ..l
        };
        assert!(q.reserve("x", 41, stop).unwrap_err().contains("reached"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
