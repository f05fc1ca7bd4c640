//! What the mock remembers: one [`SessionRecord`] per connection and one [`MessageRecord`] per
//! accepted message, serialisable to JSON.
//!
//! # Contract
//! - A `SessionRecord` holds the peer and local addresses, start and end times, the TLS facts
//!   (version, cipher, SNI, the client certificate's [`CertFacts`] and chain verdict), the last
//!   attribution verdict, every command and reply with its timestamp (the transcript), the faults
//!   that fired, plaintext pipelined after STARTTLS (discarded), the close reason and the
//!   messages accepted in the session.
//! - Every message answered 250 at the end of DATA/BDAT has a `MessageRecord`: envelope, size,
//!   raw bytes, the 250 reply, internal id, attribution, and headers parsed with mail-parser.
//! - Parsing is kept off the reply path: the session stores the raw bytes; headers are parsed
//!   by [`MessageRecord::ensure_parsed`], which the handle calls when records are read.
//! - `raw` serialises as a string when it is UTF-8, else as `{"base64": "..."}`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::attribution::AttributionVerdict;
use crate::reply::Reply;
use crate::x509::CertFacts;

/// The chain verdict for a client certificate, checked against the lab trust roots at the lab
/// clock's time (no AIA fetching: the client must send intermediates).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainVerdict {
    /// Chains to a trust root, in validity, usable for client authentication.
    Valid,
    /// No path to a trust root (untrusted root, missing intermediate, self-signed).
    UnknownIssuer,
    /// A certificate in the chain has expired.
    Expired,
    /// A certificate in the chain is not valid yet.
    NotValidYet,
    /// The certificate is not allowed for client authentication (EKU).
    InvalidPurpose,
    /// A signature in the chain does not verify.
    BadSignature,
    /// The certificate cannot be parsed.
    BadEncoding,
    /// Anything else, with rustls' description.
    Other(String),
}

impl ChainVerdict {
    /// Whether the chain validated.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid)
    }
}

impl fmt::Display for ChainVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid => f.write_str("valid"),
            Self::UnknownIssuer => f.write_str("unknown_issuer"),
            Self::Expired => f.write_str("expired"),
            Self::NotValidYet => f.write_str("not_valid_yet"),
            Self::InvalidPurpose => f.write_str("invalid_purpose"),
            Self::BadSignature => f.write_str("bad_signature"),
            Self::BadEncoding => f.write_str("bad_encoding"),
            Self::Other(s) => write!(f, "other: {s}"),
        }
    }
}

/// The certificate a client presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificate {
    /// The leaf.
    pub leaf: CertFacts,
    /// The other certificates the client sent, in order.
    pub chain: Vec<CertFacts>,
    /// Whether the chain validated against the trust roots.
    pub verdict: ChainVerdict,
}

/// What the TLS handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: String,
    /// rustls cipher-suite name (`TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// Server name the client asked for, if any.
    pub sni: Option<String>,
    /// Whether the session was resumed (then the client certificate is the one of the original
    /// handshake).
    pub resumed: bool,
    /// The client certificate, if one was sent.
    pub client_certificate: Option<ClientCertificate>,
}

/// Who said what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TranscriptEntry {
    /// A command line from the client (without CRLF; lossy UTF-8).
    Command {
        /// When it was processed.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The line.
        line: String,
    },
    /// A reply the mock sent.
    Reply {
        /// When it was sent.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The reply.
        reply: Reply,
    },
    /// Something that is neither (message data received, TLS up, a verdict, a fault).
    Info {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// What.
        text: String,
    },
}

impl TranscriptEntry {
    /// The timestamp.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Self::Command { at, .. } | Self::Reply { at, .. } | Self::Info { at, .. } => *at,
        }
    }
}

/// A fault that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultFired {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Index in the fault list.
    pub index: usize,
    /// The fault's label, if any.
    pub name: Option<String>,
    /// The stage (`rcpt`...).
    pub stage: String,
    /// The action, described (`throttle S77714`).
    pub action: String,
}

