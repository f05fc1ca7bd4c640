//! Receive sessions from EOP and Exchange Online's verdicts, read for the receive-side rules.

use hybridlab_artefacts::protocol_log::{CertRole, LogKind, ParsedSession, SessionEvent};
use hybridlab_model::exchange::SecurityStatus;
use hybridlab_model::led::Led;
use hybridlab_model::x509::CertFacts;
use time::OffsetDateTime;

use crate::model::{Ev, Model, is_eop_ip};

/// One session of a receive protocol log whose client is Exchange Online.
#[derive(Debug)]
pub(crate) struct RecvView<'a> {
    pub ps: &'a ParsedSession,
    /// `EXCH01` of `EXCH01\Default Frontend EXCH01`.
    pub server: String,
    /// The lines of the first EHLO reply (one, or one per keyword in the 2013-2016 layout).
    pub ehlo_reply: Vec<usize>,
    /// Whether that reply offered STARTTLS.
    pub starttls_offered: bool,
    /// The client's STARTTLS command.
    pub starttls: Option<usize>,
    /// The certificate this server presented.
    pub sending_cert: Option<usize>,
    pub tls_ok: Option<usize>,
    pub tls_failed: Option<(SecurityStatus, usize)>,
    /// `TlsDomainCapabilities='...'; Status='...'` and whether it granted anything.
    pub caps: Option<(usize, bool)>,
    /// A `452 4.3.1 Insufficient system resources` reply.
    pub back_pressure: Option<usize>,
    /// `250 2.6.0 ... Queued mail for delivery`.
    pub accepted: Option<usize>,
    /// The client's MAIL FROM.
    pub mail: Option<usize>,
    pub disconnect: Option<usize>,
}

impl<'a> RecvView<'a> {
    fn build(ps: &'a ParsedSession) -> Self {
        let server = ps
            .session
            .connector_id
            .split_once('\\')
            .map_or_else(String::new, |(s, _)| s.to_string());
        let mut v = Self {
            ps,
            server,
            ehlo_reply: Vec::new(),
            starttls_offered: false,
            starttls: None,
            sending_cert: None,
            tls_ok: None,
            tls_failed: None,
            caps: None,
            back_pressure: None,
            accepted: None,
            mail: None,
            disconnect: None,
        };
        // 0: before the first EHLO, 1: collecting its reply, 2: done.
        let mut ehlo_state = 0u8;
        for (i, te) in ps.session.events.iter().enumerate() {
            match &te.event {
                SessionEvent::ReceivedLine { line } => {
                    let verb = line.split([' ', ':']).next().unwrap_or("");
                    if ehlo_state == 1 {
                        ehlo_state = 2;
                    }
                    if ehlo_state == 0
                        && (verb.eq_ignore_ascii_case("EHLO") || verb.eq_ignore_ascii_case("HELO"))
                    {
                        ehlo_state = 1;
                    }
                    if verb.eq_ignore_ascii_case("STARTTLS") {
                        v.starttls.get_or_insert(i);
                    }
                    if verb.eq_ignore_ascii_case("MAIL") {
                        v.mail.get_or_insert(i);
                    }
                }
                SessionEvent::Sent { line } => {
                    let t = line.trim();
                    if ehlo_state == 1 && t.starts_with("250") {
                        v.ehlo_reply.push(i);
                        if t[3..]
                            .split(|c: char| c.is_whitespace() || c == '-')
                            .any(|w| w.eq_ignore_ascii_case("STARTTLS"))
                        {
                            v.starttls_offered = true;
                        }
                    }
                    if t.starts_with("452 4.3.1") || t.contains("Insufficient system resources") {
                        v.back_pressure.get_or_insert(i);
                    }
                    if t.starts_with("250 2.6.0") {
                        v.accepted = Some(i);
                    }
                }
                SessionEvent::Certificate {
                    role: CertRole::Sending,
                    ..
                } => v.sending_cert = Some(i),
                SessionEvent::TlsNegotiated { .. } => v.tls_ok = Some(i),
                SessionEvent::TlsFailed { status } => v.tls_failed = Some((*status, i)),
                SessionEvent::Info { data, context } => {
                    let t = if context.contains("TlsDomainCapabilities=") {
                        context
                    } else {
                        data
                    };
                    if let Some(rest) = t.split("TlsDomainCapabilities='").nth(1) {
                        let caps = rest.split('\'').next().unwrap_or("");
                        v.caps = Some((i, !caps.eq_ignore_ascii_case("None") && !caps.is_empty()));
                    } else if v.tls_failed.is_none()
                        && let Some(st) = SecurityStatus::from_log_text(context)
                    {
                        v.tls_failed = Some((st, i));
                    }
                }
                SessionEvent::Disconnected { .. } => v.disconnect = Some(i),
                _ => {}
            }
        }
        v
    }

