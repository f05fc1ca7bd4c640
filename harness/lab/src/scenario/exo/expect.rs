//! The `[expect]` checks of an `exo-to-onprem` replay: delivered on-premises, Exchange Online's
//! trace (status, LED text), RECV-log lines present or absent, Windows events, perimeter
//! refusals, the `TlsDomainCapabilities` verdict, cross-premises headers, and the closed loop
//! (a `top_finding` the catalogue does not know yet is "diagnosis pending", not a failure).

use hybridlab_receive::session::CrossPremises;

use super::runner::ExoReplay;
use crate::scenario::expect::{Check, CheckStatus, error_findings, findings_summary, top_evidence};
use crate::scenario::model::{Expectations, Scenario};

/// One RECV-log line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvLine {
    /// `EXCH01/RECV20260502-1.LOG`.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// `event,data,context`.
    pub text: String,
}

/// Every RECV-log record of the run's files (headers left out).
pub fn recv_lines(r: &ExoReplay) -> Vec<RecvLine> {
    let mut out = Vec::new();
    for f in r.files.iter().filter(|f| f.name.contains("/RECV")) {
        for (i, line) in f.content.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let fields = hybridlab_artefacts::csv::split_record(line);
            if fields.len() < 9 {
                continue;
            }
            out.push(RecvLine {
                file: f.name.clone(),
                line: i + 1,
                text: format!("{},{},{}", fields[6], fields[7], fields[8]),
            });
        }
    }
    out
}

fn at(l: &RecvLine) -> String {
    format!("{}:{}: {}", l.file, l.line, l.text)
}

