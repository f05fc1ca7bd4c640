//! `hybridlab diagnose` as a user runs it (the built binary): the classic case's text output,
//! the JSON schema of the architecture page, `--now`, `--format markdown`, `--fail-on`, and the
//! exit codes 0/1/2 (2 also when nothing is recognised).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../diagnose/tests/samples")
}

fn hybridlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(args)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hybridlab")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const KEYLESS: &str = "3D1F0A6B9C2E8D4F7A5B1C0E9D8F6A4B2C7E5D31";
const KEYED: &str = "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41";

#[test]
fn classic_case_names_the_keyless_twin_first_quotes_the_lines_and_prints_the_removal() {
    let dir = samples().join("fm01-keyless-duplicate");
    let out = hybridlab(&["diagnose", path(&dir)]);
    assert_eq!(out.status.code(), Some(1), "an error finding exits 1");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    // The first finding is the key-less twin, before any other finding.
    let first = text
        .find("1. ERROR cert-keyless-duplicate")
        .expect("ranked first");
    assert!(!text[..first].contains("ERROR"), "{text}");
    let block = &text[first..text.find("\n2. ").unwrap_or(text.len())];
    // The thumbprint line and the NoCredentials line, quoted as file:line.
    assert!(block.contains(&format!(
        "SEND20190502-1.LOG:179  2019-05-02T06:32:14.112Z,Outbound to Office 365,08D6CEAF3B1A1AB8,11,10.0.0.5:27536,104.47.9.36:25,*,{KEYLESS},Certificate thumbprint"
    )), "{block}");
    assert!(
        block.contains("SEND20190502-1.LOG:181  ")
            && block.contains("*,,TLS negotiation failed with error NoCredentials"),
        "{block}"
    );
    // The command that removes that thumbprint, never the keyed one.
    assert!(
        block.contains(&format!(
            "Get-ChildItem Cert:\\LocalMachine\\My\\{KEYLESS} | Remove-Item"
        )),
        "{block}"
    );
    assert!(!block.contains(&format!("{KEYED} | Remove-Item")));
    assert!(block.contains("Restart-Service MSExchangeTransport") && block.contains("Retry-Queue"));
    // The symptom is explained, not reported.
    assert!(
        !text.contains("connection-timeout") && !text.contains("connect-failed"),
        "{text}"
    );
    // The garbage file is listed as not recognised.
    assert!(text.contains("collected.dat: not recognised"), "{text}");
}

#[test]
fn json_output_has_the_architecture_schema() {
    let dir = samples().join("fm01-keyless-duplicate");
    let out = hybridlab(&["diagnose", "--format", "json", path(&dir)]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let top = v.as_object().expect("an object");
    let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["findings", "inputs", "skipped"]);
    let findings = v["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        let mut k: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        assert_eq!(
            k,
            ["evidence", "explanation", "fix", "id", "severity", "title"]
        );
        let id = f["id"].as_str().unwrap();
        id.parse::<hybridlab_diagnose::FindingId>()
            .expect("a catalogue id");
        assert!(matches!(
            f["severity"].as_str(),
            Some("error" | "warning" | "info")
        ));
        assert!(!f["title"].as_str().unwrap().is_empty());
        assert!(!f["explanation"].as_str().unwrap().is_empty());
        assert!(f["fix"].as_array().unwrap().iter().all(Value::is_string));
        for e in f["evidence"].as_array().unwrap() {
            let mut ek: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            ek.sort_unstable();
            assert_eq!(ek, ["file", "line", "text"]);
            assert!(
                e["file"].is_string() && e["line"].as_u64().unwrap() >= 1 && e["text"].is_string()
            );
        }
    }
    assert_eq!(findings[0]["id"], "cert-keyless-duplicate");
    assert_eq!(findings[0]["severity"], "error");
    // Inputs: every file with its kind; skipped: the garbage and the unrecognised files.
    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 8);
    assert!(
        inputs
            .iter()
            .all(|i| i["file"].is_string() && i["kind"].is_string() && i["items"].is_u64())
    );
    assert!(inputs.iter().any(|i| i["kind"] == "listing"
        && i["of"] == "cert_provider"
        && i["format"] == "format_list"));
    let skipped = v["skipped"].as_array().unwrap();
    let garbage = skipped
        .iter()
        .find(|s| s["file"].as_str().unwrap().ends_with("collected.dat"))
        .expect("garbage counted");
    assert!(garbage["count"].as_u64().unwrap() > 0);
    assert!(garbage["samples"].as_array().unwrap().len() <= 5);
    // The output round-trips through the library type.
    let r: hybridlab_diagnose::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.top_id(), Some("cert-keyless-duplicate"));
}

