//! Non-delivery reports: the `.eml` a sender forwards to the help desk (RFC 3464
//! `multipart/report; report-type=delivery-status`, as Exchange writes it), and the reader that
//! takes the per-recipient `Status` and `Diagnostic-Code` out of one.
//!
//! When the transport gives a message up (a 5xx from the remote server, a local
//! `550 5.3.4 SMTPSEND.OverAdvertisedSize`, `550 4.4.7 QUEUE.Expired` after the expiration
//! timeout) the message leaves the queue: `Get-Queue` and `Get-Message` no longer show it, and the
//! NDR the sender got (or the Exchange Online message trace) is what is left. The writer
//! ([`write_dsn`]) produces Exchange's shape: the human part ("Delivery has failed to these
//! recipients or groups", "Diagnostic information for administrators", `Remote Server returned
//! '...'`), the `message/delivery-status` part (`Reporting-MTA: dns;...`, `Final-Recipient:
//! rfc822;...`, `Action: failed`, `Status: 5.3.4`, `Diagnostic-Code: smtp;550 5.3.4 ...`,
//! `Remote-MTA: dns;...` when the remote server refused it) and the original headers as
//! `text/rfc822-headers`.
//!
//! For an expiry NDR and a delay DSN the cause is in the human part only: Exchange writes the
//! generic `'550 4.4.7 QUEUE.Expired; message expired'` (or `'400 4.4.7 Message delayed'`) and
//! under it the last error, `<time> - Server at <host> (<ip>) returned '<LastError>'`
//! (shape: <https://support.everycloud.com/support/solutions/articles/4000041760-spooling-period-email-retry-rate-deferred-email>,
//! <https://www.stellarinfo.com/blog/fix-server-returned-400-4-4-7-message-delayed-error-in-exchange-server/>;
//! the domain reference, section 11.6). The delay DSN ([`DsnAction::Delayed`]) says how long the
//! server keeps trying and carries `Action: delayed` and `Will-Retry-Until`.
//!
//! The reader ([`read_dsn`]) is line based so that every field keeps its line for evidence; it
//! unfolds continuation lines, reads the DSN fields after the header block, and takes the date,
//! subject and the original message's id (`In-Reply-To`) from the top-level headers. From the
//! human part it takes the last-error line of each recipient ([`NdrRecipient::last_error`]), so a
//! real NDR alone names its cause. HTML parts and anything else are neither errors nor skipped
//! lines: the file as a whole is a known kind. [`is_dsn`] recognises one from its content.

use hybridlab_model::led::LastError;
use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::text::{Evidence, split_lines};

/// What the lab knows about one NDR it generated (the writer's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdrReport {
    /// The transport's internal message id (names the file).
    pub internal_id: u64,
    /// The generating server's FQDN (`EDGE01.contoso.com`): `Reporting-MTA`.
    pub server_fqdn: String,
    /// Envelope sender of the original message: the NDR goes to it.
    pub sender: String,
    /// When the original message entered the transport (`Arrival-Date`).
    pub arrival: OffsetDateTime,
    /// When the NDR was generated (`Date`).
    pub generated: OffsetDateTime,
    /// The subject of the message that could not be delivered.
    pub subject: String,
    /// The original `Message-ID`, without angle brackets.
    pub original_message_id: String,
    /// The recipients that failed.
    pub recipients: Vec<String>,
    /// The reason (`550 5.3.4 SMTPSEND.OverAdvertisedSize; ...`, EOP's `550 5.7.64 ...`).
    pub reply: Reply,
    /// The remote server that refused it (`Remote-MTA`); `None` for a local verdict.
    pub remote_mta: Option<String>,
    /// A failure report (NDR) or a delay notification (delay DSN).
    pub action: DsnAction,
    /// The message's last error when the reason is the transport's own (expiry, delay): the
    /// human part shows it under the generic reply.
    pub last_error: Option<LastError>,
    /// Until when the server keeps trying (a delay DSN's `Will-Retry-Until` and its "for the next
    /// ..." sentence).
    pub retry_until: Option<OffsetDateTime>,
}

/// What a delivery status notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsnAction {
    /// The message was given up (an NDR, `Action: failed`).
    #[default]
    Failed,
    /// The message is still being tried (a delay DSN, `Action: delayed`).
    Delayed,
}

