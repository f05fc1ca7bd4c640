//! Outbound messages: envelope, headers and the MIME text the sender transmits (built with
//! mail-builder). With `CloudServicesMailEnabled` the organization headers
//! (`X-MS-Exchange-Organization-*`) are converted into `X-MS-Exchange-CrossPremises-*` on the way out,
//! as a hybrid send connector does; without it they are stripped (they never leave the organization).

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One message waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Exchange's internal message id (the number the send log prints in `sending message`).
    pub internal_id: u64,
    /// `Message-Id` without angle brackets.
    pub message_id: String,
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The `Subject` header's text.
    pub subject: String,
    /// The plain-text body, CRLF line ends.
    pub body: String,
    /// Extra headers, in order (`X-MS-Exchange-Organization-AuthAs: Internal`...).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// When the message entered the transport (for expiry and delay DSNs).
    #[serde(with = "time::serde::rfc3339")]
    pub arrival: OffsetDateTime,
    /// Pad the body so the MIME text is at least this many bytes (size-limit scenarios).
    #[serde(default)]
    pub min_size: Option<usize>,
}

impl OutboundMessage {
    /// A small message from `from` to `to`, arriving at `arrival`.
    pub fn simple(internal_id: u64, from: &str, to: &str, arrival: OffsetDateTime) -> Self {
        let host = from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("lab.invalid");
        Self {
            internal_id,
            message_id: format!("{internal_id:016x}@{host}"),
            from: from.to_string(),
            to: vec![to.to_string()],
            subject: "hybridlab test message".into(),
            body: "This message was sent by hybridlab.\r\n".into(),
            headers: vec![
                (
                    "X-MS-Exchange-Organization-AuthAs".into(),
                    "Internal".into(),
                ),
                (
                    "X-MS-Exchange-Organization-AuthSource".into(),
                    "EDGE01.contoso.com".into(),
                ),
            ],
            arrival,
            min_size: None,
        }
    }

    /// The domain of the first recipient (the next-hop domain).
    pub fn recipient_domain(&self) -> &str {
        self.to
            .first()
            .and_then(|r| r.rsplit_once('@'))
            .map(|(_, d)| d)
            .unwrap_or("")
    }

    /// The MIME text as sent, headers converted per `cross_premises`.
    pub fn wire(&self, cross_premises: bool) -> Vec<u8> {
        let mut b = MessageBuilder::new()
            .from(self.from.as_str())
            .to(self.to.iter().map(String::as_str).collect::<Vec<&str>>())
            .subject(self.subject.as_str())
            .message_id(self.message_id.as_str())
            .date(self.arrival.unix_timestamp());
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            let out_name = match lower.strip_prefix("x-ms-exchange-organization-") {
                Some(rest) if cross_premises => format!(
                    "X-MS-Exchange-CrossPremises-{}",
                    &name[name.len() - rest.len()..]
                ),
                Some(_) => continue,
                None => name.clone(),
            };
            b = b.header(out_name, Raw::new(value.clone()));
        }
        let mut body = self.body.clone();
        if let Some(min) = self.min_size {
            let probe = b
                .clone()
                .text_body(body.clone())
                .write_to_vec()
                .unwrap_or_default();
            if probe.len() < min {
                let mut pad = min - probe.len();
                while pad > 0 {
                    let n = pad.min(76);
                    body.push_str(&"x".repeat(n.saturating_sub(2).max(1)));
                    body.push_str("\r\n");
                    pad = pad.saturating_sub(n.max(3));
                }
            }
        }
        b.text_body(body).write_to_vec().unwrap_or_default()
    }
}

/// RFC 5321 dot-stuffing plus the terminating `.CRLF` (DATA); bare LF is normalised to CRLF.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_premises_headers_and_dot_stuffing() {
        let t = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let m = OutboundMessage::simple(
            1,
            "alice@contoso.com",
            "bob@contoso.mail.onmicrosoft.com",
            t,
        );
        let hybrid = String::from_utf8(m.wire(true)).unwrap();
        assert!(
            hybrid.contains("X-MS-Exchange-CrossPremises-AuthAs: Internal"),
            "{hybrid}"
        );
        assert!(!hybrid.contains("X-MS-Exchange-Organization-"));
        let plain = String::from_utf8(m.wire(false)).unwrap();
        assert!(!plain.contains("X-MS-Exchange-"));
        assert_eq!(m.wire(true), m.wire(true), "deterministic");
        assert_eq!(m.recipient_domain(), "contoso.mail.onmicrosoft.com");
        let mut big = m;
        big.min_size = Some(5000);
        assert!(big.wire(true).len() >= 5000);
        assert_eq!(dot_stuff(b".a\r\nb\n.c"), b"..a\r\nb\r\n..c\r\n.\r\n");
    }
}
