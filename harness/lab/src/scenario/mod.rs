//! Scenarios: one TOML file describes a hybrid mail-flow case end to end (the on-premises store and
//! connector, EOP's tenants and connectors, faults, messages, how long to run, what must come out);
//! the runner replays it against the embedded mock EOP and checks the expectations.
//!
//! - [`model`]: the file's data model (reusing the lab's own settings types).
//! - [`load`](mod@load): parsing, `extend` chains, validation with file/line/column errors; [`load::discover`].
//! - [`runner`]: the replay on a paused (memory) or real (tcp) clock; [`runner::run_parallel`].
//! - [`expect`]: expectation checks with expected/actual/evidence.
//! - [`artefacts`]: the files `hybridlab run --out` writes per scenario.
//! - [`exo`]: the Exchange Online -> on-premises direction (`direction = "exo-to-onprem"`): its
//!   tables, runner, artefacts and checks.
//!
//! [`run_file`] does all of it for one file and gives a [`ScenarioResult`].

pub mod artefacts;
pub mod exo;
pub mod expect;
pub mod load;
pub mod model;
pub mod runner;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use expect::{Check, CheckStatus};
pub use load::{ScenarioError, discover, load};
pub use model::{Scenario, TransportKind};
pub use runner::{Replay, RunError, replay};

/// The verdict on one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioOutcome {
    /// Every expectation that can be judged was met.
    Reproduced,
    /// At least one expectation was not met.
    NotReproduced,
    /// The file could not be loaded or the lab could not run it.
    Error,
    /// Not run on this transport (memory-only scenario over tcp).
    Skipped,
}

impl ScenarioOutcome {
    /// The outcome as the verdict table and `hybridlab explain` print it (`NOT reproduced` in
    /// capitals, so that it stands out).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reproduced => "reproduced",
            Self::NotReproduced => "NOT reproduced",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// The result of running one scenario file.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario file as given on the command line or found by [`discover`].
    pub path: PathBuf,
    /// The scenario id (the file stem when the file did not load).
    pub id: String,
    /// `[scenario] title`: the case in one line (empty when the file did not load).
    pub title: String,
    /// `[scenario] tags`: topic and failure-mode tags (`certificates`, `FM-01`).
    pub tags: Vec<String>,
    /// Whether the scenario reproduced its case, and if not, why not.
    pub outcome: ScenarioOutcome,
    /// One check per expectation the scenario states, in the schema's order of `[expect]` keys
    /// (empty when the scenario did not run).
    pub checks: Vec<Check>,
    /// The load or run error, for [`ScenarioOutcome::Error`] and [`ScenarioOutcome::Skipped`].
    pub error: Option<String>,
    /// What the admin sees: the queue's LastError, the NDR, or how the mail arrived.
    pub admin_sees: String,
    /// The diagnosis' top finding on the lab's artefacts (`cert-keyless-duplicate`), with the
    /// expected one when they differ.
    pub finding: String,
    /// The diagnosis of the lab's artefacts (the closed loop); `None` when the scenario did not
    /// run.
    pub diagnosis: Option<DiagnosisSummary>,
    /// What carried the sessions: in-memory streams on the paused clock, or loopback sockets.
    pub transport: TransportKind,
    /// Real milliseconds the replay took.
    pub wall_ms: u128,
    /// Virtual seconds the replay covered.
    pub virtual_secs: i64,
    /// The loaded scenario (not serialised).
    #[serde(skip)]
    pub scenario: Option<Box<Scenario>>,
    /// The replay (not serialised).
    #[serde(skip)]
    pub replay: Option<Box<Replay>>,
    /// The replay of an `exo-to-onprem` scenario (not serialised).
    #[serde(skip)]
    pub exo_replay: Option<Box<exo::ExoReplay>>,
}

