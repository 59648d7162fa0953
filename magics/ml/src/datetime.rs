//! Dates and times written as text (a CSV's `2024-03-01` or `2024-03-01T08:30:00Z`) as
//! features: the calendar parts a model can split on. A column is dates when at least 90 % of
//! its present values parse in one of the formats below, the rule Autopilot's analysis uses.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// The parts each date becomes, in this order.
pub const PARTS: [&str; 6] = ["days", "year", "month", "day", "weekday", "hour"];

const DATES: [&str; 4] = ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y"];
const DATE_TIMES: [&str; 5] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
];

/// The date and time `text` names (an offset is applied, giving UTC), if it is one.
pub fn parse(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    DATES
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .or_else(|| {
            DATE_TIMES
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), f).ok())
        })
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|d| d.naive_utc())
        })
}

/// Whether the present values read as dates.
pub fn is_dates<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let (mut rows, mut dates) = (0usize, 0usize);
    for v in values {
        rows += 1;
        dates += usize::from(parse(v).is_some());
    }
    rows > 0 && dates * 10 >= rows * 9
}

/// [`PARTS`] of a moment: days since 1970-01-01 (with the time of day as a fraction), year,
/// month (1–12), day of the month, weekday (0 Monday – 6 Sunday), hour with minutes.
pub fn parts(t: NaiveDateTime) -> [f64; 6] {
    let seconds = t.and_utc().timestamp() as f64;
    [
        seconds / 86_400.0,
        f64::from(t.year()),
        f64::from(t.month()),
        f64::from(t.day()),
        f64::from(t.weekday().num_days_from_monday()),
        f64::from(t.hour()) + f64::from(t.minute()) / 60.0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parts() {
        let p = parts(parse("2024-03-01T18:30:00Z").unwrap());
        assert_eq!(&p[1..], &[2024.0, 3.0, 1.0, 4.0, 18.5]);
        assert_eq!(p[0], (19_783.0 * 86_400.0 + 18.5 * 3600.0) / 86_400.0);
        assert_eq!(parse("03/01/2024"), parse("2024-03-01"));
        assert_eq!(
            parse("2024-03-01T20:30:00+02:00"),
            parse("2024-03-01 18:30:00")
        );
        assert!(parse("next tuesday").is_none());
        assert!(!is_dates(
            ["2024-01-01", "2024-02-30x", "2024-01-03"].into_iter()
        ));
        assert!(is_dates(std::iter::repeat_n("2024-01-01", 9).chain(["?"])));
    }
}
