//! The transport's timeline: what it did and when, for the reports and the narration.

use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Something the transport did, for timelines and narration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TransportRecord {
    /// A session ran.
    Attempt {
        /// The session's index in [`super::Transport::sessions`].
        session: usize,
        /// Whether it ran in plain text as an opportunistic fallback.
        fallback_plaintext: bool,
    },
    /// The next hop did not resolve.
    DnsFailed {
        /// The LastError LED the queue shows (`451 4.4.0 DNS query failed...`).
        led: String,
    },
    /// The queue goes to Retry.
    RetryScheduled {
        /// The queue's NextRetryTime.
        #[serde(with = "time::serde::rfc3339")]
        next: OffsetDateTime,
        /// Which stage of the schedule: `glitch`, `transient`, `long`, `message`.
        stage: String,
    },
    /// A message was accepted.
    Delivered {
        /// The message's internal id.
        internal_id: u64,
        /// The server's final reply (`250 2.6.0 ... Queued mail for delivery`).
        reply: Reply,
    },
    /// A delay DSN went to the sender.
    DelayDsn {
        /// The delayed message's internal id.
        internal_id: u64,
    },
    /// An NDR went to the sender.
    Ndr {
        /// The returned message's internal id.
        internal_id: u64,
        /// The reason (`550 4.4.7 QUEUE.Expired; message expired`, a 5xx reply...).
        reply: Reply,
    },
    /// An admin ran a command (`Remove-Item Cert:\LocalMachine\My\<thumbprint>`,
    /// `Restart-Service MSExchangeTransport`...).
    AdminChange {
        /// The PowerShell, as the admin would type it.
        command: String,
    },
    /// A session took its certificate from the transport's cache although the store now selects
    /// another one (or none): FM-34.
    CachedCertificate {
        /// The session's index in [`super::Transport::sessions`].
        session: usize,
        /// The `TlsCertificateName` the selection is cached under.
        identifier: String,
        /// The thumbprint the cache holds.
        cached: String,
        /// When the transport selected it.
        #[serde(with = "time::serde::rfc3339")]
        selected_at: OffsetDateTime,
        /// What the store selects now (`None`: nothing).
        current: Option<String>,
    },
}

/// A record with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedRecord {
    /// The lab time it happened at.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub record: TransportRecord,
}
