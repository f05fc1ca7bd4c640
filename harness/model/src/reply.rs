//! SMTP replies as data: code, text lines, the enhanced status code, and the canned texts EOP and
//! Exchange put on the wire.
//!
//! A [`Reply`] keeps the text of each line verbatim (the enhanced status code stays part of the text,
//! as on the wire), so that what the mock sends, what the sender logs and what `diagnose` reads back
//! are byte-for-byte the same strings. [`eop`] holds the replies the mock sends; the on-premises
//! synthetic replies (`421 4.4.1 Connection timed out`, `454 4.7.5 ...`) live with the sender.

use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 3463 enhanced status code (`class.subject.detail`), e.g. `4.4.395`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EnhancedCode {
    /// 2, 4 or 5.
    pub class: u8,
    /// Subject (1 addressing, 2 mailbox, 3 mail system, 4 network, 5 protocol, 6 content, 7 policy).
    pub subject: u16,
    /// Detail; Exchange uses numbers far beyond the RFC registry (395, 397, 62, 64...).
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses `x.y.z` at the start of `text`, returning the code and the rest after one space.
    pub fn parse_prefix(text: &str) -> Option<(Self, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let token = &text[..end];
        let mut parts = token.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let detail: u16 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) || subject > 999 || detail > 999 {
            return None;
        }
        let rest = text[end..].strip_prefix(' ').unwrap_or(&text[end..]);
        Some((
            Self {
                class,
                subject,
                detail,
            },
            rest,
        ))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// How a sender must treat a reply (RFC 5321 section 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 2yz: done.
    Positive,
    /// 3yz: go on (354 after DATA, 334 in AUTH).
    Intermediate,
    /// 4yz: try again later; the message stays queued.
    Transient,
    /// 5yz: do not retry; the message is returned (NDR).
    Permanent,
}

