//! The rules of membership, without I/O: what a membership type says about
//! fees and periods, how a period is computed from a date, whether two
//! periods overlap, what "up to date" means. Dates are civil dates
//! (`YYYY-MM-DD`, the organisation's calendar); money is cents.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use shrooms_core::error::FieldError;
use utoipa::ToSchema;

/// Who a membership type is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypeKind {
    Individual,
    Family,
    LegalEntity,
    Honorary,
    Free,
}

/// How the fee of a period is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeRule {
    /// Always `fee_cents`.
    Fixed,
    /// One of the type's tiers (by income, age…), chosen when joining.
    Tiers,
    /// What the member chooses, at least `fee_cents`.
    FreeAmount,
    /// `fee_cents` for a whole period, in proportion of the months left when
    /// joining during the period (a started month counts).
    Prorated,
}

/// How long a period lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodRule {
    /// Until 31 December of the year of the start.
    CalendarYear,
    /// Until the day before `school_start_month` 1st that follows the start.
    SchoolYear,
    /// Twelve months from the start.
    Rolling12Months,
    /// No end.
    Lifetime,
}

/// How a period began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Joined,
    Renewed,
}

/// Why a period ended before its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Resigned,
    Excluded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tier {
    pub label: String,
    pub fee_cents: i64,
}

/// A membership type's rules, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub fee_rule: FeeRule,
    pub fee_cents: i64,
    pub tiers: Vec<Tier>,
    pub period_rule: PeriodRule,
    pub school_start_month: i8,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

str_enum!(TypeKind { Individual => "individual", Family => "family", LegalEntity => "legal_entity", Honorary => "honorary", Free => "free" });
str_enum!(FeeRule { Fixed => "fixed", Tiers => "tiers", FreeAmount => "free_amount", Prorated => "prorated" });
str_enum!(PeriodRule { CalendarYear => "calendar_year", SchoolYear => "school_year", Rolling12Months => "rolling_12_months", Lifetime => "lifetime" });
str_enum!(Origin { Joined => "joined", Renewed => "renewed" });
str_enum!(CloseReason { Resigned => "resigned", Excluded => "excluded" });

/// The largest fee accepted: one million in the currency, in cents.
pub const MAX_FEE_CENTS: i64 = 100_000_000;

pub fn parse_date(field: &str, s: &str) -> Result<Date, FieldError> {
    s.trim().parse::<Date>().map_err(|_| FieldError::new(field, "Write a date as YYYY-MM-DD, such as 2026-09-01."))
}

