//! `hybridlab diagnose`: from artefacts to ranked findings (docs/findings.md).
//!
//! The engine reads what [`hybridlab_artefacts`] rebuilt (sessions, listings, queues, connectors),
//! joins it into one correlated model, runs one rule per finding id, keeps symptoms from
//! outranking causes and renders the result for an admin or as JSON. It never reads the clock:
//! the reference time is the newest log time (or [`Options::now`]).
//!
//! - [`catalogue`]: finding ids, severities, ranks and titles (a contract).
//! - `model`: the correlated model (sessions with their connector, certificate and TLS outcome;
//!   the merged certificate store; connectors with what `TlsCertificateName` resolves to; queues).
//! - `rules`: one rule per id, each proposing findings with evidence, explanation and fix: both
//!   directions (on-premises -> EOP, and Exchange Online -> on-premises from RECV logs, receive
//!   connectors and Exchange Online's verdicts), and `unexplained-failure` for failing mail no
//!   rule explains.
//! - `rank`: merging, suppression ("the classic rule"), ordering.
//! - [`render`]: human text (optionally coloured), Markdown for tickets, the "nothing recognised"
//!   listing (every file and why it was not read) and the architecture page's JSON.
//!
//! ```no_run
//! # fn demo() -> Result<(), hybridlab_diagnose::DiagnoseError> {
//! use hybridlab_diagnose::{Options, diagnose_paths};
//! let report = diagnose_paths(&["harness/diagnose/tests/samples/fm01-keyless-duplicate"], &Options::default())?;
//! assert_eq!(report.top_id(), Some("cert-keyless-duplicate"));
//! println!("{}", hybridlab_diagnose::render::human(&report, false));
//! # Ok(()) }
//! ```

pub mod catalogue;
mod model;
mod rank;
pub mod render;
mod rules;

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use self::catalogue::{FindingId, Severity, UnknownFindingId};
pub use hybridlab_artefacts::text::Evidence;
use hybridlab_artefacts::{ArtefactKind, Artefacts, ReadError};

/// What the diagnosis may take from outside the inputs: the reference time and the expiry
/// warning window.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The reference time for expiry rules; `None`: the newest time in the logs (conventions).
    pub now: Option<OffsetDateTime>,
    /// How soon before expiry `cert-expiring-soon` warns (30 days).
    pub expiry_warning: time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            now: None,
            expiry_warning: time::Duration::days(30),
        }
    }
}

impl Options {
    /// The same options with a fixed reference time.
    pub fn with_now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }
}

/// One finding: what is wrong, the lines that prove it, why, and what to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The catalogue id (serialised as its kebab-case string).
    pub id: FindingId,
    /// How bad it is: `error` (mail fails because of it), `warning` or `info`; the catalogue's
    /// severity, or `warning` for an error mail flow has since left behind.
    pub severity: Severity,
    /// The id's one-line title from the catalogue (docs/findings.md).
    pub title: String,
    /// File (base name), 1-based line and the line's text; the most recent occurrence first.
    pub evidence: Vec<Evidence>,
    /// What happened, in an admin's words, with the values from the evidence.
    pub explanation: String,
    /// PowerShell, one command per line (`#` lines are comments).
    pub fix: Vec<String>,
    /// The time of the newest timed evidence (used for ranking; not serialised).
    #[serde(skip)]
    pub(crate) newest: Option<OffsetDateTime>,
}

impl Finding {
    /// The time of the newest log line among the evidence.
    pub fn newest_evidence_time(&self) -> Option<OffsetDateTime> {
        self.newest
    }
}

/// One input file as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The path as given.
    pub file: String,
    /// What it was recognised as (`{"kind":"listing","of":"queue","format":"format_list"}`).
    #[serde(flatten)]
    pub kind: ArtefactKind,
    /// How many records (log lines) or objects (listings) were read from it.
    pub items: usize,
}

/// Lines of one file that no reader understood. An entry the folder walk did not read at all (a
/// FIFO, a file over the size cap, an unreadable file) has `count` 0 and one sample of line 0
/// whose text is the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedLines {
    /// The path as given.
    pub file: String,
    /// How many lines of the file no reader understood.
    pub count: usize,
    /// The first few (file, line, text).
    pub samples: Vec<Evidence>,
}

/// The diagnosis: findings ranked root cause first, plus what was read and what was not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Ranked: errors, then warnings, then info; within a severity by the catalogue's rank.
    pub findings: Vec<Finding>,
    /// Every input file.
    pub inputs: Vec<Input>,
    /// Files with skipped lines (unknown files: every line).
    pub skipped: Vec<SkippedLines>,
    /// The reference time the rules used (not serialised: the JSON schema is fixed).
    #[serde(skip)]
    pub as_of: Option<OffsetDateTime>,
}

