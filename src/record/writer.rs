//! The writer of one recording, on its own thread: frames from the bounded queue into one file
//! per format, split at keyframes, flushed at fragment boundaries (one `write` per fragment, so
//! a killed process leaves whole fragments), checked against the quotas, errors turned into a
//! per-recording state with a retry.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use serde::Serialize;
use sluice_media::{Frame, Track};

use super::format::{Encoder, Headers};
use super::quota::{Limits, Quota};
use super::{Item, Recording};
use crate::config::{PathTemplate, RecordFormat, RecordRule};

/// The JSON body of the `on_record_done` callback.
#[derive(Debug, Clone, Serialize)]
pub struct RecordDone {
    /// `on_record_done`.
    pub action: &'static str,
    pub app: String,
    pub stream: String,
    /// `fmp4`, `flv` or `ts`.
    pub format: &'static str,
    pub path: String,
    /// Media time in the file, ms (gaps included).
    pub duration_ms: u64,
    pub bytes: u64,
    /// Gaps recorded in this file (frames dropped because the disk was slower than the stream).
    pub gaps: u64,
}

/// One open file of one format.
struct Out {
    format: RecordFormat,
    path: PathBuf,
    file: File,
    enc: Encoder,
    buf: BytesMut,
    bytes: u64,
}

/// The writer's state.
pub struct Writer {
    rec: Arc<Recording>,
    rule: RecordRule,
    tpl: PathTemplate,
    quota: Arc<Quota>,
    hook: Option<tokio::runtime::Handle>,
    headers: Headers,
    outs: Vec<Out>,
    /// Stream dts of the open files' 0.
    base: i64,
    /// Newest file-relative dts per track (video, audio, data).
    last: [i64; 3],
    /// File-relative dts of the last flush.
    flushed_at: i64,
    /// Drop video until a keyframe before opening / after a gap.
    gaps_in_file: u64,
    /// When an error stopped writing: try again (with a new file) after this.
    retry_at: Option<Instant>,
    /// The last file name used, to keep two files from sharing one (split within a second).
    last_stem: Option<PathBuf>,
}

impl Writer {
    pub fn new(
        rec: Arc<Recording>,
        rule: RecordRule,
        quota: Arc<Quota>,
        hook: Option<tokio::runtime::Handle>,
    ) -> Result<Writer, String> {
        let tpl = rule.template()?;
        Ok(Writer {
            rec,
            rule,
            tpl,
            quota,
            hook,
            headers: Headers::default(),
            outs: Vec::new(),
            base: 0,
            last: [0; 3],
            flushed_at: 0,
            gaps_in_file: 0,
            retry_at: None,
            last_stem: None,
        })
    }

