//! `hybridlab explain`: a replay narrated for a demo. The certificate selection and why; every
//! SMTP and TLS step from both sides (the sender's protocol log and the mock's record, aligned
//! command by command); what EOP decided and why; what the admin sees (queue, log tail); the
//! diagnosis and the fix (the finding catalogue's entry for the expected finding).

use std::fmt::Write as _;

use super::words;

use hybridlab_model::attribution::AttributionVerdict;
use hybridlab_model::record::{SessionRecord, TranscriptEntry};

use crate::scenario::runner::{CertRow, Replay};
use crate::scenario::{Check, CheckStatus, Scenario};
use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_onprem::sender::SessionReport;
use hybridlab_onprem::transport::TransportRecord;

/// How text is styled: with ANSI colour codes, or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Whether to wrap styled text in ANSI escape codes (a terminal) or leave it plain (files,
    /// pipes, `NO_COLOR`).
    pub color: bool,
}

impl Style {
    /// Plain text, for files (`transcript.txt`) and tests.
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    pub fn for_stdout() -> Self {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// `s` in bold: headings and what the admin ran.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// `s` in red: failures.
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    /// `s` in green: deliveries and met expectations.
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// `s` in yellow: the mock's notes, skips and the certificate cache.
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    /// `s` in cyan: who speaks in the conversation.
    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }
    /// `s` dimmed: times, thumbprints and evidence.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

fn hms(t: time::OffsetDateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub(crate) fn day_hms(start: time::OffsetDateTime, t: time::OffsetDateTime) -> String {
    let days = (t.date() - start.date()).whole_days();
    if days > 0 {
        format!("+{days}d {}", hms(t))
    } else {
        hms(t)
    }
}

/// Whether a sender event marks the failure.
fn is_bad(e: &SessionEvent) -> bool {
    match e {
        SessionEvent::TlsFailed { .. } => true,
        SessionEvent::Received { reply } => reply.code >= 400,
        SessionEvent::Info { context, .. } => context.contains("failed"),
        SessionEvent::Disconnected { reason } => {
            !matches!(reason, hybridlab_model::exchange::DisconnectReason::Local)
        }
        _ => false,
    }
}

/// The mock records of the sessions that reached it, paired with the on-prem sessions.
pub fn pair_sessions(r: &Replay) -> Vec<(&SessionReport, Option<&SessionRecord>)> {
    let mut mock = r.mock_sessions.iter();
    r.sessions
        .iter()
        .map(|s| {
            let connected = s
                .log
                .events
                .iter()
                .any(|e| matches!(e.event, SessionEvent::Connected));
            (s, if connected { mock.next() } else { None })
        })
        .collect()
}

/// One line of the interleaved conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// From the on-premises sender's log.
    Sender {
        /// When the sender logged it, on the lab clock.
        at: time::OffsetDateTime,
        /// The send protocol log's event (a command, a reply, a certificate block...).
        event: Box<SessionEvent>,
    },
    /// A note from the mock's record (TLS facts, verdicts, faults).
    Mock {
        /// When the mock noted it, on the lab clock.
        at: time::OffsetDateTime,
        /// What the mock noted, in words (`TLS established: ...`, the verdict, a fault).
        text: String,
    },
}

/// The sender's events and the mock's notes, aligned: each command and reply the mock recorded
/// pulls the sender's events up to the matching `>` or `<` line, and the mock's notes land where
/// they happened in its own sequence.
pub fn interleave(s: &SessionReport, m: Option<&SessionRecord>) -> Vec<Step> {
    let events = &s.log.events;
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Step>, i: usize| {
        out.push(Step::Sender {
            at: events[i].at,
            event: Box::new(events[i].event.clone()),
        })
    };
    for entry in m.map(|m| m.transcript.as_slice()).unwrap_or(&[]) {
        match entry {
            TranscriptEntry::Command { .. } | TranscriptEntry::Reply { .. } => {
                let want_sent = matches!(entry, TranscriptEntry::Command { .. });
                // never pull the sender's later events in front of the mock's earlier ones
                while i < events.len() && events[i].at <= entry.at() {
                    push(&mut out, i);
                    i += 1;
                    let hit = match events[i - 1].event {
                        SessionEvent::Sent { .. } => want_sent,
                        SessionEvent::Received { .. } => !want_sent,
                        _ => false,
                    };
                    if hit {
                        break;
                    }
                }
            }
            TranscriptEntry::Info { at, text } => {
                // the sender's own (local) events up to that time come first
                while i < events.len()
                    && events[i].at <= *at
                    && !matches!(
                        events[i].event,
                        SessionEvent::Sent { .. } | SessionEvent::Received { .. }
                    )
                {
                    push(&mut out, i);
                    i += 1;
                }
                out.push(Step::Mock {
                    at: *at,
                    text: text.clone(),
                });
            }
        }
    }
    while i < events.len() {
        push(&mut out, i);
        i += 1;
    }
    out
}

fn explain_verdict(v: &AttributionVerdict) -> &'static str {
    match v {
        AttributionVerdict::Attributed { .. } => {
            "the session matched an inbound connector of the tenant: hybrid mail, CrossPremises headers honoured when the connector has CloudServicesMailEnabled"
        }
        AttributionVerdict::Unattributed { .. } => {
            "no inbound connector matched (no valid certificate with the TlsSenderCertificateName, no SenderIPAddresses match): the mail is accepted as anonymous Internet mail, hybrid headers are dropped"
        }
        AttributionVerdict::TlsRequired { .. } => {
            "the connector that matched requires TLS and the session was in clear text"
        }
        AttributionVerdict::RelayDenied { .. } => {
            "the sender was not attributed to an OnPremises connector, so EOP will not relay to a recipient outside the tenant"
        }
        AttributionVerdict::RelayDeniedAttr36 => {
            "the sender's domain is no tenant's accepted domain and no certificate connector matched"
        }
        AttributionVerdict::PartnerRestricted { .. } => {
            "a Partner connector covers the sender's domain and requires a certificate or address the session did not have"
        }
        AttributionVerdict::DirectSendDenied { .. } => {
            "RejectDirectSend is on and the session was not attributed to a connector"
        }
        AttributionVerdict::WrongRegion { .. } => {
            "the tenant lives in another region than the endpoint the mail was sent to"
        }
    }
}

