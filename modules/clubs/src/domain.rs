//! Types and rules of clubs and activities, without I/O.

use serde::{Deserialize, Serialize};
use shrooms_core::error::{CoreError, FieldError};

/// Where an activity stands. Every change is written on its timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Planned,
    InProgress,
    Done,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::InProgress => "in_progress",
            State::Done => "done",
            State::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "planned" => State::Planned,
            "in_progress" => State::InProgress,
            "done" => State::Done,
            "cancelled" => State::Cancelled,
            _ => return None,
        })
    }
    /// The translation key of its name.
    pub fn key(self) -> &'static str {
        match self {
            State::Planned => "clubs.state.planned",
            State::InProgress => "clubs.state.in_progress",
            State::Done => "clubs.state.done",
            State::Cancelled => "clubs.state.cancelled",
        }
    }
    /// A cancelled activity can be planned again; a done one can be reopened
    /// (results are sometimes entered late); nothing else is forbidden, but a
    /// change to the same state is not a change.
    pub fn can_become(self, to: State) -> bool {
        self != to
    }
}

/// Money in or out of a club's cash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Expense,
    Income,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Expense => "expense",
            Direction::Income => "income",
        }
    }
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "expense" => Some(Direction::Expense),
            "income" => Some(Direction::Income),
            _ => None,
        }
    }
}

/// Parses an amount typed by a person ("12", "12.5", "1 234,50") into cents.
/// Refuses negative numbers, more than two decimals, and anything that is
/// not a number: money is never a float.
pub fn parse_amount(input: &str) -> Result<i64, &'static str> {
    let s: String = input.trim().chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{202f}').collect();
    let s = s.trim_end_matches('€').trim_end_matches("EUR");
    if s.is_empty() {
        return Err("Give an amount.");
    }
    if s.starts_with('-') {
        return Err("The amount cannot be negative: record money coming in as income.");
    }
    let s = s.trim_start_matches('+').replace(',', ".");
    let (units, cents) = match s.split_once('.') {
        Some((u, c)) => (u.to_string(), c.to_string()),
        None => (s.clone(), String::new()),
    };
    if units.is_empty() && cents.is_empty() {
        return Err("The amount is not a number (for example 12.50).");
    }
    if !units.chars().all(|c| c.is_ascii_digit()) || !cents.chars().all(|c| c.is_ascii_digit()) {
        return Err("The amount is not a number (for example 12.50).");
    }
    if cents.len() > 2 {
        return Err("At most two decimal places.");
    }
    if units.len() > 12 {
        return Err("The amount is too large.");
    }
    let u: i64 = if units.is_empty() {
        0
    } else {
        units.parse().map_err(|_| "The amount is not a number (for example 12.50).")?
    };
    let c: i64 = format!("{cents:0<2}").parse().map_err(|_| "The amount is not a number (for example 12.50).")?;
    let total = u * 100 + c;
    if total == 0 {
        return Err("The amount cannot be zero.");
    }
    Ok(total)
}

/// Cents as a decimal with two places ("1234.50"); the pages format it for people.
pub fn format_cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// The key that makes one participant of the people who fill the form
/// several times: last and first name without case, accents or extra spaces.
pub fn identity_key(last: &str, first: &str) -> String {
    fn fold(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            let c = match c {
                'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' | 'À' | 'Á' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'a',
                'ç' | 'Ç' => 'c',
                'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
                'ñ' | 'Ñ' => 'n',
                'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'Ò' | 'Ó' | 'Ô' | 'Ö' | 'Õ' => 'o',
                'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
                'ý' | 'ÿ' | 'Ý' => 'y',
                '-' | '\'' | '’' | '.' => ' ',
                c => c,
            };
            out.extend(c.to_lowercase());
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    format!("{}|{}", fold(last), fold(first))
}

/// What a participant sends with the attendance form.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AttendanceInput {
    /// The 6-digit code shown in the room.
    pub code: String,
    pub last_name: String,
    pub first_name: String,
    /// Field of study ("Statistique", "Démographie").
    #[serde(default)]
    pub field_of_study: String,
    /// Level of study ("L1", "Master 2").
    #[serde(default)]
    pub level: String,
    /// 1 (poor) to 5 (excellent).
    #[serde(default)]
    pub rating: Option<i64>,
    #[serde(default)]
    pub suggestion: String,
    /// A random id the form generates once: sending the same submission
    /// again (a retry after a dropped connection) is recognised, not refused.
    #[serde(default)]
    pub submission_id: Option<String>,
}

fn too_long(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize) {
    if v.chars().count() > max {
        errors.push(FieldError::new(field, "This is too long."));
    }
}

