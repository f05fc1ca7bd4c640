//! Exchange Online's delivery to on-premises through an outbound connector, as data: the
//! behaviours Microsoft does not document as settings ([`DeliverySettings`], the `[eop.delivery]`
//! table), and the record of every attempt ([`DeliveryAttempt`]) and of every message
//! ([`DeliveryRecord`]: its message trace and its attempts).
//!
//! Documented facts: Exchange Online retries a message queued for a connector for 24 hours, then
//! returns it to the sender
//! (<https://learn.microsoft.com/en-us/defender-office-365/connectors-mail-flow-intelligence>).
//! Everything else here (retry spacing, first retry, timeouts, which of the two certificate
//! failure codes, host names) is a setting whose default is our best reading of public cases.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::led::Led;
use crate::reply::Reply;
use crate::timespan::TimeSpan;
use crate::trace::MessageTrace;
use crate::x509::CertFacts;

/// How Exchange Online's delivery queue behaves (`[eop.delivery]`). Every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Time between two retries of a deferred message. Not published; public cases show
    /// roughly 5 to 20 minutes. Default 15 minutes.
    pub retry_interval: TimeSpan,
    /// Delay between the first failed attempt and the first retry. Not published. Default
    /// 5 minutes.
    pub first_retry: TimeSpan,
    /// How long a message is retried before it expires and is returned (documented: 24 hours).
    pub expiry: TimeSpan,
    /// How long one TCP connect may take before the attempt fails with 4.4.315. Not published.
    /// Default 30 seconds.
    pub connect_timeout: TimeSpan,
    /// How long Exchange Online waits for a reply (or a TLS handshake) before giving up the
    /// session with 4.4.318. Not published. Default 10 minutes.
    pub reply_timeout: TimeSpan,
    /// How sessions are spread over the addresses a smart host resolves to.
    pub target_order: TargetOrder,
    /// Which LED a certificate failure gets: `450 4.4.317 Cannot connect to remote server`
    /// (2023+ cases) or the older `450 4.7.320 Certificate validation failed`.
    pub certificate_failure: CertificateFailureForm,
    /// The name Exchange Online sends in EHLO.
    pub ehlo_name: String,
    /// The service host named in the LED's tag (`[<host> <time> <id>]`).
    pub service_host: String,
    /// The mailbox server named in the trace's `Receive` event (`Message received by: <host>`).
    pub mailbox_server: String,
    /// Offer TLS 1.3 (2025+ behaviour); `false` limits the sender to TLS 1.2.
    pub tls13: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_interval: TimeSpan::minutes(15),
            first_retry: TimeSpan::minutes(5),
            expiry: TimeSpan::days(1),
            connect_timeout: TimeSpan::secs(30),
            reply_timeout: TimeSpan::minutes(10),
            target_order: TargetOrder::RoundRobin,
            certificate_failure: CertificateFailureForm::CannotConnect,
            ehlo_name: "NAM12-DM6-obe.outbound.protection.outlook.com".into(),
            service_host: "DM6NAM12FT012.eop-nam12.prod.protection.outlook.com".into(),
            mailbox_server: "DM6PR12MB4321.namprd12.prod.outlook.com".into(),
            tls13: true,
        }
    }
}

/// How sessions are spread over several target addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOrder {
    /// Each attempt takes the next address in turn (across all messages).
    #[default]
    RoundRobin,
    /// Each attempt takes an address at random (seeded by the lab).
    Random,
}

/// Which of the two certificate-failure LEDs Exchange Online writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateFailureForm {
    /// `450 4.4.317 Cannot connect to remote server [Message=SubjectMismatch ...]`.
    #[default]
    CannotConnect,
    /// `450 4.7.320 Certificate validation failed [Message=SubjectMismatch ...]`.
    CertificateValidationFailed,
}

/// What the certificate chain check found (the name is judged separately).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// Builds to a trusted root and every certificate is in date.
    Valid,
    /// Ends at a root that is not trusted, or an intermediate is missing (Exchange Online does
    /// not fetch missing intermediates).
    UntrustedRoot,
    /// A certificate of the chain has expired.
    Expired,
    /// A certificate of the chain is not valid yet.
    NotYetValid,
    /// The server sent no certificate.
    NoCertificate,
    /// Anything else the chain check refused (the check's own words).
    Other(String),
}

impl ChainStatus {
    /// The status word Exchange Online writes at the start of `[Message=...]`.
    pub fn exo_word(&self) -> &str {
        match self {
            Self::Valid => "Valid",
            Self::UntrustedRoot => "UntrustedRoot",
            Self::Expired => "CertificateExpired",
            Self::NotYetValid => "CertificateNotYetValid",
            Self::NoCertificate => "NoCertificate",
            Self::Other(_) => "CertificateInvalid",
        }
    }
}

