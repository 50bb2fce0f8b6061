//! Numbers and dates, for machines (the XML) and for people (the PDF).

use crate::Lang;

/// Cents as a decimal with two digits: `-1234.5` is written `-1234.50`.
pub(crate) fn decimal_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Thousandths without trailing zeros: 1500 is `1.5`, 2000 is `2`.
pub(crate) fn decimal_milli(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let a = milli.unsigned_abs();
    let frac = format!("{:03}", a % 1000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", a / 1000)
    } else {
        format!("{sign}{}.{frac}", a / 1000)
    }
}

/// Hundredths of a percent as a percentage with two decimals: 550 is `5.50`.
pub(crate) fn decimal_rate(bp: i64) -> String {
    decimal_cents(bp)
}

/// CII date format 102: `YYYYMMDD`.
pub(crate) fn date_102(d: time::Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month() as u8, d.day())
}

/// ISO 8601 date, as UBL writes it.
pub(crate) fn date_iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// A date as people read it: 21/11/2026 in French, 21 Nov 2026 in English
/// (day first, to avoid the American ambiguity).
pub fn format_date(d: time::Date, lang: Lang) -> String {
    match lang {
        Lang::Fr => format!("{:02}/{:02}/{:04}", d.day(), d.month() as u8, d.year()),
        Lang::En => {
            const MONTHS: [&str; 12] =
                ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            format!("{} {} {}", d.day(), MONTHS[d.month() as usize - 1], d.year())
        }
    }
}

/// Digits grouped by three with `sep`.
fn grouped(n: u64, sep: &str) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        let left = digits.len() - i;
        if i > 0 && left == left / 3 * 3 {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// A number with two decimals as people read it: `1 234,56` in French
/// (no-break spaces), `1,234.56` in English.
pub(crate) fn format_number_cents(cents: i64, lang: Lang) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    match lang {
        Lang::Fr => format!("{sign}{},{:02}", grouped(a / 100, "\u{a0}"), a % 100),
        Lang::En => format!("{sign}{}.{:02}", grouped(a / 100, ","), a % 100),
    }
}

/// An amount with its currency: `1 234,56 €` in French, `€1,234.56` in English.
pub fn format_amount(cents: i64, currency: &str, lang: Lang) -> String {
    let symbol = match currency {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        _ => None,
    };
    let number = format_number_cents(cents.abs(), lang);
    let sign = if cents < 0 { "-" } else { "" };
    match (lang, symbol) {
        (Lang::Fr, Some(s)) => format!("{sign}{number}\u{a0}{s}"),
        (Lang::Fr, None) => format!("{sign}{number}\u{a0}{currency}"),
        (Lang::En, Some(s)) => format!("{sign}{s}{number}"),
        (Lang::En, None) => format!("{sign}{currency}\u{a0}{number}"),
    }
}

/// A quantity as people read it, up to three decimals.
pub(crate) fn format_quantity(milli: i64, lang: Lang) -> String {
    let s = decimal_milli(milli);
    match lang {
        Lang::Fr => s.replace('.', ","),
        Lang::En => s,
    }
}

/// A VAT rate as people read it: `5,5 %` or `5.5%`.
pub(crate) fn format_rate(bp: i64, lang: Lang) -> String {
    let s = decimal_milli(bp * 10);
    match lang {
        Lang::Fr => format!("{}\u{a0}%", s.replace('.', ",")),
        Lang::En => format!("{s}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_numbers() {
        assert_eq!(decimal_cents(123456), "1234.56");
        assert_eq!(decimal_cents(-5), "-0.05");
        assert_eq!(decimal_milli(1500), "1.5");
        assert_eq!(decimal_milli(2000), "2");
        assert_eq!(decimal_milli(1), "0.001");
        assert_eq!(decimal_rate(550), "5.50");
        assert_eq!(date_102(time::macros::date!(2026 - 03 - 09)), "20260309");
    }

    #[test]
    fn people_numbers() {
        assert_eq!(format_amount(123456, "EUR", Lang::Fr), "1\u{a0}234,56\u{a0}€");
        assert_eq!(format_amount(123456, "EUR", Lang::En), "€1,234.56");
        assert_eq!(format_amount(-100000000, "CHF", Lang::En), "-CHF\u{a0}1,000,000.00");
        assert_eq!(format_amount(99, "EUR", Lang::Fr), "0,99\u{a0}€");
        assert_eq!(format_rate(550, Lang::Fr), "5,5\u{a0}%");
        assert_eq!(format_rate(2000, Lang::En), "20%");
        assert_eq!(format_quantity(1500, Lang::Fr), "1,5");
        assert_eq!(format_date(time::macros::date!(2026 - 11 - 21), Lang::En), "21 Nov 2026");
    }
}
