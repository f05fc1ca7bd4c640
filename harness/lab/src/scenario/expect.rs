//! Checking a replay against the scenario's `[expect]`: one [`Check`] per expectation, each with
//! what was expected, what came out, and the artefact line it came from where there is one. The
//! diagnosis part runs `hybridlab diagnose`'s engine on the artefacts the lab wrote (the closed
//! loop): the top finding must be the expected one.

use serde::Serialize;

use super::artefacts::{LogLine, send_log_lines};
use super::model::Scenario;
use super::runner::Replay;
use hybridlab_artefacts::protocol_log::{CertRole, SessionEvent};
use hybridlab_onprem::transport::TransportRecord;

/// How one expectation fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Met.
    Pass,
    /// Not met.
    Fail,
    /// Cannot be judged (kept for expectations a build cannot check; never counted as passed).
    Pending,
}

/// One expectation checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The `[expect]` key (`last_error`, `log`...).
    pub key: String,
    /// The outcome.
    pub status: CheckStatus,
    /// What the scenario expects.
    pub expected: String,
    /// What the replay produced.
    pub actual: String,
    /// Where in the artefacts (`send-protocol-log.txt:17: *,,TLS negotiation failed ...`).
    pub evidence: Option<String>,
}

impl Check {
    fn new(key: &str, ok: bool, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            status: if ok {
                CheckStatus::Pass
            } else {
                CheckStatus::Fail
            },
            expected: expected.into(),
            actual: actual.into(),
            evidence: None,
        }
    }

    fn with_evidence(mut self, e: Option<String>) -> Self {
        self.evidence = e;
        self
    }
}

