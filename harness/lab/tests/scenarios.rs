//! Every file under scenarios/ is its own named test (so CI shows which case broke), plus tests
//! that the whole catalogue is reproduced, that it is deterministic, that it covers the topics, and
//! that broken files get errors pointing at the right file, line and column.
//!
//! Run one: `cargo test -p harness --test scenarios -- certificates/fm01-keyless-twin-first`.

use std::path::{Path, PathBuf};

use harness::scenario::runner::{default_threads, run_parallel};
use harness::scenario::{
    CheckStatus, ScenarioError, ScenarioOutcome, ScenarioResult, discover, load, run_file,
};
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios")
}

fn describe(r: &ScenarioResult) -> String {
    let mut s = format!("{} ({}): {}", r.id, r.path.display(), r.outcome.as_str());
    if let Some(e) = &r.error {
        s.push_str(&format!("\n  {e}"));
    }
    for c in r.failures() {
        s.push_str(&format!(
            "\n  {}: expected {}\n     actual {}",
            c.key, c.expected, c.actual
        ));
        if let Some(e) = &c.evidence {
            s.push_str(&format!("\n     at {e}"));
        }
    }
    s
}

fn one(path: &Path) -> Result<(), Failed> {
    let r = run_file(path, None);
    match r.outcome {
        ScenarioOutcome::Reproduced => {
            // the closed loop: the diagnosis of the lab's own artefacts is part of the verdict
            // and is never left pending, except an exo-to-onprem expectation of a receive-side id
            // the catalogue does not know yet ("diagnosis pending")
            if let Some(c) = r.pending().find(|c| !diagnosis_pending(&r, c)) {
                return Err(format!("{}: {} is pending", r.id, c.key).into());
            }
            Ok(())
        }
        _ => Err(describe(&r).into()),
    }
}

/// Whether `c` is the "diagnosis pending" check of an exo-to-onprem scenario whose expected id
/// is not in the catalogue yet.
fn diagnosis_pending(r: &ScenarioResult, c: &harness::scenario::Check) -> bool {
    r.exo_replay.is_some()
        && c.actual.starts_with("diagnosis pending")
        && r.scenario.as_ref().is_some_and(|s| {
            s.expect.top_finding.as_deref().is_some_and(|id| {
                harness::scenario::exo::PENDING_FINDINGS.contains(&id)
                    && id.parse::<hybridlab_diagnose::FindingId>().is_err()
            })
        })
}

fn whole_catalogue(files: &[PathBuf]) -> Result<(), Failed> {
    let results = run_parallel(files, default_threads(), |_, p| run_file(p, None));
    let bad: Vec<String> = results
        .iter()
        .filter(|r| r.outcome != ScenarioOutcome::Reproduced)
        .map(describe)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} not reproduced:\n{}",
            bad.len(),
            results.len(),
            bad.join("\n")
        )
        .into())
    }
}

fn over_tcp(files: &[PathBuf]) -> Result<(), Failed> {
    let results = run_parallel(files, default_threads(), |_, p| {
        run_file(p, Some(harness::scenario::TransportKind::Tcp))
    });
    let bad: Vec<String> = results
        .iter()
        .filter(|r| {
            !matches!(
                r.outcome,
                ScenarioOutcome::Reproduced | ScenarioOutcome::Skipped
            )
        })
        .map(describe)
        .collect();
    let ran = results
        .iter()
        .filter(|r| r.outcome == ScenarioOutcome::Reproduced)
        .count();
    if !bad.is_empty() {
        return Err(format!("over tcp:\n{}", bad.join("\n")).into());
    }
    if ran * 2 < results.len() {
        return Err(format!("only {ran} of {} scenarios ran over tcp", results.len()).into());
    }
    Ok(())
}