/// Plaintext the client pipelined after STARTTLS, which the mock discards (RFC 3207 section 4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded {
    /// How many bytes.
    pub bytes: usize,
    /// The first bytes, lossy UTF-8 (at most 512).
    pub preview: String,
}

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Still open (live snapshot).
    Open,
    /// The client sent QUIT.
    Quit,
    /// The client closed the connection.
    ClientClosed,
    /// Idle timeout (`451 4.7.0 Timeout waiting for client input`).
    IdleTimeout,
    /// Session lifetime exceeded.
    SessionTimeout,
    /// Too many protocol errors.
    TooManyErrors,
    /// A fault closed it.
    Fault,
    /// The TLS handshake failed.
    TlsFailed,
    /// The mock was shut down.
    Shutdown,
    /// A read or write failed.
    IoError,
    /// A limit of the endpoint closed it: too many sessions (from its address), an over-size
    /// BDAT chunk with `oversize_bdat = "close"`.
    Limit,
}

/// One message answered 250.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The internal id in the 250 reply.
    pub internal_id: u64,
    /// The message id in the 250 reply (the Message-ID header, or one the mock made up).
    pub message_id: String,
    /// The session it came in.
    pub session_id: String,
    /// When the 250 was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// MAIL FROM address (empty for the null sender).
    pub mail_from: String,
    /// Accepted RCPT TO addresses.
    pub rcpt_to: Vec<String>,
    /// Size in bytes (after dot-unstuffing).
    pub size: usize,
    /// `data` or `bdat`.
    pub transfer: String,
    /// Whether the session was in TLS.
    pub tls: bool,
    /// The attribution verdict for the message.
    pub attribution: AttributionVerdict,
    /// Whether `X-MS-Exchange-CrossPremises-*` headers are honoured (the connector has
    /// CloudServicesMailEnabled).
    pub cross_premises_honoured: bool,
    /// The 250 reply.
    pub reply: Reply,
    /// The message as received.
    #[serde(with = "raw_bytes")]
    pub raw: Arc<[u8]>,
    /// Parsed headers; filled when the record is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<ParsedHeaders>,
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderField {
    /// Field name as written.
    pub name: String,
    /// Raw value, trimmed.
    pub value: String,
}

/// What mail-parser read from the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedHeaders {
    /// Whether mail-parser could parse it at all.
    pub parsed: bool,
    /// Subject.
    pub subject: Option<String>,
    /// Message-ID (without angle brackets).
    pub message_id: Option<String>,
    /// From addresses.
    pub from: Vec<String>,
    /// To addresses.
    pub to: Vec<String>,
    /// Every header field in order.
    pub headers: Vec<HeaderField>,
    /// The `X-MS-Exchange-CrossPremises-*` fields, when the connector honours them (empty
    /// otherwise, even if present in `headers`).
    pub cross_premises: Vec<HeaderField>,
}

impl MessageRecord {
    /// Parses the headers with mail-parser (once).
    pub fn ensure_parsed(&mut self) {
        if self.parsed.is_none() {
            self.parsed = Some(parse_headers(&self.raw, self.cross_premises_honoured));
        }
    }

    /// The parsed headers (parsing now if needed, without storing).
    pub fn headers(&self) -> ParsedHeaders {
        match &self.parsed {
            Some(p) => p.clone(),
            None => parse_headers(&self.raw, self.cross_premises_honoured),
        }
    }
}

