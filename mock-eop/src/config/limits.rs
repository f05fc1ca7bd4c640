//! `[eop.limits]`: sizes, counts and times after which the endpoint refuses or hangs up.

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
    /// Idle time before `451 4.7.0 Timeout waiting for client input` and close \[U\].
    pub idle_timeout: TimeSpan,
    /// Absolute session lifetime before `421 4.4.1 Connection timed out` \[U\]; none by default.
    pub session_timeout: Option<TimeSpan>,
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
        }
    }
}
