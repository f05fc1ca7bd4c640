//! Checking a replay against the scenario's `[expect]`: one [`Check`] per expectation, each with
//! what was expected, what came out, and the artefact line it came from where there is one. The
//! diagnosis part runs `hybridlab diagnose`'s engine on the artefacts the lab wrote (the closed
//! loop): the top finding must be the expected one.

use serde::Serialize;

use super::artefacts::{LogLine, send_log_lines};
use super::model::{Expectations, Scenario};
use super::runner::Replay;
use hybridlab_artefacts::protocol_log::{CertRole, SessionEvent};
use hybridlab_onprem::transport::TransportRecord;

/// How one expectation fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The replay gave what the expectation states.
    Pass,
    /// The replay gave something else: the scenario is not reproduced.
    Fail,
    /// Cannot be judged (kept for expectations a build cannot check; never counted as passed).
    Pending,
}

/// One expectation checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The `[expect]` key (`last_error`, `log`...).
    pub key: String,
    /// Whether the expectation was met.
    pub status: CheckStatus,
    /// The expectation in words (`LastError containing "4.4.1"`).
    pub expected: String,
    /// What the replay gave for the same key, in words (the LastError, the matching line...).
    pub actual: String,
    /// Where in the artefacts (`send-protocol-log.txt:17: *,,TLS negotiation failed ...`).
    pub evidence: Option<String>,
}

