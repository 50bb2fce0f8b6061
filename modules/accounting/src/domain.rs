//! Ledger types and their invariants, without I/O: exact amounts, calendar
//! dates, account numbers, entries that balance, the split of an amount over
//! fiscal years. Parse, don't validate: a value of these types is valid.

use serde::{Deserialize, Serialize};
use shrooms_core::error::FieldError;
use std::fmt;

// ---------- amounts ----------

/// An amount of money in minor units (cents). Never a float: parsed from
/// and printed to decimal text exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(pub i64);

/// The largest amount accepted: 10^15 units, far below i64 overflow even
/// when a million of them are added up.
const MAX_CENTS: i64 = 100_000_000_000_000_000;

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parses a decimal amount as people and tools write it: `1234.56`,
    /// `1 234,56`, `1.234,56`, `-12,5`, `+3`. At most two decimals (trailing
    /// zeros aside). Refuses exponents, several signs and anything else.
    pub fn parse(text: &str) -> Result<Amount, &'static str> {
        let t: String = text.chars().filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'')).collect();
        if t.is_empty() {
            return Err("Write an amount, such as 12.50.");
        }
        let (neg, digits) = match t.as_bytes()[0] {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, &t[..]),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
            return Err("Write an amount with digits and one decimal separator, such as 1234.56 or 1 234,56.");
        }
        // One separator, or two of different kinds: the last one is the
        // decimal separator. Several of one kind only: thousands separators.
        let (int_part, frac_part) = match digits.rfind(['.', ',']) {
            Some(i) => {
                let seps = digits.matches(['.', ',']).count();
                let sep = digits.as_bytes()[i];
                if seps > 1 && digits.bytes().filter(|&b| b == sep).count() == seps {
                    (digits.to_string(), String::new())
                } else {
                    (digits[..i].to_string(), digits[i + 1..].to_string())
                }
            }
            None => (digits.to_string(), String::new()),
        };
        let int_digits: String = int_part.chars().filter(|c| c.is_ascii_digit()).collect();
        if int_part.contains(['.', ',']) {
            // Thousands separators must group by three.
            let groups: Vec<&str> = int_part.split(['.', ',']).collect();
            if groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3) {
                return Err("The thousands separators are misplaced; write 1234.56 or 1 234,56.");
            }
        }
        if frac_part.contains(['.', ',']) {
            return Err("Write one decimal separator at most.");
        }
        let frac = frac_part.trim_end_matches('0');
        if frac.len() > 2 {
            return Err("Amounts have at most two decimals.");
        }
        if int_digits.is_empty() && frac_part.is_empty() {
            return Err("Write an amount, such as 12.50.");
        }
        if int_digits.len() > 15 {
            return Err("The amount is too large.");
        }
        let units: i64 =
            if int_digits.is_empty() { 0 } else { int_digits.parse().map_err(|_| "The amount is too large.")? };
        let mut cents = units * 100;
        let f = format!("{frac:0<2}");
        cents += f[..2].parse::<i64>().unwrap_or(0);
        if cents > MAX_CENTS {
            return Err("The amount is too large.");
        }
        Ok(Amount(if neg { -cents } else { cents }))
    }

    /// Reads an amount given in JSON: a string (`"12.50"`) or an integer
    /// number of units. A JSON number with a fraction is refused: it has
    /// already been through a float and may not be what was meant.
    pub fn from_json(v: &serde_json::Value) -> Result<Option<Amount>, &'static str> {
        match v {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
            serde_json::Value::String(s) => Amount::parse(s).map(Some),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if i.abs() <= MAX_CENTS / 100 => Ok(Some(Amount(i * 100))),
                _ => Err("Write the amount as a string, such as \"12.50\": numbers with decimals are not exact."),
            },
            _ => Err("Write the amount as a string, such as \"12.50\"."),
        }
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `1234.56`: the API's form.
    pub fn plain(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", a / 100, a % 100)
    }

    /// `1234,56`: the FEC's form (comma decimal, no thousands separator).
    pub fn fec(self) -> String {
        self.plain().replace('.', ",")
    }

    /// `1 234,56` in French, `1,234.56` in English: for people.
    pub fn display(self, lang: &str) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let int = (a / 100).to_string();
        let (group, dec) = if lang == "fr" { ('\u{202f}', ',') } else { (',', '.') };
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}{dec}{:02}", a % 100)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.plain())
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, o: Amount) -> Amount {
        Amount(self.0 + o.0)
    }
}
impl std::ops::Sub for Amount {
    type Output = Amount;
    fn sub(self, o: Amount) -> Amount {
        Amount(self.0 - o.0)
    }
}
impl std::ops::Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}
impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(it: I) -> Amount {
        Amount(it.map(|a| a.0).sum())
    }
}

