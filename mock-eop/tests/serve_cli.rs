//! The `mock-eop serve` binary: config errors name file, line, column and field; the embedded
//! contoso tenant answers with EOP's banner and EHLO; one log line per session; JSON records.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-eop");

/// Kills the child when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn config_errors_name_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    write_file(
        &path,
        "[eop.endpoint]\nregion = \"EUR\"\n\n[[eop.tenants]]\nname = \"contoso\"\nacepted_domains = []\n",
        false,
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = format!(
        "{}:6:1: field `acepted_domains`: unknown field",
        path.display()
    );
    assert!(err.contains(&expect), "{err}");
}

#[test]
fn a_config_error_in_the_third_tenant_names_that_tenants_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.toml");
    let tenant = |name: &str, ip: &str| {
        format!(
            "[[eop.tenants]]\nname = \"{name}\"\n\n[[eop.tenants.inbound_connectors]]\n\
             name = \"Inbound\"\nsender_ip_addresses = [\"{ip}\"]\n\n"
        )
    };
    // the third tenant repeats the first one's name: its `name` is on line 16
    let text = tenant("contoso", "127.0.0.5")
        + &tenant("fabrikam", "127.0.0.6")
        + &tenant("CONTOSO", "127.0.0.7");
    write_file(&path, &text, false);
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = format!(
        "{}:16:1: eop.tenants[2].name: duplicate tenant name \"CONTOSO\"",
        path.display()
    );
    assert!(err.contains(&expect), "{err}");
}

/// Reads lines from `r` (in a blocking thread, bounded) until one satisfies `pred`.
async fn read_until<R: BufRead + Send + 'static>(
    mut r: R,
    pred: impl Fn(&str) -> bool + Send + 'static,
) -> (R, String) {
    let h = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        for _ in 0..1000 {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if pred(&line) {
                return (r, line);
            }
        }
        panic!("stream ended without the expected line");
    });
    tokio::time::timeout(BOUND, h)
        .await
        .expect("line within the bound")
        .unwrap()
}

#[tokio::test]
async fn serve_answers_with_eop_banner_logs_the_verdict_and_writes_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.jsonl");
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "5",
            "--records",
        ])
        .arg(&records)
        .arg("--ca-out")
        .arg(&ca)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let _kill = Kill(child);
    let (stdout, line) = read_until(stdout, |l| l.starts_with("mock-eop listening on ")).await;
    let addr: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback());
    let (_, line) = read_until(stdout, |l| l.starts_with("lab CA: ")).await;
    assert_eq!(line.trim(), format!("lab CA: {}", ca.display()));
    let ca_der = rustls::pki_types::CertificateDer::from(
        hybridlab_labkit::pki::pem_decode_first(
            "CERTIFICATE",
            &std::fs::read_to_string(&ca).unwrap(),
        )
        .unwrap(),
    );

    let c = connect_from(addr, "127.0.0.50").await;
    let mut c = c.starttls(&[ca_der], None).await.unwrap();
    let (_, rcpts, end) = c
        .message(
            "alice@contoso.com",
            &["someone@gmail.example"],
            "Subject: cli\r\n\r\nx",
        )
        .await;
    assert_eq!(rcpts[0].code, 550);
    assert!(end.is_none());
    c.cmd("QUIT").await;
    let banner = c.transcript[0].clone();
    assert!(
        banner.starts_with("S: 220 AMS0EPF0000019A.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at "),
        "{banner}"
    );

    let (_, log) = read_until(stderr, |l| l.contains(" session ")).await;
    assert!(log.contains("from 127.0.0.50:"), "{log}");
    // TLS 1.2: EOP's default (TLS 1.3 off, as Microsoft's encryption reference says)
    assert!(log.contains("tls=TLSv1_2"), "{log}");
    assert!(log.contains("verdict=relay_denied"), "{log}");
    let text = std::fs::read_to_string(&records).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let rec: hybridlab_model::record::SessionRecord = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(rec.peer.ip().to_string(), "127.0.0.50");
    assert_eq!(
        rec.attribution.map(|v| v.kind()),
        Some(hybridlab_model::attribution::VerdictKind::RelayDenied)
    );
}

#[test]
fn api_on_a_non_loopback_address_is_refused() {
    // 192.0.2.0/24 is TEST-NET-1: nothing is bound, the check comes first.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api",
            "192.0.2.10:8025",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mock-eop: --api 192.0.2.10:8025 is not a loopback address"),
        "{err}"
    );
    assert!(err.contains("--api-allow-remote"), "{err}");
    assert!(out.stdout.is_empty(), "nothing announced");
}

#[tokio::test]
async fn serve_with_api_prints_its_address_last_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--seed",
            "5",
            "--ca-out",
        ])
        .arg(&ca)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let _kill = Kill(child);
    // The existing lines, unchanged and in their order, then the API.
    let (stdout, line) = read_until(stdout, |_| true).await;
    assert!(
        line.starts_with("mock-eop listening on 127.0.0.1:"),
        "{line}"
    );
    let smtp: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let (stdout, line) = read_until(stdout, |_| true).await;
    assert_eq!(line.trim(), format!("lab CA: {}", ca.display()));
    let (stdout, line) = read_until(stdout, |_| true).await;
    assert!(line.starts_with("server certificate: "), "{line}");
    let (_, line) = read_until(stdout, |_| true).await;
    let api: std::net::SocketAddr = line
        .trim()
        .strip_prefix("api: http://")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(api.ip().is_loopback());
    assert_ne!(api.port(), smtp.port());

    let h = http::get(api, "/health").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["smtp"], smtp.to_string());
    let pem = http::get(api, "/ca").await;
    assert_eq!(pem.text(), std::fs::read_to_string(&ca).unwrap());

    let mut c = connect_from(smtp, "127.0.0.50").await;
    assert_eq!(c.reply().await.code, 220);
    c.cmd("QUIT").await;
    let w = http::get(api, "/wait?sessions=1&timeout=20").await;
    assert_eq!(w.status, 200, "{}", w.text());
    let s = http::get(api, "/sessions/0").await.json();
    assert_eq!(
        s["peer"].as_str().unwrap().split(':').next(),
        Some("127.0.0.50")
    );
}
