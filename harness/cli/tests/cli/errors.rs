//! What `hybridlab` says to a person: errors state their cause once, `explain --svg` refuses a
//! path it cannot write before narrating, counts agree in number, and no narration carries
//! Rust `Debug` output (`Tls { status: NoCredentials }`, `Some(..)`).

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
fn a_missing_path_is_named_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let m = missing.to_str().unwrap();
    let out = hybridlab(dir.path(), &["diagnose", m]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing-here"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    let out = hybridlab(dir.path(), &["run", m]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no such file or folder"), "{stderr}");
}

#[test]
fn run_out_that_cannot_be_created_fails_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out_dir = file.join("sub");
    let out = hybridlab(
        dir.path(),
        &[
            "run",
            "--out",
            out_dir.to_str().unwrap(),
            "--filter",
            "baseline",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("hybridlab: creating --out "), "{stderr}");
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "no table: {}", text(&out.stdout));
}

#[test]
fn explain_svg_checks_its_folder_before_narrating() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("no-such-folder/fm01.svg");
    let out = hybridlab(
        dir.path(),
        &[
            "explain",
            "fm01-keyless-twin-first",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "narrated anyway: {}",
        text(&out.stdout)
    );
    assert!(stderr.contains("does not exist"), "{stderr}");

    // a folder given as the file
    let out = hybridlab(
        dir.path(),
        &[
            "explain",
            "fm01-keyless-twin-first",
            "--svg",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("is a folder"),
        "{}",
        text(&out.stderr)
    );

    // and a good path works
    let svg = dir.path().join("fm01.svg");
    let out = hybridlab(
        dir.path(),
        &[
            "explain",
            "fm01-keyless-twin-first",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

/// A line that looks like Rust `Debug` output of a struct or an `Option`.
fn debug_like(line: &str) -> bool {
    if line.contains("Some(") {
        return true;
    }
    // `Name { field: ...`
    line.split(" { ").skip(1).any(|rest| {
        let field: String = rest.chars().take_while(|c| *c != ':').collect();
        !field.is_empty()
            && field.len() < rest.len()
            && field.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

#[test]
fn narrations_carry_no_debug_output() {
    assert!(debug_like(
        "session failed: Tls { status: NoCredentials } -> ack"
    ));
    assert!(debug_like("window Some(3)"));
    assert!(!debug_like(
        "session failed: TLS negotiation failed with error NoCredentials"
    ));

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = hybridlab(dir.path(), &["run", "--out", out_dir.to_str().unwrap()]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let mut seen = 0;
    let mut bad = Vec::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let t = e.unwrap().path().join("transcript.txt");
        let Ok(body) = std::fs::read_to_string(&t) else {
            continue;
        };
        seen += 1;
        bad.extend(
            body.lines()
                .filter(|l| debug_like(l))
                .map(|l| format!("{}: {l}", t.display())),
        );
    }
    assert!(seen > 10, "only {seen} transcripts");
    assert!(
        bad.is_empty(),
        "Debug output in narrations:\n{}",
        bad.join("\n")
    );
    // the summary agrees in number
    let table = text(&out.stdout);
    assert!(table.contains(" scenarios: "), "{table}");
    assert!(!table.contains("1 errors"), "{table}");
}
