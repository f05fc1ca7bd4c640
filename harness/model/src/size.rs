//! Byte sizes written the Exchange way: `35 MB (36,700,160 bytes)`, `Unlimited`.
//!
//! Exchange's `ByteQuantifiedSize` has two textual forms that the lab meets: what an admin types
//! (`Set-SendConnector -MaxMessageSize 25MB`, whole units) and what a listing prints
//! (`Get-SendConnector`, `Get-Message`: up to three decimals and the byte count in parentheses).
//! [`ByteSize`] parses and writes both: [`ByteSize::parse_setting`] / [`fmt::Display`] for the
//! first, [`ByteSize::parse_listing`] / [`ByteSize::display_listing`] for the second.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size or a size limit: a number of bytes, or `Unlimited`.
///
/// Serialized as the setting text (`"35 MB (36,700,160 bytes)"`, `"Unlimited"`); deserialized
/// from that text, any form [`ByteSize::parse_setting`] reads, or a plain number of bytes. A
/// listing row that wants the tagged JSON form (`"unlimited"`, `{"bytes": 36700160}`) uses
/// [`tagged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteSize {
    /// No limit.
    Unlimited,
    /// This many bytes.
    Bytes(u64),
}

/// A size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("size {value:?} is not a byte quantity (`35 MB`, `36700160`, `unlimited`)")]
pub struct BadByteSize {
    /// The text as given.
    pub value: String,
}

const KB: u64 = 1 << 10;
const MB: u64 = 1 << 20;
const GB: u64 = 1 << 30;

impl ByteSize {
    /// `n` megabytes (of 1,048,576 bytes).
    pub const fn mb(n: u64) -> Self {
        Self::Bytes(n * MB)
    }

    /// The number of bytes (`None`: unlimited).
    pub const fn bytes(self) -> Option<u64> {
        match self {
            Self::Unlimited => None,
            Self::Bytes(n) => Some(n),
        }
    }

    /// Whether `size` bytes fit under this limit.
    pub fn allows(self, size: u64) -> bool {
        self.bytes().is_none_or(|max| size <= max)
    }

    /// Parses a size the way an admin or a scenario writes it: `25MB`, `35 MB`, `36700160`,
    /// `Unlimited`, or the setting text `35 MB (36,700,160 bytes)` (the count in parentheses
    /// wins). Units B, KB, MB, GB (powers of 1024), whole numbers only.
    ///
    /// # Errors
    /// Anything else, or a size past `u64`.
    pub fn parse_setting(s: &str) -> Result<Self, BadByteSize> {
        let bad = || BadByteSize {
            value: s.to_string(),
        };
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(Self::Unlimited);
        }
        if let Some((_, rest)) = t.split_once('(') {
            let digits: String = rest.chars().take_while(|c| *c != ' ').collect();
            let n: u64 = digits.replace(',', "").parse().map_err(|_| bad())?;
            return Ok(Self::Bytes(n));
        }
        let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t, ""),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mul: u64 = match unit.to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" => KB,
            "MB" => MB,
            "GB" => GB,
            _ => return Err(bad()),
        };
        Ok(Self::Bytes(n.checked_mul(mul).ok_or_else(bad)?))
    }

    /// Parses a size as a listing prints it: `35 MB (36,700,160 bytes)`, `10.01 KB (10,250
    /// bytes)`, `Unlimited`, a grouped count (`36,700,160`), or a number and a unit with
    /// decimals (`10.5 MB`, `10,5 MB`). `None` when it is none of these.
    pub fn parse_listing(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Some(Self::Unlimited);
        }
        if let Some(open) = t.rfind('(') {
            let inner = t[open + 1..].trim_end_matches(')');
            let digits = inner.split_whitespace().next()?;
            return parse_grouped(digits).map(Self::Bytes);
        }
        if let Some(n) = parse_grouped(t) {
            return Some(Self::Bytes(n));
        }
        let mut parts = t.split_whitespace();
        let n: f64 = parts.next()?.replace(',', ".").parse().ok()?;
        let mult = match parts.next()?.to_ascii_uppercase().as_str() {
            "B" => 1,
            "KB" => KB,
            "MB" => MB,
            "GB" => GB,
            _ => return None,
        };
        Some(Self::Bytes((n * mult as f64).round() as u64))
    }

    /// The listing's form: the largest unit with up to three decimals, then the exact count
    /// (`35 MB (36,700,160 bytes)`, `10.01 KB (10,250 bytes)`, `Unlimited`).
    pub fn display_listing(self) -> String {
        let Self::Bytes(n) = self else {
            return "Unlimited".to_string();
        };
        let (value, unit) = if n >= GB {
            (n as f64 / GB as f64, "GB")
        } else if n >= MB {
            (n as f64 / MB as f64, "MB")
        } else if n >= KB {
            (n as f64 / KB as f64, "KB")
        } else {
            (n as f64, "B")
        };
        let shown = if unit == "B" {
            format!("{n}")
        } else {
            let s = format!("{value:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        format!("{shown} {unit} ({} bytes)", group_thousands(n))
    }
}

/// The setting's form: the largest unit the size is a whole number of, then the exact count
/// (`35 MB (36,700,160 bytes)`, `10250 B (10,250 bytes)`, `Unlimited`).
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self::Bytes(b) = *self else {
            return f.write_str("Unlimited");
        };
        let (n, unit) = if b >= GB && b % GB == 0 {
            (b / GB, "GB")
        } else if b >= MB && b % MB == 0 {
            (b / MB, "MB")
        } else if b >= KB && b % KB == 0 {
            (b / KB, "KB")
        } else {
            (b, "B")
        };
        write!(f, "{n} {unit} ({} bytes)", group_thousands(b))
    }
}

