//! Amounts in French words, as a tax receipt writes them ("cent vingt et
//! un euros et cinquante centimes"). Traditional spelling: hyphens between
//! tens and units below one hundred, "et" for 21, 31… 71, plural "vingts"
//! and "cents" only at the end of a number, "mille" invariable.

const UNITS: [&str; 20] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "treize",
    "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
];
const TENS: [&str; 10] =
    ["", "dix", "vingt", "trente", "quarante", "cinquante", "soixante", "soixante", "quatre-vingt", "quatre-vingt"];

/// 0–99. `last` says whether the number ends here (for "quatre-vingts").
fn below_100(n: u64, last: bool) -> String {
    if n < 20 {
        return UNITS[n as usize].to_string();
    }
    let (t, u) = ((n / 10) as usize, n % 10);
    // 70–79 and 90–99 count on from 60 and 80: soixante-dix, quatre-vingt-onze.
    let (t, u) = if t == 7 || t == 9 { (t, u + 10) } else { (t, u) };
    let tens = TENS[t];
    match u {
        0 if t == 8 && last => "quatre-vingts".to_string(),
        0 => tens.to_string(),
        1 if t != 8 => format!("{tens} et un"),
        11 if t == 7 => format!("{tens} et onze"),
        _ => format!("{tens}-{}", UNITS[u as usize]),
    }
}

/// 0–999.
fn below_1000(n: u64, last: bool) -> String {
    let (h, r) = (n / 100, n % 100);
    let hundreds = match h {
        0 => String::new(),
        1 => "cent".to_string(),
        _ if r == 0 && last => format!("{} cents", UNITS[h as usize]),
        _ => format!("{} cent", UNITS[h as usize]),
    };
    match (hundreds.is_empty(), r) {
        (true, _) => below_100(r, last),
        (false, 0) => hundreds,
        (false, _) => format!("{hundreds} {}", below_100(r, last)),
    }
}

/// A whole number in words.
pub fn number(n: u64) -> String {
    if n == 0 {
        return "zéro".into();
    }
    let mut parts = Vec::new();
    let scales = [(1_000_000_000, "milliard"), (1_000_000, "million")];
    let mut rest = n;
    for (size, name) in scales {
        let k = rest / size;
        rest %= size;
        if k > 0 {
            let s = if k > 1 { "s" } else { "" };
            parts.push(format!("{} {name}{s}", below_1000(k, true)));
        }
    }
    let thousands = rest / 1000;
    rest %= 1000;
    match thousands {
        0 => {}
        1 => parts.push("mille".into()),
        k => parts.push(format!("{} mille", below_1000(k, false))),
    }
    if rest > 0 {
        parts.push(below_1000(rest, true));
    }
    parts.join(" ")
}

/// An amount in euros, in words: "trente euros", "un euro et cinq centimes".
pub fn euros(cents: i64) -> String {
    let c = cents.unsigned_abs();
    let (e, ct) = (c / 100, c % 100);
    let unit = |n: u64, one: &str, many: &str| if n > 1 { many.to_string() } else { one.to_string() };
    // "un million d'euros": before a noun, millions take "de".
    let euro_word = if e >= 1_000_000 && e % 1_000_000 == 0 { "d'euros".to_string() } else { unit(e, "euro", "euros") };
    let mut s = format!("{} {euro_word}", number(e));
    if ct > 0 {
        s = if e == 0 {
            format!("{} {}", number(ct), unit(ct, "centime", "centimes"))
        } else {
            format!("{s} et {} {}", number(ct), unit(ct, "centime", "centimes"))
        };
    }
    if cents < 0 {
        s = format!("moins {s}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{euros, number};

    #[test]
    fn numbers_in_words() {
        let cases = [
            (0, "zéro"),
            (1, "un"),
            (16, "seize"),
            (17, "dix-sept"),
            (21, "vingt et un"),
            (22, "vingt-deux"),
            (71, "soixante et onze"),
            (72, "soixante-douze"),
            (80, "quatre-vingts"),
            (81, "quatre-vingt-un"),
            (91, "quatre-vingt-onze"),
            (99, "quatre-vingt-dix-neuf"),
            (100, "cent"),
            (101, "cent un"),
            (180, "cent quatre-vingts"),
            (200, "deux cents"),
            (201, "deux cent un"),
            (1000, "mille"),
            (1080, "mille quatre-vingts"),
            (2000, "deux mille"),
            (80_000, "quatre-vingt mille"),
            (200_000, "deux cent mille"),
            (1_000_000, "un million"),
            (2_500_321, "deux millions cinq cent mille trois cent vingt et un"),
        ];
        for (n, w) in cases {
            assert_eq!(number(n), w, "{n}");
        }
    }

    #[test]
    fn amounts_in_words() {
        assert_eq!(euros(3000), "trente euros");
        assert_eq!(euros(100), "un euro");
        assert_eq!(euros(105), "un euro et cinq centimes");
        assert_eq!(euros(12_150), "cent vingt et un euros et cinquante centimes");
        assert_eq!(euros(1), "un centime");
        assert_eq!(euros(100_000_000), "un million d'euros");
    }
}