/// Checks every expectation of `s` against `r`.
pub fn check(s: &Scenario, r: &ExoReplay) -> Vec<Check> {
    let e = &s.expect;
    let lines = recv_lines(r);
    let mut out = Vec::new();
    if let Some(n) = e.delivered {
        let got = r.delivered();
        out.push(Check::new(
            "delivered",
            got == n as usize,
            n.to_string(),
            format!("{got} of {} sent by Exchange Online", r.records.len()),
        ));
    }
    if let Some(n) = e.rejected {
        let got = r
            .records
            .iter()
            .filter(|d| d.trace.status == hybridlab_model::trace::TraceStatus::Failed)
            .count();
        out.push(Check::new(
            "rejected",
            got == n as usize,
            n.to_string(),
            got.to_string(),
        ));
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
    trace_checks(e, r, &mut out);
    for want in e.recv_log.items() {
        let hit = lines.iter().find(|l| l.text.contains(want.as_str()));
        out.push(
            Check::new(
                "recv_log",
                hit.is_some(),
                format!("a RECV-log line containing {want:?}"),
                match hit {
                    Some(l) => l.text.clone(),
                    None => format!("no such line in {} RECV-log lines", lines.len()),
                },
            )
            .with_evidence(hit.map(at)),
        );
    }
    for want in e.recv_log_absent.items() {
        let hit = lines.iter().find(|l| l.text.contains(want.as_str()));
        out.push(
            Check::new(
                "recv_log_absent",
                hit.is_none(),
                format!("no RECV-log line containing {want:?}"),
                hit.map(|l| l.text.clone())
                    .unwrap_or_else(|| "absent".into()),
            )
            .with_evidence(hit.map(at)),
        );
    }
    if !e.events.is_empty() {
        let mut got: Vec<u32> = r.site.events.iter().map(|(_, ev)| ev.id).collect();
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
    if let Some(n) = e.refused_connections {
        let got = r.site.refused.len();
        out.push(Check::new(
            "refused_connections",
            got == n as usize,
            n.to_string(),
            format!(
                "{got}: {}",
                r.site
                    .refused
                    .iter()
                    .map(|x| x.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if let Some(want) = &e.tls_domain_capabilities {
        let verdicts: Vec<&RecvLine> = lines
            .iter()
            .filter(|l| l.text.contains("TlsDomainCapabilities='"))
            .collect();
        let needle = format!("'{want}'");
        let ok = !verdicts.is_empty() && verdicts.iter().all(|l| l.text.contains(&needle));
        out.push(
            Check::new(
                "tls_domain_capabilities",
                ok,
                want.clone(),
                if verdicts.is_empty() {
                    "no session reached the TlsDomainCapabilities verdict".into()
                } else {
                    verdicts[0].text.clone()
                },
            )
            .with_evidence(verdicts.first().map(|l| at(l))),
        );
    }
    if let Some(want) = e.cross_premises_honoured {
        let got: Vec<bool> = r
            .site
            .messages
            .iter()
            .map(|m| m.cross_premises == CrossPremises::Honoured)
            .collect();
        let ok = !got.is_empty() && got.iter().all(|b| *b == want);
        out.push(Check::new(
            "cross_premises_honoured",
            ok,
            want.to_string(),
            if got.is_empty() {
                "no message reached on-premises".into()
            } else {
                format!("{got:?}")
            },
        ));
    }
    diagnosis_checks(e, r, &mut out);
    out
}

fn trace_checks(e: &Expectations, r: &ExoReplay, out: &mut Vec<Check>) {
    if let Some(want) = &e.trace_status {
        let got: Vec<&str> = r.records.iter().map(|d| d.trace.status.as_str()).collect();
        let ok = !got.is_empty() && got.iter().all(|s| s.eq_ignore_ascii_case(want));
        out.push(Check::new("trace_status", ok, want.clone(), got.join(", ")));
    }
    for want in e.trace_detail.items() {
        let hit = r.records.iter().find_map(|d| {
            d.trace
                .events
                .iter()
                .find(|ev| ev.detail.contains(want.as_str()))
                .map(|ev| ev.detail.clone())
        });
        let last = r
            .records
            .iter()
            .find_map(|d| d.trace.last_reason())
            .map(|x| x.to_string())
            .unwrap_or_else(|| "no Defer or Fail event".into());
        out.push(
            Check::new(
                "trace_detail",
                hit.is_some(),
                format!("a Get-MessageTraceDetail event containing {want:?}"),
                hit.clone().unwrap_or(last),
            )
            .with_evidence(hit.map(|_| "exo/Get-MessageTraceDetail.txt".to_string())),
        );
    }
}

/// Whether the diagnosis knows `id` yet.
fn known(id: &str) -> bool {
    id.parse::<hybridlab_diagnose::FindingId>().is_ok()
}

fn pending(key: &str, expected: String, id: &str, d: &hybridlab_diagnose::Report) -> Check {
    Check {
        key: key.into(),
        status: CheckStatus::Pending,
        expected,
        actual: format!(
            "diagnosis pending: {id} is not in hybridlab_diagnose's catalogue yet (found: {})",
            findings_summary(d)
        ),
        evidence: None,
    }
}

fn diagnosis_checks(e: &Expectations, r: &ExoReplay, out: &mut Vec<Check>) {
    let d = &r.diagnosis;
    if let Some(id) = &e.top_finding {
        if known(id) {
            out.push(
                Check::new(
                    "top_finding",
                    d.top_id() == Some(id.as_str()),
                    id.clone(),
                    findings_summary(d),
                )
                .with_evidence(top_evidence(d)),
            );
        } else {
            out.push(pending("top_finding", id.clone(), id, d));
        }
    }
    if e.no_other_error_finding
        && let Some(id) = &e.top_finding
    {
        let others: Vec<&str> = error_findings(d).into_iter().filter(|f| f != id).collect();
        if known(id) {
            out.push(Check::new(
                "no_other_error_finding",
                others.is_empty(),
                format!("no error finding besides {id}"),
                findings_summary(d),
            ));
        } else {
            out.push(pending(
                "no_other_error_finding",
                format!("no error finding besides {id}"),
                id,
                d,
            ));
        }
    }
    if e.no_error_finding {
        let errors = error_findings(d);
        out.push(Check::new(
            "no_error_finding",
            errors.is_empty(),
            "no finding of severity error".to_string(),
            findings_summary(d),
        ));
    }
}