impl ScenarioResult {
    fn error(path: &Path, transport: TransportKind, e: String) -> Self {
        Self {
            path: path.to_path_buf(),
            id: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            title: String::new(),
            tags: Vec::new(),
            outcome: ScenarioOutcome::Error,
            checks: Vec::new(),
            error: Some(e),
            admin_sees: String::new(),
            finding: String::new(),
            diagnosis: None,
            transport,
            wall_ms: 0,
            virtual_secs: 0,
            scenario: None,
            replay: None,
            exo_replay: None,
        }
    }

    /// Checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }

    /// Checks that are pending.
    pub fn pending(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pending)
    }
}

/// The closed loop's result in a few ids: what `hybridlab diagnose` found on the files the run
/// wrote (for JSON and JUnit reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosisSummary {
    /// The first finding's id (`cert-keyless-duplicate`); `None` when nothing was found.
    pub top_finding: Option<String>,
    /// Every finding of severity error, ranked.
    pub errors: Vec<String>,
    /// Every finding of severity warning, ranked.
    pub warnings: Vec<String>,
}

impl DiagnosisSummary {
    /// The summary of a report.
    pub fn of(d: &hybridlab_diagnose::Report) -> Self {
        let ids = |sev: hybridlab_diagnose::Severity| {
            d.findings
                .iter()
                .filter(|f| f.severity == sev)
                .map(|f| f.id.as_str().to_string())
                .collect()
        };
        Self {
            top_finding: d.top_id().map(str::to_string),
            errors: ids(hybridlab_diagnose::Severity::Error),
            warnings: ids(hybridlab_diagnose::Severity::Warning),
        }
    }
}

/// What the admin sees after the run: the queue's LastError while mail waits, the NDR, or how the
/// mail arrived.
pub fn admin_sees(r: &Replay) -> String {
    let delivered = r.delivered();
    let ndrs = r.ndrs();
    let verdict = r.last_verdict();
    if r.queue.message_count > 0 {
        if let Some(le) = &r.queue.last_error {
            return format!(
                "{} (queue {}): {}",
                r.queue.status, r.queue.identity, le.led
            );
        }
        return format!(
            "{} messages queued ({})",
            r.queue.message_count, r.queue.status
        );
    }
    if let Some(n) = ndrs.first() {
        let after = r
            .last_error()
            .map(|l| format!(" after LastError {}", l.led))
            .unwrap_or_default();
        return format!("NDR {}{after}", n.one_line());
    }
    if delivered > 0 {
        let how = match verdict {
            Some(hybridlab_model::attribution::AttributionVerdict::Attributed {
                connector,
                by,
                ..
            }) => {
                format!(", attributed to {connector:?} by {by}")
            }
            Some(hybridlab_model::attribution::AttributionVerdict::Unattributed { .. }) => {
                ", but EOP treated it as anonymous Internet mail (unattributed)".to_string()
            }
            Some(v) => format!(", but EOP verdict {}", v.kind()),
            None => String::new(),
        };
        let retried = r
            .last_error()
            .map(|l| format!(" after retries (LastError {})", l.led))
            .unwrap_or_default();
        return format!("delivered{how}{retried}");
    }
    "nothing happened".into()
}

/// Loads, replays and checks one scenario file. `transport` overrides the file's `[run]`.
pub fn run_file(path: &Path, transport: Option<TransportKind>) -> ScenarioResult {
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => {
            return ScenarioResult::error(path, transport.unwrap_or_default(), e.to_string());
        }
    };
    run_scenario(scenario, transport)
}

