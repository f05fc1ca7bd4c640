//! `Set-TransportService` retry and expiry settings, with the lab's interleaving knob.

use serde::{Deserialize, Deserializer, Serialize};

use hybridlab_model::timespan::TimeSpan;

use crate::server::ServerRole;

/// How glitch retries and transient retries interleave after a connection failure \[U\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryInterleaving {
    /// `QueueGlitchRetryCount` retries `QueueGlitchRetryInterval` apart, then
    /// `TransientFailureRetryCount` retries `TransientFailureRetryInterval` apart, then every
    /// `OutboundConnectionFailureRetryInterval`.
    #[default]
    GlitchThenTransient,
    /// No glitch retries: transient retries, then the long interval.
    TransientOnly,
}

/// `Set-TransportService` retry and expiry settings, plus the lab's
/// interleaving knob. Defaults depend on the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSettings {
    /// `TransientFailureRetryCount` (0-15; default 6): connection retries at the transient
    /// interval before the queue falls back to the long interval.
    pub transient_failure_retry_count: u32,
    /// `TransientFailureRetryInterval` (Mailbox 00:05:00, Edge 00:10:00): the wait between those
    /// retries.
    pub transient_failure_retry_interval: TimeSpan,
    /// `OutboundConnectionFailureRetryInterval` (Mailbox 00:10:00, Edge 00:30:00): the wait between
    /// retries once the transient ones are used up.
    pub outbound_connection_failure_retry_interval: TimeSpan,
    /// `MessageRetryInterval` (00:05:00 per the cmdlet reference; older docs 15 min): how long a
    /// message the server deferred (4xx for the message) waits while the connection works.
    pub message_retry_interval: TimeSpan,
    /// `MessageExpirationTimeout` (2.00:00:00): a message still queued this long after arrival
    /// expires (`550 4.4.7 QUEUE.Expired` NDR).
    pub message_expiration_timeout: TimeSpan,
    /// `DelayNotificationTimeout` (04:00:00): a message still queued this long after arrival gets
    /// a delay DSN.
    pub delay_notification_timeout: TimeSpan,
    /// Whether delay DSNs are sent (`ExternalDelayDsnEnabled`/`InternalDelayDsnEnabled`).
    pub delay_dsn_enabled: bool,
    /// `QueueGlitchRetryCount` (EdgeTransport.exe.config; 4): quick retries right after a
    /// connection failure.
    pub queue_glitch_retry_count: u32,
    /// `QueueGlitchRetryInterval` (00:01:00): the wait between the quick retries.
    pub queue_glitch_retry_interval: TimeSpan,
    /// Whether the quick (glitch) retries come before the transient ones \[U\].
    pub retry_interleaving: RetryInterleaving,
}

impl TransportSettings {
    /// Edge Transport defaults.
    pub fn edge() -> Self {
        Self {
            transient_failure_retry_count: 6,
            transient_failure_retry_interval: TimeSpan::minutes(10),
            outbound_connection_failure_retry_interval: TimeSpan::minutes(30),
            message_retry_interval: TimeSpan::minutes(5),
            message_expiration_timeout: TimeSpan::days(2),
            delay_notification_timeout: TimeSpan::hours(4),
            delay_dsn_enabled: true,
            queue_glitch_retry_count: 4,
            queue_glitch_retry_interval: TimeSpan::minutes(1),
            retry_interleaving: RetryInterleaving::GlitchThenTransient,
        }
    }

    /// Mailbox defaults.
    pub fn mailbox() -> Self {
        Self {
            transient_failure_retry_interval: TimeSpan::minutes(5),
            outbound_connection_failure_retry_interval: TimeSpan::minutes(10),
            ..Self::edge()
        }
    }

    /// Defaults for `role`.
    pub fn for_role(role: ServerRole) -> Self {
        match role {
            ServerRole::Edge => Self::edge(),
            ServerRole::Mailbox => Self::mailbox(),
        }
    }
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self::edge()
    }
}

/// The TOML form: `role` picks the defaults, any other key overrides one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportSettingsRaw {
    #[serde(default)]
    role: ServerRole,
    transient_failure_retry_count: Option<u32>,
    transient_failure_retry_interval: Option<TimeSpan>,
    outbound_connection_failure_retry_interval: Option<TimeSpan>,
    message_retry_interval: Option<TimeSpan>,
    message_expiration_timeout: Option<TimeSpan>,
    delay_notification_timeout: Option<TimeSpan>,
    delay_dsn_enabled: Option<bool>,
    queue_glitch_retry_count: Option<u32>,
    queue_glitch_retry_interval: Option<TimeSpan>,
    retry_interleaving: Option<RetryInterleaving>,
}

impl<'de> Deserialize<'de> for TransportSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = TransportSettingsRaw::deserialize(d)?;
        let b = Self::for_role(r.role);
        if r.transient_failure_retry_count.is_some_and(|c| c > 15) {
            return Err(serde::de::Error::custom(
                "transient_failure_retry_count must be 0-15",
            ));
        }
        Ok(Self {
            transient_failure_retry_count: r
                .transient_failure_retry_count
                .unwrap_or(b.transient_failure_retry_count),
            transient_failure_retry_interval: r
                .transient_failure_retry_interval
                .unwrap_or(b.transient_failure_retry_interval),
            outbound_connection_failure_retry_interval: r
                .outbound_connection_failure_retry_interval
                .unwrap_or(b.outbound_connection_failure_retry_interval),
            message_retry_interval: r.message_retry_interval.unwrap_or(b.message_retry_interval),
            message_expiration_timeout: r
                .message_expiration_timeout
                .unwrap_or(b.message_expiration_timeout),
            delay_notification_timeout: r
                .delay_notification_timeout
                .unwrap_or(b.delay_notification_timeout),
            delay_dsn_enabled: r.delay_dsn_enabled.unwrap_or(b.delay_dsn_enabled),
            queue_glitch_retry_count: r
                .queue_glitch_retry_count
                .unwrap_or(b.queue_glitch_retry_count),
            queue_glitch_retry_interval: r
                .queue_glitch_retry_interval
                .unwrap_or(b.queue_glitch_retry_interval),
            retry_interleaving: r.retry_interleaving.unwrap_or(b.retry_interleaving),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_forms() {
        let t: TransportSettings =
            toml::from_str("role = \"mailbox\"\nmessage_retry_interval = \"00:15:00\"\n").unwrap();
        assert_eq!(
            t.outbound_connection_failure_retry_interval,
            TimeSpan::minutes(10)
        );
        assert_eq!(t.message_retry_interval, TimeSpan::minutes(15));
        let e: TransportSettings = toml::from_str("").unwrap();
        assert_eq!(e, TransportSettings::edge());
        assert!(toml::from_str::<TransportSettings>("bogus = 1").is_err());
        assert!(toml::from_str::<TransportSettings>("transient_failure_retry_count = 16").is_err());
    }
}
