//! Rendering a [`Report`]: text for an admin (ranked findings, evidence quoted as `file:line`,
//! explanation, fix) and the JSON of the architecture page.

use std::fmt::Write as _;

use super::{Report, Severity};
use hybridlab_artefacts::ArtefactKind;

/// How many evidence lines the text output quotes per finding (the JSON has them all).
pub const MAX_EVIDENCE_SHOWN: usize = 8;

/// Up to this many inputs are listed one per line; more are summarised by kind.
pub const MAX_INPUTS_LISTED: usize = 12;

/// Text width the explanation is wrapped at.
const WIDTH: usize = 100;

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn severity(&self, sev: Severity) -> String {
        let (code, label) = match sev {
            Severity::Error => ("1;31", "ERROR"),
            Severity::Warning => ("1;33", "WARNING"),
            Severity::Info => ("1;36", "INFO"),
        };
        self.paint(code, label)
    }
}

/// Wraps `text` at word boundaries, every line prefixed with `indent`.
fn wrap(out: &mut String, text: &str, indent: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn kind_label(k: &ArtefactKind) -> String {
    match k {
        ArtefactKind::SendProtocolLog => "send protocol log".to_string(),
        ArtefactKind::ReceiveProtocolLog => "receive protocol log".to_string(),
        ArtefactKind::ConnectivityLog => "connectivity log".to_string(),
        ArtefactKind::Ndr => "non-delivery report".to_string(),
        ArtefactKind::MockRecords => "mock EOP session records".to_string(),
        ArtefactKind::Listing { of, format } => format!("{} ({})", of.cmdlet(), format.label()),
        ArtefactKind::Unknown => "not recognised".to_string(),
    }
}

/// The report as text; `color` adds ANSI colours (the CLI passes it only for a terminal with
/// `NO_COLOR` unset).
pub fn human(r: &Report, color: bool) -> String {
    let st = Style { on: color };
    let mut out = String::new();
    let unknown = r
        .inputs
        .iter()
        .filter(|i| i.kind == ArtefactKind::Unknown)
        .count();
    let _ = writeln!(
        out,
        "Read {} file{}{}; {} line{} skipped{}.",
        r.inputs.len(),
        if r.inputs.len() == 1 { "" } else { "s" },
        if unknown > 0 {
            format!(" ({unknown} not recognised)")
        } else {
            String::new()
        },
        r.skipped_total(),
        if r.skipped_total() == 1 { "" } else { "s" },
        r.as_of
            .map(|t| format!("; reference time {}", super::rules::when(t)))
            .unwrap_or_default(),
    );
    if r.inputs.len() <= MAX_INPUTS_LISTED {
        for i in &r.inputs {
            let _ = writeln!(out, "  {}: {}", i.file, kind_label(&i.kind));
        }
    } else {
        // Many files (a log folder): one line per kind, the unrecognised ones by name.
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for i in r.inputs.iter().filter(|i| i.kind != ArtefactKind::Unknown) {
            let k = kind_label(&i.kind);
            match kinds.iter_mut().find(|(x, _)| *x == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
        for (k, n) in kinds {
            let _ = writeln!(out, "  {n} x {k}");
        }
        for i in r.inputs.iter().filter(|i| i.kind == ArtefactKind::Unknown) {
            let _ = writeln!(out, "  {}: {}", i.file, kind_label(&i.kind));
        }
    }
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let infos = r.findings.len() - errors - warnings;
    out.push('\n');
    if r.findings.is_empty() {
        let _ = writeln!(
            out,
            "No findings: nothing in these artefacts points at a hybrid mail-flow failure."
        );
        return out;
    }
    let mut parts = Vec::new();
    for (n, what) in [(errors, "error"), (warnings, "warning"), (infos, "info")] {
        if n > 0 {
            parts.push(format!(
                "{n} {what}{}",
                if n == 1 || what == "info" { "" } else { "s" }
            ));
        }
    }
    let _ = writeln!(
        out,
        "{} finding{}: {}",
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" },
        parts.join(", ")
    );
    for (k, f) in r.findings.iter().enumerate() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{}. {} {}",
            k + 1,
            st.severity(f.severity),
            st.paint("1", f.id.as_str())
        );
        let _ = writeln!(out, "   {}", f.title);
        let _ = writeln!(out, "   Evidence:");
        for e in f.evidence.iter().take(MAX_EVIDENCE_SHOWN) {
            let _ = writeln!(
                out,
                "     {}  {}",
                st.paint("2", &format!("{}:{}", e.file, e.line)),
                e.text
            );
        }
        if f.evidence.len() > MAX_EVIDENCE_SHOWN {
            let _ = writeln!(
                out,
                "     ... {} more line{} (--format json lists all)",
                f.evidence.len() - MAX_EVIDENCE_SHOWN,
                if f.evidence.len() - MAX_EVIDENCE_SHOWN == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
        let _ = writeln!(out, "   Why:");
        wrap(&mut out, &f.explanation, "     ");
        let _ = writeln!(out, "   Fix:");
        for l in &f.fix {
            let _ = writeln!(out, "     {l}");
        }
    }
    out
}

/// The report as the architecture page's JSON (pretty-printed).
pub fn json(r: &Report) -> String {
    // A Report holds only strings, numbers and lists: serialisation cannot fail.
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, FindingId, Input};
    use hybridlab_artefacts::text::Evidence;

    fn report(n_inputs: usize) -> Report {
        Report {
            findings: vec![Finding {
                id: FindingId::CertKeylessDuplicate,
                severity: Severity::Error,
                title: FindingId::CertKeylessDuplicate.title().into(),
                evidence: (1..=10)
                    .map(|i| Evidence::new("SEND20190502-1.LOG", i, "line"))
                    .collect(),
                explanation: "word ".repeat(60),
                fix: vec!["Restart-Service MSExchangeTransport".into()],
                newest: None,
            }],
            inputs: (0..n_inputs)
                .map(|i| Input {
                    file: format!("f{i}.LOG"),
                    kind: if i == 0 {
                        ArtefactKind::Unknown
                    } else {
                        ArtefactKind::SendProtocolLog
                    },
                    items: 1,
                })
                .collect(),
            skipped: Vec::new(),
            as_of: None,
        }
    }

    #[test]
    fn colour_only_when_asked_and_long_text_wrapped() {
        let plain = human(&report(2), false);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("1. ERROR cert-keyless-duplicate"));
        assert!(plain.contains("... 2 more lines"));
        assert!(
            plain
                .lines()
                .all(|l| l.chars().count() <= WIDTH || l.starts_with("     SEND"))
        );
        let coloured = human(&report(2), true);
        assert!(coloured.contains("\x1b[1;31mERROR\x1b[0m"));
    }

    #[test]
    fn many_inputs_are_summarised_by_kind() {
        let text = human(&report(40), false);
        assert!(text.contains("39 x send protocol log"), "{text}");
        assert!(text.contains("f0.LOG: not recognised"));
        assert!(!text.contains("f7.LOG"));
    }
}
