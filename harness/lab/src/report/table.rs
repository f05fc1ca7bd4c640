//! The verdict table: scenario, outcome, what the admin sees, finding; then the details of every
//! scenario that was not reproduced (each failed expectation: expected, actual, evidence).

use std::fmt::Write as _;

use super::explain::Style;
use crate::scenario::{CheckStatus, ScenarioOutcome, ScenarioResult};

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{t}…")
    }
}

/// The LastError wrappers' fixed words take the table's room: keep the codes and the inner reply.
fn compact(s: &str) -> String {
    s.replace("Target host responded with error. ", "")
        .replace("Error communicating with target host. ", "")
        .replace(" (queue ", " (")
}

fn pad(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len >= n {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(n - len))
    }
}

/// How many scenarios of a run ended each way (the table's last line and the JSON `summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Scenario files in the run, whatever their outcome.
    pub total: usize,
    /// Scenarios whose every expectation was met.
    pub reproduced: usize,
    /// Scenarios with at least one expectation not met.
    pub not_reproduced: usize,
    /// Files that did not load or that the lab could not run.
    pub errors: usize,
    /// Memory-only scenarios left out of a tcp run.
    pub skipped: usize,
    /// Checks that could not be judged, over all scenarios (never counted as passed).
    pub pending_checks: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of(results: &[ScenarioResult]) -> Self {
        let mut s = Self {
            total: results.len(),
            ..Self::default()
        };
        for r in results {
            match r.outcome {
                ScenarioOutcome::Reproduced => s.reproduced += 1,
                ScenarioOutcome::NotReproduced => s.not_reproduced += 1,
                ScenarioOutcome::Error => s.errors += 1,
                ScenarioOutcome::Skipped => s.skipped += 1,
            }
            s.pending_checks += r.pending().count();
        }
        s
    }
}

/// The table and the details, as text.
pub fn render(results: &[ScenarioResult], st: &Style, wall_ms: u128) -> String {
    let mut o = String::new();
    let idw = results
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 44);
    let _ = writeln!(
        o,
        "{}",
        st.bold(&format!(
            "{}  {}  {}  {}",
            pad("scenario", idw),
            pad("outcome", 14),
            pad("what the admin sees", 78),
            "finding"
        ))
    );
    for r in results {
        let outcome = pad(r.outcome.as_str(), 14);
        let outcome = match r.outcome {
            ScenarioOutcome::Reproduced => st.green(&outcome),
            ScenarioOutcome::NotReproduced | ScenarioOutcome::Error => st.red(&outcome),
            ScenarioOutcome::Skipped => st.yellow(&outcome),
        };
        let sees = match r.outcome {
            ScenarioOutcome::Error | ScenarioOutcome::Skipped => {
                r.error.clone().unwrap_or_default()
            }
            _ => compact(&r.admin_sees),
        };
        let _ = writeln!(
            o,
            "{}  {}  {}  {}",
            pad(&clip(&r.id, idw), idw),
            outcome,
            pad(&clip(&sees, 78), 78),
            r.finding
        );
    }
    // details
    for r in results {
        match r.outcome {
            ScenarioOutcome::NotReproduced => {
                let _ = writeln!(
                    o,
                    "\n{} {} ({})",
                    st.red("NOT reproduced:"),
                    st.bold(&r.id),
                    r.path.display()
                );
                for c in r.checks.iter().filter(|c| c.status == CheckStatus::Fail) {
                    let _ = writeln!(o, "  {}: expected {}", c.key, c.expected);
                    let _ = writeln!(o, "  {}  actual {}", " ".repeat(c.key.len()), c.actual);
                    if let Some(e) = &c.evidence {
                        let _ = writeln!(o, "  {}  at {e}", " ".repeat(c.key.len()));
                    }
                }
            }
            ScenarioOutcome::Error => {
                let _ = writeln!(
                    o,
                    "\n{} {}",
                    st.red("error:"),
                    r.error.as_deref().unwrap_or("unknown error")
                );
            }
            _ => {}
        }
    }
    let s = Summary::of(results);
    let _ = writeln!(
        o,
        "\n{}: {} reproduced, {} not reproduced, {}, {} skipped; {} pending; {:.2} s",
        count(s.total, "scenario", "scenarios"),
        s.reproduced,
        s.not_reproduced,
        count(s.errors, "error", "errors"),
        s.skipped,
        count(
            s.pending_checks,
            "diagnosis expectation",
            "diagnosis expectations"
        ),
        wall_ms as f64 / 1000.0
    );
    o
}

/// `n` with the singular or plural noun: "1 scenario", "2 scenarios", "0 errors".
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
