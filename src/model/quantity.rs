//! Kubernetes resource quantities (`128Mi`, `1.5G`, `500m`, `2e3`), ported from apimachinery's
//! `pkg/api/resource` (`quantity.go`, `amount.go`, `suffix.go`) as of 1.33.
//!
//! A [`Quantity`] is an exact decimal: an arbitrary-precision magnitude and a power of ten, never
//! a float. Parsing, comparison, rounding (`Value()` rounds up, away from zero), the canonical
//! string form (`1.5Gi` prints as `1536Mi`, `1.5` as `1500m`) and upstream's parse errors are
//! reproduced, including upstream's quirks (a quantity that was already canonical keeps the
//! exact text it was written with, so `+1k` prints as `+1k`).
//!
//! Where upstream overflows an `int64` and silently wraps or returns 0, this module saturates
//! at `i64::MAX`/`i64::MIN` instead.
//!
//! Pure: no IO, no tokio.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity is written back out; remembered from the suffix it was parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M` (powers of 1000)
    DecimalSI,
}

/// Why a string is not a quantity; the messages are upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Upstream `ErrFormatWrong`.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// Upstream `ErrNumeric`.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// Upstream `ErrSuffix`.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// An exact Kubernetes quantity.
///
/// Equality and ordering compare values, so `1Gi == 1024Mi` and `1 == 1000m`.
#[derive(Clone, Debug)]
pub struct Quantity {
    /// Whether the value is below zero (never set for zero).
    negative: bool,
    /// The magnitude without its decimal point.
    mantissa: BigUint,
    /// The value is `mantissa * 10^-scale` (the scale of Go's `inf.Dec`).
    scale: i32,
    /// The suffix family used when printing.
    format: Format,
    /// The exact input text, kept when upstream considers it canonical already.
    cached: Option<String>,
}

