//! Exchange Online's message trace as data: one [`MessageTrace`] per message and recipient (what
//! `Get-MessageTrace` lists) with its [`TraceEvent`]s (what `Get-MessageTraceDetail` lists).
//!
//! The types hold values, not renderings: times are UTC instants (the cmdlets print them in the
//! session's culture, en-US `M/d/yyyy h:mm:ss tt` by default, see [`crate::led::en_us_datetime`]);
//! writers and readers of the Format-List and Export-Csv shapes live with the other artefact
//! formats. Property names follow the cmdlets' output objects
//! (<https://learn.microsoft.com/powershell/module/exchange/get-messagetrace>,
//! <https://learn.microsoft.com/powershell/module/exchange/get-messagetracedetail>).
//!
//! For an EXO -> on-premises outage the summary `Status` is `Pending` while Exchange Online
//! defers and `Failed` after expiry; each attempt adds a `Defer` event whose `Detail` is a
//! [`crate::led::TraceReason`] (`Reason: [{LED=...};{MSG=};{FQDN=...};{IP=...};{LRT=...}].
//! OutboundProxyTargetIP: ... OutboundProxyTargetHostName: ...`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::led::TraceReason;

/// One row of `Get-MessageTrace`: a message as one recipient saw it, with its detail events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTrace {
    /// `Organization`: the tenant's initial domain (`contoso.onmicrosoft.com`).
    pub organization: String,
    /// `MessageId`: the Message-ID header, with angle brackets (`<a1b2@...prod.outlook.com>`).
    pub message_id: String,
    /// `Received`: when Exchange Online received the message (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub received: OffsetDateTime,
    /// `SenderAddress`: the envelope sender.
    pub sender_address: String,
    /// `RecipientAddress`: the recipient this row is about.
    pub recipient_address: String,
    /// `Subject`.
    pub subject: String,
    /// `Status`: where the message stands for this recipient.
    pub status: TraceStatus,
    /// `ToIP`: the address the message was delivered (or last attempted) to; empty when none.
    pub to_ip: Option<String>,
    /// `FromIP`: the client address the message came from; empty for mail submitted inside
    /// Exchange Online.
    pub from_ip: Option<String>,
    /// `Size` in bytes.
    pub size: u64,
    /// `MessageTraceId`: a GUID per message and recipient.
    pub message_trace_id: String,
    /// The detail events (`Get-MessageTraceDetail`), oldest first.
    pub events: Vec<TraceEvent>,
}

impl MessageTrace {
    /// The last `Defer` or `Fail` event's reason, parsed.
    pub fn last_reason(&self) -> Option<TraceReason> {
        self.events
            .iter()
            .rev()
            .filter(|e| matches!(e.event, TraceEventKind::Defer | TraceEventKind::Fail))
            .find_map(TraceEvent::reason)
    }
}

/// `Status` of a trace row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TraceStatus {
    /// Queued; delivery is being retried.
    Pending,
    /// Delivered to the next hop.
    Delivered,
    /// Delivery failed (expired or rejected); an NDR went to the sender.
    Failed,
    /// A group was expanded.
    Expanded,
    /// Filtered as spam.
    FilteredAsSpam,
    /// Quarantined.
    Quarantined,
    /// The trace is still being built.
    GettingStatus,
    /// Resolved to another address (older service).
    Resolved,
    /// No status.
    None,
    /// Any other word, kept as read.
    Other(String),
}

impl TraceStatus {
    /// The word the cmdlet prints.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::Delivered => "Delivered",
            Self::Failed => "Failed",
            Self::Expanded => "Expanded",
            Self::FilteredAsSpam => "FilteredAsSpam",
            Self::Quarantined => "Quarantined",
            Self::GettingStatus => "GettingStatus",
            Self::Resolved => "Resolved",
            Self::None => "None",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for TraceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TraceStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Ok(
            match [
                Self::Pending,
                Self::Delivered,
                Self::Failed,
                Self::Expanded,
                Self::FilteredAsSpam,
                Self::Quarantined,
                Self::GettingStatus,
                Self::Resolved,
                Self::None,
            ]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            {
                Some(k) => k,
                None => Self::Other(t.to_string()),
            },
        )
    }
}

/// One row of `Get-MessageTraceDetail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// `Date` (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    /// `Event`.
    pub event: TraceEventKind,
    /// `Action`: usually empty for these events.
    pub action: String,
    /// `Detail`: `Message received by: <host>`, `The message was submitted.`, `The message was
    /// successfully delivered.`, or for `Defer`/`Fail` exactly a [`TraceReason`]'s text.
    pub detail: String,
    /// `Data`: the `<root><MEP Name=".." String=".." />...</root>` XML ([`TraceData`]).
    pub data: String,
}

impl TraceEvent {
    /// The detail read as a defer/fail reason, when it has that shape.
    pub fn reason(&self) -> Option<TraceReason> {
        TraceReason::parse(&self.detail)
    }
}

/// `Event` of a detail row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TraceEventKind {
    /// `Receive`: the service received the message.
    Receive,
    /// `Submit`: handed to transport.
    Submit,
    /// `Send external`: sent to a server outside the service.
    SendExternal,
    /// `Deliver`: delivered (for a connector: accepted by the on-premises server).
    Deliver,
    /// `Defer`: an attempt failed; the message stays queued.
    Defer,
    /// `Fail`: the message was returned to the sender.
    Fail,
    /// `Drop`: discarded.
    Drop,
    /// `Expand`: a group was expanded.
    Expand,
    /// `Redirect`.
    Redirect,
    /// `Resolve`.
    Resolve,
    /// `Transfer`.
    Transfer,
    /// Any other name, kept as read.
    Other(String),
}

