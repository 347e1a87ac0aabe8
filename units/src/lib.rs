//! The one parser for human-written quantities in qoelab: rates, sizes, durations, percentages,
//! and lists of bandwidth limits.
//!
//! Conventions (the classic confusions are decided once, here):
//!
//! | written | means | note |
//! |---|---|---|
//! | `bit`, `kbit`, `mbit`, `gbit`, `tbit` | bits per second, k = 1000 | as in tc; any letter case |
//! | `kibit`, `mibit`, `gibit`, `tibit` | bits per second, Ki = 1024 | as in tc |
//! | `bps`, `kbps`, `mbps`, `gbps`, `tbps` | **bytes** per second, k = 1000 | as in tc; lowercase only |
//! | `Mbps`, `MBps`, `Mb/s`, `MB/s` … | refused as ambiguous | say `5mbit` or `5mbps` |
//! | `b`, `kb`, `mb`, `gb` | bytes, k = 1000 | unlike tc, whose sizes use 1024 |
//! | `kib`, `mib`, `gib` | bytes, Ki = 1024 | |
//! | `us`, `ms`, `s`, `min`, `h` | durations | a bare `m` is refused (minutes or milli?) |
//! | `1%`, `0.5%` | percentages | the `%` is required |
//!
//! A number without a unit is refused for rates, durations and percentages (is `5` bits, bytes,
//! or megabits?); for sizes it means bytes. Every error names the value and the accepted forms.
//!
//! Not here: deciding whether a value is acceptable for a given use (zero rates, rates above a
//! parent's): callers check that and name their field.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the rate parser accepts, for error messages.
pub const RATE_FORMS: &str = "a number and a unit: bit, kbit, mbit, gbit, tbit (bits/s, k = 1000), \
     kibit, mibit, gibit (k = 1024), or bps, kbps, mbps, gbps (bytes/s, as in tc); e.g. 750kbit, \
     5mbit, 1.5gbit";
/// What the size parser accepts, for error messages.
pub const SIZE_FORMS: &str = "a number of bytes with an optional unit: b, kb, mb, gb (k = 1000) or \
     kib, mib, gib (k = 1024); e.g. 1600, 64kb, 1mib";
/// What the duration parser accepts, for error messages.
pub const DURATION_FORMS: &str = "a number and a unit: us, ms, s, min, h; e.g. 100ms, 1.5s, 2min";
/// What the percentage parser accepts, for error messages.
pub const PERCENT_FORMS: &str = "a number from 0 to 100 followed by %, e.g. 1% or 0.5%";

/// A value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not {what}: {hint}")]
pub struct UnitError {
    /// The text as given.
    pub value: String,
    /// What was expected, e.g. "a rate".
    pub what: &'static str,
    /// Why, and the accepted forms.
    pub hint: String,
}

fn error(value: &str, what: &'static str, hint: impl Into<String>) -> UnitError {
    UnitError {
        value: value.to_string(),
        what,
        hint: hint.into(),
    }
}

/// A non-negative decimal number kept exact: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    mantissa: u128,
    scale: u32,
}

impl Decimal {
    /// `self × factor`, rounded to the nearest integer; `None` on overflow of u64.
    fn times(self, factor: u128) -> Option<u64> {
        let divisor = 10u128.checked_pow(self.scale)?;
        let product = self.mantissa.checked_mul(factor)?;
        u64::try_from((product + divisor / 2) / divisor).ok()
    }

    fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }
}

/// Splits `text` into a decimal number and the unit after it (whitespace between is allowed).
fn split_number(text: &str) -> Option<(Decimal, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mantissa = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some((
        Decimal {
            mantissa,
            scale: fraction.len() as u32,
        },
        unit.trim(),
    ))
}

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rate(u64);

impl Rate {
    /// A rate of `bps` bits per second.
    pub const fn from_bps(bps: u64) -> Rate {
        Rate(bps)
    }

