//! The messages in the queue: their `Get-Message` status and retry state.

use hybridlab_artefacts::queue::LastError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::message::OutboundMessage;

/// `Get-Message` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageQueueStatus {
    /// Being delivered.
    Active,
    /// Waiting.
    Ready,
    /// Waiting for a retry after a failure.
    Retry,
    /// Suspended.
    Suspended,
}

/// One message in the queue, with what `Get-Message | Format-List` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// The message.
    pub message: OutboundMessage,
    /// Status.
    pub status: MessageQueueStatus,
    /// Retries so far.
    pub retry_count: u32,
    /// Last error.
    pub last_error: Option<LastError>,
    /// When this message may be tried again (message-level 4xx).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_time: Option<OffsetDateTime>,
    /// Whether the delay DSN went out.
    pub delay_dsn_sent: bool,
}

/// A `Get-Message` row (the fields the lab models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSnapshot {
    /// `SERVER\<queue>\<internal id>`.
    pub identity: String,
    /// Envelope sender.
    pub from_address: String,
    /// Status.
    pub status: MessageQueueStatus,
    /// Size in bytes (MIME text as sent).
    pub size: u64,
    /// Subject.
    pub subject: String,
    /// When it arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub date_received: OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration_time: OffsetDateTime,
    /// Last error.
    pub last_error: Option<LastError>,
    /// Retries.
    pub retry_count: u32,
    /// The queue's identity.
    pub queue: String,
    /// Recipients.
    pub recipients: Vec<String>,
}