impl NdrReport {
    /// The file name the lab gives it (`NDR-12884901890.eml`, `DSN-Delay-12884901890.eml`).
    pub fn file_name(&self) -> String {
        match self.action {
            DsnAction::Failed => file_name(self.internal_id),
            DsnAction::Delayed => format!("DSN-Delay-{}.eml", self.internal_id),
        }
    }
}

/// The file name the lab gives an NDR (`NDR-12884901890.eml`).
pub fn file_name(internal_id: u64) -> String {
    format!("NDR-{internal_id}.eml")
}

/// The sentence Exchange's NDR shows the user for a reason.
fn user_text(reply: &Reply) -> &'static str {
    let t = reply.text();
    if t.starts_with("5.3.4") || t.starts_with("5.2.3") {
        "Your message is too big to send. Try sending it again with fewer or smaller attachments."
    } else if t.starts_with("4.4.7") {
        "The server has tried to deliver this message, without success, and has stopped trying. Please try sending this message again. If the problem continues, contact your helpdesk."
    } else if t.starts_with("5.7.") {
        "Your message wasn't delivered because the recipient's email provider rejected it."
    } else if t.starts_with("5.1.") || t.starts_with("5.4.1") {
        "Your message wasn't delivered because the address couldn't be found or is unable to receive email."
    } else {
        "Your message couldn't be delivered."
    }
}

fn rfc2822(t: OffsetDateTime) -> String {
    t.format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 1 Jan 1970 00:00:00 +0000".to_string())
}

/// `bob@contoso.com` -> `contoso.com`.
fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

/// `1 days, 19 hours and 57 minutes` (Exchange's wording, plural kept).
fn remaining(from: OffsetDateTime, until: OffsetDateTime) -> String {
    let mins = (until - from).whole_minutes().max(0);
    format!(
        "{} days, {} hours and {} minutes",
        mins / 1440,
        mins % 1440 / 60,
        mins % 60
    )
}

/// The text/plain part: what the user reads, then "Diagnostic information for administrators"
/// with the reply and, for the transport's own verdicts, the last error under it.
fn human_part(r: &NdrReport, diag: &str, out: &mut Vec<String>) {
    match r.action {
        DsnAction::Failed => {
            out.push("Delivery has failed to these recipients or groups:".into());
            out.push(String::new());
            for rcpt in &r.recipients {
                out.push(rcpt.clone());
                out.push(user_text(&r.reply).into());
                out.push(String::new());
            }
        }
        DsnAction::Delayed => {
            out.push("Delivery is delayed to these recipients or groups:".into());
            out.push(String::new());
            out.extend(r.recipients.iter().cloned());
            out.push(String::new());
            out.push(format!("Subject: {}", r.subject));
            out.push(String::new());
            out.push(
                "This message hasn't been delivered yet. Delivery will continue to be attempted."
                    .into(),
            );
            out.push(String::new());
            if let Some(until) = r.retry_until {
                out.push(format!(
                    "The server will keep trying to deliver this message for the next {}. You'll be notified if the message can't be delivered by that time.",
                    remaining(r.generated, until)
                ));
                out.push(String::new());
            }
        }
    }
    out.push(String::new());
    out.push("Diagnostic information for administrators:".into());
    out.push(String::new());
    out.push(format!("Generating server: {}", r.server_fqdn));
    out.push(String::new());
    let server = r
        .last_error
        .as_ref()
        .filter(|le| !le.fqdn.is_empty())
        .map(|le| {
            if le.ip.is_empty() {
                format!("Server at {}", le.fqdn)
            } else {
                format!("Server at {} ({})", le.fqdn, le.ip)
            }
        });
    for rcpt in &r.recipients {
        out.push(rcpt.clone());
        match (&server, &r.remote_mta) {
            (Some(s), _) => out.push(format!("{s} returned '{diag}'")),
            (None, Some(m)) => {
                out.push(m.clone());
                out.push(format!("Remote Server returned '{diag}'"));
            }
            (None, None) => {
                out.push(r.server_fqdn.clone());
                out.push(format!("Remote Server returned '{diag}'"));
            }
        }
        if let Some(le) = &r.last_error {
            let at = if le.lrt.is_empty() {
                hybridlab_model::led::en_us_datetime(r.generated)
            } else {
                le.lrt.clone()
            };
            let who = server.clone().unwrap_or_else(|| "Remote Server".into());
            out.push(format!("{at} - {who} returned '{}'", le.led));
        }
        out.push(String::new());
    }
}