#[test]
fn healthy_exits_0_and_says_so() {
    let out = hybridlab(&["diagnose", path(&samples().join("healthy"))]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("No findings"), "{text}");
}

#[test]
fn warnings_only_exit_0() {
    let out = hybridlab(&["diagnose", path(&samples().join("lint-config-warnings"))]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1. WARNING cert-expiring-soon"), "{text}");
}

#[test]
fn a_missing_path_exits_2_and_names_it() {
    let missing = samples().join("no-such-bundle");
    let out = hybridlab(&["diagnose", path(&samples().join("healthy")), path(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no-such-bundle"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_empty_folder_or_unrelated_files_exit_2_listing_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = hybridlab(&["diagnose", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no file was found"), "{text}");
    std::fs::write(
        dir.path().join("notes.txt"),
        "Hi, mail to the cloud is stuck since Monday.\r\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.log"), "").unwrap();
    let out = hybridlab(&["diagnose", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Nothing recognised"), "{text}");
    assert!(text.contains("notes.txt: no known artefact kind"), "{text}");
    assert!(text.contains("empty.log: empty"), "{text}");
    assert!(!text.contains("No findings"), "{text}");
}

/// An entry the folder walk skips (a FIFO) is listed with its reason, not silently dropped.
#[cfg(unix)]
#[test]
fn a_fifo_is_listed_as_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.log");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo on this machine: nothing to test
    }
    let out = hybridlab(&["diagnose", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pipe.log: not read (not a regular file (fifo))"),
        "{text}"
    );
}

#[test]
fn markdown_and_fail_on_warning() {
    let lint = samples().join("lint-config-warnings");
    let out = hybridlab(&["diagnose", "--format", "markdown", path(&lint)]);
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("## 1. WARNING `cert-expiring-soon`"), "{md}");
    assert!(md.contains("```powershell"), "{md}");
    let out = hybridlab(&["diagnose", "--fail-on", "warning", path(&lint)]);
    assert_eq!(out.status.code(), Some(1));
    let out = hybridlab(&[
        "diagnose",
        "--fail-on",
        "warning",
        path(&samples().join("healthy")),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn no_path_is_a_usage_error() {
    assert_eq!(hybridlab(&["diagnose"]).status.code(), Some(2));
    assert_eq!(
        hybridlab(&["diagnose", "--now", "yesterday", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn only_garbage_exits_2_and_still_prints_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    let f = dir.path().join("collected.dat");
    std::fs::write(&f, &bytes).unwrap();
    let out = hybridlab(&["diagnose", "--format", "json", path(&f)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing recognised is never silent"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v["inputs"][0]["kind"], "unknown");
    assert!(v["skipped"][0]["count"].as_u64().unwrap() > 0);
}

#[test]
fn now_overrides_the_reference_time() {
    // 64C4F48E... expires on 2026-09-01: 14 days after this reference time.
    let dir = samples().join("fm11-remote-cert-untrusted");
    let out = hybridlab(&[
        "diagnose",
        "--format",
        "json",
        "--now",
        "2026-08-18T00:00:00Z",
        path(&dir),
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"cert-expiring-soon"), "{ids:?}");
    // Without --now the logs' own time applies: months before expiry, no warning.
    let out = hybridlab(&["diagnose", "--format", "json", path(&dir)]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "cert-expiring-soon")
    );
}

#[test]
fn files_and_folders_mix() {
    let b = samples().join("fm15-tls-version-mismatch");
    let out = hybridlab(&[
        "diagnose",
        "--format",
        "json",
        path(&b.join("SEND20210112-1.LOG")),
        path(&b.join("store.txt")),
        path(&b.join("Get-ExchangeCertificate.txt")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["id"], "tls-version-mismatch");
    assert_eq!(v["inputs"].as_array().unwrap().len(), 3);
}
