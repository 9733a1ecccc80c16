//! `EXT-X-PROGRAM-DATE-TIME` values: ISO 8601 UTC with milliseconds, formatted by hand
//! (days to civil date, H. Hinnant's algorithm) to need no date crate.

use std::fmt::Write as _;

/// (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out`. No allocation
/// beyond `out`'s growth.
pub fn write_iso8601_ms(ms: u64, out: &mut String) {
    // u64 ms / 86.4e6 fits an i64 comfortably.
    let days = (ms / 86_400_000) as i64;
    let rem = ms % 86_400_000;
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ms: u64) -> String {
        let mut s = String::new();
        write_iso8601_ms(ms, &mut s);
        s
    }

    #[test]
    fn known_dates() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(fmt(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(fmt(1_709_251_199_000), "2024-02-29T23:59:59.000Z");
    }

    #[test]
    fn every_day_follows_the_previous() {
        // Walk 1970..2400 day by day: the date advances by exactly one calendar day.
        let mut prev = civil_from_days(-1);
        for day in 0..160_000 {
            let cur = civil_from_days(day);
            let next_day = if prev.2 < 28 {
                (prev.0, prev.1, prev.2 + 1)
            } else {
                cur
            };
            assert_eq!(cur, next_day);
            assert!(cur.2 == prev.2 + 1 || (cur.2 == 1 && (cur.1 == prev.1 % 12 + 1)));
            prev = cur;
        }
    }

    #[test]
    fn extreme_input_does_not_panic() {
        assert!(fmt(u64::MAX).ends_with('Z'));
    }
}
