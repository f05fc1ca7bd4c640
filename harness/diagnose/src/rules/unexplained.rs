//! Never silent: `unexplained-failure` when the artefacts show failing mail (a queue or message
//! with a LastError, a failed NDR recipient, an Exchange Online verdict on a delivery to
//! on-premises) that no other finding explains. It quotes the failure and names exactly what to
//! collect next, chosen from what the failure text says and what the collection lacks.

use super::receive::exo_verdicts;
use super::{Draft, MAX_OCCURRENCES};
use crate::model::{Ev, Model};
use crate::{FindingId, Severity};

/// Whether some other finding already quotes this line or is about this connector.
fn explained(e: &Ev, connector: Option<usize>, drafts: &[Draft]) -> bool {
    drafts.iter().any(|d| {
        d.id != FindingId::UnexplainedFailure
            && (d
                .evidence
                .all()
                .any(|x| x.file == e.file && x.line == e.line)
                || (connector.is_some()
                    && d.connector == connector
                    && d.severity() == Severity::Error))
    })
}

/// The failing-mail lines no finding explains, with the failure text.
fn unexplained(m: &Model<'_>, drafts: &[Draft]) -> Vec<(Ev, String)> {
    let mut out: Vec<(Ev, String)> = Vec::new();
    for q in &m.queues {
        if let Some(e) = &q.ev
            && !explained(e, q.connector, drafts)
        {
            out.push((e.clone(), q.led().to_string()));
        }
    }
    for n in &m.ndrs {
        let failed =
            n.rcpt.action.as_deref().is_none_or(|a| {
                a.eq_ignore_ascii_case("failed") || a.eq_ignore_ascii_case("delayed")
            });
        if failed && (n.reply.code >= 400) && !explained(&n.ev, n.connector, drafts) {
            out.push((
                n.ev.clone(),
                n.rcpt
                    .diagnostic
                    .clone()
                    .unwrap_or_else(|| n.reply.one_line()),
            ));
        }
    }
    let verdicts = exo_verdicts(m);
    for v in &verdicts {
        if !explained(&v.ev, None, drafts) && !out.iter().any(|(e, _)| *e == v.ev) {
            out.push((v.ev.clone(), v.led.to_string()));
        }
    }
    // The message trace: Defer/Fail events without a LED any rule read, and Pending/Failed
    // messages with no detail at all. Any receive-side error explains the trace.
    let receive_error = drafts.iter().any(|d| {
        d.severity() == Severity::Error && d.key.starts_with("recv:") && !d.evidence.is_empty()
    });
    if !receive_error {
        for t in &m.a.trace_details {
            use hybridlab_model::trace::TraceEventKind as K;
            if !matches!(t.row.event, K::Defer | K::Fail) {
                continue;
            }
            let ev = crate::model::prop_ev(&t.evidence, "Detail")
                .or_else(|| crate::model::row_ev(&t.evidence));
            if let Some(mut e) = ev
                && !verdicts
                    .iter()
                    .any(|v| v.ev.file == e.file && v.ev.line == e.line)
            {
                e.at = t.row.date.or(e.at);
                out.push((e, format!("{}: {}", t.row.event, t.row.detail)));
            }
        }
        if m.a.trace_details.is_empty() {
            for t in &m.a.traces {
                use hybridlab_model::trace::TraceStatus as S;
                if !matches!(t.row.status, S::Pending | S::Failed) {
                    continue;
                }
                let ev = crate::model::prop_ev(&t.evidence, "Status")
                    .or_else(|| crate::model::row_ev(&t.evidence));
                if let Some(mut e) = ev {
                    e.at = t.row.received.or(e.at);
                    out.push((
                        e,
                        format!("{} to {}", t.row.status, t.row.recipient_address),
                    ));
                }
            }
        }
    }
    out.sort_by_key(|(e, _)| std::cmp::Reverse(e.at));
    out
}