impl Check {
    pub(crate) fn new(
        key: &str,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
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

    pub(crate) fn with_evidence(mut self, e: Option<String>) -> Self {
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

/// What every checker reads: the expectations, the replay, and the send protocol log's lines.
struct Ctx<'a> {
    /// The scenario's `[expect]`.
    e: &'a Expectations,
    /// What the replay produced.
    r: &'a Replay,
    /// Every line of the send protocol log the run wrote, with its file and line number.
    lines: Vec<LogLine>,
}

/// A checker: the checks of one `[expect]` key (none when the key is not set, one per item for
/// the keys that take a list).
type Checker = fn(&Ctx<'_>, &'static str) -> Vec<Check>;

/// Every `[expect]` key and its checker, in the order the checks are reported.
const CHECKERS: &[(&str, Checker)] = &[
    ("delivered", delivered),
    ("rejected", rejected),
    ("ndr", ndr),
    ("delay_dsn", delay_dsn),
    ("queue_status", queue_status),
    ("last_error", last_error),
    ("attempts", attempts),
    ("log", log),
    ("log_absent", log_absent),
    ("thumbprint_logged", thumbprint_logged),
    ("events", events),
    ("attribution", attribution),
    ("connector", connector),
    ("cross_premises_honoured", cross_premises_honoured),
    ("top_finding", top_finding),
    ("no_other_error_finding", no_other_error_finding),
    ("no_error_finding", no_error_finding),
];

/// Checks every expectation of `s` against `r`.
pub fn check(s: &Scenario, r: &Replay) -> Vec<Check> {
    let ctx = Ctx {
        e: &s.expect,
        r,
        lines: send_log_lines(r),
    };
    CHECKERS
        .iter()
        .flat_map(|(key, checker)| checker(&ctx, key))
        .collect()
}

fn delivered(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(n) = c.e.delivered else {
        return Vec::new();
    };
    let got = c.r.delivered();
    vec![Check::new(
        key,
        got == n as usize,
        n.to_string(),
        format!("{got} of {} submitted", c.r.submitted),
    )]
}

fn rejected(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(n) = c.e.rejected else {
        return Vec::new();
    };
    let ndrs = c.r.ndrs();
    let reasons: Vec<String> = ndrs.iter().map(|x| x.one_line()).collect();
    vec![Check::new(
        key,
        ndrs.len() == n as usize,
        n.to_string(),
        if reasons.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", ndrs.len(), reasons.join("; "))
        },
    )]
}

fn ndr(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let ndrs = c.r.ndrs();
    c.e.ndr
        .items()
        .iter()
        .map(|want| {
            let hit = ndrs.iter().find(|x| x.one_line().contains(want.as_str()));
            Check::new(
                key,
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
            )
        })
        .collect()
}

fn delay_dsn(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(want) = c.e.delay_dsn else {
        return Vec::new();
    };
    let got =
        c.r.timeline
            .iter()
            .any(|t| matches!(t.record, TransportRecord::DelayDsn { .. }));
    vec![Check::new(
        key,
        got == want,
        want.to_string(),
        got.to_string(),
    )]
}

fn queue_status(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(want) = c.e.queue_status else {
        return Vec::new();
    };
    let q = &c.r.queue;
    vec![Check::new(
        key,
        q.status == want,
        want.to_string(),
        format!(
            "{} (MessageCount {}, RetryCount {})",
            q.status, q.message_count, q.retry_count
        ),
    )]
}

fn last_error(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let le = c.r.last_error();
    c.e.last_error
        .items()
        .iter()
        .map(|want| {
            Check::new(
                key,
                le.is_some_and(|l| l.to_string().contains(want.as_str())),
                format!("LastError containing {want:?}"),
                match le {
                    Some(l) => l.to_string(),
                    None => "no LastError during the run".into(),
                },
            )
            .with_evidence(Some("queue.json: LastError".into()))
        })
        .collect()
}

fn attempts(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(n) = c.e.attempts else {
        return Vec::new();
    };
    let got = c.r.attempts();
    vec![Check::new(
        key,
        got == n as usize,
        n.to_string(),
        got.to_string(),
    )]
}

fn log(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let lines = &c.lines;
    c.e.log
        .items()
        .iter()
        .map(|want| {
            let hit = lines.iter().find(|l| l.text.contains(want.as_str()));
            let actual = match hit {
                Some(l) => l.text.clone(),
                None => missing_line(lines),
            };
            Check::new(
                key,
                hit.is_some(),
                format!("a line containing {want:?}"),
                actual,
            )
            .with_evidence(hit.map(at))
        })
        .collect()
}

/// What came out instead of an expected send-log line: how many lines there were and the last
/// three.
fn missing_line(lines: &[LogLine]) -> String {
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

fn log_absent(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let lines = &c.lines;
    c.e.log_absent
        .items()
        .iter()
        .map(|bad| {
            let hit = lines.iter().find(|l| l.text.contains(bad.as_str()));
            Check::new(
                key,
                hit.is_none(),
                format!("no line containing {bad:?}"),
                match hit {
                    Some(l) => l.text.clone(),
                    None => format!("absent from all {} lines", lines.len()),
                },
            )
            .with_evidence(hit.map(at))
        })
        .collect()
}

fn thumbprint_logged(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let r = c.r;
    if c.e.thumbprint_logged.items().is_empty() {
        return Vec::new();
    }
    let thumb_of = |name: &String| {
        r.certificates
            .iter()
            .find(|c| &c.name == name)
            .map(|c| c.facts.thumbprint.clone())
            .unwrap_or_default()
    };
    let wants: Vec<String> = c.e.thumbprint_logged.items().iter().map(thumb_of).collect();
    let want = wants.last().cloned().unwrap_or_default();
    let logged = sending_thumbprints(r);
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
    let hit = c
        .lines
        .iter()
        .find(|l| l.text.contains("Certificate thumbprint") && l.text.contains(&want));
    vec![
        Check::new(
            key,
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
    ]
}

/// The thumbprint of every Sending certificate block of the send log, session by session.
fn sending_thumbprints(r: &Replay) -> Vec<String> {
    r.sessions
        .iter()
        .flat_map(|s| s.log.events.iter())
        .filter_map(|ev| match &ev.event {
            SessionEvent::Certificate {
                role: CertRole::Sending,
                cert,
            } => Some(cert.thumbprint.clone()),
            _ => None,
        })
        .collect()
}

fn events(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    if c.e.events.is_empty() {
        return Vec::new();
    }
    let mut got: Vec<u32> =
        c.r.sessions
            .iter()
            .filter_map(|s| s.selection.as_ref())
            .flat_map(|sel| sel.events.iter().map(|ev| ev.id))
            .collect();
    got.sort_unstable();
    got.dedup();
    let ok = c.e.events.iter().all(|id| got.contains(id));
    vec![Check::new(
        key,
        ok,
        format!("{:?}", c.e.events),
        format!("{got:?}"),
    )]
}

fn attribution(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(want) = c.e.attribution else {
        return Vec::new();
    };
    let v = c.r.last_verdict();
    vec![Check::new(
        key,
        v.is_some_and(|v| v.kind() == want),
        want.to_string(),
        match v {
            Some(v) => serde_json::to_string(v).unwrap_or_else(|_| v.kind().to_string()),
            None => "no session reached attribution".into(),
        },
    )]
}

fn connector(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(want) = &c.e.connector else {
        return Vec::new();
    };
    let got = c.r.last_verdict().and_then(|v| v.connector());
    vec![Check::new(
        key,
        got == Some(want.as_str()),
        want.clone(),
        got.unwrap_or("(none)").to_string(),
    )]
}

fn cross_premises_honoured(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(want) = c.e.cross_premises_honoured else {
        return Vec::new();
    };
    let msgs: Vec<bool> =
        c.r.mock_sessions
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.cross_premises_honoured))
            .collect();
    let ok = !msgs.is_empty() && msgs.iter().all(|b| *b == want);
    vec![Check::new(
        key,
        ok,
        want.to_string(),
        if msgs.is_empty() {
            "no message reached EOP".into()
        } else {
            format!("{msgs:?}")
        },
    )]
}

/// The ids of the diagnosis' findings of severity error, ranked.
pub(crate) fn error_findings(d: &hybridlab_diagnose::Report) -> Vec<&str> {
    d.findings
        .iter()
        .filter(|f| f.severity == hybridlab_diagnose::Severity::Error)
        .map(|f| f.id.as_str())
        .collect()
}

/// The first evidence line of the diagnosis' top finding (`file:line: text`).
pub(crate) fn top_evidence(d: &hybridlab_diagnose::Report) -> Option<String> {
    d.top()
        .and_then(|f| f.evidence.first())
        .map(|ev| format!("{}:{}: {}", ev.file, ev.line, ev.text))
}

fn top_finding(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    let Some(id) = &c.e.top_finding else {
        return Vec::new();
    };
    let d = &c.r.diagnosis;
    let got = d.top_id();
    vec![
        Check::new(
            key,
            got == Some(id.as_str()),
            id.clone(),
            findings_summary(d),
        )
        .with_evidence(top_evidence(d)),
    ]
}

fn no_other_error_finding(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    if !c.e.no_other_error_finding {
        return Vec::new();
    }
    let others: Vec<&str> = error_findings(&c.r.diagnosis)
        .into_iter()
        .filter(|f| Some(*f) != c.e.top_finding.as_deref())
        .collect();
    vec![Check::new(
        key,
        others.is_empty(),
        "no other finding of severity error",
        if others.is_empty() {
            "none".to_string()
        } else {
            others.join(", ")
        },
    )]
}

fn no_error_finding(c: &Ctx<'_>, key: &'static str) -> Vec<Check> {
    if !c.e.no_error_finding {
        return Vec::new();
    }
    let d = &c.r.diagnosis;
    vec![
        Check::new(
            key,
            error_findings(d).is_empty(),
            "no finding of severity error",
            findings_summary(d),
        )
        .with_evidence(top_evidence(d)),
    ]
}