impl Quantity {
    /// Parses a quantity like upstream's `ParseQuantity` (after `UnmarshalJSON` trims whitespace).
    pub fn parse(input: &str) -> Result<Quantity, ParseError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseError::FormatWrong);
        }
        if s == "0" {
            let mut zero = Quantity::from_i64_scaled(0, 0, Format::DecimalSI);
            zero.cached = Some(s.to_owned());
            return Ok(zero);
        }
        let parts = parse_quantity_string(s)?;
        let (base, exponent, format) = interpret_suffix(parts.suffix).ok_or(ParseError::Suffix)?;

        // The fast path: the value fits an int64 with a decimal scale of at least 10^-9.
        let precision: i32;
        let mut go_scale: i32 = 0;
        let mut multiplier: i64 = 1;
        match format {
            Format::DecimalExponent | Format::DecimalSI => {
                go_scale = exponent;
                precision = 18 - (parts.num.len() + parts.denom.len()) as i32;
            }
            Format::BinarySI => {
                if exponent >= 0 && parts.denom.is_empty() {
                    multiplier = 1i64 << exponent;
                    precision =
                        15 - parts.num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
                } else {
                    precision = -1;
                }
            }
        }
        if precision >= 0 {
            go_scale -= parts.denom.len() as i32;
            if go_scale >= -9 {
                let shifted = format!("{}{}", parts.num, parts.denom);
                let value: i64 = shifted.parse().map_err(|_| ParseError::Numeric)?;
                if let Some(mut result) = value.checked_mul(multiplier) {
                    if !parts.positive {
                        result = -result;
                    }
                    let mut q = Quantity::from_i64_scaled(result, go_scale, format);
                    let canonical = match format {
                        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                        _ => {
                            go_scale % 3 == 0
                                && !shifted.ends_with("000")
                                && !shifted.starts_with('0')
                        }
                    };
                    if canonical {
                        q.cached = Some(s.to_owned());
                    }
                    return Ok(q);
                }
            }
        }

        // The slow path: an arbitrary-precision decimal, rounded up to a nano.
        let (mut mantissa, mut scale) = parse_decimal(parts.value).ok_or(ParseError::Numeric)?;
        if base == 10 {
            scale = scale.saturating_sub(exponent);
        } else {
            mantissa = mantissa.shl(exponent as u32);
        }
        let mut format = format;
        if !mantissa.is_zero() && scale > 9 {
            mantissa = mantissa.div_pow10_ceil((scale - 9) as u32);
            scale = 9;
        }
        let mut q = Quantity {
            negative: !parts.positive && !mantissa.is_zero(),
            mantissa,
            scale,
            format,
            cached: None,
        };
        if format == Format::BinarySI {
            let max = Quantity::from_i64_scaled(i64::MAX, 0, Format::BinarySI);
            if q.cmp_magnitude(&max) == Ordering::Greater {
                q.mantissa = BigUint::from_u64(i64::MAX as u64);
                q.scale = 0;
            }
            let one = Quantity::from_i64_scaled(1, 0, Format::BinarySI);
            if !q.mantissa.is_zero() && q.cmp_magnitude(&one) == Ordering::Less {
                format = Format::DecimalSI;
                q.format = format;
            }
        }
        Ok(q)
    }

    /// A quantity of `value * 10^scale` (Go's `int64Amount{value, scale}`), as
    /// `NewScaledQuantity` and friends build them.
    pub fn from_i64_scaled(value: i64, scale: i32, format: Format) -> Quantity {
        Quantity {
            negative: value < 0,
            mantissa: BigUint::from_u64(value.unsigned_abs()),
            scale: -scale,
            format,
            cached: None,
        }
    }

    /// Upstream `NewQuantity`.
    pub fn from_i64(value: i64, format: Format) -> Quantity {
        Quantity::from_i64_scaled(value, 0, format)
    }

    /// Upstream `NewMilliQuantity`.
    pub fn from_millis(millis: i64, format: Format) -> Quantity {
        Quantity::from_i64_scaled(millis, -3, format)
    }

    /// The suffix family this quantity prints with.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa.is_zero()
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        if self.mantissa.is_zero() {
            0
        } else if self.negative {
            -1
        } else {
            1
        }
    }

    /// Upstream `Value()`: the value rounded up (away from zero) to an integer. For memory and
    /// storage this is the number of bytes.
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// Upstream `MilliValue()`: `ceil(q * 1000)`. For cpu this is millicores.
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// Bytes, for memory and storage quantities (same as [`Quantity::value`]).
    pub fn to_bytes(&self) -> i64 {
        self.value()
    }

    /// Thousandths, for cpu quantities (same as [`Quantity::milli_value`]).
    pub fn to_millis(&self) -> i64 {
        self.milli_value()
    }

    /// Upstream `ScaledValue(scale)`: `ceil(q / 10^scale)`, rounded away from zero, saturating
    /// at the bounds of `i64`.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        if self.mantissa.is_zero() {
            return 0;
        }
        // value / 10^scale = mantissa * 10^-(self.scale + scale)
        let d = i64::from(self.scale) + i64::from(scale);
        let magnitude: Option<u64> = if d <= 0 {
            let up = (-d) as u64;
            if self.mantissa.digits() as u64 + up > 20 {
                None
            } else {
                self.mantissa.mul_pow10(up as u32).to_u64()
            }
        } else if d as u64 >= self.mantissa.digits() as u64 {
            Some(1)
        } else {
            self.mantissa.div_pow10_ceil(d as u32).to_u64()
        };
        match (magnitude, self.negative) {
            (Some(m), false) if m <= i64::MAX as u64 => m as i64,
            (Some(m), true) if m <= i64::MAX as u64 => -(m as i64),
            (_, false) => i64::MAX,
            (_, true) => i64::MIN,
        }
    }

    /// Compares with an integer, like upstream `CmpInt64`.
    pub fn cmp_i64(&self, value: i64) -> Ordering {
        self.cmp(&Quantity::from_i64(value, Format::DecimalSI))
    }

    /// Upstream `RoundUp(scale)`: rounds the value up (away from zero) to a multiple of
    /// `10^scale`; returns false if that lost precision. `SetDefaults_ResourceList` calls it
    /// with -3 (milli).
    pub fn round_up(&mut self, scale: i32) -> bool {
        let target = -scale;
        if self.scale <= target {
            // Already precise enough; Go's inf.Dec would rescale, which keeps the value.
            return true;
        }
        self.cached = None;
        if self.mantissa.is_zero() {
            self.scale = target;
            return true;
        }
        let shift = (self.scale - target) as u32;
        let rounded = self.mantissa.div_pow10_ceil(shift);
        let exact = rounded.mul_pow10(shift) == self.mantissa;
        self.mantissa = rounded;
        self.scale = target;
        exact
    }

    /// Whether the value is an integer (upstream checks `MilliValue() % 1000 == 0`).
    pub fn is_integer(&self) -> bool {
        self.milli_value() % 1000 == 0
    }

    /// The canonical form, ignoring any text kept from parsing.
    pub fn canonical(&self) -> String {
        if self.mantissa.is_zero() {
            return "0".to_owned();
        }
        let mut format = self.format;
        let mut rounded_bin: Option<BigUint> = None;
        if format == Format::BinarySI {
            if self.cmp_i64(-1024) == Ordering::Greater && self.cmp_i64(1024) == Ordering::Less {
                format = Format::DecimalSI;
            } else {
                let (rounded, exact) = self.rounded_to_integer();
                if exact {
                    rounded_bin = Some(rounded);
                } else {
                    format = Format::DecimalSI;
                }
            }
        }
        let sign = if self.negative { "-" } else { "" };
        match (format, rounded_bin) {
            (Format::BinarySI, Some(rounded)) => {
                let (amount, times) = rounded.remove_factors(1024);
                let suffix = match times {
                    1 => "Ki",
                    2 => "Mi",
                    3 => "Gi",
                    4 => "Ti",
                    5 => "Pi",
                    6 => "Ei",
                    _ => "",
                };
                format!("{sign}{amount}{suffix}")
            }
            _ => {
                let mut exponent = -i64::from(self.scale);
                let (mut amount, times) = self.mantissa.remove_factors(10);
                exponent += i64::from(times);
                while exponent % 3 != 0 {
                    amount = amount.mul_small(10);
                    exponent -= 1;
                }
                let suffix = if format == Format::DecimalExponent {
                    if exponent == 0 {
                        String::new()
                    } else {
                        format!("e{exponent}")
                    }
                } else {
                    // Upstream looks the suffix up in a table and prints none when it is missing.
                    match exponent {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        18 => "E",
                        _ => "",
                    }
                    .to_owned()
                };
                format!("{sign}{amount}{suffix}")
            }
        }
    }

    /// The magnitude rounded up to an integer, and whether that was exact.
    fn rounded_to_integer(&self) -> (BigUint, bool) {
        if self.scale <= 0 {
            (self.mantissa.mul_pow10((-self.scale) as u32), true)
        } else {
            let shift = self.scale as u32;
            let rounded = self.mantissa.div_pow10_ceil(shift);
            let exact = rounded.mul_pow10(shift) == self.mantissa;
            (rounded, exact)
        }
    }

    /// Compares absolute values.
    fn cmp_magnitude(&self, other: &Quantity) -> Ordering {
        match (self.mantissa.is_zero(), other.mantissa.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        // The position of the leading digit decides unless both are equal.
        let lead_a = self.mantissa.digits() as i64 - i64::from(self.scale);
        let lead_b = other.mantissa.digits() as i64 - i64::from(other.scale);
        if lead_a != lead_b {
            return lead_a.cmp(&lead_b);
        }
        // Same leading position: align the scales; the shift is bounded by the digit counts.
        match self.scale.cmp(&other.scale) {
            Ordering::Equal => self.mantissa.cmp(&other.mantissa),
            Ordering::Greater => {
                let shift = (self.scale - other.scale) as u32;
                self.mantissa.cmp(&other.mantissa.mul_pow10(shift))
            }
            Ordering::Less => {
                let shift = (other.scale - self.scale) as u32;
                self.mantissa.mul_pow10(shift).cmp(&other.mantissa)
            }
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.sign(), other.sign()) {
            (a, b) if a != b => a.cmp(&b),
            (0, _) => Ordering::Equal,
            (1, _) => self.cmp_magnitude(other),
            _ => other.cmp_magnitude(self),
        }
    }
}