impl Rules {
    /// Checks the rules of a type being created or changed.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(0..=MAX_FEE_CENTS).contains(&self.fee_cents) {
            errors.push(FieldError::new("fee_cents", "The fee must be between 0 and 1,000,000.00."));
        }
        if !(1..=12).contains(&self.school_start_month) {
            errors.push(FieldError::new("school_start_month", "Choose a month between 1 and 12."));
        }
        match self.fee_rule {
            FeeRule::Tiers if self.tiers.is_empty() => {
                errors.push(FieldError::new("tiers", "A fee by tier needs at least one tier."))
            }
            FeeRule::Tiers => {
                for (i, t) in self.tiers.iter().enumerate() {
                    if t.label.trim().is_empty() || t.label.chars().count() > 80 {
                        errors.push(FieldError::new(
                            format!("tiers[{i}].label"),
                            "Name the tier (at most 80 characters).",
                        ));
                    }
                    if !(0..=MAX_FEE_CENTS).contains(&t.fee_cents) {
                        errors.push(FieldError::new(
                            format!("tiers[{i}].fee_cents"),
                            "The fee must be between 0 and 1,000,000.00.",
                        ));
                    }
                    if self.tiers[..i].iter().any(|o| o.label.trim() == t.label.trim()) {
                        errors.push(FieldError::new(format!("tiers[{i}].label"), "Two tiers have this name."));
                    }
                }
            }
            _ if !self.tiers.is_empty() => errors.push(FieldError::new("tiers", "Tiers are only for a fee by tier.")),
            _ => {}
        }
        errors
    }

    /// The period that starts on `start` (its last day, `None` for lifetime).
    pub fn period_end(&self, start: Date) -> Option<Date> {
        match self.period_rule {
            PeriodRule::CalendarYear => Some(Date::new(start.year(), 12, 31).expect("31 December exists")),
            PeriodRule::SchoolYear => {
                let m = self.school_start_month;
                let year = if start.month() >= m { start.year() + 1 } else { start.year() };
                let next_start = Date::new(year, m, 1).expect("the first of a month exists");
                Some(next_start.yesterday().expect("a day before exists"))
            }
            PeriodRule::Rolling12Months => {
                let end = start.checked_add(jiff::Span::new().years(1)).ok()?;
                Some(end.yesterday().ok()?)
            }
            PeriodRule::Lifetime => None,
        }
    }

    /// Where a renewal starts: the day after the last period ends, unless
    /// the member comes back after a gap: then the date asked for.
    pub fn renewal_start(&self, previous_end: Option<Date>, asked: Date) -> Option<Date> {
        let follow = previous_end?.tomorrow().ok()?;
        Some(if asked > follow { asked } else { follow })
    }

    /// The fee of a period starting on `start`, for a tier or a chosen
    /// amount. Errors name the field of the join form.
    pub fn fee(
        &self,
        start: Date,
        tier: Option<&str>,
        amount: Option<i64>,
    ) -> Result<(i64, Option<String>), FieldError> {
        match self.fee_rule {
            FeeRule::Fixed => Ok((self.fee_cents, None)),
            FeeRule::Tiers => {
                let Some(label) = tier.map(str::trim).filter(|t| !t.is_empty()) else {
                    return Err(FieldError::new("tier", "Choose a tier."));
                };
                match self.tiers.iter().find(|t| t.label == label) {
                    Some(t) => Ok((t.fee_cents, Some(t.label.clone()))),
                    None => Err(FieldError::new("tier", "This tier does not exist for this membership type.")),
                }
            }
            FeeRule::FreeAmount => match amount {
                Some(a) if a > MAX_FEE_CENTS => Err(FieldError::new("amount_cents", "This amount is too large.")),
                Some(a) if a >= self.fee_cents => Ok((a, None)),
                Some(_) => Err(FieldError::new(
                    "amount_cents",
                    format!("The amount must be at least {}.", cents_text(self.fee_cents)),
                )),
                None => Err(FieldError::new("amount_cents", "Give the amount the member chose.")),
            },
            FeeRule::Prorated => {
                let Some(end) = self.period_end(start) else { return Ok((self.fee_cents, None)) };
                let full_start = match self.period_rule {
                    PeriodRule::CalendarYear => Date::new(start.year(), 1, 1).expect("1 January exists"),
                    PeriodRule::SchoolYear => {
                        Date::new(end.year() - 1, self.school_start_month, 1).expect("a month start")
                    }
                    _ => start,
                };
                let months = |a: Date, b: Date| {
                    (b.year() as i64 - a.year() as i64) * 12 + (b.month() as i64 - a.month() as i64) + 1
                };
                let total = months(full_start, end);
                let left = months(start, end).clamp(0, total);
                // Rounded half up, in integers.
                Ok(((self.fee_cents * left * 2 + total) / (2 * total), None))
            }
        }
    }
}

/// `1234.5` for 123450 cents: the plain form used in messages.
pub fn cents_text(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// A period as the overlap check sees it: first and last day (inclusive),
/// the last day being the earlier of the term and the closing.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub start: Date,
    pub end: Option<Date>,
}

impl Span {
    pub fn overlaps(&self, o: &Span) -> bool {
        let a_before_b = self.end.is_some_and(|e| e < o.start);
        let b_before_a = o.end.is_some_and(|e| e < self.start);
        !(a_before_b || b_before_a)
    }
    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && self.end.is_none_or(|e| d <= e)
    }
}

/// The effective last day of a period: its term, or the day it was closed
/// if that is earlier.
pub fn effective_end(ends_on: Option<Date>, closed_on: Option<Date>) -> Option<Date> {
    match (ends_on, closed_on) {
        (Some(e), Some(c)) => Some(e.min(c)),
        (None, c) => c,
        (e, None) => e,
    }
}

