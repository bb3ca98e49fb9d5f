//! Compose durations (`healthcheck.interval`, `stop_grace_period`, `timeout`, ...): parsing and
//! formatting.
//!
//! Parsing follows what Docker Compose v2 does: compose-go decodes durations with
//! `github.com/xhit/go-str2duration/v2`, which is Go's `time.ParseDuration` grammar
//! (`[-+]?([0-9]*(\.[0-9]*)?unit)+`, or a bare `0`) with two extra units, `d` (24h) and `w` (168h).
//! Units are case-sensitive: `ns`, `us`, `µs` (micro sign) or `μs` (Greek mu), `ms`, `s`, `m`, `h`,
//! `d`, `w`. Fractions are converted exactly as Go does (through a float64, truncated to whole
//! nanoseconds), and the total may not exceed Go's `Duration` range (`i64::MAX` nanoseconds).
//!
//! Unlike Go, a negative duration is an error, since no Compose duration may be negative
//! (`-0s` is zero and accepted).
//!
//! Formatting is Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `2µs`, `0s`.

use std::time::Duration;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;

/// Largest value of Go's `time.Duration`, in nanoseconds.
const MAX_NANOS: u64 = i64::MAX as u64;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 micro sign and U+03BC Greek small letter mu.
        "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => NANOS_PER_MINUTE,
        "h" => NANOS_PER_HOUR,
        "d" => 24 * NANOS_PER_HOUR,
        "w" => 168 * NANOS_PER_HOUR,
        _ => return None,
    })
}

/// Parses a Compose duration such as `1m30s`, `500ms`, `1.5h`, `300us`, `2d` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {s:?}");
    let bytes = s.as_bytes();
    let mut rest = bytes;
    let mut negative = false;
    if let Some(&sign @ (b'-' | b'+')) = rest.first() {
        negative = sign == b'-';
        rest = &rest[1..];
    }
    if rest == b"0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }

    let mut total: u64 = 0;
    while !rest.is_empty() {
        // The next character must be [0-9.].
        if !(rest[0] == b'.' || rest[0].is_ascii_digit()) {
            return Err(invalid());
        }

        // Integer part: [0-9]*, an error on overflow.
        let mut whole: u64 = 0;
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        for &digit in &rest[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(digit - b'0')))
                .filter(|&w| w <= MAX_NANOS)
                .ok_or_else(invalid)?;
        }
        rest = &rest[int_len..];

        // Fraction: (\.[0-9]*)?, which silently stops gaining precision on overflow.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            frac_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let mut overflow = false;
            for &digit in &rest[..frac_len] {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(digit - b'0')))
                    .filter(|&f| f <= MAX_NANOS)
                {
                    Some(f) => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
            rest = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            // No digits at all, as in ".s".
            return Err(invalid());
        }

        // Unit: everything up to the next '.' or digit.
        let unit_len = rest
            .iter()
            .take_while(|&&b| b != b'.' && !b.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("missing unit in duration {s:?}"));
        }
        // The unit ends before an ASCII byte (or at the end), so it is valid UTF-8.
        let unit = std::str::from_utf8(&rest[..unit_len]).map_err(|_| invalid())?;
        rest = &rest[unit_len..];
        let unit_ns =
            unit_nanos(unit).ok_or_else(|| format!("unknown unit {unit:?} in duration {s:?}"))?;

        let mut value = whole
            .checked_mul(unit_ns)
            .filter(|&v| v <= MAX_NANOS)
            .ok_or_else(invalid)?;
        if fraction > 0 {
            // Go: v += int64(float64(f) * (float64(unit) / scale)).
            let extra = (fraction as f64 * (unit_ns as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|&v| v <= MAX_NANOS)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(value)
            .filter(|&t| t <= MAX_NANOS)
            .ok_or_else(invalid)?;
    }

    if negative && total != 0 {
        return Err(format!("negative duration {s:?}"));
    }
    Ok(Duration::from_nanos(total))
}

