//! `Get-Queue` and `Get-Message` rows, the `LastError` field they carry, and their
//! `Format-List` / `ConvertTo-Json` writers and readers.
//!
//! `LastError` has the shape `[{LED=<detail>};{MSG=<message detail>};{FQDN=<host>};{IP=<ip>};{LRT=<time>}]`
//! (docs/domain.md section 5.6): split on `};{`, strip `[{` and `}]`, each item `KEY=value`;
//! a value may contain `;` and `->` but not `};{`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::format_list::{self, FlOptions, FlRecord};
use super::ps::{Parsed, PsObject, PsValue};
use super::ps_json::{self, JsonStyle};
use super::text::LineEnding;
use hybridlab_model::exchange::{DeliveryType, QueueStatus};
use hybridlab_model::size::ByteSize;

pub use hybridlab_model::led::{LastError, en_us_datetime};

/// One delivery queue as `Get-Queue | Format-List` shows it (the fields the lab models): a row of
/// the listing, like [`crate::certs::CertListingRow`] and [`crate::connectors::SendConnectorRow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    /// `Identity`: `SERVER\<n>`, the server and the queue's number on it; `Get-Message` rows name
    /// their queue by it.
    pub identity: String,
    /// How the next hop is reached.
    pub delivery_type: DeliveryType,
    /// `Status`: `Active` (delivering), `Ready` (waiting for a session), `Retry` (the last attempt
    /// failed; see `last_error`), `Suspended`.
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
    /// `RetryCount`: how many connection attempts failed since the queue last delivered.
    pub retry_count: u32,
    /// `FirstRetryTime`: when the queue first went into retry (server local time, read as UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_retry_time: Option<OffsetDateTime>,
    /// `LastRetryTime`: the latest failed attempt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_retry_time: Option<OffsetDateTime>,
    /// `NextRetryTime`: when the transport tries again (after the retry interval).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_time: Option<OffsetDateTime>,
}

/// The RunspaceId the lab prints (every Exchange Management Shell session is a remote session,
/// so real `Get-Queue | fl` output starts with one).
pub const LAB_RUNSPACE_ID: &str = "4f1d7c2a-9b3e-4e6a-8d15-2c7b9e0a6f31";

/// `Get-Queue | Format-List` records (Exchange 2013-2019 property order, from real output).
pub fn queue_records(queues: &[QueueRow]) -> Vec<FlRecord> {
    queues
        .iter()
        .map(|q| {
            let counts = format!("{{0, {}, 0, 0}}", q.message_count);
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                (
                    "DeliveryType".into(),
                    PsValue::text(q.delivery_type.as_str()),
                ),
                ("NextHopDomain".into(), PsValue::text(&q.next_hop_domain)),
                (
                    "TlsDomain".into(),
                    PsValue::opt_text(q.tls_domain.as_deref()),
                ),
                (
                    "NextHopConnector".into(),
                    PsValue::opt_text(q.next_hop_connector.as_deref()),
                ),
                ("Status".into(), PsValue::text(q.status.as_str())),
                ("MessageCount".into(), PsValue::num(q.message_count)),
                (
                    "LastError".into(),
                    q.last_error
                        .as_ref()
                        .map_or(PsValue::Null, |e| PsValue::text(e.to_string())),
                ),
                ("RetryCount".into(), PsValue::num(q.retry_count)),
                ("LastRetryTime".into(), PsValue::opt_date(q.last_retry_time)),
                ("NextRetryTime".into(), PsValue::opt_date(q.next_retry_time)),
                (
                    "FirstRetryTime".into(),
                    PsValue::opt_date(q.first_retry_time),
                ),
                ("DeferredMessageCount".into(), PsValue::num(0)),
                ("LockedMessageCount".into(), PsValue::num(0)),
                ("MessageCountsPerPriority".into(), PsValue::text(counts)),
                (
                    "DeferredMessageCountsPerPriority".into(),
                    PsValue::text("{0, 0, 0, 0}"),
                ),
                ("RiskLevel".into(), PsValue::text("Normal")),
                ("OutboundIPPool".into(), PsValue::num(0)),
                ("NextHopCategory".into(), PsValue::text("External")),
                ("IncomingRate".into(), PsValue::num(0)),
                ("OutgoingRate".into(), PsValue::num(0)),
                ("Velocity".into(), PsValue::num(0)),
                ("OverrideSource".into(), PsValue::Null),
                ("QueueIdentity".into(), PsValue::text(&q.identity)),
                (
                    "PriorityDescriptions".into(),
                    PsValue::list(["High", "Normal", "Low", "None"]),
                ),
                ("Identity".into(), PsValue::text(&q.identity)),
                ("IsValid".into(), PsValue::Bool(true)),
                ("ObjectState".into(), PsValue::text("New")),
            ]
        })
        .collect()
}

