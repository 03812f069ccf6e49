use std::cmp::Ordering;

use super::{Format, ParseError, Quantity};

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_and_prints_canonically() {
    // (input, String() as upstream prints it)
    let cases = [
        ("0", "0"),
        ("0m", "0"),
        ("0Ki", "0"),
        ("-0", "0"),
        ("1", "1"),
        ("1m", "1m"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        (".5", "500m"),
        ("0.0001", "100u"),
        ("1n", "1n"),
        ("10n", "10n"),
        ("1000n", "1u"),
        ("1k", "1k"),
        ("1000", "1k"),
        ("1024", "1024"),
        ("1M", "1M"),
        ("1G", "1G"),
        ("1000G", "1T"),
        ("1Ki", "1Ki"),
        ("1024Ki", "1Mi"),
        ("1000Ki", "1000Ki"),
        ("128Mi", "128Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Ki", "512"),
        ("1.1Ki", "1126400m"),
        ("2048Mi", "2Gi"),
        ("1Ei", "1Ei"),
        ("12e6", "12e6"),
        ("1e3", "1e3"),
        ("1E3", "1E3"),
        ("1.5e3", "1500"),
        ("2e-3", "2e-3"),
        ("1e-10", "1e-9"),
        ("-1Gi", "-1Gi"),
        ("-1.5", "-1500m"),
        ("-100m", "-100m"),
        ("9223372036854775807", "9223372036854775807"),
        ("12345678901234567890", "12345678901234567890"),
        // Upstream keeps the text of a quantity that was already canonical, sign and all.
        ("+1k", "+1k"),
        ("01k", "01k"),
        ("5.", "5."),
        ("1.G", "1.G"),
        // Upstream's scanner accepts these oddities.
        (".", "0"),
        ("-", "0"),
        ("Mi", "0"),
        // Upstream has no suffix for 10^21 in DecimalSI and prints none (a known quirk).
        ("1000E", "1"),
        ("  2Gi ", "2Gi"),
    ];
    for (input, expected) in cases {
        assert_eq!(q(input).to_string(), expected, "{input:?}");
    }
}

#[test]
fn binary_si_is_capped_at_max_int64() {
    assert_eq!(q("8Ei").to_string(), "9223372036854775807");
    assert_eq!(q("8Ei").value(), i64::MAX);
}

#[test]
fn rejects_what_upstream_rejects() {
    let cases = [
        ("", ParseError::FormatWrong),
        ("  ", ParseError::FormatWrong),
        ("1.1.1", ParseError::FormatWrong),
        ("1x", ParseError::FormatWrong),
        ("1.5GB", ParseError::FormatWrong),
        ("half", ParseError::FormatWrong),
        ("1Ki2x", ParseError::FormatWrong),
        ("1 Gi", ParseError::FormatWrong),
        ("1mi", ParseError::Suffix),
        ("1KI", ParseError::FormatWrong),
        ("1e", ParseError::Suffix),
        ("1Ki2", ParseError::Suffix),
        ("1e1.5", ParseError::FormatWrong),
        ("1e99999999999999999999", ParseError::Suffix),
    ];
    for (input, err) in cases {
        assert_eq!(Quantity::parse(input), Err(err), "{input:?}");
    }
    assert_eq!(
        ParseError::FormatWrong.to_string(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        ParseError::Suffix.to_string(),
        "unable to parse quantity's suffix"
    );
    assert_eq!(
        ParseError::Numeric.to_string(),
        "unable to parse numeric part of quantity"
    );
}

#[test]
fn value_rounds_up_away_from_zero() {
    assert_eq!(q("1.5Gi").value(), 1_610_612_736);
    assert_eq!(q("128Mi").to_bytes(), 134_217_728);
    assert_eq!(q("1G").to_bytes(), 1_000_000_000);
    assert_eq!(q("100m").value(), 1);
    assert_eq!(q("1.5").value(), 2);
    assert_eq!(q("2").value(), 2);
    assert_eq!(q("-100m").value(), -1);
    assert_eq!(q("1n").value(), 1);
    assert_eq!(q("0").value(), 0);
    assert_eq!(q("1e-9").value(), 1);
    assert_eq!(q("2e3").value(), 2000);
}

#[test]
fn milli_value_rounds_up() {
    assert_eq!(q("500m").to_millis(), 500);
    assert_eq!(q("0.5").milli_value(), 500);
    assert_eq!(q("2").milli_value(), 2000);
    assert_eq!(q("1n").milli_value(), 1);
    assert_eq!(q("1.0001m").milli_value(), 2);
    assert_eq!(q("1Ki").milli_value(), 1_024_000);
    assert_eq!(q("250u").milli_value(), 1);
}

#[test]
fn huge_values_saturate() {
    assert_eq!(q("1e30").value(), i64::MAX);
    assert_eq!(q("-1e30").value(), i64::MIN);
    assert_eq!(q("9223372036854775807").milli_value(), i64::MAX);
    assert_eq!(q("1e-1000").value(), 1);
}

#[test]
fn compares_values_not_text() {
    assert_eq!(q("1Gi"), q("1024Mi"));
    assert_eq!(q("1"), q("1000m"));
    assert_eq!(q("1k"), q("1e3"));
    assert_eq!(q("0"), q("-0m"));
    assert!(q("500m") < q("1"));
    assert!(q("1G") < q("1Gi"));
    assert!(q("-1") < q("0"));
    assert!(q("-2") < q("-1"));
    assert!(q("1e100") > q("8Ei"));
    assert!(q("1e-100") > q("0"));
    assert_eq!(q("1e-100"), q("1n"), "parsing rounds up to a nano");
    assert_eq!(q("129e6").cmp(&q("129M")), Ordering::Equal);
    assert_eq!(q("1.5").cmp_i64(1), Ordering::Greater);
    assert_eq!(q("1024").cmp_i64(1024), Ordering::Equal);
}

#[test]
fn round_up_to_milli_like_set_defaults_resource_list() {
    let mut a = q("0.0001");
    assert!(!a.round_up(-3));
    assert_eq!(a.to_string(), "1m");
    let mut b = q("1.5Gi");
    assert!(b.round_up(-3));
    assert_eq!(b.to_string(), "1536Mi");
    let mut c = q("+1k");
    assert!(c.round_up(-3));
    assert_eq!(c.to_string(), "+1k", "an exact quantity keeps its text");
    let mut d = q("-0.0001");
    assert!(!d.round_up(-3));
    assert_eq!(d.to_string(), "-1m", "rounding is away from zero");
}

#[test]
fn formats_and_constructors() {
    assert_eq!(q("1Ki").format(), Format::BinarySI);
    assert_eq!(q("1k").format(), Format::DecimalSI);
    assert_eq!(q("1e3").format(), Format::DecimalExponent);
    assert_eq!(q("0.5Ki").format(), Format::BinarySI);
    assert_eq!(
        Quantity::from_millis(1500, Format::DecimalSI).to_string(),
        "1500m"
    );
    assert_eq!(
        Quantity::from_i64(2 << 30, Format::BinarySI).to_string(),
        "2Gi"
    );
    // BinarySI values below 1024 print as DecimalSI.
    assert_eq!(Quantity::from_i64(1000, Format::BinarySI).to_string(), "1k");
    assert_eq!(
        Quantity::from_i64(5000, Format::DecimalSI).to_string(),
        "5k"
    );
    assert!(q("2").is_integer());
    assert!(!q("1500m").is_integer());
    assert_eq!(q("-3").sign(), -1);
    assert!("1Mi".parse::<Quantity>().is_ok());
}