/// Formats a duration exactly like Go's `time.Duration.String()`.
///
/// Durations beyond Go's range (about 292 years) keep counting hours instead of wrapping around.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < u128::from(NANOS_PER_SECOND) {
        // Below one second the largest fitting sub-second unit is used, with a fraction.
        let (unit, precision) = if nanos < u128::from(NANOS_PER_MICRO) {
            ("ns", 0)
        } else if nanos < u128::from(NANOS_PER_MILLI) {
            ("\u{b5}s", 3)
        } else {
            ("ms", 6)
        };
        let mut out = with_fraction(nanos, precision);
        out.push_str(unit);
        return out;
    }

    let mut out = String::new();
    let seconds_total = nanos / u128::from(NANOS_PER_SECOND);
    let minutes_total = seconds_total / 60;
    let hours = minutes_total / 60;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes_total > 0 {
        out.push_str(&format!("{}m", minutes_total % 60));
    }
    let sub_minute = nanos % u128::from(NANOS_PER_MINUTE);
    out.push_str(&with_fraction(sub_minute, 9));
    out.push('s');
    out
}

/// `value / 10^precision` in decimal, without trailing zeros in the fraction, and without the point
/// when the fraction is zero (Go's `fmtFrac` followed by `fmtInt`).
fn with_fraction(value: u128, precision: u32) -> String {
    let divisor = 10u128.pow(precision);
    let int_part = value / divisor;
    let frac_part = value % divisor;
    if frac_part == 0 {
        return int_part.to_string();
    }
    let digits = format!("{frac_part:0width$}", width = precision as usize);
    format!("{int_part}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_duration(s) {
            Ok(d) => panic!("{s:?} should fail, got {d:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_go_syntax() {
        // Cases from Go's time.ParseDuration tests.
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("5s", 5 * NANOS_PER_SECOND),
            ("30s", 30 * NANOS_PER_SECOND),
            ("1478s", 1478 * NANOS_PER_SECOND),
            ("+5s", 5 * NANOS_PER_SECOND),
            ("+0", 0),
            ("-0", 0),
            ("-0s", 0),
            ("5.0s", 5 * NANOS_PER_SECOND),
            ("5.6s", 5 * NANOS_PER_SECOND + 600 * NANOS_PER_MILLI),
            ("5.s", 5 * NANOS_PER_SECOND),
            (".5s", 500 * NANOS_PER_MILLI),
            ("1.0s", NANOS_PER_SECOND),
            ("1.00s", NANOS_PER_SECOND),
            ("1.004s", NANOS_PER_SECOND + 4 * NANOS_PER_MILLI),
            ("1.0040s", NANOS_PER_SECOND + 4 * NANOS_PER_MILLI),
            ("100.00100s", 100 * NANOS_PER_SECOND + NANOS_PER_MILLI),
            ("10ns", 10),
            ("11us", 11 * NANOS_PER_MICRO),
            ("12\u{b5}s", 12 * NANOS_PER_MICRO),
            ("12\u{3bc}s", 12 * NANOS_PER_MICRO),
            ("13ms", 13 * NANOS_PER_MILLI),
            ("14s", 14 * NANOS_PER_SECOND),
            ("15m", 15 * NANOS_PER_MINUTE),
            ("16h", 16 * NANOS_PER_HOUR),
            ("3h30m", 3 * NANOS_PER_HOUR + 30 * NANOS_PER_MINUTE),
            (
                "10.5s4m",
                4 * NANOS_PER_MINUTE + 10 * NANOS_PER_SECOND + 500 * NANOS_PER_MILLI,
            ),
            (
                "1h2m3s4ms5us6ns",
                NANOS_PER_HOUR
                    + 2 * NANOS_PER_MINUTE
                    + 3 * NANOS_PER_SECOND
                    + 4 * NANOS_PER_MILLI
                    + 5 * NANOS_PER_MICRO
                    + 6,
            ),
            ("39h9m14.425s", 140_954_425 * NANOS_PER_MILLI),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * NANOS_PER_MINUTE),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", MAX_NANOS),
            ("9223372036854775.807us", MAX_NANOS),
            ("9223372036s854ms775us807ns", MAX_NANOS),
            ("0.100000000000000000000h", 6 * NANOS_PER_MINUTE),
            (
                "0.830103483285477580700h",
                49 * NANOS_PER_MINUTE + 48 * NANOS_PER_SECOND + 372_539_827,
            ),
            // The examples Compose files use.
            ("1m30s", 90 * NANOS_PER_SECOND),
            ("500ms", 500 * NANOS_PER_MILLI),
            ("1.5h", 90 * NANOS_PER_MINUTE),
            ("300us", 300 * NANOS_PER_MICRO),
            ("0s", 0),
            // str2duration's extra units.
            ("2d", 48 * NANOS_PER_HOUR),
            ("1w", 168 * NANOS_PER_HOUR),
            (
                "1w2d3s96ns",
                216 * NANOS_PER_HOUR + 3 * NANOS_PER_SECOND + 96,
            ),
            ("0.5d", 12 * NANOS_PER_HOUR),
        ];
        for &(input, nanos) in cases {
            assert_eq!(ok(input), Duration::from_nanos(nanos), "{input:?}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(err(""), r#"invalid duration """#);
        assert_eq!(err("3"), r#"missing unit in duration "3""#);
        assert_eq!(err("00"), r#"missing unit in duration "00""#);
        assert_eq!(err("1h2"), r#"missing unit in duration "1h2""#);
        assert_eq!(err("-"), r#"invalid duration "-""#);
        assert_eq!(err("+"), r#"invalid duration "+""#);
        assert_eq!(err("s"), r#"invalid duration "s""#);
        assert_eq!(err("."), r#"invalid duration ".""#);
        assert_eq!(err("-.s"), r#"invalid duration "-.s""#);
        assert_eq!(err(".s"), r#"invalid duration ".s""#);
        assert_eq!(err("+.s"), r#"invalid duration "+.s""#);
        assert_eq!(err("1d-5m"), r#"unknown unit "d-" in duration "1d-5m""#);
        assert_eq!(err(" 1s"), r#"invalid duration " 1s""#);
        assert_eq!(err("1s "), r#"unknown unit "s " in duration "1s ""#);
        assert_eq!(err("1 s"), r#"unknown unit " s" in duration "1 s""#);
        assert_eq!(err("3000000h"), r#"invalid duration "3000000h""#);
        assert_eq!(
            err("9223372036854775808ns"),
            r#"invalid duration "9223372036854775808ns""#
        );
        assert_eq!(
            err("9223372036854775.808us"),
            r#"invalid duration "9223372036854775.808us""#
        );
        assert_eq!(
            err("9223372036854ms775us808ns"),
            r#"invalid duration "9223372036854ms775us808ns""#
        );
        assert_eq!(err("1H"), r#"unknown unit "H" in duration "1H""#);
        assert_eq!(err("1y"), r#"unknown unit "y" in duration "1y""#);
        assert_eq!(err("1µ"), r#"unknown unit "µ" in duration "1µ""#);
        assert_eq!(err("1sec"), r#"unknown unit "sec" in duration "1sec""#);
        assert_eq!(err("-1s"), r#"negative duration "-1s""#);
        assert_eq!(err("-1.5h"), r#"negative duration "-1.5h""#);
    }

    #[test]
    fn formats_like_go() {
        // Cases from Go's Duration.String tests.
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200 * NANOS_PER_MICRO, "2.2ms"),
            (3_300 * NANOS_PER_MILLI, "3.3s"),
            (4 * NANOS_PER_MINUTE + 5 * NANOS_PER_SECOND, "4m5s"),
            (4 * NANOS_PER_MINUTE + 5_001 * NANOS_PER_MILLI, "4m5.001s"),
            (
                5 * NANOS_PER_HOUR + 6 * NANOS_PER_MINUTE + 7_001 * NANOS_PER_MILLI,
                "5h6m7.001s",
            ),
            (8 * NANOS_PER_MINUTE + 1, "8m0.000000001s"),
            (MAX_NANOS, "2562047h47m16.854775807s"),
            // The examples the brief lists.
            (90 * NANOS_PER_SECOND, "1m30s"),
            (500 * NANOS_PER_MILLI, "500ms"),
            (NANOS_PER_HOUR, "1h0m0s"),
            (1_500 * NANOS_PER_MILLI, "1.5s"),
            (2 * NANOS_PER_MICRO, "2µs"),
            (999, "999ns"),
            (1_000, "1µs"),
            (999_999, "999.999µs"),
            (NANOS_PER_MILLI, "1ms"),
            (NANOS_PER_SECOND, "1s"),
            (NANOS_PER_MINUTE, "1m0s"),
            (NANOS_PER_HOUR + NANOS_PER_SECOND, "1h0m1s"),
            (48 * NANOS_PER_HOUR, "48h0m0s"),
        ];
        for &(nanos, expected) in cases {
            assert_eq!(format_duration(Duration::from_nanos(nanos)), expected);
        }
    }

    #[test]
    fn formats_beyond_go_range_without_panicking() {
        assert_eq!(
            format_duration(Duration::MAX),
            "5124095576030431h0m15.999999999s"
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn never_panics_on_duration_like_input(s in "[-+]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|d|w|x)?([0-9.]{0,25}(s|m|h))?") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn format_then_parse_round_trips(nanos in 0..=MAX_NANOS) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