/// The NDR as Exchange writes it (CRLF line ends).
pub fn write_dsn(r: &NdrReport) -> String {
    let boundary = format!("_000_{:016X}{}_", r.internal_id, "NDR");
    let sender_domain = domain_of(&r.sender);
    let from_domain = if sender_domain.is_empty() {
        r.server_fqdn.split_once('.').map_or("", |(_, d)| d)
    } else {
        sender_domain
    };
    let diag = r.reply.one_line();
    let mut out: Vec<String> = Vec::new();
    let mut h = |name: &str, value: String| out.push(format!("{name}: {value}"));
    h(
        "From",
        format!(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@{from_domain}>"
        ),
    );
    h("To", format!("<{}>", r.sender));
    h("Date", rfc2822(r.generated));
    h(
        "Subject",
        match r.action {
            DsnAction::Failed => format!("Undeliverable: {}", r.subject),
            DsnAction::Delayed => format!("Delivery delayed: {}", r.subject),
        },
    );
    h(
        "Content-Type",
        format!("multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""),
    );
    h("Content-Language", "en-US".into());
    h(
        "Message-ID",
        format!("<{:016x}.ndr@{}>", r.internal_id, r.server_fqdn),
    );
    h("In-Reply-To", format!("<{}>", r.original_message_id));
    h("References", format!("<{}>", r.original_message_id));
    h("Thread-Topic", r.subject.clone());
    h("X-MS-Exchange-Message-Is-Ndr", String::new());
    h("X-MS-Exchange-Organization-SCL", "-1".into());
    h("Auto-Submitted", "auto-replied".into());
    h("MIME-Version", "1.0".into());
    out.push(String::new());
    out.push(format!("--{boundary}"));
    out.push("Content-Type: text/plain; charset=\"us-ascii\"".into());
    out.push("Content-Transfer-Encoding: 7bit".into());
    out.push(String::new());
    human_part(r, &diag, &mut out);
    out.push("Original message headers:".into());
    out.push(String::new());
    out.push(format!("From: <{}>", r.sender));
    out.push(format!("Subject: {}", r.subject));
    out.push(format!("Message-ID: <{}>", r.original_message_id));
    out.push(String::new());
    out.push(format!("--{boundary}"));
    out.push("Content-Type: message/delivery-status".into());
    out.push(String::new());
    out.push(format!("Reporting-MTA: dns;{}", r.server_fqdn));
    out.push(format!("Received-From-MTA: dns;{}", r.server_fqdn));
    out.push(format!("Arrival-Date: {}", rfc2822(r.arrival)));
    out.push(String::new());
    for rcpt in &r.recipients {
        out.push(format!("Final-Recipient: rfc822;{rcpt}"));
        out.push(match r.action {
            DsnAction::Failed => "Action: failed".into(),
            DsnAction::Delayed => "Action: delayed".into(),
        });
        let status = r
            .reply
            .enhanced()
            .map_or_else(|| "5.0.0".to_string(), |e| e.to_string());
        out.push(format!("Status: {status}"));
        out.push(format!("Diagnostic-Code: smtp;{diag}"));
        if let Some(m) = &r.remote_mta {
            out.push(format!("Remote-MTA: dns;{m}"));
        }
        if let (DsnAction::Delayed, Some(until)) = (r.action, r.retry_until) {
            out.push(format!("Will-Retry-Until: {}", rfc2822(until)));
        }
        out.push(String::new());
    }
    out.push(format!("--{boundary}"));
    out.push("Content-Type: text/rfc822-headers".into());
    out.push(String::new());
    out.push(format!("From: <{}>", r.sender));
    out.push(format!("To: {}", r.recipients.join(", ")));
    out.push(format!("Subject: {}", r.subject));
    out.push(format!("Message-ID: <{}>", r.original_message_id));
    out.push(format!("Date: {}", rfc2822(r.arrival)));
    out.push(String::new());
    out.push(format!("--{boundary}--"));
    out.push(String::new());
    out.join("\r\n")
}

/// One failed recipient of a read NDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NdrRecipient {
    /// `Final-Recipient`, without the `rfc822;` type.
    pub address: String,
    /// `Action` (`failed`, `delayed`...).
    pub action: Option<String>,
    /// `Status` (`5.3.4`).
    pub status: Option<String>,
    /// `Diagnostic-Code` without its `smtp;` type (`550 5.3.4 SMTPSEND.OverAdvertisedSize; ...`).
    pub diagnostic: Option<String>,
    /// `Remote-MTA` without its `dns;` type.
    pub remote_mta: Option<String>,
    /// The `Diagnostic-Code` line (else the `Status` line, else `Final-Recipient`).
    pub evidence: Evidence,
    /// The last error the human part shows under the reply (`<time> - Server at <host> (<ip>)
    /// returned '<LastError>'`): what an expiry NDR or a delay DSN really failed on.
    #[serde(default)]
    pub last_error: Option<LastError>,
    /// The human part's last-error line.
    #[serde(default)]
    pub last_error_evidence: Option<Evidence>,
}