// ---------- dates ----------

/// A calendar date, stored and exchanged as `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub time::Date);

impl Day {
    /// `2025-03-31`, and also `31/03/2025` and `20250331` (FEC).
    pub fn parse(s: &str) -> Result<Day, &'static str> {
        let s = s.trim();
        let (y, m, d) = if s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
            (&s[0..4], &s[5..7], &s[8..10])
        } else if s.len() == 10 && s.as_bytes()[2] == b'/' && s.as_bytes()[5] == b'/' {
            (&s[6..10], &s[3..5], &s[0..2])
        } else if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
            (&s[0..4], &s[4..6], &s[6..8])
        } else {
            return Err("Write a date as YYYY-MM-DD, such as 2025-03-31.");
        };
        let num = |x: &str| x.parse::<i64>().ok().filter(|_| x.bytes().all(|b| b.is_ascii_digit()));
        let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
            return Err("Write a date as YYYY-MM-DD, such as 2025-03-31.");
        };
        if !(1900..=2999).contains(&y) {
            return Err("The year of this date is out of range.");
        }
        let month = time::Month::try_from(m as u8).map_err(|_| "This date does not exist.")?;
        time::Date::from_calendar_date(y as i32, month, d as u8).map(Day).map_err(|_| "This date does not exist.")
    }

    pub fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.0.year(), self.0.month() as u8, self.0.day())
    }

    /// `20250331`: the FEC's form.
    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.0.year(), self.0.month() as u8, self.0.day())
    }

    pub fn next(self) -> Day {
        Day(self.0.next_day().unwrap_or(self.0))
    }
    pub fn prev(self) -> Day {
        Day(self.0.previous_day().unwrap_or(self.0))
    }

    /// The same day `n` years later (28 February for a 29 February).
    pub fn add_years(self, n: i32) -> Day {
        let y = self.0.year() + n;
        let d = time::Date::from_calendar_date(y, self.0.month(), self.0.day())
            .or_else(|_| time::Date::from_calendar_date(y, self.0.month(), self.0.day() - 1));
        Day(d.unwrap_or(self.0))
    }

    /// The same day `n` months later, clamped to the month's last day.
    pub fn add_months(self, n: i32) -> Day {
        let total = self.0.year() * 12 + (self.0.month() as i32 - 1) + n;
        let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
        let month = time::Month::try_from(m).unwrap_or(time::Month::January);
        let mut d = self.0.day();
        loop {
            if let Ok(date) = time::Date::from_calendar_date(y, month, d) {
                return Day(date);
            }
            d -= 1;
        }
    }

    /// Days from `self` to `other`, `other` excluded.
    pub fn days_until(self, other: Day) -> i64 {
        (other.0 - self.0).whole_days()
    }

    pub fn today() -> Day {
        Day(time::OffsetDateTime::now_utc().date())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

// ---------- accounts ----------

/// An account number of the French charts: digits, at least three (a
/// class-level account such as `512`), at most twenty. The first digit is
/// the class (1 capital … 7 income, 8 special).
pub fn parse_account_number(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() < 3 || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("An account number has 3 to 20 digits, such as 512 or 6061.");
    }
    if s.starts_with('0') || s.starts_with('9') {
        return Err("An account number starts with a class from 1 to 8.");
    }
    Ok(s.to_string())
}

/// What an account holds, from its class.
pub fn account_class(number: &str) -> u8 {
    number.as_bytes().first().map(|b| b.saturating_sub(b'0')).unwrap_or(0)
}

