//! `[[record]]`: recording rules (src/record/). Each rule names the streams it records (app and
//! stream glob patterns), the formats, the directory and a path template below it, when files
//! are split, and the disk quotas. The template is parsed here so a bad one is a config error.

use serde::Deserialize;

use super::ConfigError;

/// One recording rule (`[[record]]`); the first rule whose patterns match a stream applies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRule {
    /// App pattern (`*` and `?` globs, as `auth.rules`).
    #[serde(default = "star")]
    pub app: String,
    /// Stream pattern.
    #[serde(default = "star")]
    pub stream: String,
    /// Start recording as soon as a matching stream is published; `false` = only through the API.
    #[serde(default = "yes")]
    pub auto: bool,
    /// Formats written side by side: `fmp4`, `flv`, `ts`.
    #[serde(default = "default_formats")]
    pub formats: Vec<RecordFormat>,
    /// Directory every file of this rule goes below (created when missing).
    pub dir: String,
    /// File path below `dir`, without extension: fields `{app}` `{stream}` `{Y}` `{m}` `{d}`
    /// `{H}` `{M}` `{S}` (UTC) `{unix}` (seconds) `{unix_ms}`. `/` makes subdirectories.
    #[serde(default = "default_path")]
    pub path: String,
    /// A new file at the first keyframe past this duration; 0 = no duration split.
    #[serde(default = "default_split_ms")]
    pub split_ms: u64,
    /// A new file at the first keyframe past this size; 0 = no size split.
    #[serde(default)]
    pub split_bytes: u64,
    /// fMP4: a fragment (`moof`+`mdat`) is written at least this often, and at every keyframe;
    /// what a crash can lose at most.
    #[serde(default = "default_fragment_ms")]
    pub fragment_ms: u64,
    /// Most bytes the files of one stream under this rule may take.
    #[serde(default = "default_stream_quota")]
    pub stream_quota_bytes: u64,
    /// Most bytes all recording files below `dir` may take (files there at start count too).
    #[serde(default = "default_total_quota")]
    pub total_quota_bytes: u64,
    /// What a full quota does: `delete_oldest` file(s), or `stop` the recording.
    #[serde(default)]
    pub on_quota: QuotaAction,
    /// Most bytes of frames queued for the disk per recording; past it the recorder drops
    /// frames up to the next keyframe (a gap in the file) instead of holding more.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: usize,
    /// After a write error (disk full, permission, directory removed) try again with a new file
    /// after this long; 0 = stop the recording at the first error.
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
    /// Callback `http://host[:port]/path` POSTed a JSON `on_record_done` (path, duration,
    /// bytes) after each file is closed; empty = none.
    #[serde(default)]
    pub on_record_done: String,
    /// Testing: sleep this long before each write, to make a slow disk. 0 in production.
    #[serde(default)]
    pub test_write_delay_ms: u64,
}

/// A recording format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// Fragmented MP4 (`.mp4`): crash-safe, every fragment complete when written.
    Fmp4,
    /// FLV (`.flv`): the tags as received.
    Flv,
    /// MPEG-TS (`.ts`).
    Ts,
}

impl RecordFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Fmp4 => "mp4",
            RecordFormat::Flv => "flv",
            RecordFormat::Ts => "ts",
        }
    }

    /// The name used in config, API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            RecordFormat::Fmp4 => "fmp4",
            RecordFormat::Flv => "flv",
            RecordFormat::Ts => "ts",
        }
    }

    /// Parses a name (`fmp4`, `mp4`, `flv`, `ts`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fmp4" | "mp4" => Some(RecordFormat::Fmp4),
            "flv" => Some(RecordFormat::Flv),
            "ts" => Some(RecordFormat::Ts),
            _ => None,
        }
    }
}

/// What a full quota does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaAction {
    /// Delete the oldest closed files until the new bytes fit.
    #[default]
    DeleteOldest,
    /// Stop the recording with an error.
    Stop,
}