impl NdrRecipient {
    /// The diagnostic code as a reply (`None` when it is not an SMTP reply).
    pub fn reply(&self) -> Option<Reply> {
        self.diagnostic.as_deref().and_then(Reply::parse_line)
    }
}

/// A read NDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ndr {
    /// The file as given.
    pub file: String,
    /// `Date` of the NDR.
    pub date: Option<OffsetDateTime>,
    /// `Subject` (`Undeliverable: ...`).
    pub subject: Option<String>,
    /// `In-Reply-To` / `References`: the original message's id, without angle brackets.
    pub original_message_id: Option<String>,
    /// `Reporting-MTA` without its `dns;` type.
    pub reporting_mta: Option<String>,
    /// `Arrival-Date`.
    pub arrival: Option<OffsetDateTime>,
    /// Per-recipient fields, in order.
    pub recipients: Vec<NdrRecipient>,
}

/// How many lines [`is_dsn`] looks at.
const MAX_SNIFF_LINES: usize = 400;

/// Unfolded header-like fields: (first line number, name, value, the first physical line).
fn fields(text: &str, max_lines: usize) -> Vec<(usize, String, String, String)> {
    let mut out: Vec<(usize, String, String, String)> = Vec::new();
    let mut blank_before = false;
    for (i, line) in split_lines(text).enumerate().take(max_lines) {
        if line.trim().is_empty() {
            blank_before = true;
            out.push((i + 1, String::new(), String::new(), String::new()));
            continue;
        }
        if line.starts_with([' ', '\t']) && !blank_before {
            if let Some(last) = out.last_mut()
                && !last.1.is_empty()
            {
                last.2.push(' ');
                last.2.push_str(line.trim());
            }
            continue;
        }
        blank_before = false;
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                out.push((
                    i + 1,
                    name.to_string(),
                    value.trim().to_string(),
                    line.to_string(),
                ));
            }
            _ => out.push((i + 1, "\0".into(), String::new(), String::new())),
        }
    }
    out
}

/// `rfc822;bob@contoso.com` -> `bob@contoso.com`.
fn untyped(v: &str) -> String {
    v.split_once(';')
        .map_or(v, |(_, rest)| rest)
        .trim()
        .to_string()
}