impl fmt::Display for Quantity {
    /// Upstream `String()`: the text it was parsed from if that was canonical, else the
    /// canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(text) => f.write_str(text),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

/// The pieces of a quantity string, as upstream's `parseQuantityString` splits it.
struct QuantityParts<'a> {
    positive: bool,
    /// The number as written, with its sign (`str[0:pos]`).
    value: &'a str,
    /// The integer digits without leading zeros (`"0"` if none).
    num: &'a str,
    /// The fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream `parseQuantityString`, a scanner that is more permissive than its error message.
fn parse_quantity_string(s: &str) -> Result<QuantityParts<'_>, ParseError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut parts = QuantityParts {
        positive: true,
        value: "",
        num: "",
        denom: "",
        suffix: "",
    };
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            parts.positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    // Strip leading zeros.
    loop {
        if pos >= end {
            parts.num = "0";
            parts.value = "0";
            return Ok(parts);
        }
        if b[pos] == b'0' {
            pos += 1;
        } else {
            break;
        }
    }
    // The integer digits.
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        parts.num = &s[start..end];
        parts.value = s;
        return Ok(parts);
    }
    parts.num = if pos == start { "0" } else { &s[start..pos] };
    // The fraction digits.
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        parts.denom = &s[start..pos];
        if pos >= end {
            parts.value = s;
            return Ok(parts);
        }
    }
    parts.value = &s[..pos];
    // The suffix: letters, then an optional sign and digits.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(ParseError::FormatWrong);
    }
    parts.suffix = &s[suffix_start..end];
    Ok(parts)
}

