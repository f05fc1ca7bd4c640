//! The transport connectivity log (`CONNECTLOGyyyymmdd-N.LOG`, docs/domain.md section 5.5).
//!
//! ```text
//! #Software: Microsoft Exchange Server
//! #Version: 15.0.0.0
//! #Log-type: Transport Connectivity Log
//! #Date: 2019-05-02T06:32:13.900Z
//! #Fields: date-time,session,source,destination,direction,description
//! 2019-05-02T06:32:13.900Z,08D6CEB1A2F3C4D5,SMTP,tenant-mail-onmicrosoft-com.mail.protection.outlook.com,+,Outbound to Office 365;QueueLength=TQ=1;RQ=1;LimitsReached=;
//! 2019-05-02T06:32:13.901Z,08D6CEB1A2F3C4D5,SMTP,tenant-mail-onmicrosoft-com.mail.protection.outlook.com,>,tenant-mail-onmicrosoft-com.mail.protection.outlook.com[104.47.10.36]
//! 2019-05-02T06:32:13.905Z,08D6CEB1A2F3C4D5,SMTP,tenant-mail-onmicrosoft-com.mail.protection.outlook.com,>,Established connection to 104.47.10.36
//! 2019-05-02T06:32:14.123Z,08D6CEB1A2F3C4D5,SMTP,tenant-mail-onmicrosoft-com.mail.protection.outlook.com,-,Messages: 0 Bytes: 0 (Retry : 421 4.4.1 Connection timed out)
//! ```
//! One line per connection event; lines of concurrent sessions interleave. The field set comes
//! from Microsoft's documentation; the description texts are reconstructed from community
//! excerpts (see docs/formats.md) and are classified leniently by [`ConnectivityEvent::note`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::csv;
use super::protocol_log::{LogHeader, log_time};
use super::ps::parse_iso;
use super::text::{Evidence, LineEnding, Skipped, split_lines};

/// The `#Fields` header of the connectivity log: its column names, in order.
pub const FIELDS: &str = "date-time,session,source,destination,direction,description";

/// The `direction` column: whether a line opens, steps through or closes a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectivityDirection {
    /// `+`: the queue starts a connection attempt.
    Connect,
    /// `-`: the connection ended (with the summary).
    Disconnect,
    /// `>`: a step (DNS, TCP connect, failure).
    Send,
}

impl ConnectivityDirection {
    /// The character the log writes in the column.
    pub fn as_char(self) -> char {
        match self {
            Self::Connect => '+',
            Self::Disconnect => '-',
            Self::Send => '>',
        }
    }

    fn from_field(s: &str) -> Option<Self> {
        match s.trim() {
            "+" => Some(Self::Connect),
            "-" => Some(Self::Disconnect),
            ">" => Some(Self::Send),
            _ => None,
        }
    }
}

/// One connectivity log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectivityEvent {
    /// `date-time`: when the step happened (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The session (the same id the send protocol log uses for that connection).
    pub session: String,
    /// `SMTP` for SMTP connections (also `MapiDelivery`, `MapiSubmission`, `DNS`...).
    pub source: String,
    /// The next hop (`tenant-mail-onmicrosoft-com.mail.protection.outlook.com`, a smart host).
    pub destination: String,
    /// `direction`: `+` attempt starts, `>` a step, `-` attempt ends.
    pub direction: ConnectivityDirection,
    /// `description`: what happened, in the transport's words (`Established connection to ...`,
    /// `Failed connection to ...`, the summary); [`ConnectivityEvent::note`] reads it.
    pub description: String,
}

/// What a description says, as far as the diagnosis cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ConnectivityNote {
    /// `+` line: `<DeliveryType> <connector GUID>;QueueLength=<n>` (the one real sample, KB
    /// 2866822), or the older `<connector>;QueueLength=TQ=...` shape.
    QueueStart {
        /// The send connector: its GUID in the current shape, its name in the older one.
        connector: String,
    },
    /// The resolved target, `host[ip,ip]` as Exchange writes it (or `DNS resolved to ...`).
    DnsResolved {
        /// The addresses as written.
        addresses: String,
    },
    /// A DNS failure (`DNS query failed`, `SMTPSEND.DNS.NonExistentDomain`, ...).
    DnsFailed {
        /// The failure as the log words it (`DNS query failed with error ...`).
        text: String,
    },
    /// `Established connection to 104.47.10.36` (Exchange writes the address without the port).
    Established {
        /// The address as written.
        endpoint: String,
    },
    /// `Failed connection to 104.47.10.36:25 (TimedOut:...)`.
    FailedConnection {
        /// `ip:port` as written.
        endpoint: String,
        /// The text in parentheses (`TimedOut:10060`, `ConnectionRefused:10061`...).
        reason: String,
    },
    /// `-` line: `Messages: 0 Bytes: 0 (Retry : 421 4.4.1 Connection timed out)`.
    Summary {
        /// How many messages the connection delivered.
        messages: u64,
        /// How many bytes of mail it carried.
        bytes: u64,
        /// The parenthesised detail (`Retry : 421 4.4.1 Connection timed out`), if any.
        detail: Option<String>,
    },
    /// A description the diagnosis has no use for.
    Other,
}