/// Replays and checks a loaded scenario.
pub fn run_scenario(scenario: Scenario, transport: Option<TransportKind>) -> ScenarioResult {
    let kind = transport.unwrap_or(scenario.run.transport);
    let path = scenario.source.path.clone();
    let mut base = ScenarioResult::error(&path, kind, String::new());
    base.id = scenario.scenario.id.clone();
    base.title = scenario.scenario.title.clone();
    base.tags = scenario.scenario.tags.clone();
    base.finding = "-".into();
    if exo::is_exo_to_onprem(&scenario) {
        return run_exo(scenario, kind, base);
    }
    let r = match replay(&scenario, kind) {
        Ok(r) => r,
        Err(RunError::Unsupported(m)) => {
            base.outcome = ScenarioOutcome::Skipped;
            base.error = Some(m);
            base.scenario = Some(Box::new(scenario));
            return base;
        }
        Err(e) => {
            base.error = Some(e.to_string());
            base.scenario = Some(Box::new(scenario));
            return base;
        }
    };
    let checks = expect::check(&scenario, &r);
    let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
    base.outcome = if failed {
        ScenarioOutcome::NotReproduced
    } else {
        ScenarioOutcome::Reproduced
    };
    base.error = None;
    base.checks = checks;
    base.admin_sees = admin_sees(&r);
    let top = r.diagnosis.top_id().unwrap_or("-");
    base.finding = match scenario.expect.top_finding.as_deref() {
        Some(want) if want != top => format!("{top} (expected {want})"),
        _ => top.to_string(),
    };
    base.diagnosis = Some(DiagnosisSummary::of(&r.diagnosis));
    base.wall_ms = r.wall.as_millis();
    base.virtual_secs = (r.end - r.start).whole_seconds();
    base.scenario = Some(Box::new(scenario));
    base.replay = Some(Box::new(r));
    base
}

/// What the admin sees after an `exo-to-onprem` run: the trace status and the last LED, or how
/// the mail arrived.
pub fn exo_admin_sees(r: &exo::ExoReplay) -> String {
    let total = r.records.len();
    let delivered = r.delivered();
    let last = r
        .records
        .iter()
        .rev()
        .find_map(|d| d.trace.last_reason())
        .map(|x| x.last_error.led);
    if delivered == total && total > 0 {
        let how = match r.site.messages.first().map(|m| m.cross_premises) {
            Some(hybridlab_receive::session::CrossPremises::Honoured) => {
                ", cross-premises headers honoured (internal)"
            }
            Some(_) => ", but anonymous: cross-premises headers dropped",
            None => "",
        };
        let retried = last
            .map(|l| format!(" after deferrals (last {l})"))
            .unwrap_or_default();
        return format!("delivered on-premises{how}{retried}");
    }
    let statuses: Vec<&str> = r.records.iter().map(|d| d.trace.status.as_str()).collect();
    let status = statuses.first().copied().unwrap_or("none");
    match last {
        Some(l) => format!("message trace {status} ({delivered}/{total} delivered): {l}"),
        None => format!("message trace {status} ({delivered}/{total} delivered)"),
    }
}

fn run_exo(scenario: Scenario, kind: TransportKind, mut base: ScenarioResult) -> ScenarioResult {
    let r = match exo::runner::replay(&scenario, kind) {
        Ok(r) => r,
        Err(RunError::Unsupported(m)) if m.starts_with("memory-only") => {
            base.outcome = ScenarioOutcome::Skipped;
            base.error = Some(m);
            base.scenario = Some(Box::new(scenario));
            return base;
        }
        Err(e) => {
            base.error = Some(e.to_string());
            base.scenario = Some(Box::new(scenario));
            return base;
        }
    };
    let checks = exo::expect::check(&scenario, &r);
    base.outcome = if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        ScenarioOutcome::NotReproduced
    } else {
        ScenarioOutcome::Reproduced
    };
    base.error = None;
    base.checks = checks;
    base.admin_sees = exo_admin_sees(&r);
    let top = r.diagnosis.top_id().unwrap_or("-");
    base.finding = match scenario.expect.top_finding.as_deref() {
        Some(want) if want != top && want.parse::<hybridlab_diagnose::FindingId>().is_err() => {
            format!("{top} (expected {want}: diagnosis pending)")
        }
        Some(want) if want != top => format!("{top} (expected {want})"),
        _ => top.to_string(),
    };
    base.diagnosis = Some(DiagnosisSummary::of(&r.diagnosis));
    base.wall_ms = r.wall.as_millis();
    base.virtual_secs = (r.end - r.start).whole_seconds();
    base.scenario = Some(Box::new(scenario));
    base.exo_replay = Some(Box::new(r));
    base
}
