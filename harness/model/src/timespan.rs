//! Durations written the Exchange way: the .NET `TimeSpan` rendering (`00:05:00`, `2.00:00:00`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the Exchange way (`00:05:00`, `1.00:00:00`, `00:00:30.500`), with a unit
/// (`250ms`, `30s`, `5m`, `2h`, `1d`) or as a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeSpan(pub std::time::Duration);

impl TimeSpan {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// Whole seconds (short form).
    pub const fn secs(s: u64) -> Self {
        Self::from_secs(s)
    }

    /// Whole minutes.
    pub const fn minutes(m: u64) -> Self {
        Self::from_secs(m * 60)
    }

    /// Whole hours.
    pub const fn hours(h: u64) -> Self {
        Self::from_secs(h * 3600)
    }

    /// Whole days.
    pub const fn days(d: u64) -> Self {
        Self::from_secs(d * 86_400)
    }

    /// As `time::Duration` for arithmetic with `OffsetDateTime`.
    pub fn to_time(self) -> time::Duration {
        time::Duration::try_from(self.0).unwrap_or(time::Duration::MAX)
    }
}

impl From<std::time::Duration> for TimeSpan {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

/// The .NET `TimeSpan` rendering Exchange shows: `[d.]hh:mm:ss[.fff]` (`00:10:00`, `2.00:00:00`).
impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
        if d > 0 {
            write!(f, "{d}.")?;
        }
        write!(f, "{h:02}:{m:02}:{sec:02}")?;
        let ms = self.0.subsec_millis();
        if ms > 0 {
            write!(f, ".{ms:03}")?;
        }
        Ok(())
    }
}

/// A text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a duration (use \"00:05:00\", \"1.00:00:00\", \"30s\", \"5m\", \"250ms\" or seconds)"
)]
pub struct BadTimeSpan {
    /// The text as given.
    pub text: String,
}

impl TimeSpan {
    /// Reads a duration the way .NET's `TimeSpan.Parse` reads what Exchange's listings print:
    /// `[d.]hh:mm[:ss[.fffffff]]` (`00:10:00`, `2.00:00:00`, `00:00:05.5000000`), or a whole
    /// number of days (`2`). Unlike [`FromStr`], a bare number is days, and units are refused.
    /// Negative spans are refused too: no connector or queue setting can be negative.
    pub fn from_dotnet(s: &str) -> Result<Self, BadTimeSpan> {
        let t = s.trim();
        let span = if t.contains(':') {
            parse_clock(t)
        } else {
            t.parse::<u64>().ok().map(Self::days)
        };
        span.ok_or_else(|| BadTimeSpan {
            text: s.to_string(),
        })
    }

    /// From a `time::Duration`; `None` when it is negative.
    pub fn from_time(d: time::Duration) -> Option<Self> {
        std::time::Duration::try_from(d).ok().map(Self)
    }
}

/// `[d.]hh:mm[:ss[.f...]]` with hours below 24 and minutes and seconds below 60; up to nine
/// fraction digits count (nanoseconds), further digits must still be digits.
fn parse_clock(t: &str) -> Option<TimeSpan> {
    use std::time::Duration as D;
    let (days, clock) = match t.split_once('.') {
        Some((d, rest)) if !d.contains(':') => (digits(d)?, rest),
        _ => (0, t),
    };
    let mut parts = clock.split(':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let (sec, frac) = match parts.next() {
        Some(sec) => sec.split_once('.').unwrap_or((sec, "")),
        None => ("0", ""),
    };
    let sec = digits(sec)?;
    if parts.next().is_some() || h >= 24 || m >= 60 || sec >= 60 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    let whole = days
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + sec)?;
    Some(TimeSpan(D::new(whole, nanos)))
}

/// A non-empty run of ASCII digits as a number.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The lab's form: the .NET rendering (`00:05:00`, `1.00:00:00`, `00:00:30.500`; `hh:mm` as .NET
/// reads it), a number with a unit (`250ms`, `30s`, `5m`/`5min`, `2h`, `1d`) or a bare number of
/// seconds.
impl FromStr for TimeSpan {
    type Err = BadTimeSpan;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use std::time::Duration as D;
        let t = s.trim();
        let bad = || BadTimeSpan {
            text: s.to_string(),
        };
        if t.contains(':') {
            return parse_clock(t).ok_or_else(bad);
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        if !n.is_finite() || n < 0.0 {
            return Err(bad());
        }
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86_400.0,
            _ => return Err(bad()),
        };
        D::try_from_secs_f64(secs).map(Self).map_err(|_| bad())
    }
}