/// `Get-Queue | Format-List` text.
pub fn write_queue_list(queues: &[QueueRow], opts: &FlOptions) -> String {
    format_list::render(&queue_records(queues), opts)
}

/// `Get-Queue | ConvertTo-Json` (the same properties).
pub fn write_queue_json(queues: &[QueueRow], style: JsonStyle) -> String {
    ps_json::render(&queue_records(queues), style, LineEnding::CrLf)
}

/// Whether a listed object is a queue (`Get-Queue`).
pub fn is_queue(obj: &PsObject) -> bool {
    (obj.has("NextHopDomain") && (obj.has("DeliveryType") || obj.has("MessageCount")))
        || obj.has("QueueIdentity")
}

/// A queue from a listed object (text or JSON); `None` without an Identity.
pub fn queue_from_object(obj: &PsObject) -> Option<Parsed<QueueRow>> {
    let identity = obj.text("Identity").or_else(|| obj.text("QueueIdentity"))?;
    let row = QueueRow {
        identity,
        delivery_type: obj
            .text("DeliveryType")
            .and_then(|t| t.parse().ok())
            .unwrap_or(DeliveryType::Undefined),
        status: obj
            .text("Status")
            .and_then(|t| t.parse().ok())
            .unwrap_or(QueueStatus::None),
        message_count: obj
            .u64("MessageCount")
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
        next_hop_domain: obj.text_or_empty("NextHopDomain"),
        tls_domain: obj.text("TlsDomain"),
        next_hop_connector: obj.text("NextHopConnector"),
        last_error: obj
            .text("LastError")
            .and_then(|t| LastError::parse_lenient(&t)),
        retry_count: obj
            .u64("RetryCount")
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
        first_retry_time: obj.date("FirstRetryTime"),
        last_retry_time: obj.date("LastRetryTime"),
        next_retry_time: obj.date("NextRetryTime"),
    };
    Some(Parsed::of(row, obj))
}

hybridlab_model::token_enum! {
    /// `Get-Message` Status: where a message stands in its queue.
    MessageStatus {
        /// Nothing is happening to it.
        None => "None",
        /// Being delivered.
        Active => "Active",
        /// Locked by a process working on it (e.g. being exported).
        Locked => "Locked",
        /// Being removed by an admin, once the current delivery attempt ends.
        PendingRemove => "PendingRemove",
        /// Being suspended by an admin, once the current delivery attempt ends.
        PendingSuspend => "PendingSuspend",
        /// Waiting to be delivered.
        Ready => "Ready",
        /// Waiting for the next retry.
        Retry => "Retry",
        /// Suspended by an admin.
        Suspended => "Suspended",
    }
}

/// One queued message as `Get-Message | Format-List` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// `Identity`: `SERVER\<queue>\<message id>` (`EXCH01\3\12884901890`).
    pub identity: String,
    /// The queue identity (`EXCH01\3`).
    pub queue: String,
    /// `Subject`: the message's subject line.
    pub subject: String,
    /// `FromAddress`: the envelope sender (`MAIL FROM`).
    pub from_address: String,
    /// `Status`: where the message stands in its queue (`Ready`, `Retry`, `Suspended`...).
    pub status: MessageStatus,
    /// `Size`: the message size in bytes, as the listing's `(n bytes)` shows it.
    pub size_bytes: Option<u64>,
    /// `MessageSourceName`: how it entered the transport: the receive connector (`SMTP:Default
    /// EXCH01`) or local submission (`FromLocal`).
    pub message_source_name: String,
    /// The address that submitted the message.
    pub source_ip: String,
    /// Spam confidence level (-1 for authenticated mail).
    pub scl: Option<i32>,
    /// When the message entered the queue.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date_received: Option<OffsetDateTime>,
    /// When it expires (MessageExpirationTimeout after submission).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration_time: Option<OffsetDateTime>,
    /// The last error, if any.
    pub last_error: Option<LastError>,
    /// Delivery attempts so far.
    pub retry_count: u32,
    /// Recipient addresses (the listing may add `;status;...` details, which the reader drops).
    pub recipients: Vec<String>,
    /// `InternetMessageId`: the `Message-ID` header (`<guid@server>`), the id message traces search
    /// by.
    pub internet_message_id: String,
}

