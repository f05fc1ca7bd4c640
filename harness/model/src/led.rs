//! Last-error details as Exchange and Exchange Online write them.
//!
//! Two layers share one shape:
//! - the frame `[{LED=<detail>};{MSG=<message detail>};{FQDN=<host>};{IP=<ip>};{LRT=<time>}]`
//!   ([`LastError`]) that an on-premises `Get-Queue` / `Get-Message` shows and that Exchange Online's
//!   message trace puts in a `Defer` or `Fail` event's detail after `Reason: `;
//! - inside it, Exchange Online's LED for a delivery to an on-premises server through an outbound
//!   connector ([`Led`]): `450 4.4.317 Cannot connect to remote server [Message=<what failed>]
//!   [LastAttemptedServerName=<host>] [LastAttemptedIP=<ip>:25] [SmtpSecurity=-2;-2]
//!   [<EOP host> <ISO time> <session id>]`.
//!
//! [`TraceReason`] is the whole detail text of a trace `Defer`/`Fail` event:
//! `Reason: [{LED=...};...]. OutboundProxyTargetIP: <ip>. OutboundProxyTargetHostName: <host>`.
//!
//! The writers give exactly the text the services write; the readers accept what admins paste:
//! lower-case keys, missing items, the pre-2022 layout where the socket text sits in `MSG`
//! (`{LED=450 4.4.316 Connection refused};{MSG=Socket error code 10061};{Last attempted server
//! name=...}`), and text cut off in the middle. Public sources of the shapes: the "mail flow
//! intelligence" page of Microsoft Learn
//! (<https://learn.microsoft.com/en-us/defender-office-365/mail-flow-intelligence-in-office-365>)
//! and the Exchange Team blog "TLS Certificates in Exchange Hybrid - Common Issues"
//! (<https://techcommunity.microsoft.com/blog/exchange/tls-certificates-in-exchange-hybrid---common-issues--how-to-fix-them/4420592>).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::reply::EnhancedCode;

/// A queue's, message's or trace event's last error in the `[{LED=..};{MSG=..};...]` frame.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LastError {
    /// `LED`: the last error detail, the full reply or the transport's wrapper
    /// (`451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out`).
    pub led: String,
    /// `MSG`: message-level detail, often empty.
    pub msg: String,
    /// `FQDN`: the remote host name.
    pub fqdn: String,
    /// `IP`: the remote address.
    pub ip: String,
    /// `LRT`: last retry time in the server's culture format (`5/2/2019 6:32:14 AM`).
    pub lrt: String,
}

impl LastError {
    /// Parses the bracketed form. Returns `None` when `s` is not in that shape (a plain text
    /// LastError, as some older builds show, is returned as `led` only by [`LastError::parse_lenient`]).
    ///
    /// Items are split at `};{` outside square brackets, so an LED whose text holds `[...]` parts
    /// (Exchange Online's `[Message=...]`) stays whole. Keys other than the five are ignored.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        let inner = t.strip_prefix("[{")?;
        let inner = inner
            .strip_suffix("}]")
            .or_else(|| inner.strip_suffix('}'))
            .unwrap_or(inner);
        let mut le = Self::default();
        let mut any = false;
        for item in split_items(inner) {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_uppercase().as_str() {
                "LED" => le.led = v.to_string(),
                "MSG" => le.msg = v.to_string(),
                "FQDN" => le.fqdn = v.to_string(),
                "IP" => le.ip = v.to_string(),
                "LRT" => le.lrt = v.to_string(),
                _ => continue,
            }
            any = true;
        }
        any.then_some(le)
    }

    /// Like [`LastError::parse`], but any other non-empty text becomes the `led`.
    pub fn parse_lenient(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        Self::parse(t).or_else(|| {
            Some(Self {
                led: t.to_string(),
                ..Self::default()
            })
        })
    }

    /// The LED read as Exchange Online's delivery LED, when it has that shape.
    pub fn exo_led(&self) -> Option<Led> {
        Led::parse(&self.led)
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{{LED={}}};{{MSG={}}};{{FQDN={}}};{{IP={}}};{{LRT={}}}]",
            self.led, self.msg, self.fqdn, self.ip, self.lrt
        )
    }
}

/// Splits `a};{b};{c` at `};{` where no `[` is open.
fn split_items(inner: &str) -> Vec<&str> {
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'}' if depth == 0 && inner[i..].starts_with("};{") => {
                out.push(&inner[start..i]);
                i += 3;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&inner[start..]);
    out
}

