//! `--format junit`: JUnit XML as CI systems display it. One `<testcase>` per scenario (class name
//! = its folder), `<failure>` for not reproduced (every failed expectation in the body), `<error>`
//! for a file that does not load, `<skipped>` for skipped scenarios and as a note for pending
//! diagnosis expectations in `<system-out>`. The diagnosis of the run's artefacts (the closed loop)
//! is in each test case's `<properties>` (`diagnosis.top_finding`, `diagnosis.errors`,
//! `diagnosis.warnings`, ids comma-separated) and in its `<system-out>`.

use std::fmt::Write as _;

use super::svg::xml_escape;
use super::table::Summary;
use crate::scenario::{CheckStatus, ScenarioOutcome, ScenarioResult};

fn class_name(r: &ScenarioResult) -> String {
    let folder = r
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenarios".into());
    format!("scenarios.{folder}")
}

/// The results as a JUnit XML document.
pub fn render(results: &[ScenarioResult], wall_ms: u128) -> String {
    let s = Summary::of(results);
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        r#"<testsuites name="hybridlab" tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}">"#,
        s.total,
        s.not_reproduced,
        s.errors,
        s.skipped,
        wall_ms as f64 / 1000.0
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="hybridlab scenarios" tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}">"#,
        s.total,
        s.not_reproduced,
        s.errors,
        s.skipped,
        wall_ms as f64 / 1000.0
    );
    for r in results {
        let _ = write!(
            o,
            r#"    <testcase name="{}" classname="{}" file="{}" time="{:.3}">"#,
            xml_escape(&r.id),
            xml_escape(&class_name(r)),
            xml_escape(&r.path.display().to_string()),
            r.wall_ms as f64 / 1000.0
        );
        o.push('\n');
        if let Some(d) = &r.diagnosis {
            let _ = writeln!(o, "      <properties>");
            for (name, value) in [
                (
                    "diagnosis.top_finding",
                    d.top_finding.clone().unwrap_or_default(),
                ),
                ("diagnosis.errors", d.errors.join(",")),
                ("diagnosis.warnings", d.warnings.join(",")),
            ] {
                let _ = writeln!(
                    o,
                    r#"        <property name="{name}" value="{}"/>"#,
                    xml_escape(&value)
                );
            }
            let _ = writeln!(o, "      </properties>");
        }
        match r.outcome {
            ScenarioOutcome::NotReproduced => {
                let fails: Vec<_> = r
                    .checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Fail)
                    .collect();
                let msg = fails
                    .iter()
                    .map(|c| c.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut body = String::new();
                for c in &fails {
                    let _ = writeln!(
                        body,
                        "{}: expected {}\n  actual {}",
                        c.key, c.expected, c.actual
                    );
                    if let Some(e) = &c.evidence {
                        let _ = writeln!(body, "  at {e}");
                    }
                }
                let _ = writeln!(
                    o,
                    r#"      <failure message="not reproduced: {}" type="NotReproduced">{}</failure>"#,
                    xml_escape(&msg),
                    xml_escape(&body)
                );
            }
            ScenarioOutcome::Error => {
                let e = r.error.clone().unwrap_or_default();
                let _ = writeln!(
                    o,
                    r#"      <error message="{}" type="ScenarioError">{}</error>"#,
                    xml_escape(&e),
                    xml_escape(&e)
                );
            }
            ScenarioOutcome::Skipped => {
                let _ = writeln!(
                    o,
                    r#"      <skipped message="{}"/>"#,
                    xml_escape(r.error.as_deref().unwrap_or("skipped"))
                );
            }
            ScenarioOutcome::Reproduced => {}
        }
        let mut out = format!("admin sees: {}\n", r.admin_sees);
        if let Some(d) = &r.diagnosis {
            let _ = writeln!(
                out,
                "diagnosis: top finding {}; errors: {}; warnings: {}",
                d.top_finding.as_deref().unwrap_or("none"),
                if d.errors.is_empty() {
                    "none".to_string()
                } else {
                    d.errors.join(", ")
                },
                if d.warnings.is_empty() {
                    "none".to_string()
                } else {
                    d.warnings.join(", ")
                },
            );
        }
        for c in r.pending() {
            let _ = writeln!(
                out,
                "PENDING {}: expected {} ({})",
                c.key, c.expected, c.actual
            );
        }
        let _ = writeln!(o, "      <system-out>{}</system-out>", xml_escape(&out));
        let _ = writeln!(o, "    </testcase>");
    }
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}