/// `host[ip,ip]`: the addresses inside the brackets, when the text is a host name followed by
/// bracketed IP addresses (the `>` line Exchange writes after resolving the next hop).
fn resolved_target(d: &str) -> Option<&str> {
    let (host, rest) = d.split_once('[')?;
    let inside = rest.strip_suffix(']')?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    let ips_ok = !inside.is_empty()
        && inside
            .split(',')
            .all(|a| a.trim().parse::<std::net::IpAddr>().is_ok());
    (host_ok && ips_ok).then_some(inside)
}

/// Whether `s` is a GUID in its usual 8-4-4-4-12 hex form.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl ConnectivityEvent {
    /// `+` line of a connection attempt from a queue as Exchange 2013 and later write it:
    /// `<DeliveryType> <connector GUID>;QueueLength=<n>` (the shape of the one real sample the
    /// domain reference records, section 5.5, from KB 2866822:
    /// `+,Undefined 00000000-0000-0000-0000-000000000000;QueueLength=0`; the format's fields:
    /// <http://technet.microsoft.com/en-us/library/bb124500.aspx>).
    pub fn queue_open(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        delivery_type: &str,
        connector_guid: &str,
        queue_length: u32,
    ) -> Self {
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Connect,
            format!("{delivery_type} {connector_guid};QueueLength={queue_length}"),
        )
    }

    /// `+` line in the older shape: `<connector>;QueueLength=TQ=<n>;RQ=<n>;LimitsReached=;`.
    pub fn queue_start(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        connector: &str,
        queue_length: u32,
    ) -> Self {
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Connect,
            format!("{connector};QueueLength=TQ={queue_length};RQ={queue_length};LimitsReached=;"),
        )
    }

    /// `>` line: the resolved target as Exchange writes it, `<host>[<ip>,<ip>]` (quoted by the CSV
    /// writer when there are several addresses).
    pub fn dns_resolved(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        host: &str,
        addrs: &[std::net::IpAddr],
    ) -> Self {
        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Send,
            format!("{host}[{}]", list.join(",")),
        )
    }

    /// `>` line: a DNS failure with Exchange's text (`DNS query failed. The error was: ...`).
    pub fn dns_failed(at: OffsetDateTime, session: &str, destination: &str, text: &str) -> Self {
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Send,
            text.to_string(),
        )
    }

    /// `>` line: `Established connection to <ip>` (no port, as Exchange writes it).
    pub fn established(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        endpoint: std::net::SocketAddr,
    ) -> Self {
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Send,
            format!("Established connection to {}", endpoint.ip()),
        )
    }

    /// `>` line: `Failed connection to <ip:port> (<reason>)`, e.g. `TimedOut:10060`.
    pub fn failed_connection(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        endpoint: std::net::SocketAddr,
        reason: &str,
    ) -> Self {
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Send,
            format!("Failed connection to {endpoint} ({reason})"),
        )
    }

    /// `-` line: `Messages: <n> Bytes: <n>` plus ` (<detail>)` (e.g. `Retry : 421 4.4.1 Connection timed out`).
    pub fn summary(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        messages: u64,
        bytes: u64,
        detail: Option<&str>,
    ) -> Self {
        let mut d = format!("Messages: {messages} Bytes: {bytes}");
        if let Some(x) = detail {
            d.push_str(&format!(" ({x})"));
        }
        Self::new(
            at,
            session,
            destination,
            ConnectivityDirection::Disconnect,
            d,
        )
    }

    fn new(
        at: OffsetDateTime,
        session: &str,
        destination: &str,
        direction: ConnectivityDirection,
        description: String,
    ) -> Self {
        Self {
            at,
            session: session.to_string(),
            source: "SMTP".to_string(),
            destination: destination.to_string(),
            direction,
            description,
        }
    }

    /// Classifies the description.
    pub fn note(&self) -> ConnectivityNote {
        let d = self.description.trim();
        if self.direction == ConnectivityDirection::Connect {
            let head = d.split(';').next().unwrap_or("").trim();
            let connector = match head.rsplit_once(' ') {
                Some((_, guid)) if is_guid(guid) => guid.to_string(),
                _ => head.to_string(),
            };
            return ConnectivityNote::QueueStart { connector };
        }
        if let Some(rest) = d.strip_prefix("Messages:") {
            let mut it = rest.split_whitespace();
            let messages = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let bytes = match (it.next(), it.next()) {
                (Some(b), Some(n)) if b.eq_ignore_ascii_case("Bytes:") => n.parse().unwrap_or(0),
                _ => 0,
            };
            let detail = d
                .find('(')
                .map(|i| d[i + 1..].trim_end_matches(')').trim().to_string());
            return ConnectivityNote::Summary {
                messages,
                bytes,
                detail,
            };
        }
        if let Some(rest) = d.strip_prefix("Failed connection to ") {
            let (endpoint, reason) = match rest.split_once(" (") {
                Some((e, r)) => (e.trim(), r.trim_end_matches(')').to_string()),
                None => (rest.trim(), String::new()),
            };
            return ConnectivityNote::FailedConnection {
                endpoint: endpoint.to_string(),
                reason,
            };
        }
        if let Some(rest) = d.strip_prefix("Established connection to ") {
            return ConnectivityNote::Established {
                endpoint: rest.trim().to_string(),
            };
        }
        if let Some(rest) = d.strip_prefix("DNS resolved to ") {
            return ConnectivityNote::DnsResolved {
                addresses: rest.trim().to_string(),
            };
        }
        if let Some(addresses) = resolved_target(d) {
            return ConnectivityNote::DnsResolved {
                addresses: addresses.to_string(),
            };
        }
        let l = d.to_ascii_lowercase();
        if l.contains("dns query failed")
            || l.contains("smtpsend.dns")
            || l.contains("nonexistentdomain")
        {
            return ConnectivityNote::DnsFailed {
                text: d.to_string(),
            };
        }
        ConnectivityNote::Other
    }

    /// The CSV line.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let at = log_time(self.at);
        let dir = self.direction.as_char().to_string();
        csv::write_record(
            &mut out,
            [
                at.as_str(),
                self.session.as_str(),
                self.source.as_str(),
                self.destination.as_str(),
                dir.as_str(),
                self.description.as_str(),
            ],
        );
        out
    }
}