fn star() -> String {
    "*".into()
}
fn yes() -> bool {
    true
}
fn default_formats() -> Vec<RecordFormat> {
    vec![RecordFormat::Fmp4]
}
fn default_path() -> String {
    "{app}/{stream}/{Y}{m}{d}-{H}{M}{S}".into()
}
fn default_split_ms() -> u64 {
    600_000
}
fn default_fragment_ms() -> u64 {
    1000
}
fn default_stream_quota() -> u64 {
    10 << 30
}
fn default_total_quota() -> u64 {
    100 << 30
}
fn default_queue_bytes() -> usize {
    8 << 20
}
fn default_retry_ms() -> u64 {
    5000
}

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// A `{field}`.
    Field(Field),
}

/// A template field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    App,
    Stream,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Unix,
    UnixMs,
}

impl Field {
    fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "app" => Field::App,
            "stream" => Field::Stream,
            "Y" => Field::Year,
            "m" => Field::Month,
            "d" => Field::Day,
            "H" => Field::Hour,
            "M" => Field::Minute,
            "S" => Field::Second,
            "unix" => Field::Unix,
            "unix_ms" => Field::UnixMs,
            _ => return None,
        })
    }
}

/// A parsed `path` template: relative, no `.`/`..` component, only known fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate(pub Vec<Piece>);

/// Longest template accepted.
const MAX_TEMPLATE_LEN: usize = 512;

impl PathTemplate {
    /// Parses a template, or says what is wrong with it.
    pub fn parse(t: &str) -> Result<PathTemplate, String> {
        if t.is_empty() || t.len() > MAX_TEMPLATE_LEN {
            return Err(format!("must be 1..={MAX_TEMPLATE_LEN} bytes"));
        }
        if t.starts_with('/') {
            return Err("must be relative to the rule's dir (no leading /)".into());
        }
        if t.ends_with('/') {
            return Err("must name a file, not end with /".into());
        }
        for comp in t.split('/') {
            if comp.is_empty() || comp == "." || comp == ".." {
                return Err(format!(
                    "component {comp:?} not allowed: the path must stay inside dir"
                ));
            }
        }
        if let Some(c) = t
            .chars()
            .find(|c| c.is_control() || matches!(c, '\\' | '\0'))
        {
            return Err(format!("character {c:?} not allowed"));
        }
        let mut pieces = Vec::new();
        let mut rest = t;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    break;
                }
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err("unmatched }".into());
                }
                Some(i) => {
                    if i > 0 {
                        pieces.push(Piece::Text(rest[..i].to_string()));
                    }
                    let after = &rest[i + 1..];
                    let end = after.find('}').ok_or("unmatched {")?;
                    let name = &after[..end];
                    let f = Field::parse(name).ok_or_else(|| {
                        format!(
                            "unknown field {{{name}}}; known: {{app}} {{stream}} {{Y}} {{m}} {{d}} {{H}} {{M}} {{S}} {{unix}} {{unix_ms}}"
                        )
                    })?;
                    pieces.push(Piece::Field(f));
                    rest = &after[end + 1..];
                }
            }
        }
        Ok(PathTemplate(pieces))
    }
}

impl RecordRule {
    /// The parsed `path` (validated at config load, so this only fails on a hand-built rule).
    pub fn template(&self) -> Result<PathTemplate, String> {
        PathTemplate::parse(&self.path)
    }