/// Splits `text` into lines of at most `width` characters at spaces.
pub(crate) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn step_line(st: &Style, who: &str, start: time::OffsetDateTime, step: &Step) -> String {
    match step {
        Step::Sender { at, event } => {
            let t = st.dim(&day_hms(start, *at));
            let (dir, text) = match event.as_ref() {
                SessionEvent::AttemptingConnect => ("  ", "attempting to connect".to_string()),
                SessionEvent::Connected => ("  ", "TCP connected".to_string()),
                SessionEvent::Sent { line } => ("->", line.clone()),
                SessionEvent::Received { reply } => ("<-", reply.exchange_log_text()),
                SessionEvent::ReceivedLine { line } => ("<-", line.clone()),
                SessionEvent::Certificate { role, cert } => (
                    "  ",
                    format!(
                        "{}: {} (issuer {}, thumbprint {})",
                        role.log_text(),
                        cert.subject,
                        cert.issuer,
                        cert.thumbprint
                    ),
                ),
                SessionEvent::TlsNegotiated { text } => ("  ", text.clone()),
                SessionEvent::TlsFailed { status } => ("  ", status.log_text()),
                SessionEvent::Info { data, context } => {
                    ("  ", format!("{context} {data}").trim().to_string())
                }
                SessionEvent::Disconnected { reason } => ("  ", format!("disconnected ({reason})")),
            };
            let lane = match dir {
                "->" => format!("{who} -> EOP"),
                "<-" => format!("EOP -> {who}"),
                _ => who.to_string(),
            };
            let body = if is_bad(event) { st.red(&text) } else { text };
            format!("  {t}  {:<18} {body}", st.cyan(&lane))
        }
        Step::Mock { at, text } => {
            let t = st.dim(&day_hms(start, *at));
            format!("  {t}  {:<18} {}", st.yellow("EOP (mock)"), st.dim(text))
        }
    }
}

/// The narration without the expectations section (`transcript.txt` of `hybridlab run --out`).
pub fn narrate(s: &Scenario, r: &Replay, st: &Style) -> String {
    narrate_with_checks(s, r, &[], st)
}

/// The narration, ending with the expectation checks when given: the title, then one section
/// per function below, in the order the reader meets them.
pub fn narrate_with_checks(s: &Scenario, r: &Replay, checks: &[Check], st: &Style) -> String {
    let mut o = String::new();
    title(&mut o, s, st);
    onprem_section(&mut o, s, r, st);
    eop_section(&mut o, s, r, st);
    attempts_section(&mut o, r, st);
    queue_timeline(&mut o, r, st);
    eop_decision_section(&mut o, r, st);
    admin_section(&mut o, r, st);
    diagnosis_section(&mut o, s, r, st);
    expectations_section(&mut o, checks, st);
    o
}