impl Serialize for TimeSpan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TimeSpan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TimeSpan;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"00:05:00\", \"30s\" or a number of seconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeSpan, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimeSpan, E> {
                u64::try_from(v)
                    .map(TimeSpan::from_secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimeSpan, E> {
                Ok(TimeSpan::from_secs(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TimeSpan, E> {
                if v.is_finite() && v >= 0.0 {
                    std::time::Duration::try_from_secs_f64(v)
                        .map(TimeSpan)
                        .map_err(|_| E::custom(format!("{v} seconds is out of range")))
                } else {
                    Err(E::custom("a duration must be a non-negative number"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_listing_forms() {
        let p = |s: &str| TimeSpan::from_dotnet(s).map(|t| t.0);
        assert_eq!(p("00:10:00"), Ok(std::time::Duration::from_secs(600)));
        assert_eq!(p("1.00:00:00"), Ok(std::time::Duration::from_secs(86_400)));
        assert_eq!(p("2"), Ok(std::time::Duration::from_secs(2 * 86_400)));
        assert_eq!(p("00:30"), Ok(std::time::Duration::from_secs(1800)));
        assert_eq!(
            p("00:00:05.5000000"),
            Ok(std::time::Duration::from_millis(5500))
        );
        assert_eq!(
            p("00:00:00.1234567891"),
            Ok(std::time::Duration::from_nanos(123_456_789))
        );
        for bad in [
            "",
            "-00:10:00",
            "30s",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "1:2:3:4",
            "00:00:0x",
            "00:00:01.5a",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert_eq!(TimeSpan::from_time(time::Duration::minutes(-1)), None);
        assert_eq!(
            TimeSpan::from_time(time::Duration::minutes(10)).map(|t| t.to_string()),
            Some("00:10:00".to_string())
        );
    }

    #[test]
    fn absurd_numbers_are_errors_not_panics() {
        assert!("99999999999999999999999".parse::<TimeSpan>().is_err());
        assert!("1e300".parse::<TimeSpan>().is_err());
        assert!("99999999999999999999999d".parse::<TimeSpan>().is_err());
        let v: Result<TimeSpan, _> = serde_json::from_str("1e300");
        assert!(v.is_err());
    }

    #[test]
    fn lab_forms_keep_their_meaning() {
        let p = |s: &str| s.parse::<TimeSpan>().map(|t| t.0.as_millis());
        assert_eq!(p("30"), Ok(30_000));
        assert_eq!(p("250ms"), Ok(250));
        assert_eq!(p("5m"), Ok(300_000));
        assert_eq!(p("00:00:30.500"), Ok(30_500));
        assert_eq!(p("1.02:03:04"), Ok(93_784_000));
        assert_eq!(
            "ten".parse::<TimeSpan>().unwrap_err().to_string(),
            "\"ten\" is not a duration (use \"00:05:00\", \"1.00:00:00\", \"30s\", \"5m\", \"250ms\" or seconds)"
        );
    }

    #[test]
    fn exchange_forms_and_units() {
        assert_eq!(
            "00:10:00".parse::<TimeSpan>().unwrap(),
            TimeSpan::minutes(10)
        );
        assert_eq!("2.00:00:00".parse::<TimeSpan>().unwrap(), TimeSpan::days(2));
        assert_eq!(
            "1.02:03:04".parse::<TimeSpan>().unwrap().to_string(),
            "1.02:03:04"
        );
        assert_eq!("10".parse::<TimeSpan>().unwrap(), TimeSpan::secs(10));
        assert_eq!("5m".parse::<TimeSpan>().unwrap().to_string(), "00:05:00");
        assert!("00:61:00".parse::<TimeSpan>().is_err());
        assert!("25:00:00".parse::<TimeSpan>().is_err());
        assert!("ten".parse::<TimeSpan>().is_err());
    }
}