fn coverage(files: &[PathBuf]) -> Result<(), Failed> {
    if files.len() < 30 {
        return Err(format!(
            "only {} scenario files; the catalogue needs 30",
            files.len()
        )
        .into());
    }
    for topic in [
        "certificates",
        "tls",
        "attribution",
        "network",
        "queue",
        "baseline",
    ] {
        let n = files
            .iter()
            .filter(|f| {
                f.parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n == topic)
            })
            .count();
        if n == 0 {
            return Err(format!("no scenario in scenarios/{topic}/").into());
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for f in files {
        let s = load(f).map_err(|e| e.to_string())?;
        if s.scenario.description.trim().is_empty() || s.scenario.title.trim().is_empty() {
            return Err(format!(
                "{}: title and description are required in the catalogue",
                f.display()
            )
            .into());
        }
        if !ids.insert(s.scenario.id.clone()) {
            return Err(format!("duplicate scenario id {}", s.scenario.id).into());
        }
    }
    Ok(())
}

/// Thumbprints and serials come from fresh keys each run: mask 16+ hex digit runs.
fn mask_hex(s: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            if run.len() >= 16 && run.chars().any(|c| c.is_ascii_digit()) {
                out.push_str("<hex>");
            } else {
                out.push_str(&run);
            }
            run.clear();
            out.push(c);
        }
    }
    out.pop();
    out
}

fn fingerprint(r: &ScenarioResult) -> String {
    // Exchange Online's LEDs name the thumbprint of the certificate it was shown
    let mut s = format!("{:?} {} ", r.outcome, mask_hex(&r.admin_sees));
    if let Some(rep) = &r.replay {
        for sess in &rep.sessions {
            s.push_str(&mask_hex(&sess.transcript()));
        }
        for m in &rep.mock_sessions {
            s.push_str(&format!("{:?} {:?}", m.attribution, m.close_reason));
        }
        // admin changes and certificate-cache notes name thumbprints
        s.push_str(&mask_hex(&format!("{:?}", rep.timeline)));
    }
    if let Some(rep) = &r.exo_replay {
        for d in &rep.records {
            for a in &d.attempts {
                s.push_str(&mask_hex(&format!("{:?} {:?}", a.transcript, a.outcome)));
            }
        }
        s.push_str(&mask_hex(&format!("{:?}", rep.admin)));
    }
    s
}

fn deterministic(files: &[PathBuf]) -> Result<(), Failed> {
    for f in files {
        let a = fingerprint(&run_file(f, None));
        let b = fingerprint(&run_file(f, None));
        if a != b {
            let at = a
                .chars()
                .zip(b.chars())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let around = |s: &str| {
                s.chars()
                    .skip(at.saturating_sub(60))
                    .take(140)
                    .collect::<String>()
            };
            return Err(format!(
                "{}: two runs with the same seed differ at {at}:\n  {}\n  {}",
                f.display(),
                around(&a),
                around(&b)
            )
            .into());
        }
    }
    Ok(())
}

/// Every scenario states what the diagnosis of its artefacts must be: `top_finding` (with
/// `no_other_error_finding` where true) or `no_error_finding = true`, and a run that checked it
/// reports the diagnosis checks as passed, never as pending. Files under scenarios/base/ are only
/// extended and are not discovered.
fn diagnosis_stated(files: &[PathBuf]) -> Result<(), Failed> {
    let mut missing = Vec::new();
    for f in files {
        if f.components().any(|c| c.as_os_str() == "base") {
            return Err(format!("{}: scenarios/base/ must not be discovered", f.display()).into());
        }
        let s = load(f).map_err(|e| e.to_string())?;
        if s.expect.top_finding.is_none() && !s.expect.no_error_finding {
            missing.push(f.strip_prefix(root()).unwrap_or(f).display().to_string());
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} scenario(s) state no diagnosis (`top_finding` or `no_error_finding = true` in [expect]): {}",
            missing.len(),
            missing.join(", ")
        )
        .into());
    }
    let results = run_parallel(files, default_threads(), |_, p| run_file(p, None));
    for r in &results {
        let keys: Vec<(&str, CheckStatus)> = r
            .checks
            .iter()
            .filter(|c| {
                matches!(
                    c.key.as_str(),
                    "top_finding" | "no_other_error_finding" | "no_error_finding"
                )
            })
            .map(|c| (c.key.as_str(), c.status))
            .collect();
        // an exo-to-onprem scenario may expect a receive-side id the catalogue does not know yet:
        // "diagnosis pending" until the rule lands, then the check turns on by itself
        let pending_allowed = r.exo_replay.is_some()
            && r.checks.iter().any(|c| {
                c.key == "top_finding"
                    && harness::scenario::exo::PENDING_FINDINGS.contains(&c.expected.as_str())
                    && c.expected.parse::<hybridlab_diagnose::FindingId>().is_err()
            });
        let ok = |st: &CheckStatus| {
            *st == CheckStatus::Pass || (pending_allowed && *st == CheckStatus::Pending)
        };
        if keys.is_empty() || keys.iter().any(|(_, st)| !ok(st)) {
            return Err(format!("{}: diagnosis checks {keys:?}\n{}", r.id, describe(r)).into());
        }
    }
    Ok(())
}

