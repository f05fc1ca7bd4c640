//! `hybridlab send --out DIR` against the mock EOP started in-process on 127.0.0.1:0: the classic
//! case from the command line writes a real server's artefacts, read back through the readers
//! (the tail of the classic send log in docs/formats.md, Retry with the misleading LED, the
//! key-less twin only in the Cert: listing); the keyed twin delivers with `250 2.6.0`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hybridlab_artefacts::certs::CertListingSource;
use hybridlab_artefacts::connectivity::ConnectivityNote;
use hybridlab_artefacts::protocol_log::{LogKind, SessionEvent};
use hybridlab_artefacts::read_dir;
use hybridlab_model::exchange::{DisconnectReason, QueueStatus, SecurityStatus};
use hybridlab_onprem::certstore::fixtures;
use mock_eop::MockEop;
use mock_eop::config::EopConfig;

const SMART_HOST: &str = "contoso-mail-onmicrosoft-com.mail.protection.outlook.com";

/// Runs `hybridlab send ARGS` (bounded: killed after two minutes); exit code and stdout.
async fn hybridlab_send(args: Vec<String>) -> (i32, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .arg("send")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(Duration::from_secs(120), wait).await {
        Ok(out) => {
            let out = out.unwrap().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.trim().is_empty(), "stderr: {stderr}");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("hybridlab send did not finish within two minutes");
        }
    }
}