/// The diagnosis in one line: every finding id with its severity, most important first.
pub fn findings_summary(d: &hybridlab_diagnose::Report) -> String {
    if d.findings.is_empty() {
        return "no findings".into();
    }
    d.findings
        .iter()
        .map(|f| format!("{} ({})", f.id.as_str(), f.severity.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn at(l: &LogLine) -> String {
    format!("{}:{}: {}", l.file, l.line, l.text)
}

/// Checks every expectation of `s` against `r`.
pub fn check(s: &Scenario, r: &Replay) -> Vec<Check> {
    let e = &s.expect;
    let mut out = Vec::new();
    let lines = send_log_lines(r);

    if let Some(n) = e.delivered {
        let got = r.delivered();
        out.push(Check::new(
            "delivered",
            got == n as usize,
            n.to_string(),
            format!("{got} of {} submitted", r.submitted),
        ));
    }
    if let Some(n) = e.rejected {
        let ndrs = r.ndrs();
        let reasons: Vec<String> = ndrs.iter().map(|x| x.one_line()).collect();
        out.push(Check::new(
            "rejected",
            ndrs.len() == n as usize,
            n.to_string(),
            if reasons.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", ndrs.len(), reasons.join("; "))
            },
        ));
    }
    for want in e.ndr.items() {
        let ndrs = r.ndrs();
        let hit = ndrs.iter().find(|x| x.one_line().contains(want.as_str()));
        out.push(Check::new(
            "ndr",
            hit.is_some(),
            format!("an NDR containing {want:?}"),
            match hit {
                Some(x) => x.one_line(),
                None if ndrs.is_empty() => "no NDR".into(),
                None => ndrs
                    .iter()
                    .map(|x| x.one_line())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        ));
    }
    if let Some(want) = e.delay_dsn {
        let got = r
            .timeline
            .iter()
            .any(|t| matches!(t.record, TransportRecord::DelayDsn { .. }));
        out.push(Check::new(
            "delay_dsn",
            got == want,
            want.to_string(),
            got.to_string(),
        ));
    }
    if let Some(want) = e.queue_status {
        out.push(Check::new(
            "queue_status",
            r.queue.status == want,
            want.to_string(),
            format!(
                "{} (MessageCount {}, RetryCount {})",
                r.queue.status, r.queue.message_count, r.queue.retry_count
            ),
        ));
    }
    for want in e.last_error.items() {
        let le = r.last_error();
        out.push(
            Check::new(
                "last_error",
                le.is_some_and(|l| l.to_string().contains(want.as_str())),
                format!("LastError containing {want:?}"),
                match le {
                    Some(l) => l.to_string(),
                    None => "no LastError during the run".into(),
                },
            )
            .with_evidence(Some("queue.json: LastError".into())),
        );
    }
    if let Some(n) = e.attempts {
        let got = r.attempts();
        out.push(Check::new(
            "attempts",
            got == n as usize,
            n.to_string(),
            got.to_string(),
        ));
    }
    for want in e.log.items() {
        let hit = lines.iter().find(|l| l.text.contains(want.as_str()));
        let actual = match hit {
            Some(l) => l.text.clone(),
            None => {
                let tail: Vec<String> = lines
                    .iter()
                    .rev()
                    .take(3)
                    .rev()
                    .map(|l| format!("{}:{}: {}", l.file, l.line, l.text))
                    .collect();
                if tail.is_empty() {
                    "the send log is empty".into()
                } else {
                    format!(
                        "no such line in {} lines; the log ends with: {}",
                        lines.len(),
                        tail.join(" | ")
                    )
                }
            }
        };
        out.push(
            Check::new(
                "log",
                hit.is_some(),
                format!("a line containing {want:?}"),
                actual,
            )
            .with_evidence(hit.map(at)),
        );
    }
    for bad in e.log_absent.items() {
        let hit = lines.iter().find(|l| l.text.contains(bad.as_str()));
        out.push(
            Check::new(
                "log_absent",
                hit.is_none(),
                format!("no line containing {bad:?}"),
                match hit {
                    Some(l) => l.text.clone(),
                    None => format!("absent from all {} lines", lines.len()),
                },
            )
            .with_evidence(hit.map(at)),
        );
    }
    if !e.thumbprint_logged.items().is_empty() {
        let thumb_of = |name: &String| {
            r.certificates
                .iter()
                .find(|c| &c.name == name)
                .map(|c| c.facts.thumbprint.clone())
                .unwrap_or_default()
        };
        let wants: Vec<String> = e.thumbprint_logged.items().iter().map(thumb_of).collect();
        let want = wants.last().cloned().unwrap_or_default();
        let logged: Vec<String> = r
            .sessions
            .iter()
            .flat_map(|s| s.log.events.iter())
            .filter_map(|ev| match &ev.event {
                SessionEvent::Certificate {
                    role: CertRole::Sending,
                    cert,
                } => Some(cert.thumbprint.clone()),
                _ => None,
            })
            .collect();
        let mut distinct = logged.clone();
        distinct.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let ok = if wants.len() == 1 {
            !logged.is_empty() && logged.iter().all(|t| t.eq_ignore_ascii_case(&want))
        } else {
            distinct.len() == wants.len()
                && distinct
                    .iter()
                    .zip(&wants)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        let describe = |t: &str| match r.cert_name(t) {
            Some(n) => format!("{n} ({t})"),
            None => t.to_string(),
        };
        let hit = lines
            .iter()
            .find(|l| l.text.contains("Certificate thumbprint") && l.text.contains(&want));
        out.push(
            Check::new(
                "thumbprint_logged",
                ok,
                if wants.len() == 1 {
                    format!("the sending certificate {}", describe(&want))
                } else {
                    format!(
                        "the sending certificates, in this order: {}",
                        wants
                            .iter()
                            .map(|t| describe(t))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                if distinct.is_empty() {
                    "no Sending certificate block in the send log".into()
                } else {
                    distinct
                        .iter()
                        .map(|t| describe(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            )
            .with_evidence(hit.map(at)),
        );
    }
    if !e.events.is_empty() {
        let mut got: Vec<u32> = r
            .sessions
            .iter()
            .filter_map(|s| s.selection.as_ref())
            .flat_map(|sel| sel.events.iter().map(|ev| ev.id))
            .collect();
        got.sort_unstable();
        got.dedup();
        let ok = e.events.iter().all(|id| got.contains(id));
        out.push(Check::new(
            "events",
            ok,
            format!("{:?}", e.events),
            format!("{got:?}"),
        ));
    }
    if let Some(want) = e.attribution {
        let v = r.last_verdict();
        out.push(Check::new(
            "attribution",
            v.is_some_and(|v| v.kind() == want),
            want.to_string(),
            match v {
                Some(v) => serde_json::to_string(v).unwrap_or_else(|_| v.kind().to_string()),
                None => "no session reached attribution".into(),
            },
        ));
    }
    if let Some(want) = &e.connector {
        let got = r.last_verdict().and_then(|v| v.connector());
        out.push(Check::new(
            "connector",
            got == Some(want.as_str()),
            want.clone(),
            got.unwrap_or("(none)").to_string(),
        ));
    }
    if let Some(want) = e.cross_premises_honoured {
        let msgs: Vec<bool> = r
            .mock_sessions
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.cross_premises_honoured))
            .collect();
        let ok = !msgs.is_empty() && msgs.iter().all(|b| *b == want);
        out.push(Check::new(
            "cross_premises_honoured",
            ok,
            want.to_string(),
            if msgs.is_empty() {
                "no message reached EOP".into()
            } else {
                format!("{msgs:?}")
            },
        ));
    }
    let d = &r.diagnosis;
    let errors: Vec<&str> = d
        .findings
        .iter()
        .filter(|f| f.severity == hybridlab_diagnose::Severity::Error)
        .map(|f| f.id.as_str())
        .collect();
    let top_evidence = d
        .top()
        .and_then(|f| f.evidence.first())
        .map(|ev| format!("{}:{}: {}", ev.file, ev.line, ev.text));
    if let Some(id) = &e.top_finding {
        let got = d.top_id();
        out.push(
            Check::new(
                "top_finding",
                got == Some(id.as_str()),
                id.clone(),
                findings_summary(d),
            )
            .with_evidence(top_evidence.clone()),
        );
    }
    if e.no_other_error_finding {
        let others: Vec<&str> = errors
            .iter()
            .copied()
            .filter(|f| Some(*f) != e.top_finding.as_deref())
            .collect();
        out.push(Check::new(
            "no_other_error_finding",
            others.is_empty(),
            "no other finding of severity error",
            if others.is_empty() {
                "none".to_string()
            } else {
                others.join(", ")
            },
        ));
    }
    if e.no_error_finding {
        out.push(
            Check::new(
                "no_error_finding",
                errors.is_empty(),
                "no finding of severity error",
                findings_summary(d),
            )
            .with_evidence(top_evidence),
        );
    }
    out
}
