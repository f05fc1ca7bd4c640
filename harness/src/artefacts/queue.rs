//! `Get-Queue` and `Get-Message` snapshots, and the `LastError` field they carry.
//!
//! `LastError` has the shape `[{LED=<detail>};{MSG=<message detail>};{FQDN=<host>};{IP=<ip>};{LRT=<time>}]`
//! (exchange-hybrid.md 5.6): split on `};{`, strip `[{` and `}]`, each item `KEY=value`; a value may
//! contain `;` and `->` but not `};{`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::exchange::{DeliveryType, QueueStatus};

/// A queue's or message's `LastError`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LastError {
    /// `LED`: the last error detail, the full reply or the transport's wrapper
    /// (`451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out`).
    pub led: String,
    /// `MSG`: message-level detail, often empty.
    pub msg: String,
    /// `FQDN`: the remote host name.
    pub fqdn: String,
    /// `IP`: the remote address.
    pub ip: String,
    /// `LRT`: last retry time in the server's culture format (`5/2/2019 6:32:14 AM`).
    pub lrt: String,
}

impl LastError {
    /// Parses the bracketed form. Returns `None` when `s` is not in that shape (a plain text
    /// LastError, as some older builds show, is returned as `led` only by [`LastError::parse_lenient`]).
    pub fn parse(s: &str) -> Option<Self> {
        let inner = s.trim().strip_prefix("[{")?.strip_suffix("}]")?;
        let mut le = Self::default();
        let mut any = false;
        for item in inner.split("};{") {
            let (k, v) = item.split_once('=')?;
            match k.trim().to_ascii_uppercase().as_str() {
                "LED" => le.led = v.to_string(),
                "MSG" => le.msg = v.to_string(),
                "FQDN" => le.fqdn = v.to_string(),
                "IP" => le.ip = v.to_string(),
                "LRT" => le.lrt = v.to_string(),
                _ => continue,
            }
            any = true;
        }
        any.then_some(le)
    }

    /// Like [`LastError::parse`], but any other non-empty text becomes the `led`.
    pub fn parse_lenient(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        Self::parse(t).or_else(|| {
            Some(Self {
                led: t.to_string(),
                ..Self::default()
            })
        })
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{{LED={}}};{{MSG={}}};{{FQDN={}}};{{IP={}}};{{LRT={}}}]",
            self.led, self.msg, self.fqdn, self.ip, self.lrt
        )
    }
}

/// Renders a time the way an en-US server shows it in `Get-Queue` and `LRT`: `5/2/2019 6:32:14 AM`.
pub fn en_us_datetime(t: OffsetDateTime) -> String {
    let (h12, ampm) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        u8::from(t.month()),
        t.day(),
        t.year(),
        h12,
        t.minute(),
        t.second(),
        ampm
    )
}

/// One delivery queue as `Get-Queue | Format-List` shows it (the fields the lab models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// `SERVER\<n>`.
    pub identity: String,
    /// How the next hop is reached.
    pub delivery_type: DeliveryType,
    /// Active, Ready, Retry...
    pub status: QueueStatus,
    /// Messages in the queue.
    pub message_count: u32,
    /// The next hop (`contoso.mail.onmicrosoft.com`).
    pub next_hop_domain: String,
    /// The send connector's TlsDomain, when set.
    pub tls_domain: Option<String>,
    /// The send connector's name (Exchange shows its GUID as NextHopConnector).
    pub next_hop_connector: Option<String>,
    /// The last error, if any.
    pub last_error: Option<LastError>,
    /// Retries so far.
    pub retry_count: u32,
    /// First retry time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_retry_time: Option<OffsetDateTime>,
    /// Last retry time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_retry_time: Option<OffsetDateTime>,
    /// Next retry time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_time: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_round_trips() {
        let s = "[{LED=451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out};{MSG=};{FQDN=tenant-mail-onmicrosoft-com.mail.protection.outlook.com};{IP=104.47.10.36};{LRT=5/2/2019 6:32:14 AM}]";
        let le = LastError::parse(s).unwrap();
        assert_eq!(
            le.led,
            "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
        );
        assert_eq!(le.ip, "104.47.10.36");
        assert_eq!(le.to_string(), s);
        assert!(LastError::parse("421 4.4.1 Connection timed out").is_none());
        assert_eq!(
            LastError::parse_lenient("421 4.4.1 Connection timed out")
                .unwrap()
                .led,
            "421 4.4.1 Connection timed out"
        );
    }

    #[test]
    fn en_us_dates() {
        assert_eq!(
            en_us_datetime(time::macros::datetime!(2019-05-02 06:32:14 UTC)),
            "5/2/2019 6:32:14 AM"
        );
        assert_eq!(
            en_us_datetime(time::macros::datetime!(2019-12-31 00:05:09 UTC)),
            "12/31/2019 12:05:09 AM"
        );
        assert_eq!(
            en_us_datetime(time::macros::datetime!(2019-12-31 13:05:09 UTC)),
            "12/31/2019 1:05:09 PM"
        );
    }
}