impl TraceEventKind {
    /// The name the cmdlet prints.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Receive => "Receive",
            Self::Submit => "Submit",
            Self::SendExternal => "Send external",
            Self::Deliver => "Deliver",
            Self::Defer => "Defer",
            Self::Fail => "Fail",
            Self::Drop => "Drop",
            Self::Expand => "Expand",
            Self::Redirect => "Redirect",
            Self::Resolve => "Resolve",
            Self::Transfer => "Transfer",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for TraceEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TraceEventKind {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let known = [
            Self::Receive,
            Self::Submit,
            Self::SendExternal,
            Self::Deliver,
            Self::Defer,
            Self::Fail,
            Self::Drop,
            Self::Expand,
            Self::Redirect,
            Self::Resolve,
            Self::Transfer,
        ];
        Ok(known
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            .unwrap_or_else(|| {
                if t.eq_ignore_ascii_case("Expand DL") {
                    Self::Expand
                } else {
                    Self::Other(t.to_string())
                }
            }))
    }
}

/// The typed value of one `MEP` element.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum MepValue {
    /// `String="..."`.
    String(String),
    /// `Integer="..."`.
    Integer(i64),
    /// `Long="..."`.
    Long(i64),
    /// `Blob="..."` (`S:key=value;S:key=value`).
    Blob(String),
    /// `DateTime="..."`, as written.
    DateTime(String),
}

/// The `Data` column of a detail row: `MEP` elements in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceData(pub Vec<(String, MepValue)>);

impl TraceData {
    /// Adds an element (builder style).
    pub fn with(mut self, name: &str, value: MepValue) -> Self {
        self.0.push((name.to_string(), value));
        self
    }
}

/// `<root><MEP Name="ConnectorId" String="Outbound to ..." />...</root>`, `<root />` when empty;
/// attribute values XML-escaped.
impl fmt::Display for TraceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root />");
        }
        f.write_str("<root>")?;
        for (name, value) in &self.0 {
            let (kind, text) = match value {
                MepValue::String(s) => ("String", s.clone()),
                MepValue::Integer(i) => ("Integer", i.to_string()),
                MepValue::Long(i) => ("Long", i.to_string()),
                MepValue::Blob(s) => ("Blob", s.clone()),
                MepValue::DateTime(s) => ("DateTime", s.clone()),
            };
            write!(
                f,
                "<MEP Name=\"{}\" {kind}=\"{}\" />",
                xml_escape(name),
                xml_escape(&text)
            )?;
        }
        f.write_str("</root>")
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for w in ["Pending", "Delivered", "Failed", "FilteredAsSpam"] {
            assert_eq!(w.parse::<TraceStatus>().unwrap().to_string(), w);
        }
        assert_eq!(
            "Weird".parse::<TraceStatus>().unwrap(),
            TraceStatus::Other("Weird".into())
        );
        assert_eq!(
            "send external".parse::<TraceEventKind>().unwrap(),
            TraceEventKind::SendExternal
        );
        assert_eq!(
            "Expand DL".parse::<TraceEventKind>().unwrap(),
            TraceEventKind::Expand
        );
        assert_eq!(TraceEventKind::SendExternal.to_string(), "Send external");
    }

    #[test]
    fn data_xml_and_last_reason() {
        assert_eq!(TraceData::default().to_string(), "<root />");
        let d = TraceData::default()
            .with(
                "ConnectorId",
                MepValue::String("Outbound to <x> & \"y\"".into()),
            )
            .with("RcptCount", MepValue::Integer(1));
        assert_eq!(
            d.to_string(),
            "<root><MEP Name=\"ConnectorId\" String=\"Outbound to &lt;x&gt; &amp; &quot;y&quot;\" /><MEP Name=\"RcptCount\" Integer=\"1\" /></root>"
        );
        let t0 = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let ev = |event, detail: &str| TraceEvent {
            date: t0,
            event,
            action: String::new(),
            detail: detail.into(),
            data: "<root />".into(),
        };
        let trace = MessageTrace {
            organization: "contoso.onmicrosoft.com".into(),
            message_id: "<a@b>".into(),
            received: t0,
            sender_address: "a@contoso.com".into(),
            recipient_address: "b@contoso.com".into(),
            subject: "s".into(),
            status: TraceStatus::Pending,
            to_ip: None,
            from_ip: None,
            size: 1,
            message_trace_id: "00000000-0000-0000-0000-000000000000".into(),
            events: vec![
                ev(TraceEventKind::Receive, "Message received by: X"),
                ev(
                    TraceEventKind::Defer,
                    "Reason: [{LED=450 4.4.316 Connection refused [Message=Socket error code 10061]};{MSG=};{FQDN=mail.contoso.com};{IP=192.0.2.1};{LRT=5/2/2026 6:30:00 AM}]. OutboundProxyTargetIP: 192.0.2.1. OutboundProxyTargetHostName: mail.contoso.com",
                ),
            ],
        };
        let r = trace.last_reason().unwrap();
        assert_eq!(r.last_error.ip, "192.0.2.1");
        let json = serde_json::to_string(&trace).unwrap();
        assert_eq!(serde_json::from_str::<MessageTrace>(&json).unwrap(), trace);
    }
}