/// The diagnosis of a run's files, leaving out the files whose names `drop` matches.
fn diagnose_without(
    r: &harness::scenario::runner::Replay,
    drop: &[&str],
) -> hybridlab_diagnose::Report {
    let mut reader = hybridlab_artefacts::ArtefactReader::new();
    for f in r
        .bundle
        .render(&hybridlab_artefacts::bundle::BundleOptions::default())
    {
        if !f.secret && !drop.iter().any(|d| f.name.contains(d)) {
            reader.add_bytes(&f.name, f.content.as_bytes());
        }
    }
    hybridlab_diagnose::diagnose(&reader.finish(), &hybridlab_diagnose::Options::default())
}

/// The Exchange Online side carries the cases the on-premises files cannot show: with it the
/// diagnosis names the cause, without it the rules stay silent rather than guess.
fn eop_side_evidence() -> Result<(), Failed> {
    let run = |rel: &str| {
        let r = run_file(&root().join(rel), None);
        let text = describe(&r);
        r.replay.ok_or_else(|| Failed::from(text))
    };
    let check = |what: &str, got: Option<&str>, want: Option<&str>| -> Result<(), Failed> {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: top finding {got:?}, expected {want:?}").into())
        }
    };
    // FM-08: the certificate-based inbound connector, or the mock's unattributed verdict
    let r = run("certificates/fm08-no-client-certificate.toml")?;
    check(
        "fm08, all files",
        r.diagnosis.top_id(),
        Some("no-client-certificate"),
    )?;
    let d = diagnose_without(&r, &["Get-InboundConnector"]);
    check(
        "fm08 without Get-InboundConnector",
        d.top_id(),
        Some("no-client-certificate"),
    )?;
    let d = diagnose_without(&r, &["Get-InboundConnector", "mock-eop-sessions"]);
    if d.has_error() {
        return Err(format!("fm08, on-premises files only: {:?}", d.ids()).into());
    }
    // FM-10: only the mock's record shows the chain EOP received
    let r = run("certificates/fm10-missing-intermediate.toml")?;
    let d = diagnose_without(&r, &["mock-eop-sessions"]);
    if d.has_error() {
        return Err(format!("fm10 without the EOP record: {:?}", d.ids()).into());
    }
    // FM-27 OverAdvertisedSize: the message left the queue, only the NDR names the cause
    let r = run("queue/fm27-message-over-advertised-size.toml")?;
    let d = diagnose_without(&r, &["NDR-"]);
    if d.has_error() {
        return Err(format!("fm27 without the NDR: {:?}", d.ids()).into());
    }
    Ok(())
}