/// Upstream `suffixer.interpret`: base, exponent and format of a suffix.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            // strconv.ParseInt accepts a leading sign; Go then truncates to int32.
            let parsed: i64 = s[1..].parse().ok()?;
            Some((10, parsed as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Reads `[+-]?digits[.digits]` like Go's `inf.Dec.SetString`: the magnitude and the scale.
fn parse_decimal(value: &str) -> Option<(BigUint, i32)> {
    let body = value.trim_start_matches(['+', '-']);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mantissa = BigUint::from_decimal(&digits)?;
    Some((mantissa, frac.len() as i32))
}

/// A small arbitrary-precision unsigned integer: little-endian base-2^32 limbs, no leading
/// zero limbs. Only what quantities need.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    fn from_u64(v: u64) -> BigUint {
        let mut n = BigUint {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        n.trim();
        n
    }

    fn from_decimal(digits: &str) -> Option<BigUint> {
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut n = BigUint { limbs: Vec::new() };
        for chunk in digits.as_bytes().chunks(9) {
            let text = std::str::from_utf8(chunk).ok()?;
            let value: u32 = text.parse().ok()?;
            n = n.mul_small(10u32.pow(chunk.len() as u32)).add_small(value);
        }
        Some(n)
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn to_u64(&self) -> Option<u64> {
        match self.limbs.as_slice() {
            [] => Some(0),
            [a] => Some(u64::from(*a)),
            [a, b] => Some(u64::from(*a) | (u64::from(*b) << 32)),
            _ => None,
        }
    }

    fn mul_small(&self, m: u32) -> BigUint {
        let mut carry = 0u64;
        let mut limbs = Vec::with_capacity(self.limbs.len() + 1);
        for &l in &self.limbs {
            let v = u64::from(l) * u64::from(m) + carry;
            limbs.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
        let mut n = BigUint { limbs };
        n.trim();
        n
    }

    fn add_small(&self, a: u32) -> BigUint {
        let mut limbs = self.limbs.clone();
        let mut carry = u64::from(a);
        for l in limbs.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = u64::from(*l) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
        BigUint { limbs }
    }

    /// Quotient and remainder of a division by a small number.
    fn divrem_small(&self, d: u32) -> (BigUint, u32) {
        let mut rem = 0u64;
        let mut limbs = vec![0u32; self.limbs.len()];
        for i in (0..self.limbs.len()).rev() {
            let cur = (rem << 32) | u64::from(self.limbs[i]);
            limbs[i] = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        let mut n = BigUint { limbs };
        n.trim();
        (n, rem as u32)
    }

    fn mul_pow10(&self, k: u32) -> BigUint {
        let mut n = self.clone();
        let mut left = k;
        while left > 0 && !n.is_zero() {
            let step = left.min(9);
            n = n.mul_small(10u32.pow(step));
            left -= step;
        }
        n
    }

    /// `ceil(self / 10^k)`.
    fn div_pow10_ceil(&self, k: u32) -> BigUint {
        let mut n = self.clone();
        let mut inexact = false;
        let mut left = k;
        while left > 0 && !n.is_zero() {
            let step = left.min(9);
            let (q, r) = n.divrem_small(10u32.pow(step));
            inexact |= r != 0;
            n = q;
            left -= step;
        }
        if left > 0 && !self.is_zero() {
            inexact = true;
        }
        if inexact { n.add_small(1) } else { n }
    }

    /// Multiplies by `2^bits`.
    fn shl(&self, bits: u32) -> BigUint {
        let mut n = self.clone();
        let mut left = bits;
        while left > 0 {
            let step = left.min(31);
            n = n.mul_small(1u32 << step);
            left -= step;
        }
        n
    }

    /// Divides out `base` as often as it divides evenly (upstream `removeInt64Factors`).
    fn remove_factors(&self, base: u32) -> (BigUint, u32) {
        let mut n = self.clone();
        let mut times = 0;
        loop {
            if n.to_u64().is_some_and(|v| v < u64::from(base)) {
                break;
            }
            let (q, r) = n.divrem_small(base);
            if r != 0 {
                break;
            }
            n = q;
            times += 1;
        }
        (n, times)
    }

    /// The number of decimal digits (1 for zero).
    fn digits(&self) -> usize {
        self.to_string().len()
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BigUint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut chunks = Vec::new();
        let mut n = self.clone();
        while !n.is_zero() {
            let (q, r) = n.divrem_small(1_000_000_000);
            chunks.push(r);
            n = q;
        }
        let mut out = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        while let Some(c) = chunks.pop() {
            out.push_str(&format!("{c:09}"));
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests;