/// Balance-sheet accounts (classes 1 to 5) are carried forward at closing;
/// income statement accounts (6, 7) end in the result; class 8 holds the
/// voluntary contributions in kind, shown under the income statement.
pub fn is_balance_sheet(number: &str) -> bool {
    (1..=5).contains(&account_class(number))
}

/// The charts of accounts an organisation's books start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Chart {
    /// The general French chart (Plan comptable général).
    Pcg,
    /// The associations' and foundations' chart (règlement ANC 2018-06).
    Associations,
}

impl Chart {
    pub fn parse(s: &str) -> Option<Chart> {
        match s {
            "pcg" => Some(Chart::Pcg),
            "associations" => Some(Chart::Associations),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Chart::Pcg => "pcg",
            Chart::Associations => "associations",
        }
    }
    /// Whether an account number fits this chart: it must begin with a
    /// chapter (two digits) the chart has, so that reports place it. Class 8
    /// exists only in the associations' chart (86, 87: contributions in kind).
    pub fn check_number(self, number: &str) -> Result<(), String> {
        let chapter = number.get(..2).unwrap_or(number);
        if self.accounts().iter().any(|(n, _)| n.starts_with(chapter)) {
            return Ok(());
        }
        let chart = match self {
            Chart::Pcg => "The general chart (PCG)",
            Chart::Associations => "The associations' chart",
        };
        Err(format!(
            "{chart} has no chapter {chapter}: an account begins with a chapter of the chart, such as 60, 512 or 7561."
        ))
    }
    /// The accounts loaded when books are opened with this chart.
    pub fn accounts(self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<(&str, &str)> = crate::charts::PCG.to_vec();
        if self == Chart::Associations {
            for (n, l) in crate::charts::ASSOCIATIONS {
                match v.iter_mut().find(|(k, _)| k == n) {
                    Some(e) => e.1 = l,
                    None => v.push((n, l)),
                }
            }
            v.retain(|(n, _)| !crate::charts::NOT_FOR_ASSOCIATIONS.contains(n));
        }
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

/// The journals every set of books starts with: (code, label, kind).
pub const DEFAULT_JOURNALS: &[(&str, &str, &str)] = &[
    ("AC", "Achats", "purchases"),
    ("AN", "À-nouveaux", "opening"),
    ("BQ", "Banque", "bank"),
    ("CA", "Caisse", "cash"),
    ("CL", "Clôture", "closing"),
    ("OD", "Opérations diverses", "miscellaneous"),
    ("VE", "Ventes", "sales"),
];

pub const JOURNAL_KINDS: &[&str] = &["sales", "purchases", "bank", "cash", "miscellaneous", "opening", "closing"];

/// A journal code: 1 to 8 capital letters or digits (the FEC's JournalCode).
pub fn parse_journal_code(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Err("A journal code has 1 to 8 capital letters or digits, such as BQ.");
    }
    Ok(s.to_string())
}

/// An analytical tag: `kind:value` (`project:garden`, `club:chess`) or a
/// single word; lower-case kind, no spaces at the ends, at most 64 characters.
pub fn parse_tag(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(|c| c.is_control()) {
        return Err("A tag has 1 to 64 characters, such as project:garden.");
    }
    Ok(match s.split_once(':') {
        Some((k, v)) => format!("{}:{}", k.trim().to_lowercase(), v.trim()),
        None => s.to_string(),
    })
}

// ---------- entries ----------

/// One line of an entry, checked: one side only, a positive amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    pub account: String,
    /// Auxiliary account (a member, a client, a supplier): the FEC's CompAuxNum.
    pub aux: String,
    pub aux_label: String,
    pub label: String,
    pub debit: Amount,
    pub credit: Amount,
    /// The amount in a foreign currency, signed like the line (positive).
    pub currency_amount: Option<Amount>,
    pub currency: Option<String>,
    pub tags: Vec<String>,
}