/// Common arguments: the HCW connector's TLS settings against the mock at `port`.
fn args(port: u16, ca: &Path, keyless: &str, out: &Path) -> Vec<String> {
    [
        "--smarthost",
        &format!("{SMART_HOST}:{port}"),
        "--map",
        &format!("{SMART_HOST}=127.0.0.1"),
        "--trust-root",
        ca.to_str().unwrap(),
        "--require-tls",
        "--tls-auth-level",
        "DomainValidation",
        "--tls-domain",
        "mail.protection.outlook.com",
        "--keyless-twin",
        keyless,
        "--tls-certificate-name",
        "@lab-cert",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// `event,data,context` of a send log line.
fn tail_columns(line: &str) -> String {
    let f = hybridlab_artefacts::csv::split_record(line);
    assert_eq!(f.len(), 9, "{line}");
    let mut out = String::new();
    hybridlab_artefacts::csv::write_record(&mut out, [&*f[6], &*f[7], &*f[8]]);
    out
}

#[tokio::test]
async fn classic_case_from_the_command_line_writes_real_artefacts() {
    let mock = MockEop::builder()
        .config(EopConfig::contoso())
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("eop-ca.pem");
    std::fs::write(&ca, mock.ca_pem()).unwrap();
    let out = work.path().join("out");
    let (code, stdout) = hybridlab_send(args(mock.local_addr().port(), &ca, "first", &out)).await;
    assert_eq!(code, 1, "{stdout}");

    // stdout is the send log (LF line ends), then the result and the queue
    let (log_text, rest) = stdout.split_at(stdout.find("result: ").expect("a result line"));
    assert!(
        log_text.starts_with(
            "#Software: Microsoft Exchange Server\n#Version: 15.0.0.0\n#Log-type: SMTP Send Protocol Log\n#Date: "
        ),
        "{stdout}"
    );
    assert!(rest.starts_with("result: session failed (421 4.4.1 Connection timed out)"));
    assert!(rest.contains("queue: EDGE01\\3 Status=Retry MessageCount=1"));
    assert!(rest.contains("artefacts: 8 files in"), "{rest}");

    // the files
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names[0].starts_with("CONNECTLOG") && names[0].ends_with("-1.LOG"));
    assert!(names[7].starts_with("SEND") && names[7].ends_with("-1.LOG"));
    let send = std::fs::read_to_string(out.join(&names[7])).unwrap();
    assert_eq!(
        send.replace("\r\n", "\n"),
        log_text,
        "the file is the printed log with CRLF"
    );

    let a = read_dir(&out).unwrap();
    assert_eq!(a.skipped_total(), 0, "{:?}", a.files);

    // the store listings: the twin is only in the Cert: provider's
    let provider: Vec<_> = a
        .certificates_from(CertListingSource::CertProvider)
        .map(|c| c.row.clone())
        .collect();
    assert_eq!(provider.len(), 2);
    let twin = provider[0].clone();
    assert_eq!(twin.has_private_key, Some(false), "enumerated first");
    assert_eq!(provider[1].has_private_key, Some(true));
    assert_eq!(twin.x509_identifier(), provider[1].x509_identifier());
    let exchange: Vec<String> = a
        .certificates_from(CertListingSource::ExchangeCertificate)
        .map(|c| c.row.thumbprint.clone())
        .collect();
    assert_eq!(exchange, std::slice::from_ref(&provider[1].thumbprint));
    assert!(!exchange.contains(&twin.thumbprint));

    // the send log's tail is the classic send log of docs/formats.md with the twin's thumbprint
    let lines: Vec<&str> = send.split("\r\n").filter(|l| !l.is_empty()).collect();
    let tail: Vec<String> = lines[lines.len() - 9..]
        .iter()
        .map(|l| tail_columns(l))
        .collect();
    assert_eq!(
        tail,
        [
            "<,220 2.0.0 SMTP server ready,".to_string(),
            "*,,Sending certificate".into(),
            format!("*,\"{}\",Certificate subject", fixtures::CONTOSO_SUBJECT),
            format!("*,\"{}\",Certificate issuer name", fixtures::ISSUING_CA),
            format!(
                "*,{},Certificate serial number",
                twin.serial_number.clone().unwrap()
            ),
            format!("*,{},Certificate thumbprint", twin.thumbprint),
            "*,mail.contoso.com,Certificate alternate names".into(),
            "*,,TLS negotiation failed with error NoCredentials".into(),
            "-,,Local".into(),
        ]
    );
    let s = &a.protocol.sessions[0];
    assert_eq!(s.kind, Some(LogKind::Send));
    assert_eq!(s.session.connector_id, "hybridlab send");
    let ev: Vec<&SessionEvent> = s.session.events.iter().map(|e| &e.event).collect();
    assert!(ev.contains(&&SessionEvent::TlsFailed {
        status: SecurityStatus::NoCredentials
    }));
    assert_eq!(
        ev.last(),
        Some(&&SessionEvent::Disconnected {
            reason: DisconnectReason::Local
        })
    );

    // the queue and the message: Retry with the misleading LED
    let q = &a.queues[0].row;
    assert_eq!(q.status, QueueStatus::Retry);
    let led = "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out";
    assert_eq!(q.last_error.as_ref().unwrap().led, led);
    assert_eq!(q.last_error.as_ref().unwrap().fqdn, SMART_HOST);
    assert_eq!(a.messages[0].row.last_error.as_ref().unwrap().led, led);
    assert_eq!(
        a.send_connectors[0].row.tls_certificate_name.as_deref(),
        Some(twin.x509_identifier().as_str())
    );
    assert!(matches!(
        a.connectivity.last().map(|(e, _)| e.note()),
        Some(ConnectivityNote::Summary { detail: Some(d), .. }) if d == "Retry : 421 4.4.1 Connection timed out"
    ));

    // the mock saw STARTTLS and no handshake
    tokio::time::timeout(Duration::from_secs(30), mock.wait_for_sessions(1))
        .await
        .unwrap();
    let r = &mock.records()[0];
    assert!(r.tls.is_none());
    assert!(r.commands().any(|c| c.eq_ignore_ascii_case("STARTTLS")));
}

#[tokio::test]
async fn keyed_twin_first_delivers_from_the_command_line() {
    let mock = MockEop::builder()
        .config(EopConfig::contoso())
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("eop-ca.pem");
    std::fs::write(&ca, mock.ca_pem()).unwrap();
    let out = work.path().join("out");
    let mut a = args(mock.local_addr().port(), &ca, "last", &out);
    a.extend(["--cert-block".to_string(), "one-line".to_string()]);
    let (code, stdout) = hybridlab_send(a).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("result: delivered (250 2.6.0 "), "{stdout}");
    assert!(stdout.contains(",Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names\n"), "{stdout}");
    assert!(
        stdout.contains(",Remote certificate Subject Issuer name Serial number"),
        "{stdout}"
    );
    let a = read_dir(&out).unwrap();
    assert_eq!(a.skipped_total(), 0);
    let q = &a.queues[0].row;
    assert_eq!((q.status, q.message_count), (QueueStatus::Ready, 0));
    assert!(q.last_error.is_none());
    assert!(a.messages.is_empty());
    assert!(matches!(
        a.connectivity.last().map(|(e, _)| e.note()),
        Some(ConnectivityNote::Summary {
            messages: 1,
            detail: None,
            ..
        })
    ));
    tokio::time::timeout(Duration::from_secs(30), mock.wait_for_messages(1))
        .await
        .unwrap();
}
