//! The messages in the queue: each with its `Get-Message` status and retry state.

use hybridlab_artefacts::queue::{LastError, MessageStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::message::OutboundMessage;

/// One message in the queue, with the state `Get-Message | Format-List` shows for it (the
/// listing's row is built by [`super::Transport::message_rows`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// The message as submitted.
    pub message: OutboundMessage,
    /// `Get-Message` Status: the lab uses Active (a session carries it), Ready (waiting for the
    /// next session), Retry (a failed attempt) and Suspended.
    pub status: MessageStatus,
    /// Failed delivery attempts so far (the listing's RetryCount).
    pub retry_count: u32,
    /// The LastError of its latest failed attempt (the queue's, or a message-level 4xx).
    pub last_error: Option<LastError>,
    /// When this message may be tried again after a message-level 4xx (`None`: with the queue).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_time: Option<OffsetDateTime>,
    /// Whether the delay DSN (DelayNotificationTimeout after arrival) went to the sender.
    pub delay_dsn_sent: bool,
}
