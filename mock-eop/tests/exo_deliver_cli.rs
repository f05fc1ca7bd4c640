//! `mock-eop deliver` against an in-process rustls SMTP receiver on loopback: delivered with the
//! right TlsDomain (exit 0), SubjectMismatch with a wrong one (exit 1, the LED with expected and
//! presented subject and the thumbprint), no STARTTLS (451 5.7.3), a refused port (4.4.316),
//! retries until expiry, usage errors (exit 2).

mod exo_stub;

use std::path::Path;

use exo_stub::{OnPremPki, StubOptions, listen};
use hybridlab_model::delivery::DeliveryRecord;
use hybridlab_model::trace::TraceStatus;
use mock_eop::exo::tls::EOP_SUBJECT;

const BIN: &str = env!("CARGO_BIN_EXE_mock-eop");

/// Runs the binary off the async threads, bounded by `timeout(1)`.
async fn deliver(args: &[&str]) -> (Option<i32>, String, String) {
    let mut v: Vec<String> = vec![
        "-k".into(),
        "5".into(),
        "60".into(),
        BIN.into(),
        "deliver".into(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(&v)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const ENVELOPE: [&str; 4] = ["--from", "alice@contoso.com", "--rcpt", "bob@contoso.com"];

#[tokio::test]
async fn delivered_with_the_right_name() {
    let pki = OnPremPki::new("mail.contoso.com");
    let (addr, mut saw) = listen(StubOptions::exchange_like(&pki)).await;
    let dir = tempfile::tempdir().unwrap();
    let trust = write(dir.path(), "ca.pem", &pki.root_pem());
    let records = dir.path().join("records.jsonl").display().to_string();
    let eop_ca = dir.path().join("eop-ca.pem").display().to_string();
    let to = addr.to_string();
    let mut args = vec![
        "--to",
        &to,
        "--trust",
        &trust,
        "--tls-domain",
        "mail.contoso.com",
        "--records",
        &records,
        "--client-ca-out",
        &eop_ca,
    ];
    args.extend(ENVELOPE);
    let (code, out, err) = deliver(&args).await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.lines()
            .any(|l| l.ends_with("  Deliver  The message was successfully delivered.")),
        "{out}"
    );
    let rec: DeliveryRecord =
        serde_json::from_str(std::fs::read_to_string(&records).unwrap().trim()).unwrap();
    assert_eq!(rec.trace.status, TraceStatus::Delivered);
    assert!(
        std::fs::read_to_string(&eop_ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let s = saw.recv().await.unwrap();
    assert_eq!(s.client_cert_subject.as_deref(), Some(EOP_SUBJECT));
    assert!(
        s.mail_from
            .unwrap()
            .contains("XOORG=contoso.onmicrosoft.com")
    );
}

#[tokio::test]
async fn a_wrong_tls_domain_is_a_subject_mismatch() {
    let pki = OnPremPki::new("mail.contoso.com");
    let (addr, _saw) = listen(StubOptions::exchange_like(&pki)).await;
    let dir = tempfile::tempdir().unwrap();
    let trust = write(dir.path(), "ca.pem", &pki.root_pem());
    let to = addr.to_string();
    let mut args = vec![
        "--to",
        &to,
        "--trust",
        &trust,
        "--tls-domain",
        "wrong.contoso.com",
    ];
    args.extend(ENVELOPE);
    let (code, out, err) = deliver(&args).await;
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    let want = format!(
        "Defer  Reason: [{{LED=450 4.4.317 Cannot connect to remote server [Message=SubjectMismatch Expected Subject: wrong.contoso.com. Presented Subject: CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US. Thumbprint: {}.] [LastAttemptedServerName=127.0.0.1] [LastAttemptedIP={addr}] [SmtpSecurity=-1;-1] [",
        pki.leaf.facts.thumbprint
    );
    assert!(out.contains(&want), "{out}");
}

#[tokio::test]
async fn no_starttls_and_refused_port() {
    let (addr, _saw) = listen(StubOptions::plain()).await;
    let to = addr.to_string();
    let mut args = vec!["--to", to.as_str()];
    args.extend(ENVELOPE);
    let (code, out, _) = deliver(&args).await;
    assert_eq!(code, Some(1));
    assert!(
        out.contains("{LED=450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is required to send mail] [LastAttemptedServerName=127.0.0.1]"),
        "{out}"
    );

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap().to_string();
    drop(free);
    let mut args = vec!["--to", closed.as_str()];
    args.extend(ENVELOPE);
    let (code, out, _) = deliver(&args).await;
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&format!("{{LED=450 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=127.0.0.1] [LastAttemptedIP={closed}] [SmtpSecurity=-2;-2]")),
        "{out}"
    );

    // retried until the (short) expiry: two Defer lines, then the expiry Fail
    let mut args = vec![
        "--to",
        closed.as_str(),
        "--retry-for",
        "1s",
        "--retry-interval",
        "500ms",
    ];
    args.extend(ENVELOPE);
    let (code, out, _) = deliver(&args).await;
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[2].contains("  Fail  Reason: [{LED=550 5.4.316 Message expired, connection refused(Socket error code 10061)};"), "{out}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let (code, _, err) = deliver(&[
        "--to",
        "mail.contoso.com:25",
        "--from",
        "a@b",
        "--rcpt",
        "c@d",
    ])
    .await;
    assert_eq!(code, Some(2));
    assert!(err.contains("names are not resolved"), "{err}");
    let (code, _, _) = deliver(&["--to", "127.0.0.1:25", "--from", "a@b"]).await;
    assert_eq!(code, Some(2));
    let (code, _, err) = deliver(&[
        "--to",
        "127.0.0.1:25",
        "--from",
        "a@b",
        "--rcpt",
        "c@d",
        "--connector",
        "nope",
    ])
    .await;
    assert_eq!(code, Some(2));
    assert!(err.contains("no outbound connector named"), "{err}");
    let (code, _, _) = deliver(&[
        "--to",
        "127.0.0.1:25",
        "--from",
        "a@b",
        "--rcpt",
        "c@d",
        "--source",
        "10.0.0.1",
    ])
    .await;
    assert_eq!(code, Some(2));
}
