//! Rendering a [`Report`]: text for an admin (ranked findings, evidence quoted as `file:line`,
//! explanation, fix), Markdown for a ticket (evidence quoted, fixes as code blocks), the
//! never-silent "nothing recognised" listing, and the JSON of the architecture page.

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
    for s in r.skipped.iter().filter(|s| s.count == 0) {
        for e in s.samples.iter().filter(|e| e.line == 0) {
            let _ = writeln!(out, "  {}: not read ({})", e.file, e.text);
        }
    }
    if r.nothing_read() {
        out.push('\n');
        out.push_str(&nothing_read_text(r));
        return out;
    }
    let (errors, warnings, infos) = counts(r);
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

/// Errors, warnings and info findings.
fn counts(r: &Report) -> (usize, usize, usize) {
    let n = |s: Severity| r.findings.iter().filter(|f| f.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Info))
}

/// What the diagnosis says when it recognised nothing: every file and why it was not read, and
/// what to send instead (exit code 2).
pub fn nothing_read_text(r: &Report) -> String {
    let mut out = String::new();
    let unread = r.skipped.iter().filter(|s| s.count == 0).count();
    if r.inputs.is_empty() && unread == 0 {
        let _ = writeln!(
            out,
            "Nothing to diagnose: no file was found in the given paths (an empty folder?)."
        );
    } else {
        let _ = writeln!(
            out,
            "Nothing recognised: none of the {} file{} is an Exchange artefact this diagnosis reads.",
            r.inputs.len() + unread,
            if r.inputs.len() + unread == 1 {
                ""
            } else {
                "s"
            }
        );
        for (file, why) in r.not_read() {
            let _ = writeln!(out, "  {file}: {why}");
        }
    }
    let _ = writeln!(
        out,
        "\nNo conclusion is possible. Send, from each Exchange server involved: the SEND*/RECV*.LOG \
         protocol logs (Verbose), Get-Queue | Format-List, Get-SendConnector | Format-List, \
         Get-ReceiveConnector | Format-List, Get-ExchangeCertificate | Format-List and Get-ChildItem \
         Cert:\\LocalMachine\\My | Format-List *; from Exchange Online: the NDR (.eml) or Get-MessageTrace \
         | Get-MessageTraceDetail | Format-List."
    );
    out
}

/// The report as Markdown for a ticket: a summary, then per finding its evidence quoted, the
/// explanation and the fix as a PowerShell code block.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hybridlab diagnose\n");
    if r.nothing_read() {
        let _ = writeln!(out, "```text\n{}```", nothing_read_text(r));
        return out;
    }
    let (errors, warnings, infos) = counts(r);
    let _ = writeln!(
        out,
        "{} input file{}, {} line{} skipped{}. **{errors} error{}, {warnings} warning{}, {infos} info.**\n",
        r.inputs.len(),
        if r.inputs.len() == 1 { "" } else { "s" },
        r.skipped_total(),
        if r.skipped_total() == 1 { "" } else { "s" },
        r.as_of
            .map(|t| format!("; reference time {}", super::rules::when(t)))
            .unwrap_or_default(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
    );
    if r.findings.is_empty() {
        let _ = writeln!(
            out,
            "No findings: nothing in these artefacts points at a hybrid mail-flow failure.\n"
        );
    }
    for (k, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "## {}. {} `{}`\n\n{}\n",
            k + 1,
            f.severity.as_str().to_ascii_uppercase(),
            f.id,
            f.title
        );
        let _ = writeln!(out, "**Evidence**\n\n```text");
        for e in &f.evidence {
            // A fence inside a quoted line would end the block early.
            let text = e.text.replace("```", "'''");
            let _ = writeln!(out, "{}:{}  {text}", e.file, e.line);
        }
        let _ = writeln!(
            out,
            "```\n\n**Why.** {}\n\n**Fix**\n\n```powershell",
            f.explanation
        );
        for l in &f.fix {
            let _ = writeln!(out, "{l}");
        }
        let _ = writeln!(out, "```\n");
    }
    let _ = writeln!(out, "<details><summary>Inputs</summary>\n");
    for i in &r.inputs {
        let _ = writeln!(out, "- `{}`: {}", i.file, kind_label(&i.kind));
    }
    let _ = writeln!(out, "\n</details>");
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
    fn markdown_quotes_evidence_and_fences_the_fix() {
        let md = markdown(&report(2));
        assert!(md.contains("## 1. ERROR `cert-keyless-duplicate`"), "{md}");
        assert!(md.contains("```powershell\nRestart-Service MSExchangeTransport\n```"));
        assert!(md.contains("SEND20190502-1.LOG:10  line"));
    }

    #[test]
    fn nothing_read_lists_every_file() {
        let mut r = report(1);
        r.findings.clear();
        assert!(r.nothing_read());
        let text = human(&r, false);
        assert!(text.contains("Nothing recognised"), "{text}");
        assert!(text.contains("f0.LOG: empty"), "{text}");
        r.inputs.clear();
        assert!(human(&r, false).contains("no file was found"));
        assert!(markdown(&r).contains("no file was found"));
    }

    #[test]
    fn many_inputs_are_summarised_by_kind() {
        let text = human(&report(40), false);
        assert!(text.contains("39 x send protocol log"), "{text}");
        assert!(text.contains("f0.LOG: not recognised"));
        assert!(!text.contains("f7.LOG"));
    }
}
