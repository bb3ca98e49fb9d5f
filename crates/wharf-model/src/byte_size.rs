//! Byte sizes written as strings (`mem_limit`, `memswap_limit`, `shm_size`, `tmpfs` sizes, ...),
//! parsed the way Docker Compose v2 does it.
//!
//! compose-go decodes a string `UnitBytes` with `RAMInBytes` from `github.com/docker/go-units`
//! v0.5.0:
//!
//! - the number is everything up to the last digit, `.` or space; a single space before the unit is
//!   allowed (`32 mb`), and a trailing space means no unit (`32 ` is 32);
//! - the number is a non-negative decimal float (`1.5`, `.5`, `5.`, `1e3`), and the result is
//!   truncated to whole bytes (`0.3m` is 314572);
//! - the unit is case-insensitive and optional: `b`, or `k`, `m`, `g`, `t`, `p` optionally followed
//!   by `b` or `ib`; all of them are binary multiples (`1kb` = `1kib` = 1024 bytes).
//!
//! Where go-units would produce a meaningless number this is an error instead: sizes of 2^63 bytes
//! or more (Go's float-to-int64 conversion overflows), and the float spellings other than plain
//! decimals that Go's `ParseFloat` also takes (`inf`, `nan`, hexadecimal `0x1p10`).

const KIB: f64 = 1024.0;

/// Parses a byte size such as `512m`, `1g`, `1.5GB`, `1024` or `2kb` into a number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size {s:?}");
    let sep = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (number, suffix) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };

    let size = parse_decimal_float(number).ok_or_else(invalid)?;
    if size < 0.0 {
        return Err(format!("invalid size {s:?}: negative"));
    }

    let multiplier = unit_multiplier(suffix)
        .ok_or_else(|| format!("invalid size {s:?}: unknown unit {suffix:?}"))?;
    let bytes = size * multiplier;
    // 2^63: Go converts to int64, which cannot hold this or more.
    if bytes >= 9_223_372_036_854_775_808.0 {
        return Err(format!("invalid size {s:?}: too large"));
    }
    // Truncation toward zero, like Go's float64 to int64 conversion.
    Ok(bytes as u64)
}