    /// Bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// Bytes per second, rounded down.
    pub const fn bytes_per_sec(self) -> u64 {
        self.0 / 8
    }
}

fn rate_factor(unit: &str) -> Result<u128, &'static str> {
    const BIT_UNITS: [(&str, u128); 9] = [
        ("bit", 1),
        ("kbit", 1_000),
        ("mbit", 1_000_000),
        ("gbit", 1_000_000_000),
        ("tbit", 1_000_000_000_000),
        ("kibit", 1 << 10),
        ("mibit", 1 << 20),
        ("gibit", 1 << 30),
        ("tibit", 1 << 40),
    ];
    const BYTE_UNITS: [(&str, u128); 5] = [
        ("bps", 8),
        ("kbps", 8_000),
        ("mbps", 8_000_000),
        ("gbps", 8_000_000_000),
        ("tbps", 8_000_000_000_000),
    ];
    let lower = unit.to_ascii_lowercase();
    if let Some((_, f)) = BIT_UNITS.iter().find(|(u, _)| *u == lower) {
        return Ok(*f);
    }
    if let Some((_, f)) = BYTE_UNITS.iter().find(|(u, _)| *u == unit) {
        return Ok(*f);
    }
    if BYTE_UNITS.iter().any(|(u, _)| *u == lower) || lower.ends_with("/s") {
        return Err(
            "ambiguous: write mbit (and kbit, gbit) for bits per second, or lowercase \
                    mbps (and kbps, gbps) for bytes per second as tc does",
        );
    }
    if unit.is_empty() {
        return Err("a unit is required");
    }
    Err("unknown unit")
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Rate, UnitError> {
        let (number, unit) =
            split_number(text).ok_or_else(|| error(text, "a rate", format!("use {RATE_FORMS}")))?;
        let factor = rate_factor(unit)
            .map_err(|why| error(text, "a rate", format!("{why}; use {RATE_FORMS}")))?;
        number
            .times(factor)
            .map(Rate)
            .ok_or_else(|| error(text, "a rate", "it is too large"))
    }
}

impl fmt::Display for Rate {
    /// The largest of bit, kbit, mbit, gbit, tbit that shows the rate exactly with at most
    /// three decimals, e.g. `1.5gbit`, `750kbit`, `123bit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 5] = [
            ("tbit", 1_000_000_000_000),
            ("gbit", 1_000_000_000),
            ("mbit", 1_000_000),
            ("kbit", 1_000),
            ("bit", 1),
        ];
        let (unit, factor) = UNITS
            .iter()
            .find(|(_, factor)| {
                self.0 >= *factor && (u128::from(self.0) * 1000).is_multiple_of(u128::from(*factor))
            })
            .copied()
            .unwrap_or(("bit", 1));
        let whole = self.0 / factor;
        let thousandths = (self.0 % factor) * 1000 / factor;
        if thousandths == 0 {
            write!(f, "{whole}{unit}")
        } else {
            let frac = format!("{thousandths:03}");
            write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'))
        }
    }
}

/// Rates serialize as integer bits per second (the API convention).
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

/// Rates deserialize from integer bits per second or from a string with a unit (`"5mbit"`).
impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bps(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected integer bits per second or a string with {RATE_FORMS}"
            ))
        })? {
            Raw::Bps(bps) => Ok(Rate(bps)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Size(u64);

impl Size {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Size {
        Size(bytes)
    }

    /// Bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Size, UnitError> {
        let fail = |why: &str| error(text, "a size", format!("{why}use {SIZE_FORMS}"));
        let (number, unit) = split_number(text).ok_or_else(|| fail(""))?;
        let factor: u128 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "kbit" | "mbit" | "bit" | "gbit" => return Err(fail("that is a rate unit; ")),
            _ => return Err(fail("unknown unit; ")),
        };
        number
            .times(factor)
            .map(Size)
            .ok_or_else(|| fail("it is too large; "))
    }
}