/// Renders a time the way an en-US server (and Exchange Online's `LRT`) shows it:
/// `5/2/2019 6:32:14 AM`.
pub fn en_us_datetime(t: OffsetDateTime) -> String {
    let (h12, ampm) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        u8::from(t.month()),
        t.day(),
        t.year(),
        h12,
        t.minute(),
        t.second(),
        ampm
    )
}

/// The bracketed tag Exchange Online appends to its replies and LEDs: the front-end host, and on
/// current hosts the time and a 16-hex session id
/// (`[DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2023-03-07T18:46:06.378Z 08DB1DF24DB12D84]`;
/// before about 2023 the host alone).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplyTag {
    /// The service host that wrote the reply.
    pub host: String,
    /// The time, as written (ISO 8601 with milliseconds and `Z`).
    pub time: Option<String>,
    /// The session id (16 hex digits).
    pub session: Option<String>,
}

impl ReplyTag {
    /// Reads `host [time [session]]` (without the brackets); `None` unless the first word looks
    /// like a host name with at least two dots.
    pub fn parse(inner: &str) -> Option<Self> {
        let mut words = inner.split_whitespace();
        let host = words.next()?;
        if host.matches('.').count() < 2 || host.contains('=') || host.contains(':') {
            return None;
        }
        let time = words.next().map(str::to_string);
        let session = words.next().map(str::to_string);
        if words.next().is_some() {
            return None;
        }
        Some(Self {
            host: host.to_string(),
            time,
            session,
        })
    }
}

impl fmt::Display for ReplyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(t) = &self.time {
            write!(f, " {t}")?;
        }
        if let Some(s) = &self.session {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

/// One `[...]` part of an Exchange Online delivery LED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "item", content = "value")]
pub enum LedItem {
    /// `[Message=...]`: what failed (a reply of the on-premises server, a TLS or socket error,
    /// `SubjectMismatch Expected Subject: ... Presented Subject: ... Thumbprint: ...`).
    Message(String),
    /// `[LastAttemptedServerName=...]`: the host name EXO connected to.
    LastAttemptedServerName(String),
    /// `[LastAttemptedIP=...]`: the address and port EXO connected to (`203.0.113.10:25`).
    LastAttemptedIp(String),
    /// `[SmtpSecurity=...]`: a pair of numbers (`-1;-1` with certificate failures, `-2;-2` with
    /// connect and handshake failures); their meaning is not documented.
    SmtpSecurity(String),
    /// The service tag (host, time, session id).
    Tag(ReplyTag),
    /// Any other bracketed part, kept verbatim (without the brackets).
    Other(String),
}

/// Exchange Online's LED for a failed delivery: a reply line followed by bracketed parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Led {
    /// The reply code (`450`, `451`, `452`, `550`).
    pub code: u16,
    /// The enhanced status code (`4.4.317`), when present.
    pub enhanced: Option<EnhancedCode>,
    /// The reply text before the first `[` (`Cannot connect to remote server`).
    pub text: String,
    /// The bracketed parts in order.
    pub items: Vec<LedItem>,
}

