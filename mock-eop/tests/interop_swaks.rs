//! Interop with swaks (a real Perl SMTP client on OpenSSL): STARTTLS with a client certificate
//! against the in-process mock. The right certificate is attributed to the OnPremises connector
//! and may relay; a wrong one is refused 5.7.64 for an external recipient. Skips (with a notice)
//! when swaks is missing, unless CI is set.

mod common;

use common::*;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};

struct Files {
    _dir: tempfile::TempDir,
    ca: String,
    cert: String,
    key: String,
}

fn files(mock: &mock_eop::MockEopHandle, cert: &hybridlab_labkit::pki::IssuedCert) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    write_file(&p("ca.pem"), &mock.ca_pem(), false);
    write_file(&p("client.pem"), &cert.cert_pem(), false);
    write_file(&p("client.key"), &cert.key_pem(), true);
    Files {
        ca: p("ca.pem").display().to_string(),
        cert: p("client.pem").display().to_string(),
        key: p("client.key").display().to_string(),
        _dir: dir,
    }
}

async fn swaks(mock: &mock_eop::MockEopHandle, f: &Files, to: &str) -> (i32, String) {
    let args = [
        "swaks",
        "--server",
        "127.0.0.1",
        "--port",
        &mock.local_addr().port().to_string(),
        "--ehlo",
        "edge01.contoso.com",
        "--from",
        "alice@contoso.com",
        "--to",
        to,
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        &f.ca,
        "--tls-sni",
        "mail.protection.outlook.com",
        "--tls-cert",
        &f.cert,
        "--tls-key",
        &f.key,
        "--header",
        "Subject: swaks interop",
        "--timeout",
        "15",
    ]
    .map(String::from)
    .to_vec();
    let out = run_program(args, 60).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn swaks_starttls_with_client_certificate() {
    if !have_program("swaks") {
        return;
    }
    let ca = onprem_ca();
    let mock = start(lab_tenants(), vec![], vec![ca.cert.der.clone()]).await;

    // The on-prem certificate: attributed, relay to the Internet allowed.
    let good = files(&mock, &client_cert(&ca, "mail.contoso.com"));
    let (code, text) = swaks(&mock, &good, "someone@gmail.example").await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("<-  220 AMS0EPF0000019A.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at "), "{text}");
    assert!(text.contains("<-  250-STARTTLS"), "{text}");
    assert!(text.contains("=== TLS started with cipher"), "{text}");
    assert!(text.contains("<~  250 2.6.0 <"), "{text}");

    // A certificate for another name: refused for an external recipient.
    let wrong = files(&mock, &client_cert(&ca, "smtp.contoso.net"));
    let (code, text) = swaks(&mock, &wrong, "someone@gmail.example").await;
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("<~* 550 5.7.64 TenantAttribution; Relay Access Denied [AMS0EPF0000019A.eurprd04.prod.outlook.com "),
        "{text}"
    );

    tokio::time::timeout(BOUND, mock.wait_for_sessions(2))
        .await
        .unwrap();
    let recs = mock.records();
    assert_eq!(
        recs[0].attribution,
        Some(AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso".into(),
            by: AttributedBy::Certificate
        })
    );
    let cc = recs[0]
        .tls
        .as_ref()
        .unwrap()
        .client_certificate
        .as_ref()
        .unwrap();
    assert!(cc.leaf.subject.starts_with("CN=mail.contoso.com"));
    assert_eq!(recs[0].messages.len(), 1);
    assert_eq!(
        recs[0].messages[0]
            .parsed
            .as_ref()
            .unwrap()
            .subject
            .as_deref(),
        Some("swaks interop")
    );
    assert_eq!(
        recs[1].attribution.as_ref().unwrap().kind(),
        VerdictKind::RelayDenied
    );
    assert!(recs[1].messages.is_empty());
    mock.shutdown().await;
}