/// Parses `raw` with mail-parser.
pub fn parse_headers(raw: &[u8], cross_premises_honoured: bool) -> ParsedHeaders {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return ParsedHeaders::default();
    };
    let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let headers: Vec<HeaderField> = msg
        .headers_raw()
        .map(|(n, v)| HeaderField {
            name: n.to_string(),
            value: v.trim().to_string(),
        })
        .collect();
    let cross_premises = if cross_premises_honoured {
        headers
            .iter()
            .filter(|h| {
                h.name
                    .to_ascii_lowercase()
                    .starts_with("x-ms-exchange-crosspremises-")
            })
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    ParsedHeaders {
        parsed: true,
        subject: msg.subject().map(str::to_string),
        message_id: msg.message_id().map(str::to_string),
        from: addrs(msg.from()),
        to: addrs(msg.to()),
        headers,
        cross_premises,
    }
}

/// One SMTP session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// 16 uppercase hex, as in the banner.
    pub session_id: String,
    /// 0-based order in which the mock accepted the connection.
    pub index: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The mock's address.
    pub local: SocketAddr,
    /// Connection time.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// End time (`None` while open).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The last EHLO/HELO name.
    pub helo: Option<String>,
    /// TLS facts once the handshake succeeded.
    pub tls: Option<TlsFacts>,
    /// The handshake error, when it failed.
    pub tls_error: Option<String>,
    /// The last attribution verdict evaluated in the session (MAIL or RCPT).
    pub attribution: Option<AttributionVerdict>,
    /// Commands, replies and notes, in order.
    pub transcript: Vec<TranscriptEntry>,
    /// Faults that fired.
    pub faults_fired: Vec<FaultFired>,
    /// Plaintext pipelined after STARTTLS and discarded.
    pub discarded_after_starttls: Option<Discarded>,
    /// Protocol errors counted.
    pub protocol_errors: u32,
    /// Why it ended.
    pub close_reason: CloseReason,
    /// Messages accepted (answered 250).
    pub messages: Vec<MessageRecord>,
}

impl SessionRecord {
    /// The replies sent, in order.
    pub fn replies(&self) -> impl Iterator<Item = &Reply> {
        self.transcript.iter().filter_map(|e| match e {
            TranscriptEntry::Reply { reply, .. } => Some(reply),
            _ => None,
        })
    }

    /// The command lines received, in order.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.transcript.iter().filter_map(|e| match e {
            TranscriptEntry::Command { line, .. } => Some(line.as_str()),
            _ => None,
        })
    }

    /// Parses every message's headers.
    pub fn ensure_parsed(&mut self) {
        for m in &mut self.messages {
            m.ensure_parsed();
        }
    }

    /// The record as one JSON line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

mod raw_bytes {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Base64 { base64: String },
    }

    pub(super) fn serialize<S: Serializer>(v: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(v) {
            Ok(t) => Repr::Text(t.to_string()).serialize(s),
            Err(_) => Repr::Base64 {
                base64: base64_encode(v),
            }
            .serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(Arc::from(t.into_bytes())),
            Repr::Base64 { base64 } => base64_decode(&base64)
                .map(Arc::from)
                .ok_or_else(|| serde::de::Error::custom("invalid base64")),
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let pem = crate::x509::pem_encode("X", bytes);
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for n in 0..10 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&v)).unwrap(), v);
        }
    }

    #[test]
    fn headers_and_cross_premises() {
        let raw = b"From: Alice <alice@contoso.com>\r\nTo: bob@contoso.mail.onmicrosoft.com\r\nSubject: hi\r\nMessage-ID: <a1@EXCH01.contoso.com>\r\nX-MS-Exchange-CrossPremises-AuthAs: Internal\r\nX-MS-Exchange-CrossPremises-OriginalClientIPAddress: 10.0.0.5\r\n\r\nbody\r\n";
        let p = parse_headers(raw, true);
        assert!(p.parsed);
        assert_eq!(p.subject.as_deref(), Some("hi"));
        assert_eq!(p.message_id.as_deref(), Some("a1@EXCH01.contoso.com"));
        assert_eq!(p.from, vec!["alice@contoso.com"]);
        assert_eq!(p.cross_premises.len(), 2);
        assert_eq!(p.cross_premises[0].value, "Internal");
        assert!(parse_headers(raw, false).cross_premises.is_empty());
    }
}
