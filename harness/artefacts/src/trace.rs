//! Exchange Online's message trace as admins export it: `Get-MessageTrace` (one row per message
//! and recipient), `Get-MessageTraceDetail` (one row per event: `Receive`, `Defer`, `Fail`...)
//! in `Format-List`, table, `ConvertTo-Json` or `Export-Csv` form (the V2 cmdlets print the same
//! properties), and the CSV reports the Exchange admin center lets one download (summary report:
//! `origin_timestamp_utc, sender_address, recipient_status, ...`; extended report: one row per
//! event, `date_time_utc, ..., event_id, ..., recipient_status, ...`).
//!
//! The LED a `Defer` or `Fail` event carries (docs/domain.md section 11.3,
//! `Reason: [{LED=450 4.4.317 Cannot connect to remote server [Message=...]
//! [LastAttemptedServerName=...] [LastAttemptedIP=...] [<EOP host> <time> <session>]};...]`,
//! the older `[{LED=450 4.4.316 Connection refused};{MSG=Socket error code 10061};...]`, or a bare
//! LED in the EAC's `recipient_status`) is parsed into a [`TraceLed`]: code, enhanced code, text,
//! the inner message, the server name and IP EXO tried, the EOP host that tried and when.
//! Cmdlet properties: <https://learn.microsoft.com/powershell/module/exchange/get-messagetrace>,
//! <https://learn.microsoft.com/powershell/module/exchange/get-messagetracedetail>.

use hybridlab_model::led::{LastError, Led, TraceReason};
use hybridlab_model::reply::EnhancedCode;
use hybridlab_model::trace::{TraceEventKind, TraceStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ps::{Parsed, PsObject, parse_ps_datetime, parse_u64};

/// One `Get-MessageTrace` row (or an EAC summary report row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRow {
    /// `Received` (UTC as the cmdlet prints it).
    #[serde(with = "time::serde::rfc3339::option")]
    pub received: Option<OffsetDateTime>,
    /// `SenderAddress`.
    pub sender_address: String,
    /// `RecipientAddress`.
    pub recipient_address: String,
    /// `Subject`.
    pub subject: String,
    /// `Status` (`Pending` while EXO defers, `Failed` after expiry).
    pub status: TraceStatus,
    /// `ToIP`.
    pub to_ip: Option<String>,
    /// `FromIP`.
    pub from_ip: Option<String>,
    /// `Size` in bytes.
    pub size: Option<u64>,
    /// `MessageId`.
    pub message_id: String,
    /// `MessageTraceId`.
    pub message_trace_id: Option<String>,
}

/// One `Get-MessageTraceDetail` row (or an EAC extended report row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceDetailRow {
    /// `Date`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
    /// `Event`.
    pub event: TraceEventKind,
    /// `Action`.
    pub action: String,
    /// `Detail` (the reason text for `Defer`/`Fail`).
    pub detail: String,
    /// `Data` (the `<root><MEP .../></root>` XML), empty when not exported.
    pub data: String,
    /// `MessageId`.
    pub message_id: String,
    /// `MessageTraceId`.
    pub message_trace_id: Option<String>,
    /// `RecipientAddress`, when the export carries it.
    pub recipient_address: Option<String>,
    /// The LED the detail carries, parsed.
    pub led: Option<TraceLed>,
}

/// An Exchange Online delivery LED, parsed into what the diagnosis asks of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLed {
    /// The reply code (`450`).
    pub code: u16,
    /// The enhanced code (`4.4.317`).
    pub enhanced: Option<EnhancedCode>,
    /// The LED's text (`Cannot connect to remote server`).
    pub text: String,
    /// The inner message (`[Message=...]`, else the frame's `MSG`): `451 5.7.3 STARTTLS is
    /// required to send mail`, `SubjectMismatch Expected Subject: ...`, `Socket error code 10061`.
    pub message: Option<String>,
    /// The host EXO connected to (`LastAttemptedServerName`, else `FQDN`, else
    /// `OutboundProxyTargetHostName`).
    pub server_name: Option<String>,
    /// The address EXO connected to (`LastAttemptedIP` without the port, else `IP`, else
    /// `OutboundProxyTargetIP`).
    pub ip: Option<String>,
    /// The EOP host that tried (the bracketed tag).
    pub eop_host: Option<String>,
    /// When: the tag's ISO time, else the frame's `LRT`, parsed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub time: Option<OffsetDateTime>,
    /// The thumbprint a certificate failure names (upper case).
    pub thumbprint: Option<String>,
}