impl FromStr for ByteSize {
    type Err = BadByteSize;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_setting(s)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Self::Bytes(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// `36700160` as `36,700,160`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count written with group separators (`36,700,160`, `36.700.160`, `36 700 160`).
fn parse_grouped(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for c in t.chars() {
        match c {
            '0'..='9' => n = n.checked_mul(10)?.checked_add(u64::from(c as u8 - b'0'))?,
            ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'' => {}
            _ => return None,
        }
    }
    Some(n)
}

/// `#[serde(default, with = "hybridlab_model::size::tagged")]` for an `Option<ByteSize>` kept in
/// the tagged JSON form: `"unlimited"`, `{"bytes": 36700160}`, or `null`.
pub mod tagged {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ByteSize;

    /// The tagged form of one size.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Tagged {
        Unlimited,
        Bytes(u64),
    }

    /// Writes `value` in the tagged form.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(value: &Option<ByteSize>, s: S) -> Result<S::Ok, S::Error> {
        value
            .map(|v| match v {
                ByteSize::Unlimited => Tagged::Unlimited,
                ByteSize::Bytes(n) => Tagged::Bytes(n),
            })
            .serialize(s)
    }

    /// Reads the tagged form.
    ///
    /// # Errors
    /// Anything but `"unlimited"`, `{"bytes": n}` or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteSize>, D::Error> {
        Ok(Option::<Tagged>::deserialize(d)?.map(|t| match t {
            Tagged::Unlimited => ByteSize::Unlimited,
            Tagged::Bytes(n) => ByteSize::Bytes(n),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_forms() {
        assert_eq!(ByteSize::mb(35).to_string(), "35 MB (36,700,160 bytes)");
        assert_eq!(
            ByteSize::Bytes(10_250).to_string(),
            "10250 B (10,250 bytes)"
        );
        assert_eq!(ByteSize::Unlimited.to_string(), "Unlimited");
        for (text, size) in [
            ("35 MB (36,700,160 bytes)", ByteSize::mb(35)),
            ("25MB", ByteSize::mb(25)),
            ("25 mb", ByteSize::mb(25)),
            ("36700160", ByteSize::Bytes(36_700_160)),
            ("2 GB", ByteSize::Bytes(2 * GB)),
            ("Unlimited", ByteSize::Unlimited),
        ] {
            assert_eq!(text.parse::<ByteSize>().unwrap(), size, "{text}");
        }
        for bad in ["12 parsecs", "", "MB", "1.5 MB", "99999999999999999999 GB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(
            "x".parse::<ByteSize>().unwrap_err().to_string(),
            "size \"x\" is not a byte quantity (`35 MB`, `36700160`, `unlimited`)"
        );
        assert!(ByteSize::mb(1).allows(MB) && !ByteSize::mb(1).allows(MB + 1));
        assert!(ByteSize::Unlimited.allows(u64::MAX));
    }

    #[test]
    fn listing_forms() {
        assert_eq!(
            ByteSize::parse_listing("35 MB (36,700,160 bytes)"),
            Some(ByteSize::Bytes(36_700_160))
        );
        assert_eq!(
            ByteSize::parse_listing("Unlimited"),
            Some(ByteSize::Unlimited)
        );
        assert_eq!(
            ByteSize::parse_listing("10 MB"),
            Some(ByteSize::Bytes(10_485_760))
        );
        assert_eq!(
            ByteSize::parse_listing("36,700,160"),
            Some(ByteSize::Bytes(36_700_160))
        );
        assert_eq!(ByteSize::parse_listing("ten MB"), None);
        assert_eq!(
            ByteSize::Bytes(36_700_160).display_listing(),
            "35 MB (36,700,160 bytes)"
        );
        assert_eq!(
            ByteSize::Bytes(10_250).display_listing(),
            "10.01 KB (10,250 bytes)"
        );
        assert_eq!(ByteSize::Unlimited.display_listing(), "Unlimited");
        for n in [0, 1, 1023, 1024, 10_250, 36_700_160, 5 * GB + 3] {
            let b = ByteSize::Bytes(n);
            assert_eq!(ByteSize::parse_listing(&b.display_listing()), Some(b));
            assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }
    }

    #[test]
    fn serde_forms() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Setting {
            size: ByteSize,
        }
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Row {
            #[serde(default, with = "tagged")]
            size: Option<ByteSize>,
        }
        let s: Setting = toml::from_str("size = \"25 MB\"").unwrap();
        assert_eq!(s.size, ByteSize::mb(25));
        let s: Setting = toml::from_str("size = 2000000").unwrap();
        assert_eq!(s.size, ByteSize::Bytes(2_000_000));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"size":"2000000 B (2,000,000 bytes)"}"#
        );
        assert!(toml::from_str::<Setting>("size = \"lots\"").is_err());
        for (row, json) in [
            (
                Row {
                    size: Some(ByteSize::Bytes(7)),
                },
                r#"{"size":{"bytes":7}}"#,
            ),
            (
                Row {
                    size: Some(ByteSize::Unlimited),
                },
                r#"{"size":"unlimited"}"#,
            ),
            (Row { size: None }, r#"{"size":null}"#),
        ] {
            assert_eq!(serde_json::to_string(&row).unwrap(), json);
            assert_eq!(serde_json::from_str::<Row>(json).unwrap(), row);
        }
        assert_eq!(
            serde_json::from_str::<Row>("{}").unwrap(),
            Row { size: None }
        );
    }
}
