//! `--format json`: `{"results":[...],"summary":{...},"wall_ms":...}`.

use serde::Serialize;

use super::table::Summary;
use crate::scenario::ScenarioResult;

#[derive(Serialize)]
struct Doc<'a> {
    results: &'a [ScenarioResult],
    summary: Summary,
    wall_ms: u128,
}

/// The results as pretty JSON.
pub fn render(results: &[ScenarioResult], wall_ms: u128) -> String {
    serde_json::to_string_pretty(&Doc {
        results,
        summary: Summary::of(results),
        wall_ms,
    })
    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