/// Checks that lines balance: the totals of debits and credits are equal and
/// not zero. Returns the total.
pub fn check_balanced(lines: &[Line]) -> Result<Amount, FieldError> {
    let d: Amount = lines.iter().map(|l| l.debit).sum();
    let c: Amount = lines.iter().map(|l| l.credit).sum();
    if lines.len() < 2 {
        return Err(FieldError::new("lines", "An entry has at least two lines."));
    }
    if d != c {
        return Err(FieldError::new(
            "lines",
            format!("The entry does not balance: debits {} ≠ credits {} (difference {}).", d, c, d - c),
        ));
    }
    if d.is_zero() {
        return Err(FieldError::new("lines", "The entry's total is zero."));
    }
    Ok(d)
}

/// The hash that seals a validated entry: any later change to it (or to one
/// of its lines) shows in `shrooms accounting check`.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    org: &str,
    year: &str,
    journal: &str,
    number: i64,
    date: &str,
    label: &str,
    piece_ref: &str,
    piece_date: Option<&str>,
    kind: &str,
    lines: &[Line],
) -> String {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| {
            serde_json::json!([
                l.account,
                l.aux,
                l.aux_label,
                l.label,
                l.debit.0,
                l.credit.0,
                l.currency_amount.map(|a| a.0),
                l.currency,
                l.tags
            ])
        })
        .collect();
    let canonical =
        serde_json::json!([org, year, journal, number, date, label, piece_ref, piece_date, kind, lines]).to_string();
    shrooms_core::crypto::sha256_hex(canonical.as_bytes())
}

/// `BQ-000012`: how an entry's number is shown and written in the FEC.
pub fn entry_ref(journal: &str, number: i64) -> String {
    format!("{journal}-{number:06}")
}

// ---------- deferred revenue ----------

/// One share of an amount spread over a service period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearShare {
    /// First and last day of the part of the service in this fiscal year.
    pub from: String,
    pub to: String,
    pub days: i64,
    pub amount: Amount,
}

