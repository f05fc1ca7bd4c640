//! `[eop.limits]`: sizes, counts and times after which the endpoint refuses or hangs up, and the
//! caps that keep the mock's own memory, connections and files bounded.

use serde::{Deserialize, Serialize};

use hybridlab_model::timespan::TimeSpan;

/// Limits of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Advertised as `SIZE`; larger messages get `552 5.3.4`. EOP: 157286400 (150 MiB).
    pub max_message_size: u64,
    /// Recipients per message; more get `452 4.5.3 Too many recipients`. EXO: 500.
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF included \[U\]; longer lines get `500 5.5.2 Line too long`.
    pub max_line_length: usize,
    /// Protocol errors tolerated; the next one gets `421 4.7.0 Too many errors ...` and the
    /// connection is closed \[U\] (Exchange's MaxProtocolErrors default is 5).
    pub max_protocol_errors: u32,
    /// Idle time before `451 4.7.0 Timeout waiting for client input` and close \[U\]. Only a
    /// complete command line, or message data arriving at `min_data_rate` or faster, restarts it:
    /// a client sending one byte at a time cannot hold a session open.
    pub idle_timeout: TimeSpan,
    /// Absolute session lifetime before `421 4.4.1 Connection timed out` \[U\]; none by default
    /// (Exchange's ConnectionTimeout is 10 minutes).
    pub session_timeout: Option<TimeSpan>,
    /// Bytes per second below which message data no longer restarts the idle timer \[U\]
    /// (measured from the start of the data, after its first second); 0 = any byte does.
    pub min_data_rate: u64,
    /// What a DATA message with a bare CR or bare LF gets. EOP keeps them (it stopped removing
    /// bare LFs, see <https://learn.microsoft.com/en-us/exchange/troubleshoot/antispam-and-protection/smtpsend-barelinefeedsareillegal-when-tracing-messages>);
    /// they never end the data: only `<CRLF>.<CRLF>` does.
    pub bare_line_endings: BareLineEndings,
    /// What a BDAT chunk that would pass `max_message_size` gets \[U\]: read and thrown away,
    /// then `552 5.3.4` (RFC 3030's way), or `552 5.3.4` at once and close. Never buffered.
    pub oversize_bdat: OversizeBdat,
    /// Connections served at once; more get `421 4.3.2 Service not available` and are closed
    /// (Exchange's MaxInboundConnection, 5000 \[U\]).
    pub max_sessions: u64,
    /// Connections from one IP address at once; more get `421 4.3.2` (Exchange's
    /// MaxInboundConnectionPerSource is 20 \[U\]; the lab's clients all come from loopback, so
    /// the default is higher).
    pub max_sessions_per_ip: u64,
    /// Bytes of transcript a session record keeps; past it, entries are counted, not kept, and
    /// the cut is recorded as an info entry (memory stays bounded under pipelined NOOPs).
    pub max_transcript_bytes: usize,
    /// How long the TLS handshake, a stall or a write may keep a shutting-down mock waiting for
    /// a session in DATA or BDAT: those get this long to finish their message.
    pub shutdown_grace: TimeSpan,
}

/// What a DATA message with bare CR or bare LF gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BareLineEndings {
    /// Accepted, kept in the body as they came (EOP's behaviour).
    #[default]
    Keep,
    /// Refused at the end of data: `554 5.6.0 Invalid message content, contains bare linefeeds`.
    Reject,
}

/// What an over-size BDAT chunk gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OversizeBdat {
    /// The chunk is read and thrown away, then `552 5.3.4`.
    #[default]
    Discard,
    /// `552 5.3.4` at once, and the connection is closed.
    Close,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 157_286_400,
            max_recipients: 500,
            max_line_length: 4096,
            max_protocol_errors: 5,
            idle_timeout: TimeSpan::from_secs(300),
            session_timeout: None,
            min_data_rate: 1024,
            bare_line_endings: BareLineEndings::Keep,
            oversize_bdat: OversizeBdat::Discard,
            max_sessions: 5000,
            max_sessions_per_ip: 2000,
            max_transcript_bytes: 1 << 20,
            shutdown_grace: TimeSpan::from_secs(30),
        }
    }
}