/// The scenario's id and title, its tags and its description.
pub(crate) fn title(o: &mut String, s: &Scenario, st: &Style) {
    let meta = &s.scenario;
    let _ = writeln!(o, "{}", st.bold(&format!("{}: {}", meta.id, meta.title)));
    if !meta.tags.is_empty() {
        let _ = writeln!(o, "{}", st.dim(&format!("tags: {}", meta.tags.join(", "))));
    }
    if !meta.description.trim().is_empty() {
        let _ = writeln!(o);
        for l in meta.description.trim().lines() {
            let _ = writeln!(o, "  {}", l.trim());
        }
    }
}

/// Section 1: the sending server, its certificate store in enumeration order and its send
/// connector.
fn onprem_section(o: &mut String, s: &Scenario, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("1. The on-premises server"));
    let _ = writeln!(
        o,
        "  {} ({}, {}, Exchange {}), sending from {}",
        r.server.name,
        r.server.fqdn,
        words::role(r.server.role),
        r.server.version,
        s.onprem.source_address
    );
    let _ = writeln!(o, "  Cert:\\LocalMachine\\My, in enumeration order:");
    for c in &r.certificates {
        certificate_row(o, c, st);
    }
    let c = &r.connector;
    let _ = writeln!(
        o,
        "  Send connector \"{}\": {} RequireTLS={} TlsAuthLevel={} TlsDomain={} Fqdn={}",
        c.name,
        if c.dns_routing_enabled {
            "MX routing".to_string()
        } else {
            format!("SmartHosts={}", c.smart_hosts.join(","))
        },
        c.require_tls,
        c.tls_auth_level
            .map(|l| l.to_string())
            .unwrap_or("-".into()),
        c.tls_domain.as_deref().unwrap_or("-"),
        c.fqdn.as_deref().unwrap_or("-"),
    );
    let _ = writeln!(
        o,
        "    TlsCertificateName={}",
        c.tls_certificate_name.as_deref().unwrap_or("(empty)")
    );
}

/// One certificate of the store: position, name, subject, issuer, key, services and validity
/// (one line for a certificate not installed at the start).
fn certificate_row(o: &mut String, c: &CertRow, st: &Style) {
    if !c.installed {
        let _ = writeln!(
            o,
            "    (not installed at the start) {:<12} {} | issuer {} | thumbprint {}",
            c.name,
            c.facts.subject,
            c.facts.issuer,
            st.dim(&c.facts.thumbprint)
        );
        return;
    }
    let key = if !c.has_private_key {
        st.red("NO private key")
    } else if !c.key_readable {
        st.red("key not readable by transport")
    } else {
        "private key".to_string()
    };
    let _ = writeln!(
        o,
        "    #{} {:<12} {} | issuer {} | {} | services {} | {} .. {}",
        c.enumeration_index,
        c.name,
        c.facts.subject,
        c.facts.issuer,
        key,
        c.services,
        c.facts.not_before.date(),
        c.facts.not_after.date()
    );
    let _ = writeln!(o, "       thumbprint {}", st.dim(&c.facts.thumbprint));
}

/// Section 2: the mock's endpoint and certificate, every tenant with its inbound connectors,
/// and the scripted faults.
fn eop_section(o: &mut String, s: &Scenario, r: &Replay, st: &Style) {
    let _ = writeln!(
        o,
        "\n{}",
        st.bold("2. Exchange Online Protection (the mock)")
    );
    let _ = writeln!(
        o,
        "  endpoint {} in region {}; certificate {} issued by {}",
        s.eop.endpoint.hostname,
        s.eop.endpoint.region,
        r.eop_certificate.subject,
        r.eop_certificate.issuer
    );
    for t in &s.eop.tenants {
        let doms: Vec<&str> = t
            .accepted_domains
            .iter()
            .map(|d| d.domain.as_str())
            .collect();
        let _ = writeln!(
            o,
            "  tenant {} (region {}): accepted domains {}",
            t.name,
            s.eop.region_of(t),
            doms.join(", ")
        );
        for ic in &t.inbound_connectors {
            let ips: Vec<String> = ic
                .sender_ip_addresses
                .iter()
                .map(|r| r.0.to_string())
                .collect();
            let _ = writeln!(
                o,
                "    inbound connector \"{}\": {} TlsSenderCertificateName={} SenderIPAddresses={} RequireTls={}",
                ic.name,
                words::connector_type(ic.connector_type),
                ic.tls_sender_certificate_name.as_deref().unwrap_or("-"),
                if ips.is_empty() {
                    "-".into()
                } else {
                    ips.join(",")
                },
                ic.require_tls
            );
        }
    }
    for f in &s.faults {
        let when = match (f.first_attempts, f.probability) {
            (Some(n), _) => format!("first {n} attempt(s)"),
            (_, Some(p)) => format!("probability {p}"),
            _ => "always".into(),
        };
        let _ = writeln!(
            o,
            "  fault at {}: {} ({when})",
            f.stage.as_str(),
            f.action.describe()
        );
    }
}