/// Splits `amount` for a service running from `start` to `end` (both
/// included) between the periods `bounds` (each `(first day, last day)`, in
/// order, covering the service), in proportion to the days of service in
/// each. Cents are distributed so that the shares add up exactly to the
/// amount (largest remainders first).
pub fn split_by_days(amount: Amount, start: Day, end: Day, bounds: &[(Day, Day)]) -> Result<Vec<YearShare>, String> {
    if end < start {
        return Err("The service ends before it starts.".into());
    }
    let total_days = start.days_until(end) + 1;
    let mut parts = Vec::new();
    for (a, b) in bounds {
        let from = if start > *a { start } else { *a };
        let to = if end < *b { end } else { *b };
        if from <= to {
            parts.push((from, to, from.days_until(to) + 1));
        }
    }
    let covered: i64 = parts.iter().map(|p| p.2).sum();
    if covered != total_days {
        return Err("The fiscal years do not cover the whole service period.".into());
    }
    let sign = amount.0.signum();
    let abs = amount.0.abs() as i128;
    let mut shares: Vec<(i64, i128)> = parts
        .iter()
        .map(|p| ((abs * p.2 as i128 / total_days as i128) as i64, (abs * p.2 as i128) % total_days as i128))
        .collect();
    let mut rest = amount.0.abs() - shares.iter().map(|s| s.0).sum::<i64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&i, &j| shares[j].1.cmp(&shares[i].1).then(i.cmp(&j)));
    for i in order {
        if rest == 0 {
            break;
        }
        shares[i].0 += 1;
        rest -= 1;
    }
    Ok(parts
        .iter()
        .zip(shares)
        .map(|(p, s)| YearShare { from: p.0.iso(), to: p.1.iso(), days: p.2, amount: Amount(s.0 * sign) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers_follow_the_chapters_of_their_chart() {
        assert!(Chart::Associations.check_number("75612").is_ok());
        assert!(Chart::Associations.check_number("864").is_ok());
        assert!(Chart::Associations.check_number("1951").is_ok());
        assert!(Chart::Pcg.check_number("864").is_err(), "no contributions in kind in the general chart");
        let e = Chart::Pcg.check_number("890").unwrap_err();
        assert!(e.contains("chapter 89"), "{e}");
    }

    #[test]
    fn amounts_parse_exactly_in_both_notations() {
        let ok = |s: &str| Amount::parse(s).unwrap().0;
        assert_eq!(ok("1234.56"), 123456);
        assert_eq!(ok("1 234,56"), 123456);
        assert_eq!(ok("1\u{202f}234,5"), 123450);
        assert_eq!(ok("1.234,56"), 123456);
        assert_eq!(ok("1,234.56"), 123456);
        assert_eq!(ok("-0,07"), -7);
        assert_eq!(ok("12"), 1200);
        assert_eq!(ok("12.300"), 1230);
        assert_eq!(ok("0.1"), 10);
        for bad in ["", "abc", "1e3", "12.345", "--1", "1,2,3", "1.2.3,4", "12,34,5", "NaN", "1 2a", "-", ","] {
            assert!(Amount::parse(bad).is_err(), "{bad} was accepted");
        }
        // "1.234" is read as 1.234 (three decimals): refused rather than guessed.
        assert!(Amount::parse("1.234").is_err());
        assert!(Amount::from_json(&serde_json::json!(12.5)).is_err());
        assert_eq!(Amount::from_json(&serde_json::json!(12)).unwrap(), Some(Amount(1200)));
    }

    #[test]
    fn amounts_print_for_people_and_for_the_fec() {
        assert_eq!(Amount(123456).display("fr"), "1\u{202f}234,56");
        assert_eq!(Amount(-123456789).display("en"), "-1,234,567.89");
        assert_eq!(Amount(5).fec(), "0,05");
        assert_eq!(Amount(-100).plain(), "-1.00");
    }

    #[test]
    fn dates_parse_and_step() {
        assert_eq!(Day::parse("2024-02-29").unwrap().add_years(1).iso(), "2025-02-28");
        assert_eq!(Day::parse("31/01/2025").unwrap().add_months(1).iso(), "2025-02-28");
        assert_eq!(Day::parse("20251231").unwrap().next().iso(), "2026-01-01");
        assert!(Day::parse("2025-02-30").is_err());
        assert!(Day::parse("2025-2-3").is_err());
    }

    #[test]
    fn charts_hold_the_association_accounts() {
        let a = Chart::Associations.accounts();
        for n in ["194", "7561", "860", "870", "689", "789", "512", "6061", "120", "129"] {
            assert!(a.iter().any(|(k, _)| *k == n), "{n} missing");
        }
        let p = Chart::Pcg.accounts();
        assert!(p.len() > 250, "{}", p.len());
        assert!(!p.iter().any(|(k, _)| *k == "194"));
        let mut seen = std::collections::HashSet::new();
        for (n, _) in a.iter().chain(p.iter()) {
            parse_account_number(n).unwrap();
            let _ = seen.insert(*n);
        }
        let mut sorted = a.clone();
        sorted.dedup_by(|x, y| x.0 == y.0);
        assert_eq!(sorted.len(), a.len(), "duplicate account numbers");
    }

    #[test]
    fn a_split_adds_up_to_the_cent() {
        let d = |s: &str| Day::parse(s).unwrap();
        let years = [
            (d("2024-01-01"), d("2024-12-31")),
            (d("2025-01-01"), d("2025-12-31")),
            (d("2026-01-01"), d("2026-12-31")),
        ];
        // A year of hosting from 1 October 2025: 92 days in 2025, 273 in 2026.
        let s = split_by_days(Amount(10000), d("2025-10-01"), d("2026-09-30"), &years).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].days, s[1].days), (92, 273));
        assert_eq!(s[0].amount.0 + s[1].amount.0, 10000);
        assert_eq!(s[0].amount.0, 2521); // 10000 × 92 / 365 = 2520.5… rounded by largest remainder
        let three = split_by_days(Amount(100), d("2024-12-31"), d("2026-01-01"), &years).unwrap();
        assert_eq!(three.iter().map(|s| s.amount.0).sum::<i64>(), 100);
        assert!(split_by_days(Amount(100), d("2023-12-01"), d("2024-01-31"), &years).is_err());
    }
}
