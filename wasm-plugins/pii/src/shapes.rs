//! One pass over a text's bytes that says which structured formats could occur in it at
//! all, so a format's regex runs only where it might match. Each test is necessary for its
//! regex to match (never a guess), so skipping on it loses nothing; ordinary text (logs,
//! prose, listings) fails most of them, and one byte loop is cheaper than a regex scan each.

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shapes {
    /// 12 or more digits with at most one space or dash between each two (`CARD`).
    pub card: bool,
    /// `ddd-dd-dddd` (`SSN_DASHED`).
    pub ssn_dashed: bool,
    /// Two capitals and two digits (`IBAN`'s start).
    pub iban: bool,
    /// Four digit groups joined by single dots (`IPV4`).
    pub ipv4: bool,
    /// `[23]` and three hex digits before a colon: how every routable IPv6 address
    /// (2000::/3) starts, as the first group is written in full (`IPV6`'s matches that count).
    pub ipv6: bool,
}

impl Shapes {
    pub fn of(text: &str) -> Shapes {
        let b = text.as_bytes();
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        let digits = |from: usize, n: usize| (from..from + n).all(digit);
        let mut shapes = Shapes::default();
        let (mut chain, mut dots) = (0, 0);
        for (i, &c) in b.iter().enumerate() {
            let between_digits = i > 0 && digit(i - 1) && digit(i + 1);
            match c {
                b'0'..=b'9' => {
                    chain += 1;
                    shapes.card |= chain >= 12;
                }
                b' ' | b'-' if between_digits => {
                    shapes.ssn_dashed |= c == b'-' && i >= 3 && digits(i - 3, 3) && ssn_tail(b, i);
                }
                b'.' if between_digits => {
                    chain = 0;
                    dots += 1;
                    shapes.ipv4 |= dots >= 3;
                }
                b'A'..=b'Z' => {
                    shapes.iban |= b.get(i + 1).is_some_and(u8::is_ascii_uppercase) && digits(i + 2, 2);
                    (chain, dots) = (0, 0);
                }
                b':' => {
                    shapes.ipv6 |=
                        i >= 4 && matches!(b[i - 4], b'2' | b'3') && b[i - 3..i].iter().all(u8::is_ascii_hexdigit);
                    (chain, dots) = (0, 0);
                }
                _ => (chain, dots) = (0, 0),
            }
        }
        shapes
    }
}

/// After `ddd` and the dash at `dash`: `dd-dddd`.
fn ssn_tail(b: &[u8], dash: usize) -> bool {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    digit(dash + 1) && digit(dash + 2) && b.get(dash + 3) == Some(&b'-') && (dash + 4..dash + 8).all(digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_is_seen_where_its_format_could_match() {
        let all = Shapes::of("card 4242 4242 4242 4242, ssn 123-45-6789, GB82WEST, 81.2.69.160, 2a00:1450::1");
        assert_eq!(all, Shapes { card: true, ssn_dashed: true, iban: true, ipv4: true, ipv6: true });
        let cases = [
            ("4242-4242-4242", Shapes { card: true, ..Default::default() }),
            ("1234.5.6.7", Shapes { ipv4: true, ..Default::default() }),
            ("x2001:db8::1", Shapes { ipv6: true, ..Default::default() }),
            ("DE44", Shapes { iban: true, ..Default::default() }),
        ];
        for (text, shapes) in cases {
            assert_eq!(Shapes::of(text), shapes, "{text}");
        }
    }

    #[test]
    fn ordinary_text_has_none_of_them() {
        let log = "2026-11-30T10:22:04Z INFO GET /v2/invoices?limit=20 200 in 12ms; v2.14.3 on 3/3 pods; \
                   order 4417-2231, 1 2 3 4 5 6 7 8 9 0 1, fe80::1, 10.0.0";
        assert_eq!(Shapes::of(log), Shapes::default());
    }
}