impl<'de> Deserialize<'de> for Size {
    /// From an integer number of bytes or a string with a unit (`"64kb"`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom(format!("expected {SIZE_FORMS}")))?
        {
            Raw::Bytes(bytes) => Ok(Size(bytes)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a duration such as `100ms`, `1.5s`, `2min`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let fail = |why: &str| error(text, "a duration", format!("{why}use {DURATION_FORMS}"));
    let (number, unit) = split_number(text).ok_or_else(|| fail(""))?;
    let nanos_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => return Err(fail("a unit is required; ")),
        "m" => return Err(fail("'m' is ambiguous (minutes or milliseconds?); ")),
        _ => return Err(fail("unknown unit; ")),
    };
    number
        .times(nanos_per_unit)
        .map(Duration::from_nanos)
        .ok_or_else(|| fail("it is too large; "))
}

/// Parses a percentage such as `1%` or `0.5%` into a fraction in [0, 1].
pub fn parse_percent(text: &str) -> Result<f64, UnitError> {
    let fail = |why: &str| error(text, "a percentage", format!("{why}use {PERCENT_FORMS}"));
    let (number, unit) = split_number(text).ok_or_else(|| fail(""))?;
    if unit != "%" {
        return Err(fail("the % sign is required; "));
    }
    let percent = number.to_f64();
    if percent > 100.0 {
        return Err(fail("it is above 100%; "));
    }
    Ok(percent / 100.0)
}

/// A duration written as a number of milliseconds or as a string with a unit (`"100ms"`,
/// `"1.5s"`); serializes as a number of milliseconds. For fields named `..._ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(Duration);

impl Millis {
    /// A span of `duration`.
    pub const fn from_duration(duration: Duration) -> Millis {
        Millis(duration)
    }

    /// A span of `ms` milliseconds.
    pub const fn from_ms(ms: u64) -> Millis {
        Millis(Duration::from_millis(ms))
    }

    /// The span as a [`Duration`].
    pub const fn duration(self) -> Duration {
        self.0
    }

    /// Milliseconds, with fractions.
    pub fn ms(self) -> f64 {
        self.0.as_secs_f64() * 1000.0
    }
}

impl FromStr for Millis {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Millis, UnitError> {
        parse_duration(text).map(Millis)
    }
}

impl fmt::Display for Millis {
    /// E.g. `100ms`, `0.25ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.ms())
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos().is_multiple_of(1_000_000) {
            serializer.serialize_u64(self.0.as_millis() as u64)
        } else {
            serializer.serialize_f64(self.ms())
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    /// From a number of milliseconds (integer or decimal, not negative) or a string with a unit.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
        let expected =
            || format!("expected a number of milliseconds or a string with {DURATION_FORMS}");
        match Number::deserialize(deserializer).map_err(|_| serde::de::Error::custom(expected()))? {
            Number::Int(ms) => Ok(Millis::from_ms(ms)),
            Number::Float(ms) if (0.0..1e12).contains(&ms) => {
                Ok(Millis(Duration::from_secs_f64(ms / 1000.0)))
            }
            Number::Float(_) => Err(serde::de::Error::custom(expected())),
            Number::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A percentage written as a number (`1` means 1%) or as a string with the sign (`"0.5%"`);
/// serializes as a number of percent. For fields named `..._percent`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    /// `percent` percent; `None` unless it is within 0 to 100.
    pub fn new(percent: f64) -> Option<Percent> {
        (0.0..=100.0).contains(&percent).then_some(Percent(percent))
    }

    /// The value in percent, 0 to 100.
    pub const fn percent(self) -> f64 {
        self.0
    }

    /// The value as a fraction, 0 to 1.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl FromStr for Percent {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Percent, UnitError> {
        parse_percent(text).map(|fraction| Percent(fraction * 100.0))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    /// From a number of percent (0 to 100) or a string such as `"1%"`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Percent, D::Error> {
        let expected = || format!("expected a number of percent or a string with {PERCENT_FORMS}");
        let percent = match Number::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom(expected()))?
        {
            Number::Int(p) => p as f64,
            Number::Float(p) => p,
            Number::Text(text) => return text.parse().map_err(serde::de::Error::custom),
        };
        Percent::new(percent).ok_or_else(|| serde::de::Error::custom(expected()))
    }
}

/// A number or a string with a unit, as written in JSON or TOML.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Float(f64),
    Text(String),
}