/// The TLS facts of one attempt whose handshake completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTls {
    /// `TLS1_2` or `TLS1_3`.
    pub version: String,
    /// The IANA suite name (`TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// The server's certificate (what a `Thumbprint:` in the LED names), when it sent one.
    pub presented: Option<CertFacts>,
    /// The rest of the chain the server sent, in order.
    pub chain: Vec<CertFacts>,
    /// The chain check at the attempt's time against the sender's trust anchors.
    pub chain_status: ChainStatus,
    /// Whether the server asked for a client certificate (EOP's was then sent).
    pub client_certificate_requested: bool,
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by Exchange Online (`>` in a send log).
    Sent,
    /// Received from the server (`<`).
    Received,
    /// Something the sender noted (`*`): connect, TLS, certificate, disconnect.
    Info,
}

impl Direction {
    /// The protocol log's event character.
    pub fn symbol(self) -> char {
        match self {
            Self::Sent => '>',
            Self::Received => '<',
            Self::Info => '*',
        }
    }
}

/// One line of an attempt's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub direction: Direction,
    /// The command or reply line without CRLF (message content is not kept), or the note.
    pub text: String,
}

impl fmt::Display for TranscriptLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.direction.symbol(), self.text)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AttemptOutcome {
    /// The server accepted the message.
    Delivered {
        /// The final reply (`250 2.6.0 <id> [InternalId=...] Queued mail for delivery`).
        reply: Reply,
    },
    /// Transient failure: the message stays queued and is retried.
    Deferred {
        /// Exchange Online's LED (`450 4.4.317 Cannot connect to remote server [Message=...] ...`).
        led: Led,
    },
    /// Permanent failure (a 5xx for the transaction): the message is returned to the sender.
    Failed {
        /// The LED: the server's reply as Exchange Online records it.
        led: Led,
    },
}

impl AttemptOutcome {
    /// The LED of a deferral or failure.
    pub fn led(&self) -> Option<&Led> {
        match self {
            Self::Delivered { .. } => None,
            Self::Deferred { led } | Self::Failed { led } => Some(led),
        }
    }

    /// Whether the message was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered { .. })
    }
}

/// One delivery attempt of one message: where it went, what TLS found, what was said, how it
/// ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When the attempt started (before the connect).
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub ended: OffsetDateTime,
    /// The outbound connector's name.
    pub connector: String,
    /// The session id (16 hex digits, the LED tag's last part).
    pub session_id: String,
    /// The host name connected to (`LastAttemptedServerName`).
    pub target_host: String,
    /// The address and port connected to (`LastAttemptedIP`); `None` when resolution failed.
    pub target: Option<SocketAddr>,
    /// The sender's local address, when connected.
    pub source: Option<SocketAddr>,
    /// The TLS facts, when a handshake completed.
    pub tls: Option<AttemptTls>,
    /// The SMTP dialogue and notes.
    pub transcript: Vec<TranscriptLine>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// Everything Exchange Online knows about one queued message: its message trace (summary and
/// events) and every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// What `Get-MessageTrace` / `Get-MessageTraceDetail` show.
    pub trace: MessageTrace,
    /// The attempts, in order.
    pub attempts: Vec<DeliveryAttempt>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults() {
        let s: DeliverySettings = toml::from_str(
            "retry_interval = \"00:05:00\"\nexpiry = \"2h\"\ntarget_order = \"random\"\ncertificate_failure = \"certificate_validation_failed\"\n",
        )
        .unwrap();
        assert_eq!(s.retry_interval, TimeSpan::minutes(5));
        assert_eq!(s.expiry, TimeSpan::hours(2));
        assert_eq!(s.target_order, TargetOrder::Random);
        assert_eq!(s.first_retry, DeliverySettings::default().first_retry);
        assert!(toml::from_str::<DeliverySettings>("retry = 1").is_err());
        assert_eq!(DeliverySettings::default().expiry.to_string(), "1.00:00:00");
    }

    #[test]
    fn outcome_and_status_words() {
        let led =
            Led::parse("450 4.4.316 Connection refused [Message=Socket error code 10061]").unwrap();
        let o = AttemptOutcome::Deferred { led: led.clone() };
        assert_eq!(o.led(), Some(&led));
        assert!(!o.is_delivered());
        assert_eq!(ChainStatus::Expired.exo_word(), "CertificateExpired");
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<AttemptOutcome>(&json).unwrap(), o);
        let line = TranscriptLine {
            at: time::macros::datetime!(2026-05-02 06:30:00 UTC),
            direction: Direction::Sent,
            text: "QUIT".into(),
        };
        assert_eq!(line.to_string(), "> QUIT");
    }
}