/// A run of attempts left out of the narration: the first and the last attempt number (1-based).
type SkippedAttempts = Option<(usize, usize)>;

/// Writes (and forgets) the note for the attempts left out since the last one narrated.
fn flush_skipped(o: &mut String, skipped: &mut SkippedAttempts, st: &Style) {
    if let Some((a, b)) = skipped.take() {
        let what = if a == b {
            format!("... attempt {a} went the same way (see the timeline below) ...")
        } else {
            format!("... attempts {a} to {b} went the same way (see the timeline below) ...")
        };
        let _ = writeln!(o, "\n  {}", st.dim(&what));
    }
}

/// One command the admin ran, at its lab time.
fn admin_line(o: &mut String, r: &Replay, at: time::OffsetDateTime, command: &str, st: &Style) {
    let _ = writeln!(
        o,
        "\n  {}  {}",
        st.dim(&day_hms(r.start, at)),
        st.bold(&format!("admin: {command}"))
    );
}

/// Section 3: every delivery attempt with the admin's commands where they happened among them.
/// Long retry series narrate the first two attempts, the first after an admin's change and the
/// last one in full; the others are summed up in one line.
fn attempts_section(o: &mut String, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("3. What happened"));
    let pairs = pair_sessions(r);
    let n = pairs.len();
    let admin: Vec<(time::OffsetDateTime, &str)> = r
        .timeline
        .iter()
        .filter_map(|t| match &t.record {
            TransportRecord::AdminChange { command } => Some((t.at, command.as_str())),
            _ => None,
        })
        .collect();
    let mut admin_next = 0;
    let mut skipped: SkippedAttempts = None;
    for (i, (sess, rec)) in pairs.iter().enumerate() {
        let first_at = sess.log.events.first().map(|e| e.at).unwrap_or(r.start);
        let after_change = admin_next < admin.len() && admin[admin_next].0 <= first_at;
        while admin_next < admin.len() && admin[admin_next].0 <= first_at {
            flush_skipped(o, &mut skipped, st);
            let (at, command) = admin[admin_next];
            admin_line(o, r, at, command, st);
            admin_next += 1;
        }
        let full = n <= 4 || i < 2 || i + 1 == n || after_change;
        if !full {
            skipped = Some(skipped.map_or((i + 1, i + 1), |(a, _)| (a, i + 1)));
            continue;
        }
        flush_skipped(o, &mut skipped, st);
        attempt(o, r, i, n, sess, *rec, st);
    }
    flush_skipped(o, &mut skipped, st);
    for (at, command) in &admin[admin_next..] {
        admin_line(o, r, *at, command, st);
    }
}

/// Attempt `i` of `n` in full: its heading, the certificate selection and why, the interleaved
/// conversation of both sides and how the session failed.
fn attempt(
    o: &mut String,
    r: &Replay,
    i: usize,
    n: usize,
    sess: &SessionReport,
    rec: Option<&SessionRecord>,
    st: &Style,
) {
    let first_at = sess.log.events.first().map(|e| e.at).unwrap_or(r.start);
    let head = format!(
        "Attempt {} of {} at {} (session {}) to {} [{}]",
        i + 1,
        n,
        day_hms(r.start, first_at),
        sess.log.session_id,
        sess.target.host,
        sess.log.remote
    );
    let _ = writeln!(o, "\n  {}", st.bold(&head));
    if let Some(sel) = &sess.selection {
        let _ = writeln!(o, "  {}", st.bold("Certificate selection:"));
        let cached = r.timeline.iter().find_map(|t| match &t.record {
            TransportRecord::CachedCertificate {
                session,
                selected_at,
                ..
            } if *session == i => Some(*selected_at),
            _ => None,
        });
        if let Some(at) = cached {
            let _ = writeln!(
                o,
                "    {}",
                st.yellow(&format!(
                    "from the transport's certificate cache: the store as it was at {} (Restart-Service MSExchangeTransport clears it)",
                    day_hms(r.start, at)
                ))
            );
        }
        for l in sel.narrate() {
            let _ = writeln!(o, "    {l}");
        }
    }
    let who = &r.server.name;
    for step in interleave(sess, rec) {
        let _ = writeln!(o, "{}", step_line(st, who, r.start, &step));
    }
    if let Some(f) = &sess.failure {
        let _ = writeln!(
            o,
            "  {} {}",
            st.red("session failed:"),
            st.red(&format!(
                "{} -> ack {}",
                words::failure(&f.kind),
                f.ack.one_line()
            ))
        );
    }
}