    pub(crate) fn at(&self, i: usize) -> OffsetDateTime {
        self.ps.session.events[i].at
    }

    pub(crate) fn ev(&self, i: usize) -> Ev {
        Ev::of(self.ps.sources[i].first(), Some(self.at(i)))
    }

    /// The thumbprint line of a certificate block (the block's only line in the one-line style).
    pub(crate) fn cert_ev(&self, i: usize) -> Ev {
        Ev::of(
            self.ps.sources[i].line_containing("thumbprint"),
            Some(self.at(i)),
        )
    }

    pub(crate) fn cert(&self, i: usize) -> Option<&'a CertFacts> {
        match &self.ps.session.events[i].event {
            SessionEvent::Certificate { cert, .. } => Some(cert),
            _ => None,
        }
    }

    pub(crate) fn start(&self) -> Option<OffsetDateTime> {
        self.ps.session.events.first().map(|e| e.at)
    }

    /// `EXCH01\Default Frontend EXCH01`.
    pub(crate) fn identity(&self) -> &str {
        &self.ps.session.connector_id
    }

    /// The client left before any mail: no MAIL FROM after the point that matters.
    pub(crate) fn left_without_mail(&self) -> bool {
        self.mail.is_none() && self.accepted.is_none()
    }
}

/// Whether a receive session's client is Exchange Online: an EOP address, or an EHLO name of
/// its outbound hosts (`*.outbound.protection.outlook.com`).
fn from_eop(ps: &ParsedSession) -> bool {
    is_eop_ip(ps.session.remote.ip())
        || ps.session.events.iter().any(|e| match &e.event {
            SessionEvent::ReceivedLine { line } => {
                let l = line.to_ascii_lowercase();
                (l.starts_with("ehlo ") || l.starts_with("helo "))
                    && l.trim_end().ends_with(".outbound.protection.outlook.com")
            }
            _ => false,
        })
}

/// Receive-log sessions whose client is Exchange Online, oldest first.
pub(crate) fn recv_sessions<'a>(m: &Model<'a>) -> Vec<RecvView<'a>> {
    m.a.protocol
        .sessions
        .iter()
        .filter(|s| s.kind == Some(LogKind::Receive) && from_eop(s))
        .map(RecvView::build)
        .collect()
}

/// Receive-log sessions of any client (the RECV log was collected).
pub(crate) fn recv_logged(m: &Model<'_>) -> bool {
    m.a.protocol
        .sessions
        .iter()
        .any(|s| s.kind == Some(LogKind::Receive))
}

/// What Exchange Online's verdict on a delivery to on-premises says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundFamily {
    /// `450 4.4.316 Connection refused [Message=Socket error code 10061]`.
    Refused,
    /// `450 4.4.315 Connection timed out [Message=Socket error code 10060]`.
    TimedOut,
    /// `[Message=451 5.7.3 STARTTLS is required to send mail]`.
    StarttlsRequired,
    /// `[Message=SubjectMismatch Expected Subject: ... Presented Subject: ...]`, `4.7.320`.
    SubjectMismatch,
    /// `[Message=UntrustedRoot ...]`, PartialChain, revocation.
    Untrusted,
    /// `[Message=CertificateExpired ...]`.
    Expired,
    /// `[Message=451 4.4.0 TLS negotiation failed with error SocketError]`.
    TlsFailed,
    /// `452 4.3.1 Insufficient system resources`.
    BackPressure,
    /// Something else (quoted by `unexplained-failure`).
    Other,
}

/// One verdict of Exchange Online on a delivery to on-premises.
#[derive(Debug, Clone)]
pub(crate) struct ExoVerdict {
    pub led: Led,
    pub family: InboundFamily,
    pub ev: Ev,
}

