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

impl FromStr for TimeSpan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use std::time::Duration as D;
        let t = s.trim();
        let bad = || {
            format!(
                "{s:?} is not a duration (use \"00:05:00\", \"1.00:00:00\", \"30s\", \"5m\", \"250ms\" or seconds)"
            )
        };
        if t.contains(':') {
            // [d.]hh:mm:ss[.fff]
            let (days, rest) = match t.split_once('.') {
                Some((d, r)) if !d.contains(':') => (d.parse::<u64>().map_err(|_| bad())?, r),
                _ => (0, t),
            };
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3 {
                return Err(bad());
            }
            let h: u64 = parts[0].parse().map_err(|_| bad())?;
            let m: u64 = parts[1].parse().map_err(|_| bad())?;
            let secs: f64 = parts[2].parse().map_err(|_| bad())?;
            if h >= 24 || m >= 60 || !(0.0..60.0).contains(&secs) {
                return Err(bad());
            }
            let whole = days * 86_400 + h * 3600 + m * 60;
            return Ok(Self(D::from_secs(whole) + D::from_secs_f64(secs)));
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
        Ok(Self(D::from_secs_f64(secs)))
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
                    Ok(TimeSpan(std::time::Duration::from_secs_f64(v)))
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