fn angle(v: &str) -> String {
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// Whether `text` is a delivery status notification: a `multipart/report` with
/// `report-type=delivery-status` in its headers, or DSN fields (`Reporting-MTA` or
/// `Final-Recipient`, with `Status` or `Diagnostic-Code`).
pub fn is_dsn(text: &str) -> bool {
    let mut report = false;
    let (mut mta, mut rcpt, mut status) = (false, false, false);
    // A DSN starts with a header field; a transport log with `#` or a date, a listing with a
    // blank line or a property.
    let first = split_lines(text)
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if first.starts_with('#') || first.starts_with('{') || first.starts_with('[') {
        return false;
    }
    for (_, name, value, _) in fields(text, MAX_SNIFF_LINES) {
        let n = name.to_ascii_lowercase();
        match n.as_str() {
            "content-type" => {
                let v = value.to_ascii_lowercase();
                if v.contains("multipart/report") && v.contains("delivery-status") {
                    report = true;
                }
            }
            "reporting-mta" => mta = true,
            "final-recipient" => rcpt = true,
            "status" | "diagnostic-code" => status = true,
            _ => {}
        }
        if report || (mta && rcpt && status) {
            return true;
        }
    }
    false
}

/// Reads an NDR; `None` when the text is not one.
pub fn read_dsn(file: &str, text: &str) -> Option<Ndr> {
    if !is_dsn(text) {
        return None;
    }
    let mut ndr = Ndr {
        file: file.to_string(),
        date: None,
        subject: None,
        original_message_id: None,
        reporting_mta: None,
        arrival: None,
        recipients: Vec::new(),
    };
    let mut in_top_headers = true;
    for (line, name, value, first) in fields(text, usize::MAX) {
        if name.is_empty() {
            in_top_headers = false;
            continue;
        }
        let n = name.to_ascii_lowercase();
        if in_top_headers {
            match n.as_str() {
                "date" => ndr.date = OffsetDateTime::parse(value.trim(), &Rfc2822).ok(),
                "subject" => ndr.subject = Some(value.clone()),
                "in-reply-to" => ndr.original_message_id = Some(angle(&value)),
                "references" if ndr.original_message_id.is_none() => {
                    ndr.original_message_id = value.split_whitespace().last().map(angle)
                }
                _ => {}
            }
            continue;
        }
        let ev = || Evidence::new(file, line, &first);
        match n.as_str() {
            "reporting-mta" => ndr.reporting_mta = Some(untyped(&value)),
            "arrival-date" => ndr.arrival = OffsetDateTime::parse(value.trim(), &Rfc2822).ok(),
            "final-recipient" => ndr.recipients.push(NdrRecipient {
                address: untyped(&value),
                action: None,
                status: None,
                diagnostic: None,
                remote_mta: None,
                evidence: ev(),
                last_error: None,
                last_error_evidence: None,
            }),
            "action" | "status" | "diagnostic-code" | "remote-mta" => {
                let Some(r) = ndr.recipients.last_mut() else {
                    continue;
                };
                match n.as_str() {
                    "action" => r.action = Some(value.trim().to_ascii_lowercase()),
                    "status" => {
                        r.status = Some(value.trim().to_string());
                        if r.diagnostic.is_none() {
                            r.evidence = ev();
                        }
                    }
                    "diagnostic-code" => {
                        r.diagnostic = Some(untyped(&value));
                        r.evidence = ev();
                    }
                    _ => r.remote_mta = Some(untyped(&value)),
                }
            }
            _ => {}
        }
    }
    attach_last_errors(file, text, &mut ndr.recipients);
    Some(ndr)
}

/// `5/4/2026 6:30:00 AM - Server at host (1.2.3.4) returned '451 4.4.397 ...'` -> a LastError.
fn last_error_line(line: &str) -> Option<LastError> {
    let (at, rest) = line.split_once(" - ")?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("Remote ").unwrap_or(rest);
    let (who, quoted) = rest.split_once(" returned '")?;
    let led = quoted.trim_end().strip_suffix('\'')?;
    let who = who.strip_prefix("Server")?.trim();
    let who = who.strip_prefix("at ").unwrap_or(who);
    let (fqdn, ip) = match who.split_once(" (") {
        Some((h, ip)) => (h.trim(), ip.trim_end_matches(')').trim()),
        None => (who, ""),
    };
    Some(LastError {
        led: led.to_string(),
        msg: String::new(),
        fqdn: fqdn.to_string(),
        ip: ip.to_string(),
        lrt: at.trim().to_string(),
    })
}

/// The text's lines with quoted-printable soft line breaks (a trailing `=`) joined and `=3D`
/// decoded, each with the number and text of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String, &str)> {
    let mut out: Vec<(usize, String, &str)> = Vec::new();
    let mut open = false;
    for (i, line) in split_lines(text).enumerate() {
        let (body, soft) = match line.strip_suffix('=') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let body = body.replace("=3D", "=");
        match out.last_mut() {
            Some(last) if open => last.1.push_str(&body),
            _ => out.push((i + 1, body, line)),
        }
        open = soft;
    }
    out
}