impl ExoVerdict {
    /// `[Message=...]`, else the reply text.
    pub(crate) fn detail(&self) -> String {
        self.led
            .message()
            .map_or_else(|| self.led.to_string(), str::to_string)
    }

    /// `mail.contoso.com (203.0.113.25:25)`, or what is known of it.
    pub(crate) fn target(&self) -> String {
        fn nonempty(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        match (
            nonempty(self.led.last_attempted_server_name()),
            nonempty(self.led.last_attempted_ip()),
        ) {
            (Some(h), Some(ip)) => format!("{h} ({ip})"),
            (Some(h), None) => h.to_string(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "the on-premises server".to_string(),
        }
    }
}

/// The family of an EXO LED; `None` when it is not an Exchange Online delivery verdict (no
/// `[Message=...]` or `[LastAttempted...]` part and no 4.4.31x/4.7.320 code).
pub(crate) fn classify(led: &Led) -> Option<InboundFamily> {
    let code = led.enhanced.map(|e| e.to_string()).unwrap_or_default();
    let exo_shaped = led.message().is_some()
        || led.last_attempted_server_name().is_some()
        || led.last_attempted_ip().is_some()
        || matches!(code.as_str(), "4.4.315" | "4.4.316" | "4.4.317" | "4.7.320");
    if !exo_shaped {
        return None;
    }
    let all = format!("{} {}", led.text, led.message().unwrap_or("")).to_ascii_lowercase();
    let has = |t: &str| all.contains(&t.to_ascii_lowercase());
    Some(
        if code == "4.4.316" || has("10061") || has("connection refused") {
            InboundFamily::Refused
        } else if code == "4.4.315" || has("10060") || has("timed out") {
            InboundFamily::TimedOut
        } else if has("starttls is required") || has("5.7.3 ") {
            InboundFamily::StarttlsRequired
        } else if has("subjectmismatch") || has("subject mismatch") {
            InboundFamily::SubjectMismatch
        } else if has("certificateexpired") || has("nottimevalid") || has("certificate expired") {
            InboundFamily::Expired
        } else if has("untrustedroot")
            || has("partialchain")
            || has("revocation")
            || code == "4.7.320"
        {
            InboundFamily::Untrusted
        } else if has("tls negotiation failed") || has("handshake") {
            InboundFamily::TlsFailed
        } else if has("4.3.1") || has("insufficient system resources") {
            InboundFamily::BackPressure
        } else {
            InboundFamily::Other
        },
    )
}

/// Exchange Online's verdicts on deliveries to on-premises: the Diagnostic-Code of the NDRs it
/// sent (`550 4.4.7 QUEUE.Expired; message expired [Message=...]`) and the message trace's Defer
/// and Fail events, newest first.
pub(crate) fn exo_verdicts(m: &Model<'_>) -> Vec<ExoVerdict> {
    let mut out: Vec<ExoVerdict> = m
        .ndrs
        .iter()
        .filter_map(|n| {
            let text = n.rcpt.diagnostic.as_deref()?;
            let led = Led::parse(text)?;
            let family = classify(&led)?;
            Some(ExoVerdict {
                led,
                family,
                ev: n.ev.clone(),
            })
        })
        .collect();
    // Exchange Online's message trace: the Defer and Fail events of Get-MessageTraceDetail (or the
    // EAC's report), whose detail carries the same LED in a `Reason: [{LED=...};...]` frame.
    for t in &m.a.trace_details {
        let Some(led) = trace_led(&t.row.detail) else {
            continue;
        };
        let Some(family) = classify(&led) else {
            continue;
        };
        let ev = crate::model::prop_ev(&t.evidence, "Detail")
            .or_else(|| crate::model::row_ev(&t.evidence));
        if let Some(mut ev) = ev {
            ev.at = t.row.date.or(ev.at);
            out.push(ExoVerdict { led, family, ev });
        }
    }
    out.sort_by_key(|v| std::cmp::Reverse(v.ev.at));
    out
}

/// The LED of a trace event's detail: inside the `[{LED=...}]` frame, else the detail itself.
fn trace_led(detail: &str) -> Option<Led> {
    hybridlab_model::led::TraceReason::parse(detail)
        .and_then(|r| Led::parse(&r.last_error.led))
        .or_else(|| Led::parse(detail))
}