impl TraceLed {
    /// Reads a trace detail, a queue-style `[{LED=...}]` frame, or a bare LED (`450 4.4.317 ...`)
    /// anywhere in `text`; `None` when none is there.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(r) = TraceReason::parse(text) {
            return Self::from_last_error(
                &r.last_error,
                r.proxy_target_host.as_deref(),
                r.proxy_target_ip.as_deref(),
            );
        }
        if let Some(le) = LastError::parse(text) {
            return Self::from_last_error(&le, None, None);
        }
        let led = bare_led(text)?;
        Some(Self::from_led(&led, None))
    }

    fn from_last_error(le: &LastError, host: Option<&str>, ip: Option<&str>) -> Option<Self> {
        let led = le.exo_led().or_else(|| bare_led(&le.led))?;
        let mut t = Self::from_led(&led, Some(le));
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        t.server_name = t
            .server_name
            .or_else(|| non_empty(&le.fqdn))
            .or_else(|| host.map(str::to_string));
        t.ip =
            t.ip.or_else(|| non_empty(&le.ip))
                .or_else(|| ip.map(str::to_string));
        t.time = t.time.or_else(|| parse_ps_datetime(&le.lrt));
        Some(t)
    }

    fn from_led(led: &Led, le: Option<&LastError>) -> Self {
        let tag = led.tag();
        Self {
            code: led.code,
            enhanced: led.enhanced,
            text: led.text.clone(),
            message: led
                .message()
                .map(str::to_string)
                .or_else(|| le.and_then(|l| (!l.msg.trim().is_empty()).then(|| l.msg.clone()))),
            server_name: led.last_attempted_server_name().map(str::to_string),
            ip: led.last_attempted_ip().map(strip_port),
            eop_host: tag.map(|t| t.host.clone()),
            time: tag
                .and_then(|t| t.time.as_deref())
                .and_then(parse_ps_datetime),
            thumbprint: led.thumbprint(),
        }
    }

    /// `450 4.4.317 Cannot connect to remote server` (code, enhanced code, text).
    pub fn headline(&self) -> String {
        let mut s = self.code.to_string();
        if let Some(e) = self.enhanced {
            s.push(' ');
            s.push_str(&e.to_string());
        }
        if !self.text.is_empty() {
            s.push(' ');
            s.push_str(&self.text);
        }
        s
    }
}

/// `203.0.113.10:25` -> `203.0.113.10` (`[2001:db8::1]:25` -> `2001:db8::1`).
fn strip_port(s: &str) -> String {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return a.ip().to_string();
    }
    s.trim().to_string()
}

/// The first `ddd d.d.ddd ...` reply in `text` (a recipient status may start with the address or
/// `{`), read as a LED.
fn bare_led(text: &str) -> Option<Led> {
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(4) {
        let at_word = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if at_word
            && matches!(b[i], b'4' | b'5')
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
            && matches!(b[i + 3], b' ' | b'-')
            && let Some(led) = text.get(i..).and_then(Led::parse)
            && led.enhanced.is_some()
        {
            return Some(led);
        }
    }
    None
}

/// Whether an object is a `Get-MessageTrace` row (or an EAC summary report row).
pub fn is_trace(obj: &PsObject) -> bool {
    (obj.has_loose(&["RecipientAddress"])
        && obj.has_loose(&["Status"])
        && obj.has_loose(&["Received", "ReceivedTime"])
        && obj.has_loose(&["SenderAddress", "Sender"]))
        || (obj.has_loose(&["origin_timestamp_utc"]) && obj.has_loose(&["recipient_status"]))
}

/// Whether an object is a `Get-MessageTraceDetail` row (or an EAC extended report row).
pub fn is_trace_detail(obj: &PsObject) -> bool {
    (obj.has_loose(&["Event"])
        && obj.has_loose(&["Detail"])
        && obj.has_loose(&["Date", "MessageTraceId"]))
        || (obj.has_loose(&["date_time_utc"])
            && obj.has_loose(&["event_id"])
            && obj.has_loose(&["recipient_status"]))
}

/// The status an EAC summary's `recipient_status` (`user@contoso.com##Receive, Submit, Defer`)
/// ends in.
fn eac_status(s: &str) -> TraceStatus {
    let last = s
        .rsplit(['#', ','])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match last.as_str() {
        "defer" => TraceStatus::Pending,
        "fail" | "drop" => TraceStatus::Failed,
        "deliver" | "send" | "send external" => TraceStatus::Delivered,
        _ => last.parse().unwrap_or(TraceStatus::None),
    }
}