/// The end of section 3: every record of the queue's timeline, one line each.
fn queue_timeline(o: &mut String, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n  {}", st.bold("Queue timeline:"));
    for t in &r.timeline {
        let what = timeline_record(r, &t.record, st);
        let _ = writeln!(o, "    {}  {what}", st.dim(&day_hms(r.start, t.at)));
    }
}

/// One record of the queue's timeline as the narration words it.
fn timeline_record(r: &Replay, record: &TransportRecord, st: &Style) -> String {
    match record {
        TransportRecord::Attempt {
            session,
            fallback_plaintext,
        } => format!(
            "attempt (session {}){}",
            r.sessions
                .get(*session)
                .map(|s| s.log.session_id.as_str())
                .unwrap_or("?"),
            if *fallback_plaintext {
                ", plain-text fallback"
            } else {
                ""
            }
        ),
        TransportRecord::DnsFailed { led } => format!("DNS failed: {led}"),
        TransportRecord::RetryScheduled { next, stage } => {
            format!("Retry until {} ({stage})", day_hms(r.start, *next))
        }
        TransportRecord::Delivered { reply, .. } => {
            st.green(&format!("delivered: {}", reply.one_line()))
        }
        TransportRecord::DelayDsn { internal_id } => format!("delay DSN for {internal_id}"),
        TransportRecord::Ndr { internal_id, reply } => {
            st.red(&format!("NDR for {internal_id}: {}", reply.one_line()))
        }
        TransportRecord::AdminChange { command } => st.bold(&format!("admin: {command}")),
        TransportRecord::CachedCertificate {
            identifier,
            cached,
            selected_at,
            current,
            ..
        } => st.yellow(&format!(
            "certificate cache: {identifier} still gives {cached} (selected at {}); the store now gives {}",
            day_hms(r.start, *selected_at),
            current.as_deref().unwrap_or("nothing")
        )),
    }
}

/// Section 4: what EOP decided in the last session that reached it (TLS, client certificate,
/// verdict and why, faults fired).
fn eop_decision_section(o: &mut String, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("4. What EOP decided and why"));
    let pairs = pair_sessions(r);
    // the last session that reached the mock, as paired with the sender's sessions
    let Some(rec) = pairs.iter().rev().find_map(|(_, rec)| *rec) else {
        let _ = writeln!(o, "  no session reached EOP");
        return;
    };
    eop_decision(o, rec, st);
}

/// What the mock recorded for one session: TLS and the client certificate, the attribution
/// verdict and why, the faults that fired.
fn eop_decision(o: &mut String, rec: &SessionRecord, st: &Style) {
    match &rec.tls {
        Some(tls) => {
            let _ = writeln!(o, "  TLS {} with {}", tls.version, tls.cipher_suite);
            match &tls.client_certificate {
                Some(cc) => {
                    let _ = writeln!(
                        o,
                        "  client certificate {} (issuer {}), chain {}",
                        cc.leaf.subject, cc.leaf.issuer, cc.verdict
                    );
                }
                None => {
                    let _ = writeln!(o, "  no client certificate");
                }
            }
        }
        None => {
            let why = rec
                .tls_error
                .as_deref()
                .map(|e| format!(" (handshake failed: {e})"))
                .unwrap_or_default();
            let _ = writeln!(o, "  no TLS in the last session that reached EOP{why}");
        }
    }
    match &rec.attribution {
        Some(v) => {
            let _ = writeln!(o, "  verdict: {}", st.bold(&v.to_string()));
            let _ = writeln!(o, "  why: {}", explain_verdict(v));
        }
        None => {
            let _ = writeln!(
                o,
                "  no attribution verdict: the session ended before MAIL FROM ({})",
                words::close_reason(rec.close_reason)
            );
        }
    }
    for f in &rec.faults_fired {
        let _ = writeln!(o, "  fault fired at {}: {}", f.stage, f.action);
    }
}

