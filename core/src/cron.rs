//! Cron expressions, and their next occurrence in a time zone.
//!
//! Five fields, `minute hour day-of-month month day-of-week`, each a list of
//! `*`, values, ranges and steps (`*/15`, `1-10/2`, `mon-fri`), or one of the
//! shortcuts `@hourly @daily @weekly @monthly @yearly`. As in the classic
//! cron, when both day fields are restricted (neither starts with `*`) a day
//! matches if *either* matches: `0 9 1 * mon` is "the 1st, and every Monday".
//!
//! Occurrences are wall-clock times of a zone (IANA names, from the time zone
//! database embedded in the binary). Around daylight-saving changes:
//! - a local time skipped when clocks go forward runs at the first instant
//!   that exists after it (the moment of the change), once, even if several
//!   skipped times map to that instant;
//! - a local time that happens twice when clocks go back runs once, at its
//!   first occurrence.
//!
//! This file knows nothing about the database: [`crate::schedules`] stores
//! expressions and asks here when they are next due.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use std::fmt;
use std::str::FromStr;

/// A parsed cron expression. Each field is a bit set of the allowed values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
    source: String,
}

/// Why an expression was refused: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    /// `expression`, `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == "expression" {
            f.write_str(&self.message)
        } else {
            write!(f, "{} field: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for CronError {}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[] };
const DAY: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
/// 7 is accepted as Sunday, as in most crons.
const WEEKDAY: FieldSpec =
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

fn err(field: &'static str, message: impl Into<String>) -> CronError {
    CronError { field, message: message.into() }
}

impl FieldSpec {
    fn value(&self, s: &str) -> Result<u32, CronError> {
        if let Ok(n) = s.parse::<u32>() {
            if n < self.min || n > self.max {
                return Err(err(self.name, format!("{n} is outside {}-{}", self.min, self.max)));
            }
            return Ok(n);
        }
        let lower = s.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            // Month names count from 1 (jan), weekday names from 0 (sun).
            return Ok(i as u32 + self.min);
        }
        Err(err(
            self.name,
            if self.names.is_empty() {
                format!("`{s}` is not a number")
            } else {
                format!("`{s}` is neither a number nor a name like `{}`", self.names[1])
            },
        ))
    }

    /// Parses one field into a bit set.
    fn parse(&self, field: &str) -> Result<u64, CronError> {
        let mut bits = 0u64;
        for item in field.split(',') {
            if item.is_empty() {
                return Err(err(self.name, "a list has an empty item (two commas, or one at an end)"));
            }
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step = s.parse::<u32>().map_err(|_| err(self.name, format!("step `{s}` is not a number")))?;
                    if step == 0 || step > self.max {
                        return Err(err(self.name, format!("step {step} must be between 1 and {}", self.max)));
                    }
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(err(self.name, format!("range {range} goes backwards")));
                }
                (a, b)
            } else {
                let v = self.value(range)?;
                // `5/15` means from 5 to the end, every 15.
                (v, if step.is_some() { self.max } else { v })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Cron, CronError> {
        Cron::parse(s)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn days_in_month(year: i16, month: u32) -> u32 {
    Date::new(year, month as i8, 1).map(|d| d.days_in_month() as u32).unwrap_or(31)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let source = expr.trim();
        let expanded = match source.to_ascii_lowercase().as_str() {
            "" => {
                return Err(err(
                    "expression",
                    "The expression is empty: write five fields, minute hour day-of-month month day-of-week.",
                ))
            }
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => {
                return Err(err(
                    "expression",
                    format!("Unknown shortcut `{source}`: use @hourly, @daily, @weekly, @monthly or @yearly."),
                ))
            }
            _ => source,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            let hint = if fields.len() == 6 { " Seconds and years are not supported." } else { "" };
            return Err(err(
                "expression",
                format!(
                    "Expected 5 fields (minute hour day-of-month month day-of-week), found {}.{hint}",
                    fields.len()
                ),
            ));
        }
        let mut weekdays = WEEKDAY.parse(fields[4])?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let cron = Cron {
            minutes: MINUTE.parse(fields[0])?,
            hours: HOUR.parse(fields[1])? as u32,
            days: DAY.parse(fields[2])? as u32,
            months: MONTH.parse(fields[3])? as u16,
            weekdays: weekdays as u8,
            days_restricted: !fields[2].starts_with('*'),
            weekdays_restricted: !fields[4].starts_with('*'),
            source: source.to_string(),
        };
        // `0 0 30 2 *` would never run: say so now rather than never.
        if cron.days_restricted && !cron.weekdays_restricted {
            let possible = (1..=12u32)
                .filter(|m| cron.months & (1 << m) != 0)
                .any(|m| (1..=days_in_month(2024, m)).any(|d| cron.days & (1 << d) != 0));
            if !possible {
                return Err(err("day-of-month", "none of these days exists in the chosen months"));
            }
        }
        Ok(cron)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn matches_date(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let day = self.days & (1 << d.day()) != 0;
        let weekday = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.days_restricted && self.weekdays_restricted {
            day || weekday
        } else {
            day && weekday
        }
    }

    /// The first occurrence strictly after `after`, in `zone`'s local time.
    /// `None` only if there is none within the next nine years (which the
    /// parser's checks make impossible in practice).
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let mut date = zone.to_datetime(after).date();
        // Nine years covers the longest wait, a 29 February across a
        // century year that is not a leap year (2096 → 2104).
        let end = date.checked_add(jiff::Span::new().days(9 * 366)).ok()?;
        while date <= end {
            if self.months & (1 << date.month()) == 0 {
                date = next_month(date)?;
                continue;
            }
            if self.matches_date(date) {
                for h in bits(self.hours as u64, 23) {
                    for m in bits(self.minutes, 59) {
                        let t = resolve(zone, date.at(h as i8, m as i8, 0, 0))?;
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

fn bits(set: u64, max: u32) -> impl Iterator<Item = u32> {
    (0..=max).filter(move |i| set & (1 << i) != 0)
}

fn next_month(d: Date) -> Option<Date> {
    let (y, m) = if d.month() == 12 { (d.year().checked_add(1)?, 1) } else { (d.year(), d.month() + 1) };
    Date::new(y, m, 1).ok()
}

/// The instant a local time stands for: a time in a gap (clocks went
/// forward) becomes the moment of the change, the first instant after it
/// that exists; a time in a fold (clocks went back) its first occurrence.
fn resolve(zone: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let amb = zone.to_ambiguous_timestamp(dt);
    match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later (larger) offset, the time falls just before
            // the change; the change is the next transition.
            let just_before = after.to_timestamp(dt).ok()?;
            zone.following(just_before).next().map(|t| t.timestamp())
        }
    }
}

/// The time zone of an IANA name, from the embedded database.
pub fn zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    TimeZone::get(name).ok()
}

/// Whether `name` is a time zone of the embedded database (`Europe/Paris`, `UTC`).
pub fn valid_zone(name: &str) -> bool {
    zone(name).is_some()
}

/// `2026-11-23 09:00` in `zone`, for people.
pub fn local_display(t: Timestamp, zone: &TimeZone) -> String {
    zone.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(expr: &str, after: &str, zone: &str) -> String {
        Cron::parse(expr).unwrap().next_after(ts(after), &TimeZone::get(zone).unwrap()).unwrap().to_string()
    }

    /// The next `n` occurrences, in UTC.
    fn series(expr: &str, after: &str, zone: &str, n: usize) -> Vec<String> {
        let c = Cron::parse(expr).unwrap();
        let z = TimeZone::get(zone).unwrap();
        let mut t = ts(after);
        let mut out = Vec::new();
        for _ in 0..n {
            t = c.next_after(t, &z).unwrap();
            out.push(t.to_string());
        }
        out
    }

    fn error(expr: &str) -> CronError {
        Cron::parse(expr).unwrap_err()
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let c = Cron::parse("*/15 9-17/2 1,15 jan-MAR,dec mon-fri").unwrap();
        assert_eq!(c.minutes, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
        assert_eq!(c.hours, (1 << 9) | (1 << 11) | (1 << 13) | (1 << 15) | (1 << 17));
        assert_eq!(c.days, (1 << 1) | (1 << 15));
        assert_eq!(c.months, (1 << 1) | (1 << 2) | (1 << 3) | (1 << 12));
        assert_eq!(c.weekdays, 0b0111110);
        assert_eq!(Cron::parse("0 0 * * 7").unwrap().weekdays, 1, "7 is Sunday");
        assert_eq!(Cron::parse("0 0 * * 5-7").unwrap().weekdays, 0b1100001);
        assert_eq!(Cron::parse("5/20 * * * *").unwrap().minutes, (1 << 5) | (1 << 25) | (1 << 45));
        assert_eq!(Cron::parse("1-10/3 * * * *").unwrap().minutes, (1 << 1) | (1 << 4) | (1 << 7) | (1 << 10));
        assert_eq!(Cron::parse("  @Daily ").unwrap().as_str(), "@Daily");
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        assert_eq!(error("61 * * * *"), err("minute", "61 is outside 0-59"));
        assert_eq!(error("0 24 * * *").field, "hour");
        assert_eq!(error("0 0 0 * *"), err("day-of-month", "0 is outside 1-31"));
        assert_eq!(error("0 0 * 13 *").field, "month");
        assert_eq!(error("0 0 * foo *"), err("month", "`foo` is neither a number nor a name like `feb`"));
        assert_eq!(error("0 0 * * 8").field, "day-of-week");
        assert_eq!(error("0 0 * * funday").field, "day-of-week");
        assert_eq!(error("*/0 * * * *"), err("minute", "step 0 must be between 1 and 59"));
        assert_eq!(error("*/x * * * *"), err("minute", "step `x` is not a number"));
        assert_eq!(error("0 17-9 * * *"), err("hour", "range 17-9 goes backwards"));
        assert_eq!(error("0,,5 * * * *").field, "minute");
        assert_eq!(error("0 0 30 2 *"), err("day-of-month", "none of these days exists in the chosen months"));
        assert_eq!(error("* * * *").field, "expression");
        assert!(error("0 * * * * *").message.contains("Seconds and years"));
        assert!(error("@reboot").message.contains("@hourly"));
        assert_eq!(error("").field, "expression");
        assert_eq!(error("0 24 * * *").to_string(), "hour field: 24 is outside 0-23");
        // A restricted weekday can rescue an impossible day: either matches.
        assert!(Cron::parse("0 0 30 2 mon").is_ok());
    }

    #[test]
    fn simple_occurrences_in_utc() {
        assert_eq!(next("* * * * *", "2026-01-01T00:00:00Z", "UTC"), "2026-01-01T00:01:00Z");
        assert_eq!(next("* * * * *", "2026-01-01T00:00:30Z", "UTC"), "2026-01-01T00:01:00Z");
        assert_eq!(
            series("*/15 * * * *", "2026-01-01T00:50:00Z", "UTC", 3),
            ["2026-01-01T01:00:00Z", "2026-01-01T01:15:00Z", "2026-01-01T01:30:00Z"]
        );
        assert_eq!(
            series("@monthly", "2026-01-15T12:00:00Z", "UTC", 3),
            ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]
        );
        assert_eq!(next("@yearly", "2026-06-01T00:00:00Z", "UTC"), "2027-01-01T00:00:00Z");
        assert_eq!(next("@weekly", "2026-11-18T10:00:00Z", "UTC"), "2026-11-22T00:00:00Z"); // a Sunday
        assert_eq!(next("@hourly", "2026-11-18T10:00:00Z", "UTC"), "2026-11-18T11:00:00Z");
        // The 31st only in months that have one.
        assert_eq!(
            series("0 0 31 * *", "2026-01-31T00:00:00Z", "UTC", 2),
            ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"]
        );
    }

    #[test]
    fn leap_days() {
        assert_eq!(
            series("0 0 29 2 *", "2026-01-01T00:00:00Z", "UTC", 2),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
        // 2100 is not a leap year.
        assert_eq!(next("0 0 29 2 *", "2096-03-01T00:00:00Z", "UTC"), "2104-02-29T00:00:00Z");
    }

    #[test]
    fn either_day_field_matches_when_both_are_restricted() {
        // The 1st of the month, and every Monday.
        assert_eq!(
            series("0 9 1 * mon", "2026-05-28T00:00:00Z", "UTC", 3),
            ["2026-06-01T09:00:00Z", "2026-06-08T09:00:00Z", "2026-06-15T09:00:00Z"]
        );
        assert_eq!(next("0 9 2 * mon", "2026-06-01T10:00:00Z", "UTC"), "2026-06-02T09:00:00Z");
        // With `*` in the day of month, only Mondays.
        assert_eq!(next("0 9 * * mon", "2026-06-02T00:00:00Z", "UTC"), "2026-06-08T09:00:00Z");
    }

    #[test]
    fn paris_local_time_in_winter_and_summer() {
        // Monday 09:00 in Paris: 08:00Z in winter, 07:00Z in summer.
        assert_eq!(next("0 9 * * 1", "2026-01-01T00:00:00Z", "Europe/Paris"), "2026-01-05T08:00:00Z");
        assert_eq!(next("0 9 * * 1", "2026-07-01T00:00:00Z", "Europe/Paris"), "2026-07-06T07:00:00Z");
        // Nightly 02:30 across a month boundary, local dates.
        assert_eq!(next("30 2 * * *", "2026-01-31T23:00:00Z", "Europe/Paris"), "2026-02-01T01:30:00Z");
    }

    #[test]
    fn paris_spring_forward_runs_skipped_times_once_at_the_change() {
        // 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00Z).
        assert_eq!(
            series("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Paris", 3),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
        );
        // Every 15 minutes: 01:45 CET, then the four skipped times collapse
        // into one run at 03:00 CEST, then 03:15.
        assert_eq!(
            series("*/15 * * * *", "2026-03-29T00:30:00Z", "Europe/Paris", 4),
            ["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z"]
        );
        // 02:00 and 03:00 both map to the change: one run, not two.
        assert_eq!(
            series("0 2,3 * * *", "2026-03-28T23:00:00Z", "Europe/Paris", 2),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]
        );
    }

    #[test]
    fn paris_fall_back_runs_repeated_times_once() {
        // 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens at
        // 00:30Z and again at 01:30Z. Only the first runs.
        assert_eq!(
            series("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Paris", 3),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"]
        );
        // Asked during the second pass of the repeated hour: already ran.
        assert_eq!(next("30 2 * * *", "2026-10-25T01:10:00Z", "Europe/Paris"), "2026-10-26T01:30:00Z");
        // Hourly: 02:00 CEST, then 03:00 CET; the repeated 02:00 CET does not run.
        assert_eq!(
            series("0 * * * *", "2026-10-24T23:30:00Z", "Europe/Paris", 3),
            ["2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"]
        );
    }

    #[test]
    fn new_york_transitions() {
        // 8 March 2026, 02:00 EST → 03:00 EDT (07:00Z).
        assert_eq!(next("30 2 * * *", "2026-03-08T05:00:00Z", "America/New_York"), "2026-03-08T07:00:00Z");
        assert_eq!(next("30 2 * * *", "2026-03-08T07:00:00Z", "America/New_York"), "2026-03-09T06:30:00Z");
        // 1 November 2026, 02:00 EDT → 01:00 EST; 01:30 happens twice.
        assert_eq!(
            series("30 1 * * *", "2026-10-31T12:00:00Z", "America/New_York", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        // The 1st of each month at 06:00 local, on either side of the change.
        assert_eq!(
            series("0 6 1 * *", "2026-10-15T00:00:00Z", "America/New_York", 2),
            ["2026-11-01T11:00:00Z", "2026-12-01T11:00:00Z"]
        );
        assert_eq!(next("0 6 1 * *", "2026-09-15T00:00:00Z", "America/New_York"), "2026-10-01T10:00:00Z");
    }

    #[test]
    fn zones_come_from_the_embedded_database() {
        assert!(valid_zone("Europe/Paris"));
        assert!(valid_zone("America/New_York"));
        assert!(valid_zone("UTC"));
        assert!(!valid_zone("Europe/Atlantis"));
        assert!(!valid_zone(""));
        let z = zone("Europe/Paris").unwrap();
        assert_eq!(local_display(ts("2026-07-06T07:00:00Z"), &z), "2026-07-06 09:00");
    }
}
