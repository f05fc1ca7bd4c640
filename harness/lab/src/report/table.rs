//! The verdict table: scenario, outcome, what the admin sees, finding; then the details of every
//! scenario that was not reproduced (each failed expectation: expected, actual, evidence).

use std::fmt::Write as _;

use super::explain::Style;
use crate::scenario::{CheckStatus, ScenarioOutcome, ScenarioResult};

/// The outcome column's width (`NOT reproduced`).
const OUTCOME_W: usize = 14;

/// The widths of the table's wrapped columns.
struct Widths {
    id: usize,
    sees: usize,
    finding: usize,
}

impl Widths {
    /// Columns as wide as their longest cell when that fits `width`; else the admin's column
    /// gets what is left (at least 24), then the id column shrinks (to 20), the finding's (to 14)
    /// and the admin's (to 16).
    fn fit(
        results: &[ScenarioResult],
        sees_of: &dyn Fn(&ScenarioResult) -> String,
        width: usize,
    ) -> Self {
        let longest = |f: &dyn Fn(&ScenarioResult) -> usize, min: usize| {
            results.iter().map(f).max().unwrap_or(min).max(min)
        };
        let id_max = longest(&|r| r.id.chars().count(), 8);
        let sees_max = longest(&|r| sees_of(r).chars().count(), 19);
        let finding_max = longest(&|r| r.finding.chars().count(), 7);
        let gaps = 6 + OUTCOME_W;
        let mut w = Self {
            id: id_max,
            sees: sees_max,
            finding: finding_max.min(30),
        };
        let room = width.saturating_sub(gaps + w.id + w.finding);
        w.sees = sees_max.min(room.max(24));
        // still too wide: shrink the id column, then the finding's, then the admin's
        for (col, min) in [(0, 20), (2, 14), (1, 16)] {
            let total = w.id + w.sees + w.finding + gaps;
            if total <= width {
                break;
            }
            let cell = match col {
                0 => &mut w.id,
                1 => &mut w.sees,
                _ => &mut w.finding,
            };
            *cell = cell.saturating_sub(total - width).max(min.min(*cell));
        }
        w
    }
}

/// `s` in lines of at most `n` columns, broken at spaces; a word longer than `n` is broken too.
fn wrap_cell(s: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let mut lines = Vec::new();
    for line in super::explain::wrap_words(s, n) {
        lines.extend(wrap_token(&line, n));
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// `s` (an id) in pieces of at most `n` columns, broken after a `-` where there is one.
fn wrap_token(s: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let mut out = Vec::new();
    let mut rest: Vec<char> = s.chars().collect();
    while rest.len() > n {
        let cut = rest[..n]
            .iter()
            .rposition(|c| *c == '-')
            .filter(|p| *p > 0)
            .map_or(n, |p| p + 1);
        out.push(rest[..cut].iter().collect());
        rest.drain(..cut);
    }
    out.push(rest.into_iter().collect());
    out
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

/// The table and the details, as text, 100 columns wide at most.
pub fn render(results: &[ScenarioResult], st: &Style, wall_ms: u128) -> String {
    render_width(results, st, wall_ms, 100)
}

/// The table and the details, as text: the table fits `width` columns (cells wrap onto more
/// lines, nothing is cut) down to about 60 columns; the details below it are not wrapped.
pub fn render_width(results: &[ScenarioResult], st: &Style, wall_ms: u128, width: usize) -> String {
    let mut o = String::new();
    let sees_of = |r: &ScenarioResult| match r.outcome {
        ScenarioOutcome::Error | ScenarioOutcome::Skipped => r.error.clone().unwrap_or_default(),
        _ => compact(&r.admin_sees),
    };
    let w = Widths::fit(results, &sees_of, width);
    let _ = writeln!(
        o,
        "{}",
        st.bold(
            format!(
                "{}  {}  {}  {}",
                pad("scenario", w.id),
                pad("outcome", OUTCOME_W),
                pad("what the admin sees", w.sees),
                "finding"
            )
            .trim_end()
        )
    );
    for r in results {
        let ids = wrap_token(&r.id, w.id);
        let sees = wrap_cell(&sees_of(r), w.sees);
        let finding = wrap_cell(&r.finding, w.finding);
        let n = ids.len().max(sees.len()).max(finding.len());
        for i in 0..n {
            let outcome = if i == 0 {
                let text = pad(r.outcome.as_str(), OUTCOME_W);
                match r.outcome {
                    ScenarioOutcome::Reproduced => st.green(&text),
                    ScenarioOutcome::NotReproduced | ScenarioOutcome::Error => st.red(&text),
                    ScenarioOutcome::Skipped => st.yellow(&text),
                }
            } else {
                " ".repeat(OUTCOME_W)
            };
            let cell = |v: &[String]| v.get(i).cloned().unwrap_or_default();
            let line = format!(
                "{}  {}  {}  {}",
                pad(&cell(&ids), w.id),
                outcome,
                pad(&cell(&sees), w.sees),
                cell(&finding)
            );
            let _ = writeln!(o, "{}", line.trim_end());
        }
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
