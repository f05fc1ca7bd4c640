//! The two directions meet: `hybridlab receive --listen 127.0.0.1:0 --ca-out ca.pem` serves the
//! healthy contoso receive side, and `mock-eop deliver` (the binary, built next to `hybridlab`)
//! delivers to it as Exchange Online would. With `--trust ca.pem --tls-domain mail.contoso.com`
//! it exits 0; with a wrong `--tls-domain` it exits 1 and prints the `450 4.4.317 ...
//! SubjectMismatch` Defer line naming the expected and the presented subject and the thumbprint
//! of the certificate the receive side presented. Start-up is read from stdout (no sleeps).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Receive {
    child: Child,
    addr: String,
    thumbprint: String,
}

impl Drop for Receive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_receive(ca: &Path) -> Receive {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(["receive", "--listen", "127.0.0.1:0", "--ca-out"])
        .arg(ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hybridlab receive starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    let mut thumbprint = None;
    for _ in 0..10 {
        let Some(Ok(l)) = lines.next() else { break };
        if let Some(a) = l.strip_prefix("hybridlab receive listening on ") {
            addr = Some(a.to_string());
        }
        if let Some(rest) = l.strip_prefix("server certificate: ")
            && let Some((_, t)) = rest.rsplit_once("(thumbprint ")
        {
            thumbprint = Some(t.trim_end_matches(')').to_string());
        }
        if addr.is_some() && thumbprint.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Receive {
        child,
        addr: addr.expect("the listening line"),
        thumbprint: thumbprint.expect("the server certificate line"),
    }
}

/// The `mock-eop` binary beside `hybridlab` (same target folder), built when missing.
fn mock_eop_binary() -> PathBuf {
    let hybridlab = PathBuf::from(env!("CARGO_BIN_EXE_hybridlab"));
    let dir = hybridlab.parent().expect("the target folder");
    let bin = dir.join(format!("mock-eop{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "mock-eop", "--bin", "mock-eop"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build -p mock-eop");
        assert!(status.success(), "building mock-eop failed");
    }
    assert!(bin.is_file(), "no mock-eop binary at {}", bin.display());
    bin
}

fn deliver(to: &str, ca: &Path, tls_domain: &str) -> (i32, String) {
    let out = Command::new(mock_eop_binary())
        .args(["deliver", "--to", to, "--trust"])
        .arg(ca)
        .args([
            "--tls-domain",
            tls_domain,
            "--from",
            "adele@contoso.com",
            "--rcpt",
            "bob@contoso.com",
        ])
        .output()
        .expect("mock-eop deliver runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn mock_eop_deliver_against_hybridlab_receive() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let r = start_receive(&ca);

    let (code, stdout) = deliver(&r.addr, &ca, "mail.contoso.com");
    assert_eq!(code, 0, "delivery with the right TlsDomain: {stdout}");
    assert!(stdout.contains("Deliver"), "{stdout}");

    let (code, stdout) = deliver(&r.addr, &ca, "mail.fabrikam.com");
    assert_eq!(code, 1, "delivery with a wrong TlsDomain: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("450 4.4.317") && l.contains("SubjectMismatch"))
        .unwrap_or_else(|| panic!("no 450 4.4.317 SubjectMismatch line in {stdout}"));
    assert!(
        line.contains("Expected Subject: mail.fabrikam.com"),
        "{line}"
    );
    assert!(
        line.contains("Presented Subject: CN=mail.contoso.com"),
        "{line}"
    );
    assert!(
        line.contains(&format!("Thumbprint: {}", r.thumbprint)),
        "{line} should name {}",
        r.thumbprint
    );
}

#[test]
fn receive_serves_a_scenarios_receive_side() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/exo-to-onprem/fm14-self-signed-certificate-on-second-server.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(["receive", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&scenario)
        .arg("--ca-out")
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hybridlab receive starts");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(4)
        .map_while(Result::ok)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines[0].starts_with("hybridlab receive listening on 127.0.0.1:")
            && lines[0].ends_with("(scenario exo-fm14-self-signed-certificate-on-second-server)"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("EXCH01\\Default Frontend EXCH01: STARTTLS with CN=mail.contoso.com")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("EXCH02\\Default Frontend EXCH02: STARTTLS with CN=EXCH02")),
        "{lines:?}"
    );
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let onprem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/certificates/fm01-keyless-twin-first.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(["receive", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&onprem)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exo-to-onprem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