    /// Takes items until the queue's sender is gone (the recording stopped) and closes the
    /// files.
    pub fn run(mut self, rx: Receiver<Item>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(item) => {
                    let n = match &item {
                        Item::Frame(f) => f.body.len(),
                        Item::Gap => 0,
                    };
                    self.item(item);
                    self.rec.queued_bytes.fetch_sub(n, Ordering::Relaxed);
                    super::memory_sub(n);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.close_all();
        self.rec.set_state("stopped");
    }

    fn item(&mut self, item: Item) {
        match item {
            Item::Gap => self.gap(),
            Item::Frame(f) => {
                if self.rec.failed() {
                    return;
                }
                self.frame(f)
            }
        }
    }

    fn gap(&mut self) {
        self.rec.gaps.fetch_add(1, Ordering::Relaxed);
        if self.outs.is_empty() {
            return;
        }
        self.gaps_in_file += 1;
        // What is buffered goes out whole (fMP4: the last samples' durations guessed), so the
        // frames after the gap start a new fragment at their own, later, time.
        if let Err(e) = self.flush(None) {
            self.fail(e);
        }
    }

    fn frame(&mut self, f: Frame) {
        if f.seq_header || f.is_video_info() {
            return self.header(f);
        }
        if f.track == Track::Data {
            if self.headers.metadata.is_none() {
                self.headers.metadata = Some(f);
            }
            return;
        }
        let starts = match f.track {
            Track::Video => f.keyframe,
            // Audio-only streams start and split on any frame.
            _ => self.headers.video_seq.is_none(),
        };
        if self.outs.is_empty() {
            if !starts || !self.ready_to_open() {
                self.rec.frames_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if let Err(e) = self.open(f.dts) {
                return self.fail(e);
            }
        } else if starts && self.split_due(f.dts) {
            self.close_all();
            if let Err(e) = self.open(f.dts) {
                return self.fail(e);
            }
        }
        let i = match f.track {
            Track::Video => 0,
            Track::Audio => 1,
            Track::Data => 2,
        };
        let mut rel = f.clone();
        rel.dts = (f.dts - self.base).max(self.last[i]).max(0);
        self.last[i] = rel.dts;
        for o in &mut self.outs {
            if let Err(e) = o.enc.frame(&rel, &mut o.buf) {
                tracing::debug!(stream = %self.rec.key, format = o.format.name(), error = %e, "recording: frame not written");
            }
        }
        self.rec.frames.fetch_add(1, Ordering::Relaxed);
        let cut = (f.track == Track::Video && f.keyframe)
            || rel.dts - self.flushed_at >= self.rule.fragment_ms as i64;
        if cut {
            if let Err(e) = self.flush(Some(rel.dts)) {
                self.fail(e);
            }
        }
    }

    fn ready_to_open(&self) -> bool {
        if let Some(t) = self.retry_at {
            if Instant::now() < t {
                return false;
            }
        }
        self.headers.video_seq.is_some() || self.headers.audio_seq.is_some()
    }

    /// A sequence header: kept; a different one than the open files' ends them (a new file
    /// starts at the next keyframe with the new configuration).
    fn header(&mut self, f: Frame) {
        if f.is_video_info() {
            return;
        }
        let slot = match f.track {
            Track::Video => &mut self.headers.video_seq,
            _ => &mut self.headers.audio_seq,
        };
        if slot.as_ref().is_some_and(|s| s.body == f.body) {
            return;
        }
        let changed = slot.is_some();
        *slot = Some(f);
        if changed && !self.outs.is_empty() {
            tracing::info!(stream = %self.rec.key, "recording: codec configuration changed, new file at the next keyframe");
            self.close_all();
        }
    }

    fn split_due(&self, dts: i64) -> bool {
        let r = &self.rule;
        let t = dts - self.base;
        let bytes = self.outs.iter().map(|o| o.bytes).max().unwrap_or(0);
        (r.split_ms > 0 && t >= r.split_ms as i64) || (r.split_bytes > 0 && bytes >= r.split_bytes)
    }

    fn open(&mut self, dts: i64) -> Result<(), String> {
        let now = SystemTime::now();
        let (app, stream) = self.rec.key.split_once('/').unwrap_or(("", &self.rec.key));
        let dir = self.quota.dir().to_path_buf();
        // One stem for every format of this file; a suffix when a split lands in the same second.
        let mut stem = super::path::render(&dir, &self.tpl, app, stream, now, "x")?;
        stem.set_extension("");
        if self.last_stem.as_ref() == Some(&stem) || exists_any(&stem, &self.rule.formats) {
            let base = stem.clone();
            let mut k = 1;
            while exists_any(&stem, &self.rule.formats) || self.last_stem.as_ref() == Some(&stem) {
                let mut s = base.clone().into_os_string();
                s.push(format!("-{k}"));
                stem = PathBuf::from(s);
                k += 1;
            }
        }
        self.last_stem = Some(stem.clone());
        if let Some(parent) = stem.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut outs = Vec::with_capacity(self.rule.formats.len());
        for &format in &self.rule.formats {
            let mut path = stem.clone().into_os_string();
            path.push(".");
            path.push(format.extension());
            let path = PathBuf::from(path);
            let mut buf = BytesMut::with_capacity(64 << 10);
            let enc = match Encoder::open(format, &self.headers, &mut buf) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(stream = %self.rec.key, format = format.name(), error = %e, "recording: format cannot carry these codecs; skipped");
                    continue;
                }
            };
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            outs.push(Out {
                format,
                path,
                file,
                enc,
                buf,
                bytes: 0,
            });
        }
        if outs.is_empty() {
            return Err("no format can carry this stream's codecs".into());
        }
        for o in &outs {
            tracing::info!(stream = %self.rec.key, path = %o.path.display(), "recording file opened");
        }
        self.outs = outs;
        self.base = dts;
        self.last = [0; 3];
        self.flushed_at = 0;
        self.gaps_in_file = 0;
        self.retry_at = None;
        self.rec.files_opened.fetch_add(1, Ordering::Relaxed);
        self.rec.set_state("recording");
        self.rec.set_paths(
            self.outs
                .iter()
                .map(|o| o.path.display().to_string())
                .collect(),
        );
        Ok(())
    }