impl AttendanceInput {
    /// Trims and checks everything but the code.
    pub fn checked(mut self) -> Result<AttendanceInput, CoreError> {
        let mut errors = Vec::new();
        for v in [&mut self.last_name, &mut self.first_name, &mut self.field_of_study, &mut self.level] {
            *v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        self.suggestion = self.suggestion.trim().to_string();
        self.code = self.code.chars().filter(|c| c.is_ascii_digit()).collect();
        if self.last_name.is_empty() {
            errors.push(FieldError::new("last_name", "Give your last name."));
        }
        if self.first_name.is_empty() {
            errors.push(FieldError::new("first_name", "Give your first name."));
        }
        too_long(&mut errors, "last_name", &self.last_name, 100);
        too_long(&mut errors, "first_name", &self.first_name, 100);
        too_long(&mut errors, "field_of_study", &self.field_of_study, 100);
        too_long(&mut errors, "level", &self.level, 50);
        too_long(&mut errors, "suggestion", &self.suggestion, 2000);
        if let Some(r) = self.rating {
            if !(1..=5).contains(&r) {
                errors.push(FieldError::new("rating", "Choose a rating from 1 to 5."));
            }
        }
        if let Some(s) = &self.submission_id {
            if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                self.submission_id = None;
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(CoreError::Validation(errors))
        }
    }
}

/// How the top participants are ranked: points per attendance and per
/// competition rank. An organisation changes them in the clubs settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scoring {
    pub points_attendance: i64,
    pub points_first: i64,
    pub points_second: i64,
    pub points_third: i64,
    pub points_other_rank: i64,
    /// How long an attendance code stays valid, in minutes (180: three hours).
    pub code_valid_minutes: i64,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            points_attendance: 1,
            points_first: 5,
            points_second: 3,
            points_third: 2,
            points_other_rank: 1,
            code_valid_minutes: 180,
        }
    }
}

impl Scoring {
    pub fn for_rank(&self, rank: i64) -> i64 {
        match rank {
            1 => self.points_first,
            2 => self.points_second,
            3 => self.points_third,
            r if r > 3 => self.points_other_rank,
            _ => 0,
        }
    }
    pub fn check(&self) -> Result<(), CoreError> {
        let mut errors = Vec::new();
        for (k, v) in [
            ("points_attendance", self.points_attendance),
            ("points_first", self.points_first),
            ("points_second", self.points_second),
            ("points_third", self.points_third),
            ("points_other_rank", self.points_other_rank),
        ] {
            if !(0..=1000).contains(&v) {
                errors.push(FieldError::new(k, "Use a number of points from 0 to 1000."));
            }
        }
        if !(5..=24 * 60).contains(&self.code_valid_minutes) {
            errors.push(FieldError::new("code_valid_minutes", "A code stays valid from 5 minutes to 24 hours."));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CoreError::Validation(errors))
        }
    }
}

/// A URL name from a club's name: "Club d'Art Oratoire" → "club-d-art-oratoire".
pub fn slugify(name: &str) -> String {
    let folded = identity_key(name, "");
    let mut out = String::new();
    for c in folded.trim_end_matches('|').chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(60).collect()
}

/// Execution rate of a programme, in whole percent (none when it has no task).
pub fn execution_rate(done: i64, total: i64) -> Option<i64> {
    (total > 0).then(|| (done * 100 + total / 2) / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_refuse_what_is_not_money() {
        assert_eq!(parse_amount("12"), Ok(1200));
        assert_eq!(parse_amount("12,5"), Ok(1250));
        assert_eq!(parse_amount(" 1 234,56 € "), Ok(123456));
        assert_eq!(parse_amount("0.07"), Ok(7));
        assert_eq!(parse_amount("-3"), Err("The amount cannot be negative: record money coming in as income."));
        assert_eq!(parse_amount("abc"), Err("The amount is not a number (for example 12.50)."));
        assert_eq!(parse_amount("1e3"), Err("The amount is not a number (for example 12.50)."));
        assert_eq!(parse_amount("1.234"), Err("At most two decimal places."));
        assert_eq!(parse_amount(""), Err("Give an amount."));
        assert_eq!(parse_amount("0"), Err("The amount cannot be zero."));
        assert_eq!(format_cents(123456), "1234.56");
        assert_eq!(format_cents(-5), "-0.05");
    }

    #[test]
    fn one_participant_whatever_the_case_and_accents() {
        assert_eq!(identity_key("  KOUASSI ", "Aïcha"), identity_key("kouassi", "aicha"));
        assert_eq!(identity_key("N'Guessan", "Jean-Marc"), identity_key("n guessan", "jean marc"));
        assert_ne!(identity_key("Kouassi", "Aïcha"), identity_key("Kouassi", "Awa"));
        assert_eq!(slugify("Club d'Art Oratoire"), "club-d-art-oratoire");
    }

    #[test]
    fn execution_rate_rounds_to_the_nearest_percent() {
        assert_eq!(execution_rate(0, 0), None);
        assert_eq!(execution_rate(1, 3), Some(33));
        assert_eq!(execution_rate(2, 3), Some(67));
        assert_eq!(execution_rate(4, 4), Some(100));
    }
}