/// The multiplier for a unit suffix, as go-units' `parseSize` reads it with the binary map.
fn unit_multiplier(suffix: &str) -> Option<f64> {
    if suffix.is_empty() {
        return Some(1.0);
    }
    // The length limit applies before lowercasing, which may change it (Kelvin sign to `k`).
    if suffix.len() > 3 {
        return None;
    }
    let lower = suffix.to_lowercase();
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return (bytes.len() == 1).then_some(1.0);
    }
    let multiplier = match bytes[0] {
        b'k' => KIB,
        b'm' => KIB * KIB,
        b'g' => KIB * KIB * KIB,
        b't' => KIB * KIB * KIB * KIB,
        b'p' => KIB * KIB * KIB * KIB * KIB,
        _ => return None,
    };
    match &bytes[1..] {
        b"" | b"b" | b"ib" => Some(multiplier),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat(s, 64)` restricted to decimal notation:
/// `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`, correctly rounded.
fn parse_decimal_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) || int_part.len() + frac_part.len() == 0 {
        return None;
    }
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if digits.is_empty() || !all_digits(digits) {
            return None;
        }
    }
    s.parse::<f64>().ok().filter(|value| value.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KI: u64 = 1024;
    const MI: u64 = KI * KI;
    const GI: u64 = MI * KI;
    const TI: u64 = GI * KI;
    const PI: u64 = TI * KI;

    fn ok(s: &str) -> u64 {
        match parse_bytes(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_bytes(s) {
            Ok(v) => panic!("{s:?} should fail, got {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn go_units_ram_in_bytes_cases() {
        let cases: &[(&str, u64)] = &[
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 * KI),
            ("32K", 32 * KI),
            ("32kb", 32 * KI),
            ("32Kb", 32 * KI),
            ("32Kib", 32 * KI),
            ("32KIB", 32 * KI),
            ("32Mb", 32 * MI),
            ("32Gb", 32 * GI),
            ("32Tb", 32 * TI),
            ("32Pb", 32 * PI),
            ("32PB", 32 * PI),
            ("32P", 32 * PI),
            ("32.3", 32),
            ("32.3 mb", 33_869_004),
            ("0.3MB", 314_572),
        ];
        for &(input, expected) in cases {
            assert_eq!(ok(input), expected, "{input:?}");
        }
    }

    #[test]
    fn compose_examples() {
        assert_eq!(ok("512m"), 512 * MI);
        assert_eq!(ok("1g"), GI);
        assert_eq!(ok("1.5GB"), 1_610_612_736);
        assert_eq!(ok("1024"), 1024);
        assert_eq!(ok("2kb"), 2048);
        assert_eq!(ok("64M"), 64 * MI);
        assert_eq!(ok("2GiB"), 2 * GI);
        assert_eq!(ok("0"), 0);
    }

    #[test]
    fn number_and_space_details() {
        assert_eq!(ok("32 "), 32);
        assert_eq!(ok("32 k"), 32 * KI);
        assert_eq!(ok("32.5 B"), 32);
        assert_eq!(ok(".5k"), 512);
        assert_eq!(ok("5.k"), 5 * KI);
        assert_eq!(ok("+5k"), 5 * KI);
        assert_eq!(ok("-0"), 0);
        assert_eq!(ok("1e3"), 1000);
        assert_eq!(ok("1E3k"), 1000 * KI);
        assert_eq!(ok("1e+3 b"), 1000);
        assert_eq!(ok("0.1"), 0);
        assert_eq!(ok("007m"), 7 * MI);
        assert_eq!(ok("8191p"), 8191 * PI);
        assert_eq!(ok("9223372036854774784"), 9_223_372_036_854_774_784);
        // The Kelvin sign lowercases to `k`, in Go as here.
        assert_eq!(ok("1\u{212a}"), KI);
    }

    #[test]
    fn errors() {
        assert_eq!(err(""), r#"invalid size """#);
        assert_eq!(err("hello"), r#"invalid size "hello""#);
        assert_eq!(err("m"), r#"invalid size "m""#);
        assert_eq!(err("-32"), r#"invalid size "-32": negative"#);
        assert_eq!(err("-1k"), r#"invalid size "-1k": negative"#);
        assert_eq!(err(" 32 "), r#"invalid size " 32 ""#);
        assert_eq!(err("32m b"), r#"invalid size "32m b""#);
        assert_eq!(err("32  m"), r#"invalid size "32  m""#);
        assert_eq!(err("."), r#"invalid size ".""#);
        assert_eq!(err("1.2.3"), r#"invalid size "1.2.3""#);
        assert_eq!(err("1_000"), r#"invalid size "1_000""#);
        assert_eq!(err("0x10"), r#"invalid size "0x10""#);
        assert_eq!(err("inf b"), r#"invalid size "inf b""#);
        assert_eq!(err("nan b"), r#"invalid size "nan b""#);
        assert_eq!(err("1e400"), r#"invalid size "1e400""#);
        assert_eq!(err("32bm"), r#"invalid size "32bm": unknown unit "bm""#);
        assert_eq!(err("32bb"), r#"invalid size "32bb": unknown unit "bb""#);
        assert_eq!(err("32x"), r#"invalid size "32x": unknown unit "x""#);
        assert_eq!(
            err("32kibb"),
            r#"invalid size "32kibb": unknown unit "kibb""#
        );
        assert_eq!(err("32kx"), r#"invalid size "32kx": unknown unit "kx""#);
        assert_eq!(err("32kbi"), r#"invalid size "32kbi": unknown unit "kbi""#);
        assert_eq!(err("32e"), r#"invalid size "32e": unknown unit "e""#);
        assert_eq!(
            err("32\u{e9}"),
            "invalid size \"32\u{e9}\": unknown unit \"\u{e9}\""
        );
        assert_eq!(err("8192p"), r#"invalid size "8192p": too large"#);
        assert_eq!(
            err("9223372036854775808"),
            r#"invalid size "9223372036854775808": too large"#
        );
        assert_eq!(err("1e30"), r#"invalid size "1e30": too large"#);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_bytes(&s);
        }

        #[test]
        fn never_panics_on_size_like_input(s in "[-+]?[0-9.eE ]{0,20}[kKmMgGtTpPbBiI\u{212a} ]{0,4}") {
            let _ = parse_bytes(&s);
        }

        #[test]
        fn whole_numbers_with_units(n in 0u64..=8191, unit in 0usize..6, suffix in prop::sample::select(vec!["", "b", "B", "ib", "iB", "IB"])) {
            let letters = ["", "k", "m", "g", "t", "p"];
            let suffix = if unit == 0 && !suffix.is_empty() { "b" } else { suffix };
            let input = format!("{n}{}{suffix}", letters[unit]);
            prop_assert_eq!(parse_bytes(&input), Ok(n * 1024u64.pow(unit as u32)));
        }
    }
}
