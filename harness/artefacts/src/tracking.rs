//! `Get-MessageTrackingLog | Format-List` (or its table, JSON or CSV forms) and
//! `Test-NetConnection` output, as typed rows.
//!
//! Tracking rows carry `EventId` (`RECEIVE`, `SEND`, `DEFER`, `FAIL`, `DSN`...), `Source`
//! (`SMTP`, `STOREDRIVER`...), `ConnectorId`, `ServerHostname`, `Recipients`, `RecipientStatus`
//! (for `DEFER`/`FAIL` the LED: `{[{LRT=...};{LED=451 4.4.397 ...};...]}` or
//! `{550 4.4.7 QUEUE.Expired; message expired}`), see
//! <https://learn.microsoft.com/exchange/mail-flow/transport-logs/message-tracking>.
//! `Test-NetConnection <host> -Port 25` prints `ComputerName`, `RemoteAddress`, `RemotePort`,
//! `SourceAddress`, `TcpTestSucceeded` (and `PingSucceeded`, `NameResolutionSucceeded` with
//! `-InformationLevel Detailed`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ps::{Parsed, PsObject, parse_ps_datetime, server_name};
use super::trace::TraceLed;

/// One message tracking log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingRow {
    /// `Timestamp`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    /// `EventId` (`DEFER`, `FAIL`, `SEND`...).
    pub event_id: String,
    /// `Source` (`SMTP`, `STOREDRIVER`, `DSN`...).
    pub source: String,
    /// `ConnectorId`.
    pub connector_id: String,
    /// `ServerHostname`: the server that logged it.
    pub server_hostname: String,
    /// `ClientHostname` / `ServerIp` as printed, for context.
    pub client_hostname: String,
    /// `Recipients`.
    pub recipients: Vec<String>,
    /// `RecipientStatus`.
    pub recipient_status: Vec<String>,
    /// `MessageSubject`.
    pub subject: String,
    /// `Sender`.
    pub sender: String,
    /// `MessageId`.
    pub message_id: String,
    /// The LED the recipient status carries, parsed.
    pub led: Option<TraceLed>,
}

/// Whether an object is a tracking log entry.
pub fn is_tracking(obj: &PsObject) -> bool {
    obj.has_loose(&["EventId"])
        && obj.has_loose(&["Timestamp"])
        && obj.has_loose(&[
            "InternalMessageId",
            "SourceContext",
            "MessageSubject",
            "Recipients",
        ])
}

/// A tracking row from a listed object.
pub fn tracking_from_object(obj: &PsObject) -> Option<Parsed<TrackingRow>> {
    let event_id = obj.text_loose(&["EventId"])?;
    let recipient_status = obj.list("RecipientStatus");
    let led = recipient_status.iter().find_map(|s| TraceLed::parse(s));
    let server_hostname = obj.text_loose(&["ServerHostname"]).unwrap_or_default();
    let row = TrackingRow {
        timestamp: obj
            .text_loose(&["Timestamp"])
            .and_then(|t| parse_ps_datetime(&t)),
        event_id,
        source: obj.text_loose(&["Source"]).unwrap_or_default(),
        connector_id: obj.text_loose(&["ConnectorId"]).unwrap_or_default(),
        client_hostname: obj.text_loose(&["ClientHostname"]).unwrap_or_default(),
        recipients: obj.list("Recipients"),
        recipient_status,
        subject: obj.text_loose(&["MessageSubject"]).unwrap_or_default(),
        sender: obj.text_loose(&["Sender"]).unwrap_or_default(),
        message_id: obj.text_loose(&["MessageId"]).unwrap_or_default(),
        led,
        server_hostname: server_hostname.clone(),
    };
    let mut p = Parsed::of(row, obj);
    if p.server.is_none() {
        p.server = server_name(&server_hostname);
    }
    Some(p)
}

/// One `Test-NetConnection` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConnectionRow {
    /// `ComputerName`: the target as given.
    pub computer_name: String,
    /// `RemoteAddress`.
    pub remote_address: Option<String>,
    /// `RemotePort` (25 for SMTP).
    pub remote_port: Option<u16>,
    /// `SourceAddress`.
    pub source_address: Option<String>,
    /// `TcpTestSucceeded` (`None` without `-Port`).
    pub tcp_test_succeeded: Option<bool>,
    /// `PingSucceeded`.
    pub ping_succeeded: Option<bool>,
    /// `NameResolutionSucceeded`.
    pub name_resolution_succeeded: Option<bool>,
}

/// Whether an object is a `Test-NetConnection` result.
pub fn is_net_connection(obj: &PsObject) -> bool {
    obj.has_loose(&["ComputerName"])
        && obj.has_loose(&["TcpTestSucceeded", "PingSucceeded"])
        && obj.has_loose(&["RemoteAddress", "RemotePort", "NameResolutionSucceeded"])
}

/// A `Test-NetConnection` row from a listed object.
pub fn net_connection_from_object(obj: &PsObject) -> Option<Parsed<NetConnectionRow>> {
    let row = NetConnectionRow {
        computer_name: obj.text_loose(&["ComputerName"])?,
        remote_address: obj.text_loose(&["RemoteAddress"]),
        remote_port: obj
            .text_loose(&["RemotePort"])
            .and_then(|t| t.trim().parse().ok()),
        source_address: obj.text_loose(&["SourceAddress"]),
        tcp_test_succeeded: obj.bool("TcpTestSucceeded"),
        ping_succeeded: obj.bool("PingSucceeded"),
        name_resolution_succeeded: obj.bool("NameResolutionSucceeded"),
    };
    let mut p = Parsed::of(row, obj);
    // `ComputerName` is the target, not the server the test ran on.
    if obj.text("PSComputerName").is_none() {
        p.server = None;
    }
    Some(p)
}