/// A trace row from a listed object.
pub fn trace_from_object(obj: &PsObject) -> Option<Parsed<TraceRow>> {
    let eac = obj.has_loose(&["origin_timestamp_utc"]);
    let status = if eac {
        eac_status(&obj.text_loose(&["recipient_status"]).unwrap_or_default())
    } else {
        obj.text_loose(&["Status"])?.parse().ok()?
    };
    let recipient = obj
        .text_loose(&["RecipientAddress"])
        .or_else(|| {
            obj.text_loose(&["recipient_status"])
                .and_then(|s| s.split("##").next().map(str::to_string))
        })
        .unwrap_or_default();
    let row = TraceRow {
        received: obj
            .text_loose(&["Received", "ReceivedTime", "origin_timestamp_utc"])
            .and_then(|t| parse_ps_datetime(&t)),
        sender_address: obj
            .text_loose(&["SenderAddress", "Sender", "sender_address"])
            .unwrap_or_default(),
        recipient_address: recipient,
        subject: obj
            .text_loose(&["Subject", "message_subject"])
            .unwrap_or_default(),
        status,
        to_ip: obj.text_loose(&["ToIP"]),
        from_ip: obj.text_loose(&["FromIP", "original_client_ip"]),
        size: obj
            .text_loose(&["Size", "total_bytes"])
            .and_then(|t| parse_u64(&t)),
        message_id: obj
            .text_loose(&["MessageId", "message_id"])
            .unwrap_or_default(),
        message_trace_id: obj.text_loose(&["MessageTraceId", "network_message_id"]),
    };
    Some(Parsed::of(row, obj))
}

/// A trace detail row from a listed object.
pub fn trace_detail_from_object(obj: &PsObject) -> Option<Parsed<TraceDetailRow>> {
    let event = obj.text_loose(&["Event", "event_id"])?;
    let detail = obj
        .text_loose(&["Detail", "recipient_status"])
        .unwrap_or_default();
    let row = TraceDetailRow {
        date: obj
            .text_loose(&["Date", "date_time_utc"])
            .and_then(|t| parse_ps_datetime(&t)),
        event: event.parse().unwrap_or(TraceEventKind::Other(event)),
        action: obj.text_loose(&["Action"]).unwrap_or_default(),
        led: TraceLed::parse(&detail),
        detail,
        data: obj.text_loose(&["Data", "custom_data"]).unwrap_or_default(),
        message_id: obj
            .text_loose(&["MessageId", "message_id"])
            .unwrap_or_default(),
        message_trace_id: obj.text_loose(&["MessageTraceId", "network_message_id"]),
        recipient_address: obj.text_loose(&["RecipientAddress", "recipient_address"]),
    };
    Some(Parsed::of(row, obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leds_of_every_family() {
        let t = TraceLed::parse("Reason: [{LED=450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is required to send mail] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=203.0.113.10:25] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2023-03-07T18:46:06.378Z 08DB1DF24DB12D84]};{MSG=};{FQDN=mail.contoso.com};{IP=203.0.113.10};{LRT=3/7/2023 6:46:06 PM}]. OutboundProxyTargetIP: 203.0.113.10. OutboundProxyTargetHostName: mail.contoso.com").unwrap();
        assert_eq!(t.headline(), "450 4.4.317 Cannot connect to remote server");
        assert_eq!(
            t.message.as_deref(),
            Some("451 5.7.3 STARTTLS is required to send mail")
        );
        assert_eq!(t.server_name.as_deref(), Some("mail.contoso.com"));
        assert_eq!(t.ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(
            t.eop_host.as_deref(),
            Some("DM6NAM12FT012.eop-nam12.prod.protection.outlook.com")
        );
        assert_eq!(
            t.time,
            Some(time::macros::datetime!(2023-03-07 18:46:06.378 UTC))
        );
        let old = TraceLed::parse("Reason: [{LED=450 4.4.316 Connection refused};{MSG=Socket error code 10061};{FQDN=hybrid.contoso.com};{IP=203.0.113.10};{LRT=3/7/2023 6:46:06 PM}]").unwrap();
        assert_eq!(old.code, 450);
        assert_eq!(old.message.as_deref(), Some("Socket error code 10061"));
        assert_eq!(old.server_name.as_deref(), Some("hybrid.contoso.com"));
        assert_eq!(
            old.time,
            Some(time::macros::datetime!(2023-03-07 18:46:06 UTC))
        );
        let bare = TraceLed::parse(
            "user@contoso.com 450 4.7.320 Certificate validation failed [Message=SubjectMismatch]",
        )
        .unwrap();
        assert_eq!(bare.enhanced.unwrap().to_string(), "4.7.320");
        assert!(TraceLed::parse("The message was submitted.").is_none());
        assert!(TraceLed::parse("Size 450 bytes").is_none());
    }
}