/// What to collect next for a failure text, given what the collection holds.
fn collect_next(m: &Model<'_>, text: &str) -> Vec<String> {
    let l = text.to_ascii_lowercase();
    let conn = m
        .connectors
        .iter()
        .find(|c| c.hybrid)
        .map_or_else(|| "<CONNECTOR>".to_string(), |c| c.name.clone());
    let mut out = Vec::new();
    let inbound = l.contains("lastattempted")
        || l.contains("[message=")
        || l.starts_with("pending to")
        || l.starts_with("failed to")
        || l.starts_with("defer:")
        || l.starts_with("fail:");
    if inbound {
        out.push(
            "# Exchange Online -> on-premises: what EXO saw and what the receiving server logged"
                .into(),
        );
        if m.a.trace_details.is_empty() {
            out.push("Get-MessageTrace -RecipientAddress <RECIPIENT> -StartDate (Get-Date).AddDays(-2) -EndDate (Get-Date) | Get-MessageTraceDetail | Format-List".into());
        }
        out.push("Get-ReceiveConnector | Format-List Identity,Bindings,Fqdn,TlsCertificateName,TlsDomainCapabilities,AuthMechanism,RequireTLS".into());
        out.push("Get-ChildItem Cert:\\LocalMachine\\My | Format-List *".into());
        out.push("# and the RECV*.LOG files of each server (TransportRoles\\Logs\\FrontEnd\\ProtocolLog\\SmtpReceive, ProtocolLoggingLevel Verbose)".into());
        return out;
    }
    let wrapped_tls = l.contains("4.4.395")
        || l.contains("421 4.4.1")
        || l.contains("4.4.397")
        || l.contains("connection dropped");
    if m.sessions.is_empty() || wrapped_tls {
        out.push("# the send protocol log: it says why the session failed (a queue LastError like \"421 4.4.1 Connection timed out\" wraps any SChannel failure)".into());
        out.push(format!(
            "Set-SendConnector \"{conn}\" -ProtocolLoggingLevel Verbose"
        ));
        let queue =
            m.a.queues
                .iter()
                .find(|q| q.row.last_error.is_some())
                .map_or("<QUEUE>", |q| q.row.identity.as_str());
        out.push(format!("Retry-Queue -Identity {queue}"));
        out.push("# then the SEND*.LOG files of the retry from TransportRoles\\Logs\\Hub\\ProtocolLog\\SmtpSend (FrontEnd\\ProtocolLog\\SmtpSend when the connector proxies)".into());
    }
    if !m.store.provider_listed {
        out.push("Get-ChildItem Cert:\\LocalMachine\\My | Format-List *".into());
    }
    if !m.store.ems_listed {
        out.push("Get-ExchangeCertificate | Format-List *".into());
    }
    if m.a.send_connectors.is_empty() {
        out.push("Get-SendConnector | Format-List *".into());
    }
    if l.contains("unable to connect") || l.contains("10060") || l.contains("10061") {
        out.push("Test-NetConnection <NEXT_HOP> -Port 25".into());
        out.push(
            "# and the connectivity log (TransportRoles\\Logs\\Hub\\Connectivity\\CONNECTLOG*.LOG)"
                .into(),
        );
    }
    if l.contains("queue.expired") || l.contains("4.4.7") {
        out.push("Get-Queue | Format-List Identity,Status,NextHopDomain,LastError".into());
        out.push("# and the whole NDR as an .eml: its human-readable part names the last error before expiry".into());
    }
    if out.is_empty() {
        out.push("Get-Queue | Format-List Identity,Status,NextHopDomain,LastError".into());
        out.push(format!(
            "Set-SendConnector \"{conn}\" -ProtocolLoggingLevel Verbose"
        ));
        out.push("# and the SEND*.LOG / RECV*.LOG files covering the failure".into());
    }
    out
}

/// `unexplained-failure`, when failing mail is left that no other finding explains.
pub(crate) fn rules(m: &Model<'_>, drafts: &[Draft]) -> Option<Draft> {
    let left = unexplained(m, drafts);
    let (e0, text0) = left.first()?.clone();
    let mut d = Draft::new(FindingId::UnexplainedFailure, "unexplained");
    for (k, (e, _)) in left.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, e.clone());
    }
    let what = if e0.text.contains("LastError") {
        "a queue or message that keeps failing"
    } else {
        "mail that failed"
    };
    let partial = if m.sessions.is_empty() && recv_absent(m) {
        " The collection has no protocol log, so no session can be checked."
    } else {
        ""
    };
    let next = collect_next(m, &text0);
    d.explanation = format!(
        "These artefacts show {what} (\"{text0}\", {e0file}:{e0line}) but nothing in them says why: no rule \
         can name the cause from what was collected.{partial} The failure text alone is a symptom (the \
         transport wraps certificate, TLS and network failures in the same canned replies), so guessing \
         a fix would be unsafe. Collect what the fix below lists and run the diagnosis again.",
        e0file = e0.file,
        e0line = e0.line,
    );
    d.fix = next;
    Some(d)
}

fn recv_absent(m: &Model<'_>) -> bool {
    !m.a.protocol
        .sessions
        .iter()
        .any(|s| s.kind == Some(hybridlab_artefacts::protocol_log::LogKind::Receive))
}