/// Gives each recipient the last-error line the human part shows under its address (the last
/// one, when there are several); a line under an address the DSN fields do not list goes to the
/// first recipient. Quoted-printable soft line breaks are joined first.
fn attach_last_errors(file: &str, text: &str, recipients: &mut [NdrRecipient]) {
    let mut current: Option<String> = None;
    for (n, joined, first) in logical_lines(text) {
        let t = joined.trim();
        if t.contains('@') && !t.contains(' ') && !t.contains(':') {
            current = Some(t.trim_matches(['<', '>']).to_ascii_lowercase());
            continue;
        }
        let Some(le) = last_error_line(t) else {
            continue;
        };
        let idx = current
            .as_deref()
            .and_then(|c| {
                recipients
                    .iter()
                    .position(|r| r.address.eq_ignore_ascii_case(c))
            })
            .unwrap_or(0);
        if let Some(r) = recipients.get_mut(idx) {
            r.last_error = Some(le);
            r.last_error_evidence = Some(Evidence::new(file, n, first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(remote: Option<&str>) -> NdrReport {
        NdrReport {
            internal_id: 12_884_901_890,
            server_fqdn: "EDGE01.contoso.com".into(),
            sender: "alice@contoso.com".into(),
            arrival: time::macros::datetime!(2026-05-02 06:30:00 UTC),
            generated: time::macros::datetime!(2026-05-02 06:30:01 UTC),
            subject: "Quarterly figures".into(),
            original_message_id: "a1b2@EDGE01.contoso.com".into(),
            recipients: vec!["bob@contoso.mail.onmicrosoft.com".into()],
            reply: hybridlab_model::exchange::synthetic::over_advertised_size(),
            remote_mta: remote.map(str::to_string),
            action: DsnAction::Failed,
            last_error: None,
            retry_until: None,
        }
    }

    #[test]
    fn writes_and_reads_back_the_delivery_status() {
        let text = write_dsn(&report(None));
        assert!(text.contains("\r\nDiagnostic-Code: smtp;550 5.3.4 SMTPSEND.OverAdvertisedSize; message size exceeds fixed maximum size\r\n"));
        assert!(is_dsn(&text));
        let n = read_dsn("NDR-1.eml", &text).unwrap();
        assert_eq!(
            n.subject.as_deref(),
            Some("Undeliverable: Quarterly figures")
        );
        assert_eq!(
            n.original_message_id.as_deref(),
            Some("a1b2@EDGE01.contoso.com")
        );
        assert_eq!(n.reporting_mta.as_deref(), Some("EDGE01.contoso.com"));
        assert_eq!(
            n.date,
            Some(time::macros::datetime!(2026-05-02 06:30:01 UTC))
        );
        assert_eq!(n.recipients.len(), 1);
        let r = &n.recipients[0];
        assert_eq!(r.address, "bob@contoso.mail.onmicrosoft.com");
        assert_eq!(r.status.as_deref(), Some("5.3.4"));
        assert_eq!(r.action.as_deref(), Some("failed"));
        assert_eq!(r.remote_mta, None);
        let reply = r.reply().unwrap();
        assert_eq!(reply.code, 550);
        assert!(reply.text().contains("OverAdvertisedSize"));
        let line = text.split("\r\n").nth(r.evidence.line - 1).unwrap();
        assert_eq!(line, r.evidence.text);
        assert!(line.starts_with("Diagnostic-Code: smtp;550 5.3.4"));
    }

    #[test]
    fn remote_mta_and_folded_fields() {
        let text = write_dsn(&report(Some("contoso-com.mail.protection.outlook.com")));
        let n = read_dsn("x.eml", &text).unwrap();
        assert_eq!(
            n.recipients[0].remote_mta.as_deref(),
            Some("contoso-com.mail.protection.outlook.com")
        );
        // A folded Diagnostic-Code (as some gateways write it) is unfolded.
        let folded = "Reporting-MTA: dns;a.example\n\nFinal-Recipient: rfc822;x@y.example\nAction: failed\nStatus: 5.7.64\nDiagnostic-Code: smtp;550 5.7.64 TenantAttribution;\n Relay Access Denied\n";
        let n = read_dsn("y.eml", folded).unwrap();
        assert_eq!(
            n.recipients[0].diagnostic.as_deref(),
            Some("550 5.7.64 TenantAttribution; Relay Access Denied")
        );
        assert_eq!(n.recipients[0].evidence.line, 6);
    }

    #[test]
    fn other_text_is_not_a_dsn() {
        assert!(!is_dsn("Status: 5.0.0\n"));
        assert!(!is_dsn(
            "#Software: Microsoft Exchange Server\n#Fields: date-time\n"
        ));
        assert!(read_dsn("z", "Subject: hello\n\nbody\n").is_none());
    }
}