/// A bandwidth limit of a campaign: a rate, or no limit at all. Written as `{"rate": RATE}` or
/// `"unlimited"`; read also from a plain rate string such as `"2 mbit"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Shaped to this rate.
    Rate(Rate),
    /// Not shaped.
    Unlimited,
}

/// How a limit without a rate is written.
const UNLIMITED: &str = "unlimited";

/// `unlimited` (any case) or a rate with its unit.
impl FromStr for Limit {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Limit, UnitError> {
        if text.trim().eq_ignore_ascii_case(UNLIMITED) {
            Ok(Limit::Unlimited)
        } else {
            text.parse().map(Limit::Rate)
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl<'de> serde::de::Visitor<'de> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "\"unlimited\", a rate ({RATE_FORMS}) or {{\"rate\": RATE}}"
                )
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Limit, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Limit, A::Error> {
                let rate = match map.next_key::<String>()?.as_deref() {
                    Some("rate") => map.next_value::<Rate>()?,
                    Some(other) => {
                        return Err(serde::de::Error::unknown_field(other, &["rate"]));
                    }
                    None => return Err(serde::de::Error::missing_field("rate")),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(serde::de::Error::unknown_field(&extra, &["rate"]));
                }
                Ok(Limit::Rate(rate))
            }
        }
        deserializer.deserialize_any(LimitVisitor)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Rate(rate) => rate.fmt(f),
            Limit::Unlimited => f.write_str(UNLIMITED),
        }
    }
}

