//! The message Exchange Online delivers: envelope, a plain-text RFC 5322 body, and the
//! cross-premises headers (`X-MS-Exchange-CrossPremises-*`) a connector with
//! CloudServicesMailEnabled adds so the on-premises organisation treats the message as internal.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// One message queued for an outbound connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExoMessage {
    /// `Message-ID` with angle brackets (`<0A1B2C3D4E5F6071@DM6PR12MB4321.namprd12.prod.outlook.com>`).
    pub message_id: String,
    /// `X-MS-Exchange-CrossPremises-Network-Message-Id`: a GUID.
    pub network_message_id: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body (lines end with CRLF on the wire).
    pub body: String,
    /// When Exchange Online received it.
    #[serde(with = "time::serde::rfc3339")]
    pub received: OffsetDateTime,
}

impl ExoMessage {
    /// The domain of the first recipient.
    pub fn recipient_domain(&self) -> &str {
        self.to
            .first()
            .and_then(|r| r.rsplit_once('@'))
            .map(|(_, d)| d)
            .unwrap_or("")
    }

    /// The message as sent: headers, cross-premises headers when `cross_premises` (stamped with
    /// `auth_source`, the Exchange Online server that authenticated the sender), a blank line and
    /// the body, CRLF line ends.
    pub fn wire(&self, cross_premises: bool, auth_source: &str) -> Vec<u8> {
        let date = self
            .received
            .format(&Rfc2822)
            .unwrap_or_else(|_| self.received.to_string());
        let mut h: Vec<(&str, String)> = vec![
            ("From", self.from.clone()),
            ("To", self.to.join(", ")),
            ("Subject", self.subject.clone()),
            ("Date", date),
            ("Message-ID", self.message_id.clone()),
            ("MIME-Version", "1.0".into()),
            ("Content-Type", "text/plain; charset=\"us-ascii\"".into()),
        ];
        if cross_premises {
            h.extend([
                ("X-MS-Exchange-CrossPremises-AuthAs", "Internal".to_string()),
                ("X-MS-Exchange-CrossPremises-AuthMechanism", "04".into()),
                ("X-MS-Exchange-CrossPremises-AuthSource", auth_source.into()),
                (
                    "X-MS-Exchange-CrossPremises-Network-Message-Id",
                    self.network_message_id.clone(),
                ),
                ("X-MS-Exchange-CrossPremises-SCL", "1".into()),
                (
                    "X-MS-Exchange-CrossPremises-TransportTrafficType",
                    "Email".into(),
                ),
            ]);
        }
        let mut out = Vec::with_capacity(512 + self.body.len());
        for (name, value) in h {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            // header values are single lines: a CR or LF would start a new header
            out.extend(value.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        for line in self.body.lines() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// RFC 5321 dot-stuffing plus the terminating `.CRLF` (for DATA); bare LF becomes CRLF.
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
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> ExoMessage {
        ExoMessage {
            message_id: "<1@DM6PR12MB4321.namprd12.prod.outlook.com>".into(),
            network_message_id: "8e9b967e-b07a-46d7-081f-08d8f8f9f041".into(),
            from: "alice@contoso.com".into(),
            to: vec!["bob@contoso.com".into()],
            subject: "Quarterly\r\nBcc: evil@x".into(),
            body: "hello\n.dot line\n".into(),
            received: time::macros::datetime!(2026-05-02 06:30:00 UTC),
        }
    }

    #[test]
    fn cross_premises_headers_only_when_enabled() {
        let m = msg();
        let with =
            String::from_utf8(m.wire(true, "DM6PR12MB4321.namprd12.prod.outlook.com")).unwrap();
        assert!(with.contains("X-MS-Exchange-CrossPremises-AuthAs: Internal\r\n"));
        assert!(with.contains("Subject: QuarterlyBcc: evil@x\r\n"));
        assert!(with.contains("Date: Sat, 02 May 2026 06:30:00 +0000\r\n"));
        let without = String::from_utf8(m.wire(false, "x")).unwrap();
        assert!(!without.contains("CrossPremises"));
        assert_eq!(m.recipient_domain(), "contoso.com");
        assert_eq!(dot_stuff(b"a\n.b"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }
}