    /// Checks one rule; `i` is its index for the message.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, value: String, reason: String| {
            Err(ConfigError::Parse(format!(
                "record.{field} = {value}: {reason}"
            )))
        };
        if self.dir.is_empty() {
            return bad("dir", "\"\"".into(), "required".into());
        }
        if let Err(e) = self.template() {
            return bad("path", format!("{:?}", self.path), e);
        }
        if self.app.is_empty() || self.stream.is_empty() {
            return bad(
                "app",
                format!("{:?}/{:?}", self.app, self.stream),
                "patterns must not be empty".into(),
            );
        }
        if self.formats.is_empty() {
            return bad(
                "formats",
                "[]".into(),
                "name at least one of fmp4, flv, ts".into(),
            );
        }
        for (field, q) in [
            ("stream_quota_bytes", self.stream_quota_bytes),
            ("total_quota_bytes", self.total_quota_bytes),
        ] {
            if q == 0 {
                return bad(field, "0".into(), "a quota must be positive (there is no unlimited: a recording must not fill the disk)".into());
            }
        }
        if self.split_bytes > 0 && self.split_bytes > self.stream_quota_bytes {
            return bad(
                "split_bytes",
                self.split_bytes.to_string(),
                "must be at most stream_quota_bytes (one file must fit the quota)".into(),
            );
        }
        if self.stream_quota_bytes > self.total_quota_bytes {
            return bad(
                "stream_quota_bytes",
                self.stream_quota_bytes.to_string(),
                "must be at most total_quota_bytes".into(),
            );
        }
        if !(100..=60_000).contains(&self.fragment_ms) {
            return bad(
                "fragment_ms",
                self.fragment_ms.to_string(),
                "must be 100..=60000".into(),
            );
        }
        if self.split_ms != 0 && self.split_ms < 1000 {
            return bad(
                "split_ms",
                self.split_ms.to_string(),
                "must be 0 (no duration split) or at least 1000".into(),
            );
        }
        if self.queue_bytes < 64 << 10 {
            return bad(
                "queue_bytes",
                self.queue_bytes.to_string(),
                "must be at least 65536".into(),
            );
        }
        if !self.on_record_done.is_empty() && super::HookUrl::parse(&self.on_record_done).is_none()
        {
            return bad(
                "on_record_done",
                self.on_record_done.clone(),
                "must be an http://host[:port]/path URL".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = PathTemplate::parse("{app}/{stream}/{Y}{m}{d}-{H}{M}{S}").unwrap();
        assert_eq!(t.0.len(), 11);
        assert!(PathTemplate::parse("rec/{stream}.x").is_ok());
        for (t, why) in [
            ("../{stream}", "inside dir"),
            ("a/../../b", "inside dir"),
            ("/abs/{stream}", "relative"),
            ("a//b", "inside dir"),
            ("{app}/{nope}", "unknown field {nope}"),
            ("{app", "unmatched {"),
            ("a}", "unmatched }"),
            ("a/", "not end with /"),
            ("", "bytes"),
        ] {
            let e = PathTemplate::parse(t).unwrap_err();
            assert!(e.contains(why), "{t}: {e}");
        }
    }

    fn rule(extra: &str) -> Result<crate::config::Config, ConfigError> {
        crate::config::Config::from_toml(&format!("[[record]]\ndir = \"/tmp/r\"\n{extra}"))
    }

    #[test]
    fn rules() {
        let c = rule("").unwrap();
        assert_eq!(c.record[0].formats, vec![RecordFormat::Fmp4]);
        assert_eq!(c.record[0].on_quota, QuotaAction::DeleteOldest);
        let c = rule("formats = [\"flv\", \"fmp4\", \"ts\"]\non_quota = \"stop\"").unwrap();
        assert_eq!(c.record[0].formats.len(), 3);
        for (extra, why) in [
            ("stream_quota_bytes = 0", "quota must be positive"),
            ("total_quota_bytes = 0", "quota must be positive"),
            ("path = \"../x\"", "inside dir"),
            ("path = \"{app}/{date}\"", "unknown field {date}"),
            ("formats = [\"mkv\"]", "unknown variant"),
            ("formats = []", "at least one"),
            ("on_record_done = \"https://x/\"", "http://"),
            (
                "split_bytes = 100\nstream_quota_bytes = 50",
                "one file must fit",
            ),
        ] {
            let e = rule(extra).unwrap_err().to_string();
            assert!(e.contains(why), "{extra}: {e}");
        }
        assert!(crate::config::Config::from_toml("[[record]]\npath = \"x\"")
            .unwrap_err()
            .to_string()
            .contains("dir"));
    }
}
