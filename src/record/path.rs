//! A recording's file name: the rule's template rendered with the stream's names and the time
//! (UTC), below the rule's directory, never outside it.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Field, PathTemplate, Piece};

/// Renders `tpl` for `app`/`stream` at `now`, below `dir`, with `ext`. Errors when the result
/// would leave `dir` (a template is checked at load, names at publish; this is the last guard).
pub fn render(
    dir: &Path,
    tpl: &PathTemplate,
    app: &str,
    stream: &str,
    now: SystemTime,
    ext: &str,
) -> Result<PathBuf, String> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let tod = secs % 86_400;
    let mut s = String::new();
    for p in &tpl.0 {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Field(f) => {
                let v = match f {
                    Field::App => app.to_string(),
                    Field::Stream => stream.to_string(),
                    Field::Year => format!("{y:04}"),
                    Field::Month => format!("{mo:02}"),
                    Field::Day => format!("{d:02}"),
                    Field::Hour => format!("{:02}", tod / 3600),
                    Field::Minute => format!("{:02}", tod / 60 % 60),
                    Field::Second => format!("{:02}", tod % 60),
                    Field::Unix => secs.to_string(),
                    Field::UnixMs => since.as_millis().to_string(),
                };
                s.push_str(&v);
            }
        }
    }
    s.push('.');
    s.push_str(ext);
    let rel = Path::new(&s);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("path {s:?} would leave the recording directory"));
    }
    Ok(dir.join(rel))
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders() {
        let tpl = PathTemplate::parse("{app}/{stream}/{Y}{m}{d}-{H}{M}{S}-{unix}").unwrap();
        // 2026-12-03 19:31:37 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_796_326_297);
        let p = render(Path::new("/rec"), &tpl, "live", "cam", t, "mp4").unwrap();
        assert_eq!(p, Path::new("/rec/live/cam/20261203-193137-1796326297.mp4"));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