/// `Get-Message | Format-List` records (property order reconstructed; see docs/formats.md).
pub fn message_records(messages: &[MessageRow]) -> Vec<FlRecord> {
    messages
        .iter()
        .map(|m| {
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                ("Subject".into(), PsValue::text(&m.subject)),
                (
                    "InternetMessageId".into(),
                    PsValue::text(&m.internet_message_id),
                ),
                ("FromAddress".into(), PsValue::text(&m.from_address)),
                ("Status".into(), PsValue::text(m.status.as_str())),
                (
                    "Size".into(),
                    m.size_bytes.map_or(PsValue::Null, |n| {
                        PsValue::text(ByteSize::Bytes(n).display_listing())
                    }),
                ),
                (
                    "MessageSourceName".into(),
                    PsValue::text(&m.message_source_name),
                ),
                ("SourceIP".into(), PsValue::text(&m.source_ip)),
                ("SCL".into(), PsValue::opt_num(m.scl)),
                ("DateReceived".into(), PsValue::opt_date(m.date_received)),
                (
                    "ExpirationTime".into(),
                    PsValue::opt_date(m.expiration_time),
                ),
                (
                    "LastError".into(),
                    m.last_error
                        .as_ref()
                        .map_or(PsValue::Null, |e| PsValue::text(e.to_string())),
                ),
                ("RetryCount".into(), PsValue::num(m.retry_count)),
                ("Recipients".into(), PsValue::list(&m.recipients)),
                ("DeferReason".into(), PsValue::text("None")),
                ("LockReason".into(), PsValue::Null),
                ("IsProbeMessage".into(), PsValue::Bool(false)),
                ("Priority".into(), PsValue::text("Normal")),
                (
                    "ExternalDirectoryOrganizationId".into(),
                    PsValue::text("00000000-0000-0000-0000-000000000000"),
                ),
                ("Directionality".into(), PsValue::text("Originating")),
                ("OriginalFromAddress".into(), PsValue::text(&m.from_address)),
                ("AccountForest".into(), PsValue::Null),
                ("Queue".into(), PsValue::text(&m.queue)),
                ("Identity".into(), PsValue::text(&m.identity)),
                ("IsValid".into(), PsValue::Bool(true)),
                ("ObjectState".into(), PsValue::text("New")),
            ]
        })
        .collect()
}

/// `Get-Message | Format-List` text.
pub fn write_message_list(messages: &[MessageRow], opts: &FlOptions) -> String {
    format_list::render(&message_records(messages), opts)
}

/// `Get-Message | ConvertTo-Json`.
pub fn write_message_json(messages: &[MessageRow], style: JsonStyle) -> String {
    ps_json::render(&message_records(messages), style, LineEnding::CrLf)
}

/// Whether a listed object is a message (`Get-Message`).
pub fn is_message(obj: &PsObject) -> bool {
    obj.has("FromAddress")
        && (obj.has("DateReceived") || obj.has("Queue") || obj.has("MessageSourceName"))
}

/// A message from a listed object; `None` without an Identity.
pub fn message_from_object(obj: &PsObject) -> Option<Parsed<MessageRow>> {
    let identity = obj.text("Identity")?;
    let queue = obj.text("Queue").unwrap_or_else(|| {
        identity
            .rsplit_once('\\')
            .map_or(String::new(), |(q, _)| q.to_string())
    });
    let row = MessageRow {
        identity,
        queue,
        subject: obj.text_or_empty("Subject"),
        from_address: obj.text_or_empty("FromAddress"),
        status: obj
            .text("Status")
            .and_then(|t| t.parse().ok())
            .unwrap_or(MessageStatus::None),
        size_bytes: obj
            .text("Size")
            .and_then(|t| match ByteSize::parse_listing(&t) {
                Some(ByteSize::Bytes(n)) => Some(n),
                _ => None,
            }),
        message_source_name: obj.text_or_empty("MessageSourceName"),
        source_ip: obj.text_or_empty("SourceIP"),
        scl: obj.i64("SCL").and_then(|n| i32::try_from(n).ok()),
        date_received: obj.date("DateReceived"),
        expiration_time: obj.date("ExpirationTime"),
        last_error: obj
            .text("LastError")
            .and_then(|t| LastError::parse_lenient(&t)),
        retry_count: obj
            .u64("RetryCount")
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
        recipients: obj
            .list("Recipients")
            .into_iter()
            .map(|r| r.split(';').next().unwrap_or("").trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        internet_message_id: obj.text_or_empty("InternetMessageId"),
    };
    Some(Parsed::of(row, obj))
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