/// `CONNECTLOG20190502-1.LOG`.
pub fn file_name(day: time::Date, n: u32) -> String {
    format!(
        "CONNECTLOG{:04}{:02}{:02}-{n}.LOG",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Writes events (in the order given, which should be time order) as one file's text.
pub fn write_log(events: &[ConnectivityEvent], version: &str, eol: LineEnding) -> String {
    let eol = eol.as_str();
    let date = events.first().map_or(OffsetDateTime::UNIX_EPOCH, |e| e.at);
    let mut out = format!(
        "#Software: Microsoft Exchange Server{eol}#Version: {version}{eol}#Log-type: Transport Connectivity Log{eol}#Date: {}{eol}#Fields: {FIELDS}{eol}",
        log_time(date)
    );
    for e in events {
        out.push_str(&e.to_csv());
        out.push_str(eol);
    }
    out
}

/// A read connectivity log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnectivityLog {
    /// The file's `#` header block, as far as present.
    pub header: LogHeader,
    /// Events in file order, with their line.
    pub events: Vec<(ConnectivityEvent, Evidence)>,
    /// The lines that were neither header nor event: their count and the first few.
    pub skipped: Skipped,
}

impl ConnectivityLog {
    /// The events of one session, in order.
    pub fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a (ConnectivityEvent, Evidence)> {
        self.events.iter().filter(move |(e, _)| e.session == id)
    }
}

/// Reads a connectivity log (header optional; `#Fields` honoured).
pub fn read_log(file: &str, text: &str) -> ConnectivityLog {
    let mut log = ConnectivityLog::default();
    let mut idx = [0usize, 1, 2, 3, 4, 5];
    for (i, raw) in split_lines(text).enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if let Some(h) = raw.strip_prefix('#') {
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "software" => log.header.software = Some(v.into()),
                    "version" => log.header.version = Some(v.into()),
                    "log-type" => log.header.log_type = Some(v.into()),
                    "date" => log.header.date = parse_iso(v),
                    "fields" => {
                        log.header.fields = v.split(',').map(|f| f.trim().to_string()).collect();
                        let pos = |n: &str| {
                            log.header
                                .fields
                                .iter()
                                .position(|f| f.eq_ignore_ascii_case(n))
                        };
                        if let (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)) = (
                            pos("date-time"),
                            pos("session"),
                            pos("source"),
                            pos("destination"),
                            pos("direction"),
                            pos("description"),
                        ) {
                            idx = [a, b, c, d, e, f];
                        }
                    }
                    _ => log.skipped.push(file, line_no, raw),
                }
            } else {
                log.skipped.push(file, line_no, raw);
            }
            continue;
        }
        let mut f = csv::split_record(raw);
        // An unquoted comma in the description (a re-exported file) splits it: with the
        // standard layout everything after `direction` is the description.
        if f.len() > 6 && idx == [0, 1, 2, 3, 4, 5] {
            let rest = f[5..].join(",");
            f.truncate(5);
            f.push(std::borrow::Cow::Owned(rest));
        }
        let get = |k: usize| f.get(idx[k]).map(|c| c.to_string());
        let parsed = (|| {
            let at = parse_iso(get(0)?.trim())?;
            let session = get(1)?.trim().to_string();
            let direction = ConnectivityDirection::from_field(&get(4)?)?;
            if session.is_empty() {
                return None;
            }
            Some(ConnectivityEvent {
                at,
                session,
                source: get(2)?.trim().to_string(),
                destination: get(3)?.trim().to_string(),
                direction,
                description: get(5).unwrap_or_default(),
            })
        })();
        match parsed {
            Some(e) => log.events.push((e, Evidence::new(file, line_no, raw))),
            None => log.skipped.push(file, line_no, raw),
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn resolved_target_both_shapes() {
        let t = datetime!(2019-05-02 06:32:13 UTC);
        let ev = |d: &str| {
            ConnectivityEvent::new(t, "S", "x", ConnectivityDirection::Send, d.to_string()).note()
        };
        let resolved = |a: &str| ConnectivityNote::DnsResolved {
            addresses: a.to_string(),
        };
        assert_eq!(
            ev(
                "contoso-mail-onmicrosoft-com.mail.protection.outlook.com[104.47.10.36,104.47.9.36]"
            ),
            resolved("104.47.10.36,104.47.9.36")
        );
        assert_eq!(
            ev("mx.fabrikam.com[2001:db8::25]"),
            resolved("2001:db8::25")
        );
        assert_eq!(ev("DNS resolved to 104.47.10.36"), resolved("104.47.10.36"));
        assert_eq!(ev("Throttled [by policy]"), ConnectivityNote::Other);
        assert_eq!(ev("host[not-an-ip]"), ConnectivityNote::Other);
        assert_eq!(
            ev("Established connection to 104.47.10.36"),
            ConnectivityNote::Established {
                endpoint: "104.47.10.36".to_string()
            }
        );
    }

    #[test]
    fn writes_reads_and_classifies() {
        let t = datetime!(2019-05-02 06:32:13.900 UTC);
        let dest = "tenant-mail-onmicrosoft-com.mail.protection.outlook.com";
        let ep: std::net::SocketAddr = "104.47.10.36:25".parse().unwrap();
        let events = vec![
            ConnectivityEvent::queue_start(
                t,
                "08D6CEB1A2F3C4D5",
                dest,
                "Outbound to Office 365",
                1,
            ),
            ConnectivityEvent::dns_resolved(t, "08D6CEB1A2F3C4D5", dest, dest, &[ep.ip()]),
            ConnectivityEvent::established(t, "08D6CEB1A2F3C4D5", dest, ep),
            ConnectivityEvent::failed_connection(t, "08D6CEB1A2F3C4D6", dest, ep, "TimedOut:10060"),
            ConnectivityEvent::summary(
                t,
                "08D6CEB1A2F3C4D5",
                dest,
                0,
                0,
                Some("Retry : 421 4.4.1 Connection timed out"),
            ),
        ];
        let text = write_log(&events, "15.0.0.0", LineEnding::CrLf);
        let log = read_log("c", &text);
        assert_eq!(log.skipped.count, 0);
        let back: Vec<ConnectivityEvent> = log.events.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(back, events);
        assert_eq!(
            back[0].note(),
            ConnectivityNote::QueueStart {
                connector: "Outbound to Office 365".into()
            }
        );
        assert_eq!(
            back[3].note(),
            ConnectivityNote::FailedConnection {
                endpoint: "104.47.10.36:25".into(),
                reason: "TimedOut:10060".into()
            }
        );
        assert_eq!(
            back[4].note(),
            ConnectivityNote::Summary {
                messages: 0,
                bytes: 0,
                detail: Some("Retry : 421 4.4.1 Connection timed out".into())
            }
        );
        assert_eq!(log.session("08D6CEB1A2F3C4D6").count(), 1);
        assert_eq!(log.events[3].1.line, 9);
    }
}