/// Parses a comma-separated list of limits, e.g. `0.75, 1.25, 2, 3, 5 mbit, unlimited`.
///
/// Numbers without a unit take the unit of the next item that has one, so `1, 2, 5 mbit` is
/// 1, 2 and 5 Mbit/s; a number with no unit anywhere after it is refused.
pub fn parse_limits(text: &str) -> Result<Vec<Limit>, UnitError> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.iter().all(|i| i.is_empty()) {
        return Err(error(
            text,
            "a list of limits",
            format!(
                "give at least one rate, e.g. '0.75, 1.25, 2, 5 mbit, unlimited'; rates are {RATE_FORMS}"
            ),
        ));
    }
    let mut limits = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if item.eq_ignore_ascii_case(UNLIMITED) {
            limits.push(Limit::Unlimited);
            continue;
        }
        let unit_given = split_number(item).is_some_and(|(_, unit)| !unit.is_empty());
        let spelled = if unit_given {
            item.to_string()
        } else {
            let unit = items[i + 1..]
                .iter()
                .filter_map(|later| split_number(later))
                .map(|(_, unit)| unit)
                .find(|unit| !unit.is_empty())
                .ok_or_else(|| {
                    error(
                        item,
                        "a rate",
                        format!("it has no unit and no later item gives one; use {RATE_FORMS}"),
                    )
                })?;
            format!("{item}{unit}")
        };
        limits.push(Limit::Rate(spelled.parse()?));
    }
    Ok(limits)
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub fn utc_minute(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let (h, m) = ((unix_s % 86_400) / 3600, (unix_s % 3600) / 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> u64 {
        text.parse::<Rate>().unwrap().bps()
    }

    #[test]
    fn times_are_civil_utc() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_minute(1_763_807_400), "2025-11-22 10:30 UTC");
    }

    #[test]
    fn bits_use_k_1000_and_any_case() {
        assert_eq!(rate("750kbit"), 750_000);
        assert_eq!(rate("5mbit"), 5_000_000);
        assert_eq!(rate("5Mbit"), 5_000_000);
        assert_eq!(rate("1.5gbit"), 1_500_000_000);
        assert_eq!(rate("100 gbit"), 100_000_000_000);
        assert_eq!(rate("1kibit"), 1024);
        assert_eq!(rate("0.75mbit"), 750_000);
        assert_eq!(
            rate("1.1mbit"),
            1_100_000,
            "decimals are exact, not floating point"
        );
    }

    #[test]
    fn lowercase_bps_is_bytes_as_in_tc() {
        assert_eq!(rate("2mbps"), 16_000_000);
        assert_eq!(rate("100bps"), 800);
        assert_eq!(rate("1kbps"), 8_000);
    }

    #[test]
    fn the_classic_confusions_are_refused() {
        for ambiguous in ["5Mbps", "5MBps", "5Mb/s", "5MB/s", "5mb/s"] {
            let err = ambiguous.parse::<Rate>().unwrap_err().to_string();
            assert!(
                err.contains("ambiguous") && err.contains(ambiguous),
                "{err}"
            );
        }
        let err = "5".parse::<Rate>().unwrap_err().to_string();
        assert!(
            err.contains("a unit is required") && err.contains("750kbit"),
            "{err}"
        );
        for bad in ["", "mbit", "5 furlongs", "-5mbit", "1.2.3mbit", "5e6bit"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} was accepted");
        }
        assert!(
            "99999999999tbit"
                .parse::<Rate>()
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn rates_display_in_the_largest_exact_unit_and_round_trip() {
        for (bps, text) in [
            (750_000, "750kbit"),
            (1_500_000_000, "1.5gbit"),
            (1_250_000, "1.25mbit"),
            (123, "123bit"),
            (0, "0bit"),
            (100_000_000_000, "100gbit"),
            (1_234_567, "1234.567kbit"),
        ] {
            assert_eq!(Rate::from_bps(bps).to_string(), text);
            assert_eq!(rate(text), bps);
        }
        assert_eq!(
            Rate::from_bps(u64::MAX)
                .to_string()
                .parse::<Rate>()
                .unwrap()
                .bps(),
            u64::MAX
        );
    }

    #[test]
    fn rates_serialize_as_integers_and_accept_strings() {
        let json = serde_json::to_string(&Rate::from_bps(5_000_000)).unwrap();
        assert_eq!(json, "5000000");
        let r: Rate = serde_json::from_str("\"5mbit\"").unwrap();
        assert_eq!(r.bps(), 5_000_000);
        let r: Rate = serde_json::from_str("750000").unwrap();
        assert_eq!(r.bps(), 750_000);
        let err = serde_json::from_str::<Rate>("\"5Mbps\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ambiguous"), "{err}");
        assert!(serde_json::from_str::<Rate>("-1").is_err());
    }

    #[test]
    fn sizes_use_k_1000_and_kib_1024() {
        let size = |t: &str| t.parse::<Size>().unwrap().bytes();
        assert_eq!(size("1600"), 1600);
        assert_eq!(size("1600b"), 1600);
        assert_eq!(size("64kb"), 64_000);
        assert_eq!(size("64KiB"), 65_536);
        assert_eq!(size("1.5mb"), 1_500_000);
        let err = "5mbit".parse::<Size>().unwrap_err().to_string();
        assert!(err.contains("rate unit"), "{err}");
        let s: Size = serde_json::from_str("\"2kib\"").unwrap();
        assert_eq!(s.bytes(), 2048);
    }

    #[test]
    fn durations_need_an_unambiguous_unit() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!(
            parse_duration("5m")
                .unwrap_err()
                .to_string()
                .contains("ambiguous")
        );
        assert!(
            parse_duration("5")
                .unwrap_err()
                .to_string()
                .contains("unit is required")
        );
    }

    #[test]
    fn percentages_need_the_sign_and_stay_in_range() {
        assert_eq!(parse_percent("1%").unwrap(), 0.01);
        assert_eq!(parse_percent("0.5 %").unwrap(), 0.005);
        assert!(
            parse_percent("0.01")
                .unwrap_err()
                .to_string()
                .contains("% sign")
        );
        assert!(parse_percent("150%").is_err());
    }

    #[test]
    fn millis_read_numbers_and_strings_and_write_milliseconds() {
        let m: Millis = serde_json::from_str("100").unwrap();
        assert_eq!(m.duration(), Duration::from_millis(100));
        let m: Millis = serde_json::from_str("0.5").unwrap();
        assert_eq!(m.duration(), Duration::from_micros(500));
        let m: Millis = serde_json::from_str("\"1.5s\"").unwrap();
        assert_eq!(m.duration(), Duration::from_millis(1500));
        assert_eq!(serde_json::to_string(&m).unwrap(), "1500");
        assert_eq!(
            serde_json::to_string(&Millis::from_duration(Duration::from_micros(250))).unwrap(),
            "0.25"
        );
        for bad in ["-1", "\"5m\"", "\"5\"", "true"] {
            assert!(
                serde_json::from_str::<Millis>(bad).is_err(),
                "{bad} was accepted"
            );
        }
        assert_eq!("20ms".parse::<Millis>().unwrap().to_string(), "20ms");
    }

    #[test]
    fn percents_read_numbers_and_strings() {
        let p: Percent = serde_json::from_str("1").unwrap();
        assert_eq!(p.fraction(), 0.01);
        let p: Percent = serde_json::from_str("\"0.5%\"").unwrap();
        assert_eq!(p.percent(), 0.5);
        assert_eq!(serde_json::to_string(&p).unwrap(), "0.5");
        for bad in ["101", "-1", "\"0.5\"", "\"150%\""] {
            assert!(
                serde_json::from_str::<Percent>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn limit_lists_share_a_trailing_unit() {
        let limits = parse_limits("0.75, 1.25, 2, 3, 5 mbit, unlimited").unwrap();
        let expected: Vec<Limit> = [750_000, 1_250_000, 2_000_000, 3_000_000, 5_000_000]
            .into_iter()
            .map(|bps| Limit::Rate(Rate::from_bps(bps)))
            .chain([Limit::Unlimited])
            .collect();
        assert_eq!(limits, expected);
        assert_eq!(
            parse_limits("500kbit, 2, 8 mbit").unwrap()[1],
            Limit::Rate(Rate::from_bps(2_000_000))
        );
        let err = parse_limits("1, 2").unwrap_err().to_string();
        assert!(err.contains("'1'") && err.contains("no unit"), "{err}");
        assert!(parse_limits(" , ").is_err());
        assert!(
            parse_limits("1, 5Mbps")
                .unwrap_err()
                .to_string()
                .contains("ambiguous")
        );
    }

    #[test]
    fn limits_read_from_json_as_written_or_as_plain_text() {
        let read = |json: &str| serde_json::from_str::<Limit>(json).map_err(|e| e.to_string());
        let two = Limit::Rate(Rate::from_bps(2_000_000));
        assert_eq!(read(r#""2 mbit""#), Ok(two));
        assert_eq!(read(r#"{"rate": "2mbit"}"#), Ok(two));
        assert_eq!(read(r#"{"rate": 2000000}"#), Ok(two));
        assert_eq!(read(r#""Unlimited""#), Ok(Limit::Unlimited));
        for limit in [two, Limit::Unlimited] {
            assert_eq!(read(&serde_json::to_string(&limit).unwrap()), Ok(limit));
        }
        let err = read(r#""5Mbps""#).unwrap_err();
        assert!(err.contains("ambiguous"), "{err}");
        let err = read("[1]").unwrap_err();
        assert!(err.contains("unlimited") && err.contains("kbit"), "{err}");
    }
}