/// Section 5: what the admin sees: Get-Queue, LastError, the NDRs, deliveries and the last lines
/// of the send protocol log.
fn admin_section(o: &mut String, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("5. What the admin sees"));
    let q = &r.queue;
    let _ = writeln!(
        o,
        "  Get-Queue {}: Status {} MessageCount {} NextHopDomain {}",
        q.identity, q.status, q.message_count, q.next_hop_domain
    );
    if let Some(le) = r.last_error() {
        let _ = writeln!(o, "  LastError {}", st.red(&le.to_string()));
    }
    for n in r.ndrs() {
        let _ = writeln!(o, "  NDR to the sender: {}", st.red(&n.one_line()));
    }
    let delivered = r.delivered();
    if delivered > 0 {
        let _ = writeln!(
            o,
            "  {}",
            st.green(&format!("{delivered} message(s) delivered"))
        );
    }
    if let Some(last) = r.sessions.last() {
        let _ = writeln!(o, "  send protocol log, last lines:");
        let tr = last.transcript();
        let lines: Vec<&str> = tr.lines().collect();
        for l in lines.iter().skip(lines.len().saturating_sub(5)) {
            let _ = writeln!(o, "    {l}");
        }
    }
}

/// Section 6: the diagnosis of the files the run wrote: the top finding with its evidence, why
/// and the fix, the other findings, and a warning when the scenario expects another one.
fn diagnosis_section(o: &mut String, s: &Scenario, r: &Replay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("6. Diagnosis and fix"));
    let _ = writeln!(
        o,
        "  `hybridlab diagnose` on the files this run wrote (the server's logs and listings; Exchange\n  Online's side: Get-InboundConnector, the NDRs, the mock's session records):"
    );
    match r.diagnosis.top() {
        Some(f) => top_finding(o, r, f, st),
        None => {
            let _ = writeln!(
                o,
                "  no findings: nothing points at a hybrid mail-flow failure"
            );
        }
    }
    if let Some(id) = &s.expect.top_finding
        && r.diagnosis.top_id() != Some(id.as_str())
    {
        let _ = writeln!(o, "  {} the scenario expects {}", st.red("!"), st.bold(id));
    }
}

/// The top finding `f` of the run's diagnosis: id and title, up to four evidence lines, why, the
/// fix, then the ids of the other findings.
fn top_finding(o: &mut String, r: &Replay, f: &hybridlab_diagnose::Finding, st: &Style) {
    let _ = writeln!(
        o,
        "  {} {}: {}",
        st.red(f.severity.as_str()),
        st.bold(f.id.as_str()),
        f.title
    );
    for ev in f.evidence.iter().take(4) {
        let _ = writeln!(
            o,
            "    {}  {}",
            st.dim(&format!("{}:{}", ev.file, ev.line)),
            ev.text
        );
    }
    let _ = writeln!(o, "  Why:");
    for l in wrap_words(&f.explanation, 96) {
        let _ = writeln!(o, "    {l}");
    }
    let _ = writeln!(o, "  Fix:");
    for l in &f.fix {
        let _ = writeln!(o, "    {}", st.bold(l));
    }
    let more: Vec<String> = r
        .diagnosis
        .findings
        .iter()
        .skip(1)
        .map(|f| format!("{} ({})", f.id.as_str(), f.severity.as_str()))
        .collect();
    if !more.is_empty() {
        let _ = writeln!(o, "  also: {}", more.join(", "));
    }
}

/// Section 7 (only when checks are given): every expectation with its mark, what was expected,
/// what came out when it did not pass, and the evidence.
pub(crate) fn expectations_section(o: &mut String, checks: &[Check], st: &Style) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{}", st.bold("7. Expectations"));
    for c in checks {
        let mark = match c.status {
            CheckStatus::Pass => st.green("ok     "),
            CheckStatus::Fail => st.red("FAILED "),
            CheckStatus::Pending => st.yellow("pending"),
        };
        let _ = writeln!(o, "  {mark} {}: expected {}", c.key, c.expected);
        if c.status != CheckStatus::Pass {
            let _ = writeln!(o, "          got {}", c.actual);
        }
        if let Some(e) = &c.evidence {
            let _ = writeln!(o, "          {}", st.dim(e));
        }
    }
}