/// One SMTP reply: a three-digit code and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reply {
    /// The basic status code (RFC 5321), 200..=599.
    pub code: u16,
    /// Text of each line after the code and its separator, verbatim (enhanced code included).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply; `text` includes the enhanced status code when there is one.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (EHLO). An empty `lines` is written as one empty line.
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// Parses one reply line as logs and queues show it: `451 4.4.395 Target host ...`.
    /// Accepts `250-` and `250 ` separators and a bare code. Returns `None` when the line does not
    /// start with a three-digit code in 200..=599.
    pub fn parse_line(line: &str) -> Option<Self> {
        let line = line.trim_end_matches(['\r', '\n']);
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let code: u16 = line[..3].parse().ok()?;
        if !(200..=599).contains(&code) {
            return None;
        }
        let text = match bytes.get(3) {
            None => "",
            Some(b' ' | b'-') => &line[4..],
            Some(_) => return None,
        };
        Some(Self::new(code, text))
    }

    /// The class of the reply.
    pub fn severity(&self) -> Severity {
        match self.code / 100 {
            2 => Severity::Positive,
            3 => Severity::Intermediate,
            4 => Severity::Transient,
            _ => Severity::Permanent,
        }
    }

    /// 2yz.
    pub fn is_positive(&self) -> bool {
        self.severity() == Severity::Positive
    }

    /// 4yz: retry later.
    pub fn is_transient(&self) -> bool {
        self.severity() == Severity::Transient
    }

    /// 5yz: give up and return the message.
    pub fn is_permanent(&self) -> bool {
        self.severity() == Severity::Permanent
    }

    /// The enhanced status code at the start of the first line, if any.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.lines
            .first()
            .and_then(|l| EnhancedCode::parse_prefix(l))
            .map(|(c, _)| c)
    }

    /// The first line's text (enhanced code included).
    pub fn text(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }

    /// The reply on one line, `<code> <first line>`, the way a queue's LastError or a DSN shows it.
    pub fn one_line(&self) -> String {
        let text = self.text();
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, text)
        }
    }

    /// The reply the way Exchange's protocol log records a received multi-line reply: all lines on
    /// one, the first `250-` written as `250 ` followed by a space, the others joined by spaces
    /// (`250  host Hello [ip] SIZE 157286400 PIPELINING ...`). A one-line reply is `one_line()`.
    pub fn exchange_log_text(&self) -> String {
        if self.lines.len() <= 1 {
            return self.one_line();
        }
        let mut out = format!("{}  {}", self.code, self.lines[0]);
        for l in &self.lines[1..] {
            out.push(' ');
            out.push_str(l);
        }
        out
    }

    /// Appends the wire form (`250-a\r\n250 b\r\n`) to `out`.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        // The code's digits without a String per reply (this runs for every reply sent).
        let mut digits = [0u8; 5];
        let mut start = digits.len();
        let mut c = self.code;
        loop {
            start -= 1;
            digits[start] = b'0' + (c % 10) as u8;
            c /= 10;
            if c == 0 {
                break;
            }
        }
        let code = &digits[start..];
        out.reserve(self.lines.iter().map(String::len).sum::<usize>() + n * (code.len() + 3));
        for i in 0..n {
            let sep = if i + 1 < n { b'-' } else { b' ' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            out.extend_from_slice(code);
            out.push(sep);
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a vector.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_wire(&mut v);
        v
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// The replies EOP's front door sends, with the texts Exchange admins see in their logs and NDRs
/// (docs/domain.md sections 4.2 and 4.4). Host names and ids are parameters.
pub mod eop {
    use super::Reply;

    /// `220 2.0.0 SMTP server ready` (STARTTLS accepted).
    pub fn starttls_ready() -> Reply {
        Reply::new(220, "2.0.0 SMTP server ready")
    }
    /// `250 2.1.0 Sender OK`.
    pub fn sender_ok() -> Reply {
        Reply::new(250, "2.1.0 Sender OK")
    }
    /// `250 2.1.5 Recipient OK`.
    pub fn recipient_ok() -> Reply {
        Reply::new(250, "2.1.5 Recipient OK")
    }
    /// `354 Start mail input; end with <CRLF>.<CRLF>`.
    pub fn start_mail_input() -> Reply {
        Reply::new(354, "Start mail input; end with <CRLF>.<CRLF>")
    }
    /// `250 2.0.0 OK` for RSET and NOOP.
    pub fn ok() -> Reply {
        Reply::new(250, "2.0.0 OK")
    }
    /// `250 2.0.0 Resetting` for RSET.
    pub fn resetting() -> Reply {
        Reply::new(250, "2.0.0 Resetting")
    }
    /// `221 2.0.0 Service closing transmission channel`.
    pub fn closing() -> Reply {
        Reply::new(221, "2.0.0 Service closing transmission channel")
    }
    /// `250 2.6.0 <msgid> [InternalId=..., Hostname=...] <n> bytes in <secs>, <rate> KB/sec Queued mail for delivery`.
    pub fn queued(
        message_id: &str,
        internal_id: u64,
        backend_host: &str,
        bytes: usize,
        secs: f64,
    ) -> Reply {
        let rate = if secs > 0.0 {
            bytes as f64 / 1024.0 / secs
        } else {
            bytes as f64 / 1024.0 / 0.001
        };
        Reply::new(
            250,
            format!(
                "2.6.0 {message_id} [InternalId={internal_id}, Hostname={backend_host}] {bytes} bytes in {secs:.3}, {rate:.3} KB/sec Queued mail for delivery"
            ),
        )
    }
    /// `451 5.7.3 STARTTLS is required to send mail`.
    pub fn starttls_required() -> Reply {
        Reply::new(451, "5.7.3 STARTTLS is required to send mail")
    }
    /// `550 5.7.64 TenantAttribution; Relay Access Denied [<tag>]`; the tag is the host alone
    /// (before 2023) or `<host> <time> <session id>` (current).
    pub fn relay_denied(tag: &str) -> Reply {
        Reply::new(
            550,
            format!("5.7.64 TenantAttribution; Relay Access Denied [{tag}]"),
        )
    }
    /// `550 5.7.64 Relay Access Denied ATTR36. ...` (sender domain neither accepted nor covered by a
    /// certificate connector; since 2017-07-05).
    pub fn relay_denied_attr36(backend: &str) -> Reply {
        Reply::new(
            550,
            format!(
                "5.7.64 Relay Access Denied ATTR36. For more information please go to https://go.microsoft.com/fwlink/?LinkId=869550 [{backend}]"
            ),
        )
    }
    /// `550 5.7.51 TenantInboundAttribution; There is a partner connector configured ... set
    /// [<tag>]`: the tag is EOP's usual one (`<host> <time> <session id>` in the current form;
    /// the domain reference, section 4.4, shows `[<host> <timestamp> <id>]`).
    pub fn partner_restriction(tag: &str) -> Reply {
        Reply::new(
            550,
            format!(
                "5.7.51 TenantInboundAttribution; There is a partner connector configured that matched the message's recipient domain. The connector had either the RestrictDomainsToIPAddresses or RestrictDomainsToCertificate set [{tag}]"
            ),
        )
    }
    /// `550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources`.
    pub fn direct_send_denied(backend: &str) -> Reply {
        Reply::new(
            550,
            format!(
                "5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources [{backend}]"
            ),
        )
    }
    /// `451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35. ...`.
    pub fn wrong_region() -> Reply {
        Reply::new(
            451,
            "4.4.62 Mail sent to the wrong Office 365 region. ATTR35. For more information please go to https://go.microsoft.com/fwlink/?linkid=865268",
        )
    }
    /// `451 4.7.500 Server busy. Please try again later from [<ip>]. (<tag>)` (throttling).
    pub fn throttled(ip: &str, tag: &str) -> Reply {
        Reply::new(
            451,
            format!("4.7.500 Server busy. Please try again later from [{ip}]. ({tag})"),
        )
    }
    /// `552 5.3.4 Message size exceeds fixed maximum message size`.
    pub fn message_too_large() -> Reply {
        Reply::new(552, "5.3.4 Message size exceeds fixed maximum message size")
    }
    /// `451 4.7.0 Timeout waiting for client input`.
    pub fn idle_timeout() -> Reply {
        Reply::new(451, "4.7.0 Timeout waiting for client input")
    }
    /// `421 4.7.0 Too many errors on this connection, closing transmission channel`.
    pub fn too_many_errors() -> Reply {
        Reply::new(
            421,
            "4.7.0 Too many errors on this connection, closing transmission channel",
        )
    }
    /// `500 5.3.3 Unrecognized command` (Exchange's form, without the verb).
    pub fn unrecognized_command() -> Reply {
        Reply::new(500, "5.3.3 Unrecognized command")
    }
    /// `500 5.3.3 Unrecognized command '<verb>'`: EOP's form, naming the verb as sent.
    pub fn unrecognized_verb(verb: &str) -> Reply {
        Reply::new(500, format!("5.3.3 Unrecognized command '{verb}'"))
    }
    /// `501 5.5.4 Invalid arguments` (Exchange's form).
    pub fn invalid_arguments() -> Reply {
        Reply::new(501, "5.5.4 Invalid arguments")
    }
    /// `501 5.5.4 Unrecognized parameter [<tag>]`: EOP's answer to arguments it cannot parse.
    pub fn unrecognized_parameter(tag: &str) -> Reply {
        Reply::new(501, format!("5.5.4 Unrecognized parameter [{tag}]"))
    }
    /// `503 5.5.1 Bad sequence of commands`.
    pub fn bad_sequence() -> Reply {
        Reply::new(503, "5.5.1 Bad sequence of commands")
    }
    /// `503 5.5.2 Send hello first`.
    pub fn send_hello_first() -> Reply {
        Reply::new(503, "5.5.2 Send hello first")
    }
    /// `500 5.5.6 Line too long`? EOP's exact text is not documented; this one is Exchange's.
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2 Line too long")
    }
    /// `421 4.3.2 Service not available` (the generic shutdown / 421-and-close fault).
    pub fn service_not_available() -> Reply {
        Reply::new(421, "4.3.2 Service not available")
    }
    /// `454 4.7.0 TLS not available due to temporary reason`.
    pub fn tls_not_available() -> Reply {
        Reply::new(454, "4.7.0 TLS not available due to temporary reason")
    }
    /// `503 5.5.2 Only one STARTTLS command can be issued per session`.
    pub fn starttls_twice() -> Reply {
        Reply::new(
            503,
            "5.5.2 Only one STARTTLS command can be issued per session",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enhanced_codes() {
        let r = Reply::parse_line(
            "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out",
        )
        .unwrap();
        assert_eq!(r.code, 451);
        assert_eq!(r.enhanced().unwrap().to_string(), "4.4.395");
        assert!(r.is_transient());
        assert_eq!(
            Reply::parse_line(
                "421 TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain."
            )
            .unwrap()
            .enhanced(),
            None
        );
        assert!(Reply::parse_line("hello").is_none());
        assert!(Reply::parse_line("999 nope").is_none());
        assert!(Reply::parse_line("2500 nope").is_none());
        assert_eq!(Reply::parse_line("250").unwrap().text(), "");
    }

    #[test]
    fn wire_and_log_forms() {
        let r = Reply::multi(
            250,
            vec![
                "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]".into(),
                "SIZE 157286400".into(),
                "PIPELINING".into(),
            ],
        );
        assert_eq!(
            String::from_utf8(r.to_wire()).unwrap(),
            "250-AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]\r\n250-SIZE 157286400\r\n250 PIPELINING\r\n"
        );
        assert_eq!(
            r.exchange_log_text(),
            "250  AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10] SIZE 157286400 PIPELINING"
        );
        assert_eq!(eop::sender_ok().exchange_log_text(), "250 2.1.0 Sender OK");
    }
}