impl Report {
    /// The first finding.
    pub fn top(&self) -> Option<&Finding> {
        self.findings.first()
    }

    /// The first finding's id.
    pub fn top_id(&self) -> Option<&'static str> {
        self.top().map(|f| f.id.as_str())
    }

    /// Whether any finding has severity error (exit code 1).
    pub fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The finding with this id, if reported.
    pub fn find(&self, id: FindingId) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// Ids in ranked order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.id.as_str()).collect()
    }

    /// Skipped lines over all inputs.
    pub fn skipped_total(&self) -> usize {
        self.skipped.iter().map(|s| s.count).sum()
    }

    /// Whether any finding is at least as severe as `level` (`--fail-on`).
    pub fn fails_at(&self, level: Severity) -> bool {
        self.findings.iter().any(|f| f.severity <= level)
    }

    /// Nothing was recognised: no input file, or none of a known kind (exit code 2). The
    /// diagnosis must then say so, file by file ([`Report::not_read`]), never "no findings".
    pub fn nothing_read(&self) -> bool {
        self.inputs.iter().all(|i| i.kind == ArtefactKind::Unknown)
    }

    /// Every input that was not read, with the reason.
    pub fn not_read(&self) -> Vec<(String, String)> {
        // Entries the folder walk did not read at all: a skipped-lines entry of line 0 whose text
        // is the reason.
        let walked = self
            .skipped
            .iter()
            .filter(|s| s.count == 0)
            .filter_map(|s| s.samples.first().filter(|e| e.line == 0))
            .map(|e| (e.file.to_string(), e.text.clone()));
        self.inputs
            .iter()
            .filter(|i| i.kind == ArtefactKind::Unknown)
            .map(|i| {
                let skipped = self.skipped.iter().find(|s| s.file == i.file);
                let why = match skipped.and_then(|s| s.samples.first()) {
                    Some(e) => format!(
                        "no known artefact kind ({} line{} not understood; line {}: \"{}\")",
                        skipped.map_or(0, |s| s.count),
                        if skipped.is_some_and(|s| s.count == 1) {
                            ""
                        } else {
                            "s"
                        },
                        e.line,
                        short(&e.text),
                    ),
                    None => "empty, or no text line in it".to_string(),
                };
                (i.file.clone(), why)
            })
            .chain(walked)
            .collect()
    }
}

/// At most 80 characters of a line, for a quote.
fn short(t: &str) -> String {
    let t = t.trim();
    match t.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

/// An input that could not be read at all (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnoseError {
    /// A path does not exist or cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Diagnoses an artefact set.
pub fn diagnose(a: &Artefacts, opts: &Options) -> Report {
    let m = model::Model::build(a, opts.now);
    let drafts = rules::run_all(&m, opts);
    let findings = rank::rank(drafts);
    Report {
        findings,
        inputs: a
            .files
            .iter()
            .map(|f| Input {
                file: f.file.clone(),
                kind: f.kind,
                items: f.items,
            })
            .collect(),
        skipped: a
            .files
            .iter()
            .filter(|f| f.skipped.count > 0)
            .map(|f| SkippedLines {
                file: f.file.clone(),
                count: f.skipped.count,
                samples: f
                    .skipped
                    .samples
                    .iter()
                    .map(|e| Evidence {
                        file: model::base_name(&e.file).into(),
                        line: e.line,
                        text: e.text.clone(),
                    })
                    .collect(),
            })
            .chain(a.skipped_files.iter().map(|f| SkippedLines {
                file: f.path.clone(),
                count: 0,
                samples: vec![Evidence {
                    file: f.path.as_str().into(),
                    line: 0,
                    text: f.reason.to_string(),
                }],
            }))
            .collect(),
        as_of: m.as_of,
    }
}

/// Reads files and folders (kinds by content) and diagnoses them.
pub fn diagnose_paths<P: AsRef<Path>>(
    paths: &[P],
    opts: &Options,
) -> Result<Report, DiagnoseError> {
    let a = hybridlab_artefacts::read_paths(paths)?;
    Ok(diagnose(&a, opts))
}

/// The reference time the conventions derive from the inputs: the newest protocol-log or
/// connectivity-log time.
pub fn reference_time(a: &Artefacts) -> Option<OffsetDateTime> {
    model::newest_log_time(a)
}
