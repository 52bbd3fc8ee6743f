//! Payment cards, IBANs and US Social Security numbers: each format has a checksum or
//! allocation rules, and checking them is what keeps order ids and part numbers out.

use crate::{embedded, Hit, Scope};
use forge_plugin_sdk::LazyRegex;

/// 12 to 19 digits, optionally grouped by single spaces or dashes.
pub fn prepare() {
    for regex in [&CARD, &IBAN, &SSN_DASHED, &SSN_BARE] {
        regex.compile_now();
    }
}

static CARD: LazyRegex = LazyRegex::new(r"[0-9](?:[ -]?[0-9]){11,18}");
const CARD_WORDS: [&str; 14] = [
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "american express",
    "discover",
    "pan",
    "payment",
    "cc",
    "cvv",
    "expir",
    "exp ",
];
const NOT_CARD_WORDS: [&str; 10] =
    ["order", "invoice", "tracking", "shipment", "sku", "isbn", "account no", "ticket", "reference", "serial"];

pub fn cards(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if !scope.shapes().card {
        return;
    }
    for m in CARD.find_iter(text) {
        if embedded(text, &m.range(), b"-.") {
            continue;
        }
        let digits: Vec<u8> = m.as_str().bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        let Some(network) = issuer(&digits) else { continue };
        if !luhn(&digits) {
            continue;
        }
        // Luhn passes for one number in ten, so a bare run of digits also needs a word that
        // says "card"; the 4-4-4-4 (or Amex 4-6-5) grouping people write cards in counts too.
        let card_context = scope.mentions(m.start(), 48, &CARD_WORDS);
        let other_context = scope.mentions(m.start(), 32, &NOT_CARD_WORDS);
        let grouped = card_grouping(m.as_str());
        let confidence = match (card_context, grouped, other_context) {
            (true, _, _) => 0.95,
            (false, true, false) => 0.8,
            _ => continue,
        };
        hits.push(Hit { rule: "pii.payment-card", range: m.range(), confidence, what: network });
    }
}

/// The card network for a number of this prefix and length.
fn issuer(d: &[u8]) -> Option<&'static str> {
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |acc, &x| acc * 10 + x as u32);
    let len = d.len();
    match () {
        _ if d[0] == 4 && matches!(len, 13 | 16 | 19) => Some("Visa card number"),
        _ if ((51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4))) && len == 16 => {
            Some("Mastercard number")
        }
        _ if matches!(prefix(2), 34 | 37) && len == 15 => Some("American Express card number"),
        _ if (prefix(4) == 6011 || (644..=649).contains(&prefix(3)) || prefix(2) == 65) && (16..=19).contains(&len) => {
            Some("Discover card number")
        }
        _ if (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len) => Some("JCB card number"),
        _ if ((300..=305).contains(&prefix(3)) || matches!(prefix(2), 36 | 38 | 39)) && (14..=19).contains(&len) => {
            Some("Diners Club card number")
        }
        _ if prefix(2) == 62 && (16..=19).contains(&len) => Some("UnionPay card number"),
        _ => None,
    }
}

pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = d as u32;
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn card_grouping(s: &str) -> bool {
    let groups: Vec<usize> = s.split([' ', '-']).map(str::len).collect();
    groups == [4, 4, 4, 4] || groups == [4, 6, 5] || groups == [4, 4, 4, 4, 3]
}

/// Country code, check digits, then the country's BBAN: spaces every four characters allowed.
static IBAN: LazyRegex = LazyRegex::new(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}");

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

pub fn ibans(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if !scope.shapes().iban {
        return;
    }
    for m in IBAN.find_iter(text) {
        let compact: String = m.as_str().chars().filter(|c| *c != ' ').collect();
        // The regex is greedy over spaces; a following word can join the match, so try the
        // country's exact length from the start.
        let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| compact.starts_with(c)) else { continue };
        if compact.len() < len {
            continue;
        }
        let iban = &compact[..len];
        let Some(end) = byte_end_of(m.as_str(), len) else { continue };
        let range = m.start()..m.start() + end;
        if embedded(text, &range, b"") || !mod97_ok(iban) {
            continue;
        }
        hits.push(Hit { rule: "pii.iban", range, confidence: 0.95, what: "IBAN" });
    }
}

/// The byte length of the prefix of `s` holding `n` non-space characters.
fn byte_end_of(s: &str, n: usize) -> Option<usize> {
    let mut seen = 0;
    for (i, c) in s.char_indices() {
        if c != ' ' {
            seen += 1;
            if seen == n {
                return Some(i + c.len_utf8());
            }
        }
    }
    None
}

/// ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1.
pub fn mod97_ok(iban: &str) -> bool {
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let mut rem = 0u32;
    for c in rearranged {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

static SSN_DASHED: LazyRegex = LazyRegex::new(r"([0-9]{3})-([0-9]{2})-([0-9]{4})");
static SSN_BARE: LazyRegex = LazyRegex::new(r"([0-9]{3}) ?([0-9]{2}) ?([0-9]{4})");
const SSN_WORDS: [&str; 4] = ["ssn", "social security", "social_security", "taxpayer"];
/// Numbers the SSA voided after they were printed in advertising and on sample cards.
const ADVERTISING_SSNS: [&str; 3] = ["078-05-1120", "219-09-9999", "123-45-6789"];

pub fn ssns(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if scope.digits() < 9 {
        return;
    }
    // Undashed numbers count only beside an SSN word, so without one there is nothing to run.
    let bare = scope.mentions_anywhere(&SSN_WORDS);
    for (regex, dashed) in [(&SSN_DASHED, true), (&SSN_BARE, false)] {
        if (dashed && !scope.shapes().ssn_dashed) || (!dashed && !bare) {
            continue;
        }
        for caps in regex.captures_iter(text) {
            let m = caps.get(0).expect("match");
            let context = scope.mentions(m.start(), 40, &SSN_WORDS);
            if embedded(text, &m.range(), b"-.") || !(dashed || context) {
                continue;
            }
            let (area, group, serial) = (&caps[1], &caps[2], &caps[3]);
            let normalized = format!("{area}-{group}-{serial}");
            let area_n: u32 = area.parse().unwrap_or(0);
            if area_n == 0 || area_n == 666 || area_n >= 900 || group == "00" || serial == "0000" {
                continue;
            }
            if ADVERTISING_SSNS.contains(&normalized.as_str()) {
                continue;
            }
            let confidence = if context { 0.9 } else { 0.6 };
            hits.push(Hit { rule: "pii.us-ssn", range: m.range(), confidence, what: "US Social Security number" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::ids;

    #[test]
    fn luhn_and_mod97_checks() {
        assert!(luhn(&[4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2]));
        assert!(!luhn(&[4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 3]));
        assert!(mod97_ok("GB82WEST12345698765432"));
        assert!(!mod97_ok("GB82WEST12345698765433"));
    }

    #[test]
    fn cards_need_luhn_an_issuer_and_context() {
        assert_eq!(ids(r#"{"card_number":"4242424242424242"}"#), ["pii.payment-card"]);
        assert_eq!(ids(r#"{"t":"paid with 5555 5555 5555 4444"}"#), ["pii.payment-card"]);
        // Mastercard's 2-series.
        assert_eq!(ids(r#"{"t":"card 2223003122003222"}"#), ["pii.payment-card"]);
        assert_eq!(ids(r#"{"card":4242424242424242}"#), ["pii.payment-card"]);
        // Luhn-valid Visa-shaped order id, no card context.
        assert!(ids(r#"{"order_id":"4242424242424242"}"#).is_empty());
        assert!(ids(r#"{"t":"order 4242 4242 4242 4242"}"#).is_empty());
        // Card context, but not Luhn-valid.
        assert!(ids(r#"{"card_number":"4242424242424241"}"#).is_empty());
    }

    #[test]
    fn ssn_rules_reject_invalid_areas_and_advertising_numbers() {
        assert_eq!(ids(r#"{"ssn":"536-22-8140"}"#), ["pii.us-ssn"]);
        assert_eq!(ids(r#"{"t":"SSN 536228140"}"#), ["pii.us-ssn"]);
        for t in
            ["000-12-3456", "666-12-3456", "912-12-3456", "536-00-8140", "536-22-0000", "078-05-1120", "219-09-9999"]
        {
            assert!(ids(&format!(r#"{{"ssn":"{t}"}}"#)).is_empty(), "{t}");
        }
        assert!(ids(r#"{"t":"ref 536228140"}"#).is_empty());
    }

    #[test]
    fn ibans_need_the_country_length_and_mod97() {
        assert_eq!(ids(r#"{"t":"IBAN GB82 WEST 1234 5698 7654 32 please"}"#), ["pii.iban"]);
        assert_eq!(ids(r#"{"t":"DE89370400440532013000"}"#), ["pii.iban"]);
        assert!(ids(r#"{"t":"DE89370400440532013001"}"#).is_empty());
        assert!(ids(r#"{"t":"DE8937040044053201300"}"#).is_empty());
    }
}