/// Why someone is or is not up to date, as a code the pages translate and
/// the API returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// A current period, its fee paid (or nothing to pay).
    UpToDate,
    /// A current period whose fee is not fully paid.
    DuesUnpaid,
    /// The last period has ended (lapsed), or was closed.
    Lapsed,
    Resigned,
    Excluded,
    /// A period starts later, none covers today.
    NotStarted,
    /// Never a member.
    Never,
}

/// What the standing computation needs to know of a period.
#[derive(Clone, Debug)]
pub struct PeriodFacts {
    pub span: Span,
    pub closed_on: Option<Date>,
    pub closed_reason: Option<CloseReason>,
    pub fee_cents: i64,
    pub paid_cents: i64,
}

/// The standing on `today`, and the index of the period it is about.
pub fn standing(periods: &[PeriodFacts], today: Date) -> (Standing, Option<usize>) {
    if periods.is_empty() {
        return (Standing::Never, None);
    }
    let current: Vec<usize> = (0..periods.len())
        .filter(|&i| {
            let p = &periods[i];
            Span { start: p.span.start, end: effective_end(p.span.end, p.closed_on) }.contains(today)
        })
        .collect();
    if let Some(&i) = current.iter().find(|&&i| periods[i].paid_cents >= periods[i].fee_cents) {
        return (Standing::UpToDate, Some(i));
    }
    if let Some(&i) = current.first() {
        return (Standing::DuesUnpaid, Some(i));
    }
    if let Some(i) =
        (0..periods.len()).filter(|&i| periods[i].span.start > today).min_by_key(|&i| periods[i].span.start)
    {
        return (Standing::NotStarted, Some(i));
    }
    // The most recent period decides: closed (resigned, excluded) or lapsed.
    let last = (0..periods.len()).max_by_key(|&i| periods[i].span.start).expect("not empty");
    let s = match periods[last].closed_reason {
        Some(CloseReason::Resigned) => Standing::Resigned,
        Some(CloseReason::Excluded) => Standing::Excluded,
        None => Standing::Lapsed,
    };
    (s, Some(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn rules(fee_rule: FeeRule, period_rule: PeriodRule) -> Rules {
        Rules { fee_rule, fee_cents: 3000, tiers: vec![], period_rule, school_start_month: 9 }
    }

    #[test]
    fn periods_follow_their_rule() {
        let r = rules(FeeRule::Fixed, PeriodRule::CalendarYear);
        assert_eq!(r.period_end(d("2026-03-15")), Some(d("2026-12-31")));
        let r = rules(FeeRule::Fixed, PeriodRule::SchoolYear);
        assert_eq!(r.period_end(d("2026-09-01")), Some(d("2027-08-31")));
        assert_eq!(r.period_end(d("2026-03-15")), Some(d("2026-08-31")));
        let r = Rules { school_start_month: 1, ..r };
        assert_eq!(r.period_end(d("2026-01-01")), Some(d("2026-12-31")));
        let r = rules(FeeRule::Fixed, PeriodRule::Rolling12Months);
        assert_eq!(r.period_end(d("2026-03-15")), Some(d("2027-03-14")));
        assert_eq!(r.period_end(d("2024-02-29")), Some(d("2025-02-27")));
        assert_eq!(rules(FeeRule::Fixed, PeriodRule::Lifetime).period_end(d("2026-03-15")), None);
    }

    #[test]
    fn renewals_follow_on_or_restart_after_a_gap() {
        let r = rules(FeeRule::Fixed, PeriodRule::CalendarYear);
        assert_eq!(r.renewal_start(Some(d("2026-12-31")), d("2026-11-20")), Some(d("2027-01-01")));
        assert_eq!(r.renewal_start(Some(d("2024-12-31")), d("2026-11-20")), Some(d("2026-11-20")));
        assert_eq!(r.renewal_start(None, d("2026-11-20")), None);
    }

    #[test]
    fn fees_follow_their_rule() {
        let start = d("2026-07-10");
        assert_eq!(rules(FeeRule::Fixed, PeriodRule::CalendarYear).fee(start, None, None).unwrap().0, 3000);
        // July to December: 6 of 12 months.
        assert_eq!(rules(FeeRule::Prorated, PeriodRule::CalendarYear).fee(start, None, None).unwrap().0, 1500);
        assert_eq!(
            rules(FeeRule::Prorated, PeriodRule::CalendarYear).fee(d("2026-01-01"), None, None).unwrap().0,
            3000
        );
        // School year from September: July and August of 12 months, 500 rounded.
        assert_eq!(rules(FeeRule::Prorated, PeriodRule::SchoolYear).fee(start, None, None).unwrap().0, 500);
        let r = Rules { fee_cents: 1000, ..rules(FeeRule::Prorated, PeriodRule::CalendarYear) };
        // 1000 × 5 / 12 = 416.67, rounded half up.
        assert_eq!(r.fee(d("2026-08-31"), None, None).unwrap().0, 417);
        let free = rules(FeeRule::FreeAmount, PeriodRule::CalendarYear);
        assert_eq!(free.fee(start, None, Some(5000)).unwrap().0, 5000);
        assert_eq!(free.fee(start, None, Some(2999)).unwrap_err().field, "amount_cents");
        let tiers = Rules {
            tiers: vec![
                Tier { label: "Student".into(), fee_cents: 1000 },
                Tier { label: "Full".into(), fee_cents: 4000 },
            ],
            ..rules(FeeRule::Tiers, PeriodRule::CalendarYear)
        };
        assert_eq!(tiers.fee(start, Some("Student"), None).unwrap(), (1000, Some("Student".into())));
        assert_eq!(tiers.fee(start, Some("Retired"), None).unwrap_err().field, "tier");
        assert_eq!(tiers.fee(start, None, None).unwrap_err().field, "tier");
    }

    #[test]
    fn type_rules_are_checked() {
        assert!(rules(FeeRule::Fixed, PeriodRule::CalendarYear).check().is_empty());
        assert_eq!(rules(FeeRule::Tiers, PeriodRule::CalendarYear).check()[0].field, "tiers");
        let neg = Rules { fee_cents: -1, school_start_month: 13, ..rules(FeeRule::Fixed, PeriodRule::SchoolYear) };
        let fields: Vec<String> = neg.check().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["fee_cents", "school_start_month"]);
    }

    #[test]
    fn overlaps_include_touching_days_and_open_ends() {
        let a = Span { start: d("2026-01-01"), end: Some(d("2026-12-31")) };
        assert!(a.overlaps(&Span { start: d("2026-12-31"), end: Some(d("2027-12-31")) }));
        assert!(!a.overlaps(&Span { start: d("2027-01-01"), end: Some(d("2027-12-31")) }));
        assert!(a.overlaps(&Span { start: d("2020-01-01"), end: None }));
        assert!(!a.overlaps(&Span { start: d("2020-01-01"), end: Some(d("2025-12-31")) }));
    }

    #[test]
    fn standing_is_computed_from_the_history() {
        let p = |start: &str, end: &str, fee: i64, paid: i64| PeriodFacts {
            span: Span { start: d(start), end: Some(d(end)) },
            closed_on: None,
            closed_reason: None,
            fee_cents: fee,
            paid_cents: paid,
        };
        assert_eq!(standing(&[], d("2026-05-01")).0, Standing::Never);
        let h = vec![p("2025-01-01", "2025-12-31", 3000, 3000), p("2026-01-01", "2026-12-31", 3000, 0)];
        assert_eq!(standing(&h, d("2025-05-01")), (Standing::UpToDate, Some(0)));
        assert_eq!(standing(&h, d("2026-05-01")), (Standing::DuesUnpaid, Some(1)));
        assert_eq!(standing(&h, d("2027-05-01")), (Standing::Lapsed, Some(1)));
        assert_eq!(standing(&h, d("2024-05-01")), (Standing::NotStarted, Some(0)));
        let mut closed = h.clone();
        closed[1].paid_cents = 3000;
        closed[1].closed_on = Some(d("2026-03-31"));
        closed[1].closed_reason = Some(CloseReason::Resigned);
        assert_eq!(standing(&closed, d("2026-03-31")).0, Standing::UpToDate);
        assert_eq!(standing(&closed, d("2026-04-01")).0, Standing::Resigned);
    }
}