impl Led {
    /// A LED with no bracketed parts.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            text: text.into(),
            items: Vec::new(),
        }
    }

    /// Adds a part (builder style).
    pub fn with(mut self, item: LedItem) -> Self {
        self.items.push(item);
        self
    }

    /// Parses `450 4.4.317 Cannot connect ... [Message=...] [...]`. Tolerates a cut-off last part
    /// and `451-4.7.23` (a multi-line reply's first line). `None` unless it starts with a 3-digit
    /// code.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        let code: u16 = t.get(..3)?.parse().ok()?;
        if !(200..600).contains(&code) {
            return None;
        }
        let rest = t[3..].trim_start_matches(['-', ' ']);
        let (enhanced, rest) = match EnhancedCode::parse_prefix(rest) {
            Some((e, r)) => (Some(e), r),
            None => (None, rest),
        };
        let (text, parts) = match rest.find('[') {
            Some(i) => (rest[..i].trim_end(), &rest[i..]),
            None => (rest.trim_end(), ""),
        };
        Some(Self {
            code,
            enhanced,
            text: text.to_string(),
            items: bracket_parts(parts).into_iter().map(item_of).collect(),
        })
    }

    /// The `[Message=...]` part.
    pub fn message(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            LedItem::Message(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The `[LastAttemptedServerName=...]` part.
    pub fn last_attempted_server_name(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            LedItem::LastAttemptedServerName(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The `[LastAttemptedIP=...]` part (`203.0.113.10:25`).
    pub fn last_attempted_ip(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            LedItem::LastAttemptedIp(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The service tag.
    pub fn tag(&self) -> Option<&ReplyTag> {
        self.items.iter().find_map(|i| match i {
            LedItem::Tag(t) => Some(t),
            _ => None,
        })
    }

    /// The thumbprint a certificate failure names (`... Thumbprint: <40 hex>.`), upper case.
    pub fn thumbprint(&self) -> Option<String> {
        let m = self.message()?;
        let at = m.find("Thumbprint:")? + "Thumbprint:".len();
        let hex: String = m[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        (hex.len() == 40).then(|| hex.to_ascii_uppercase())
    }
}

impl fmt::Display for Led {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        for item in &self.items {
            match item {
                LedItem::Message(m) => write!(f, " [Message={m}]")?,
                LedItem::LastAttemptedServerName(m) => write!(f, " [LastAttemptedServerName={m}]")?,
                LedItem::LastAttemptedIp(m) => write!(f, " [LastAttemptedIP={m}]")?,
                LedItem::SmtpSecurity(m) => write!(f, " [SmtpSecurity={m}]")?,
                LedItem::Tag(t) => write!(f, " [{t}]")?,
                LedItem::Other(m) => write!(f, " [{m}]")?,
            }
        }
        Ok(())
    }
}

/// The top-level `[...]` parts of `s` (nested brackets stay inside their part; an unclosed last
/// part is returned as far as it goes).
fn bracket_parts(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in s.char_indices() {
        match c {
            '[' => {
                if depth == 0 {
                    start = Some(i + 1);
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let Some(st) = start.take()
                {
                    out.push(&s[st..i]);
                }
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

fn item_of(part: &str) -> LedItem {
    if let Some((k, v)) = part.split_once('=') {
        let key: String = k.chars().filter(|c| !c.is_whitespace()).collect();
        match key.to_ascii_lowercase().as_str() {
            "message" => return LedItem::Message(v.to_string()),
            "lastattemptedservername" => return LedItem::LastAttemptedServerName(v.to_string()),
            "lastattemptedip" => return LedItem::LastAttemptedIp(v.to_string()),
            "smtpsecurity" => return LedItem::SmtpSecurity(v.to_string()),
            _ => {}
        }
    }
    match ReplyTag::parse(part) {
        Some(t) => LedItem::Tag(t),
        None => LedItem::Other(part.to_string()),
    }
}

/// The detail of an Exchange Online message-trace `Defer` or `Fail` event:
/// `Reason: [{LED=...};{MSG=};{FQDN=...};{IP=...};{LRT=...}]. OutboundProxyTargetIP: <ip>.
/// OutboundProxyTargetHostName: <host>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceReason {
    /// The bracketed frame.
    pub last_error: LastError,
    /// `OutboundProxyTargetIP`, when written.
    pub proxy_target_ip: Option<String>,
    /// `OutboundProxyTargetHostName`, when written.
    pub proxy_target_host: Option<String>,
}

impl TraceReason {
    /// Parses the detail text; `None` unless it holds a `[{...}]` frame. Tolerates a missing
    /// `Reason:` prefix (`Defer:Reason: ...` too) and a cut-off tail.
    pub fn parse(s: &str) -> Option<Self> {
        let start = s.find("[{")?;
        let frame_end = find_frame_end(&s[start..]).map(|e| start + e);
        let frame = match frame_end {
            Some(e) => &s[start..e],
            None => &s[start..],
        };
        let last_error = LastError::parse(frame)?;
        let tail = frame_end.map(|e| &s[e..]).unwrap_or("");
        Some(Self {
            last_error,
            proxy_target_ip: tail_value(tail, "OutboundProxyTargetIP:"),
            proxy_target_host: tail_value(tail, "OutboundProxyTargetHostName:"),
        })
    }
}

/// The index just past the `}]` closing the frame that starts at 0, outside nested brackets.
fn find_frame_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn tail_value(tail: &str, key: &str) -> Option<String> {
    let at = tail.find(key)? + key.len();
    let v = tail[at..].trim_start();
    let end = v.find(". ").unwrap_or(v.len());
    let v = v[..end].trim().trim_end_matches('.');
    (!v.is_empty()).then(|| v.to_string())
}

impl fmt::Display for TraceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason: {}.", self.last_error)?;
        if let Some(ip) = &self.proxy_target_ip {
            write!(f, " OutboundProxyTargetIP: {ip}.")?;
        }
        if let Some(h) = &self.proxy_target_host {
            write!(f, " OutboundProxyTargetHostName: {h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape from a public Q&A thread (learn.microsoft.com/answers, 2023), values replaced.
    const DEFER: &str = "Reason: [{LED=450 4.4.317 Cannot connect to remote server [Message=451 4.4.0 TLS negotiation failed with error SocketError] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=203.0.113.10:25] [SmtpSecurity=-2;-2] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2023-03-07T18:46:06.378Z 08DB1DF24DB12D84]};{MSG=};{FQDN=mail.contoso.com};{IP=203.0.113.10};{LRT=3/7/2023 6:46:06 PM}]. OutboundProxyTargetIP: 203.0.113.10. OutboundProxyTargetHostName: mail.contoso.com";

    #[test]
    fn trace_reason_round_trips() {
        let r = TraceReason::parse(DEFER).unwrap();
        assert_eq!(r.last_error.fqdn, "mail.contoso.com");
        assert_eq!(r.last_error.lrt, "3/7/2023 6:46:06 PM");
        assert_eq!(r.proxy_target_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(r.proxy_target_host.as_deref(), Some("mail.contoso.com"));
        let led = r.last_error.exo_led().unwrap();
        assert_eq!(led.code, 450);
        assert_eq!(led.enhanced.unwrap().to_string(), "4.4.317");
        assert_eq!(led.text, "Cannot connect to remote server");
        assert_eq!(
            led.message(),
            Some("451 4.4.0 TLS negotiation failed with error SocketError")
        );
        assert_eq!(led.last_attempted_ip(), Some("203.0.113.10:25"));
        let tag = led.tag().unwrap();
        assert_eq!(tag.session.as_deref(), Some("08DB1DF24DB12D84"));
        assert_eq!(r.to_string(), DEFER);
    }

    #[test]
    fn nested_brackets_and_thumbprints() {
        let led = Led::parse("450 4.4.317 Cannot connect to remote server [Message=452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])] [LastAttemptedServerName=mail.contoso.com]").unwrap();
        assert_eq!(
            led.message(),
            Some("452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])")
        );
        let led = Led::parse("450 4.4.317 Cannot connect to remote server [Message=SubjectMismatch Expected Subject: *.contoso.com. Presented Subject: CN=EXCH01. Thumbprint: 3a04a91124faab142bcfca13c2b13ef1e820e993.] [SmtpSecurity=-1;-1]").unwrap();
        assert_eq!(
            led.thumbprint().as_deref(),
            Some("3A04A91124FAAB142BCFCA13C2B13EF1E820E993")
        );
    }

    #[test]
    fn older_layout_and_cut_text() {
        let r = TraceReason::parse("Reason: [{LED=450 4.4.316 Connection refused};{MSG=Socket error code 10061};{Last attempted server name=Hybrid.contoso.com}").unwrap();
        assert_eq!(r.last_error.led, "450 4.4.316 Connection refused");
        assert_eq!(r.last_error.msg, "Socket error code 10061");
        let cut = TraceReason::parse("Reason: [{LED=450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is req").unwrap();
        assert_eq!(
            cut.last_error.exo_led().unwrap().message(),
            Some("451 5.7.3 STARTTLS is req")
        );
        assert!(TraceReason::parse("The message was submitted.").is_none());
        assert_eq!(
            Led::parse("451-4.7.23 rejected")
                .unwrap()
                .enhanced
                .unwrap()
                .to_string(),
            "4.7.23"
        );
    }

    #[test]
    fn queue_frame_still_parses() {
        let le = LastError::parse("[{LED=451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out};{MSG=};{FQDN=contoso-mail-onmicrosoft-com.mail.protection.outlook.com};{IP=104.47.10.36};{LRT=5/2/2019 6:32:14 AM}]").unwrap();
        assert_eq!(le.ip, "104.47.10.36");
        assert!(le.exo_led().unwrap().items.is_empty());
    }
}