/// `--out` writes Exchange's formats: the artefact readers (what `diagnose` uses) read them back.
fn artefacts_read_back() -> Result<(), Failed> {
    let path = root().join("certificates/fm01-keyless-twin-first.toml");
    let r = run_file(&path, None);
    let (Some(s), Some(rep)) = (&r.scenario, &r.replay) else {
        return Err(describe(&r).into());
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let svg = harness::report::svg::sequence_svg(s, rep);
    harness::report::write_scenario_dir(dir.path(), s, rep, &svg).map_err(|e| e.to_string())?;
    let a = hybridlab_artefacts::read_dir(dir.path()).map_err(|e| e.to_string())?;
    let sessions = a.protocol.sessions.len();
    if sessions != rep.sessions.len() {
        return Err(format!(
            "{sessions} sessions read back, {} written",
            rep.sessions.len()
        )
        .into());
    }
    let keyless = rep
        .certificates
        .iter()
        .find(|c| c.name == "twin-nokey")
        .map(|c| c.facts.thumbprint.clone())
        .unwrap_or_default();
    let listed: Vec<_> = a
        .certificates
        .iter()
        .map(|c| (c.source, c.parsed.row.thumbprint.clone()))
        .collect();
    use hybridlab_artefacts::certs::CertListingSource as Src;
    if !listed.contains(&(Src::CertProvider, keyless.clone())) {
        return Err(
            format!("the key-less twin is missing from the store listing: {listed:?}").into(),
        );
    }
    if listed.contains(&(Src::ExchangeCertificate, keyless)) {
        return Err("Get-ExchangeCertificate must not list the key-less twin".into());
    }
    // Get-Queue comes as Format-List text and as JSON: two rows of the same queue
    if a.queues.is_empty() || a.send_connectors.len() != 1 || a.messages.len() != 1 {
        return Err(format!(
            "queues {} send connectors {} messages {}",
            a.queues.len(),
            a.send_connectors.len(),
            a.messages.len()
        )
        .into());
    }
    for q in &a.queues {
        let le = q.row.last_error.clone().map(|l| l.led).unwrap_or_default();
        if le != "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out" {
            return Err(format!("LastError read back as {le:?}").into());
        }
    }
    if a.connectivity.is_empty() {
        return Err("no connectivity log read back".into());
    }
    Ok(())
}

/// The full example in scenarios/README.md loads and is reproduced.
fn readme_example() -> Result<(), Failed> {
    let readme = std::fs::read_to_string(root().join("README.md")).map_err(|e| e.to_string())?;
    let start = readme
        .find("## A full example")
        .and_then(|i| readme[i..].find("```toml").map(|j| i + j + "```toml".len()))
        .ok_or("no full example in scenarios/README.md")?;
    let end = readme[start..].find("```").ok_or("unterminated example")? + start;
    let base = root().join("base/hybrid-cert.toml");
    let text = readme[start..end].replace(
        "extend = \"../base/hybrid-cert.toml\"",
        &format!("extend = {:?}", base.display().to_string()),
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("readme-example.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    one(&path)
}

fn load_err(name: &str) -> Result<ScenarioError, Failed> {
    match load(&fixtures().join(name)) {
        Ok(_) => Err(format!("{name} loaded, but it is broken").into()),
        Err(e) => Ok(e),
    }
}

fn expect_error(
    name: &str,
    file: &str,
    line: usize,
    column: Option<usize>,
    contains: &[&str],
) -> Result<(), Failed> {
    let e = load_err(name)?;
    let text = e.to_string();
    if !e.file.ends_with(file) {
        return Err(format!(
            "{name}: error in {}, expected {file}: {text}",
            e.file.display()
        )
        .into());
    }
    if e.line != Some(line) {
        return Err(format!("{name}: line {:?}, expected {line}: {text}", e.line).into());
    }
    if let Some(c) = column
        && e.column != Some(c)
    {
        return Err(format!("{name}: column {:?}, expected {c}: {text}", e.column).into());
    }
    for want in contains {
        if !text.contains(want) {
            return Err(format!("{name}: {text:?} does not mention {want:?}").into());
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let files = discover(&root()).unwrap_or_default();
    let mut trials: Vec<Trial> = files
        .iter()
        .map(|f| {
            let name = f
                .strip_prefix(root())
                .unwrap_or(f)
                .with_extension("")
                .display()
                .to_string();
            let path = f.clone();
            Trial::test(name, move || one(&path))
        })
        .collect();
    let all = files.clone();
    trials.push(Trial::test(
        "catalogue::whole_catalogue_is_reproduced",
        move || whole_catalogue(&all),
    ));
    let all = files.clone();
    trials.push(Trial::test(
        "catalogue::reproduced_over_loopback_tcp",
        move || over_tcp(&all),
    ));
    let all = files.clone();
    trials.push(Trial::test("catalogue::covers_the_topics", move || {
        coverage(&all)
    }));
    let all = files.clone();
    trials.push(Trial::test(
        "catalogue::every_scenario_states_its_diagnosis",
        move || diagnosis_stated(&all),
    ));
    let all = files;
    trials.push(Trial::test(
        "catalogue::same_seed_same_results",
        move || deterministic(&all),
    ));
    trials.push(Trial::test(
        "artefacts::written_and_read_back",
        artefacts_read_back,
    ));
    trials.push(Trial::test(
        "closed_loop::eop_side_evidence_names_what_on_premises_files_cannot",
        eop_side_evidence,
    ));
    trials.push(Trial::test(
        "docs::readme_example_is_reproduced",
        readme_example,
    ));
    trials.push(Trial::test("errors::typo_points_at_the_line", || {
        expect_error(
            "typo-key.toml",
            "typo-key.toml",
            8,
            Some(1),
            &[
                "unknown field `requre_tls`",
                "expected one of",
                "require_tls",
            ],
        )
    }));
    trials.push(Trial::test(
        "errors::typo_in_a_base_points_at_the_base",
        || {
            expect_error(
                "extends-typo.toml",
                "base-with-typo.toml",
                6,
                Some(1),
                &["unknown field `requiretls`"],
            )
        },
    ));
    trials.push(Trial::test("errors::unknown_certificate_name", || {
        expect_error(
            "unknown-cert.toml",
            "unknown-cert.toml",
            4,
            None,
            &["no certificate named \"goood\"", "\"good\""],
        )
    }));
    trials.push(Trial::test(
        "errors::source_address_outside_loopback",
        || {
            expect_error(
                "bad-source.toml",
                "bad-source.toml",
                4,
                Some(1),
                &["10.0.0.5", "127.0.0.0/8"],
            )
        },
    ));
    trials.push(Trial::test(
        "errors::exo_unknown_receive_certificate",
        || {
            expect_error(
                "exo-unknown-receive-cert.toml",
                "exo-unknown-receive-cert.toml",
                5,
                None,
                &["no certificate named \"hybird\"", "\"hybrid\""],
            )
        },
    ));
    trials.push(Trial::test(
        "errors::exo_change_names_unknown_server",
        || {
            expect_error(
                "exo-unknown-server.toml",
                "exo-unknown-server.toml",
                5,
                None,
                &["no server named \"EXCH09\"", "\"EXCH01\""],
            )
        },
    ));
    trials.push(Trial::test("errors::exo_typo_in_the_perimeter", || {
        expect_error(
            "exo-typo-key.toml",
            "exo-typo-key.toml",
            4,
            Some(1),
            &["unknown field `smtp_inspecton`", "smtp_inspection"],
        )
    }));
    trials.push(Trial::test("errors::exo_unknown_finding", || {
        expect_error(
            "exo-unknown-finding.toml",
            "exo-unknown-finding.toml",
            5,
            None,
            &["receive-cert-wrong", "receive-cert-untrusted"],
        )
    }));
    trials.push(Trial::test("errors::toml_syntax", || {
        expect_error("syntax.toml", "syntax.toml", 2, None, &[])
    }));
    trials.push(Trial::test("errors::impossible_connector", || {
        expect_error(
            "impossible-connector.toml",
            "impossible-connector.toml",
            3,
            None,
            &["RequireTLS and IgnoreSTARTTLS"],
        )
    }));
    trials.push(Trial::test("errors::unknown_verdict", || {
        expect_error(
            "bad-verdict.toml",
            "bad-verdict.toml",
            5,
            None,
            &["atributed", "attributed"],
        )
    }));
    trials.push(Trial::test("errors::missing_expect_cannot_pass", || {
        expect_error(
            "no-expect.toml",
            "no-expect.toml",
            1,
            Some(1),
            &["missing table [expect]", "could never fail"],
        )
    }));
    trials.push(Trial::test("errors::empty_expect_cannot_pass", || {
        expect_error(
            "empty-expect.toml",
            "empty-expect.toml",
            7,
            Some(2),
            &["[expect] states no expectation", "could never fail"],
        )
    }));
    libtest_mimic::run(&args, trials).exit();
}