    /// Writes what each file has complete before `before` (everything with `None`): one write
    /// per file, after the quota said yes.
    fn flush(&mut self, before: Option<i64>) -> Result<(), String> {
        let limits = Limits {
            stream: self.rule.stream_quota_bytes,
            total: self.rule.total_quota_bytes,
            action: self.rule.on_quota,
        };
        for o in &mut self.outs {
            o.enc
                .cut(before, &mut o.buf)
                .map_err(|e| format!("{}: {e}", o.path.display()))?;
            if o.buf.is_empty() {
                continue;
            }
            let n = o.buf.len() as u64;
            self.quota
                .reserve(&self.rec.key, n, limits)
                .map_err(|e| format!("quota: {e}"))?;
            if self.rule.test_write_delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(self.rule.test_write_delay_ms));
            }
            let r = o.file.write_all(&o.buf);
            o.buf.clear();
            if o.buf.capacity() > 4 << 20 {
                o.buf = BytesMut::with_capacity(64 << 10);
            }
            if let Err(e) = r {
                self.quota.forget(&self.rec.key, n);
                return Err(format!("write {}: {e}", o.path.display()));
            }
            o.bytes += n;
            self.rec.bytes.fetch_add(n, Ordering::Relaxed);
            // A file removed under us (its directory deleted) takes writes into nothing.
            if let Err(e) = std::fs::metadata(&o.path) {
                return Err(format!(
                    "{}: {e} (removed while recording?)",
                    o.path.display()
                ));
            }
        }
        if let Some(t) = before {
            self.flushed_at = t;
        }
        Ok(())
    }

    /// Closes every open file: the rest written, synced, the hook called.
    fn close_all(&mut self) {
        if self.outs.is_empty() {
            return;
        }
        if let Err(e) = self.flush(None) {
            tracing::warn!(stream = %self.rec.key, error = %e, "recording: end of file not written");
            self.rec.set_error(e);
        }
        let duration_ms = self.last[0].max(self.last[1]).max(0) as u64;
        for o in std::mem::take(&mut self.outs) {
            let _ = o.file.sync_data();
            self.quota.closed(&self.rec.key, o.path.clone(), o.bytes);
            self.rec.files_closed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(stream = %self.rec.key, path = %o.path.display(), bytes = o.bytes, duration_ms, gaps = self.gaps_in_file, "recording file closed");
            self.done(RecordDone {
                action: "on_record_done",
                app: self.rec.app().to_string(),
                stream: self.rec.stream().to_string(),
                format: o.format.name(),
                path: o.path.display().to_string(),
                duration_ms,
                bytes: o.bytes,
                gaps: self.gaps_in_file,
            });
        }
        self.rec.set_paths(Vec::new());
    }

    fn done(&self, ev: RecordDone) {
        let url = self.rule.on_record_done.clone();
        let (Some(h), false) = (&self.hook, url.is_empty()) else {
            return;
        };
        h.spawn(async move {
            if let Err(e) = crate::access::hooks::call(&url, &ev, Duration::from_millis(3000)).await
            {
                tracing::warn!(path = %ev.path, error = %e, "on_record_done hook failed");
            }
        });
    }

    /// An error: the files are closed, and the recording retries after `retry_ms` or stops.
    fn fail(&mut self, e: String) {
        tracing::warn!(stream = %self.rec.key, error = %e, retry_ms = self.rule.retry_ms, "recording error");
        self.rec.errors.fetch_add(1, Ordering::Relaxed);
        self.rec.set_error(e);
        // What is buffered is lost with the failed file.
        for o in &mut self.outs {
            o.buf.clear();
        }
        let outs = std::mem::take(&mut self.outs);
        for o in outs {
            self.quota.closed(&self.rec.key, o.path, o.bytes);
        }
        self.rec.set_paths(Vec::new());
        if self.rule.retry_ms == 0 {
            self.rec.set_state("failed");
            self.rec.stop();
        } else {
            self.rec.set_state("error");
            self.retry_at = Some(Instant::now() + Duration::from_millis(self.rule.retry_ms));
        }
    }
}

fn exists_any(stem: &std::path::Path, formats: &[RecordFormat]) -> bool {
    formats.iter().any(|f| {
        let mut p = stem.as_os_str().to_owned();
        p.push(".");
        p.push(f.extension());
        std::path::Path::new(&p).exists()
    })
}
