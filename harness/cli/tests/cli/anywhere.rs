//! `hybridlab` outside a checkout: from a folder without `scenarios/`, `list`, `run` and
//! `explain` use the catalogue embedded in the binary (whose files `extend` each other), and an
//! unknown id gets a "did you mean".

use std::process::{Command, Output};

fn hybridlab(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hybridlab")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn list_and_run_work_outside_a_checkout() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("scenarios").exists());

    let out = hybridlab(dir.path(), &["list"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("ID "), "{stdout}");
    assert!(stdout.contains("fm01-keyless-twin-first"), "{stdout}");
    assert!(stdout.contains("exo-to-onprem"), "{stdout}");
    assert!(
        !stdout.contains("hybrid-cert"),
        "bases are not listed: {stdout}"
    );

    let out = hybridlab(
        dir.path(),
        &["list", "--filter", "fm01", "--format", "json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"fm01-keyless-twin-first"), "{ids:?}");
    assert!(ids.iter().all(|i| i.starts_with("fm01")), "{ids:?}");
    assert_eq!(
        v[0]["path"].as_str().unwrap().split('/').next(),
        Some("certificates")
    );

    let out = hybridlab(dir.path(), &["run", "--filter", "baseline"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("healthy-ip-attributed"), "{stdout}");
    assert!(stdout.contains("0 not reproduced, 0 errors"), "{stdout}");

    // an id as a positional argument of run
    let out = hybridlab(dir.path(), &["run", "healthy-ip-attributed"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 scenario:"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unknown_ids_get_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["explain", "fm01-keyles-twin-first"][..],
        &["run", "fm01-keyles-twin-first"][..],
    ] {
        let out = hybridlab(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("did you mean `fm01-keyless-twin-first`"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing narrated");
    }
    let out = hybridlab(
        dir.path(),
        &[
            "receive",
            "--scenario",
            "exo-fm14-self-signed-certificat",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `exo-fm14-"), "{stderr}");
}

#[test]
fn the_verdict_table_fits_columns_and_wraps_instead_of_cutting() {
    let dir = tempfile::tempdir().unwrap();
    let table = |columns: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
            .args(["run", "--filter", "fm01"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("COLUMNS", columns)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let t = text(&out.stdout);
        // the table: up to the blank line before the summary
        t.split("\n\n").next().unwrap().to_string()
    };
    let narrow = table("80");
    for line in narrow.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line}");
    }
    assert!(!narrow.contains('…'), "cut instead of wrapped:\n{narrow}");
    // nothing lost: the first column's pieces put back together are the ids
    let joined: String = narrow
        .lines()
        .map(|l| l.split("  ").next().unwrap_or(""))
        .collect();
    assert!(joined.contains("fm01-keyless-twin-first"), "{narrow}");
    assert!(narrow.contains("421 4.4.1"), "{narrow}");

    let wide = table("250");
    assert!(
        wide.lines()
            .any(|l| l.starts_with("fm01-keyless-twin-first ")),
        "{wide}"
    );
    assert!(
        wide.lines().count() < narrow.lines().count(),
        "{wide}\n{narrow}"
    );
}
