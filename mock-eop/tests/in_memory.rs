//! The mock over in-memory duplex streams under paused (virtual) time, as the harness runs it:
//! IP attribution from the address the session is told, idle timeouts and stalls in virtual
//! time, TLS handshake faults, recovery after the first N attempts, and a draining shutdown.

mod common;

use std::time::Duration;

use common::*;
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};
use hybridlab_model::record::CloseReason;
use hybridlab_model::timespan::TimeSpan;
use mock_eop::MockEop;
use mock_eop::fault::{Fault, FaultAction, Stage, TlsAlert};

/// Reply bound in virtual time (longer than any idle timeout or stall here).
const VIRTUAL: Duration = Duration::from_secs(3600);

/// An in-memory client whose session believes it comes from `peer`.
fn vclient(
    mock: &mock_eop::MockEopHandle,
    peer: impl AsRef<str>,
) -> Client<tokio::io::DuplexStream> {
    Client::new(mock.connect_in_memory(peer.as_ref().parse().unwrap())).with_bound(VIRTUAL)
}

async fn start_paused(
    faults: Vec<Fault>,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> mock_eop::MockEopHandle {
    start_paused_with(lab_tenants(), faults, roots).await
}

async fn start_paused_with(
    cfg: mock_eop::config::EopConfig,
    faults: Vec<Fault>,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> mock_eop::MockEopHandle {
    MockEop::builder()
        .config(cfg)
        .faults(faults)
        .seed(11)
        .clock(LabClock::starting_at(epoch()))
        .trust_roots(roots)
        .in_memory_only()
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn ip_attribution_in_memory_and_virtual_idle_timeout() {
    let mock = start_paused(vec![], vec![]).await;
    let mut c = vclient(&mock, "127.0.0.5:40001");
    let banner = c.reply().await;
    assert!(
        banner
            .text()
            .contains("ready at Sat, 2 May 2026 06:30:00 +0000 ["),
        "{banner}"
    );
    let ehlo = c.cmd("EHLO edge01.contoso.com").await;
    assert!(ehlo.lines[0].ends_with("Hello [127.0.0.5]"));
    let (_, r, end) = c
        .message(
            "alice@contoso.com",
            &["x@gmail.example"],
            "Subject: m\r\n\r\nx",
        )
        .await;
    assert!(r[0].is_positive());
    assert!(end.unwrap().is_positive());
    tokio::time::timeout(BOUND, mock.wait_for_messages(1))
        .await
        .unwrap();
    // now idle: the mock gives up after five virtual minutes
    let t = mock.clock().now();
    let r = c.reply().await;
    assert_eq!(r.one_line(), "451 4.7.0 Timeout waiting for client input");
    assert_eq!(mock.clock().now() - t, time::Duration::seconds(300));
    assert!(c.try_reply().await.is_none());
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].close_reason, CloseReason::IdleTimeout);
    assert_eq!(recs[0].peer.to_string(), "127.0.0.5:40001");
    assert_eq!(recs[0].ended_at, Some(epoch() + time::Duration::minutes(5)));
    assert_eq!(
        recs[0].messages[0].attribution,
        AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Contoso Edge by IP".into(),
            by: AttributedBy::Ip
        }
    );
}

#[tokio::test(start_paused = true)]
async fn stall_fault_delays_in_virtual_time_and_two_days_pass_in_an_instant() {
    let mock = start_paused(
        vec![Fault::new(
            Stage::Rcpt,
            FaultAction::Stall(TimeSpan::from_secs(120)),
        )],
        vec![],
    )
    .await;
    let mut c = vclient(&mock, "127.0.0.8:40001");
    c.reply().await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<a@gmail.example>").await;
    let t = mock.clock().now();
    assert_eq!(c.cmd("RCPT TO:<bob@contoso.com>").await.code, 250);
    assert_eq!(mock.clock().now() - t, time::Duration::seconds(120));
    c.cmd("QUIT").await;
    // two days later (virtual) a new session's banner shows the lab time
    tokio::time::sleep(Duration::from_secs(2 * 86_400)).await;
    let mut c = vclient(&mock, "127.0.0.8:40002");
    let b = c.reply().await;
    assert!(
        b.text().contains("ready at Mon, 4 May 2026 06:32:00 +0000"),
        "{b}"
    );
    c.cmd("QUIT").await;
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    assert_eq!(recs[0].faults_fired.len(), 1);
    assert_eq!(recs[0].faults_fired[0].action, "stall 00:02:00");
}

#[tokio::test(start_paused = true)]
async fn starttls_in_memory_with_certificate_attribution() {
    let ca = onprem_ca();
    let mock = start_paused(vec![], vec![ca.cert.der.clone()]).await;
    let cert = client_cert(&ca, "mail.contoso.com");
    let roots = vec![mock.ca_certificate().clone()];
    let c = vclient(&mock, "127.0.0.40:40001");
    let mut c = c.starttls(&roots, Some(&cert)).await.unwrap();
    let (_, _, end) = c
        .message(
            "alice@contoso.com",
            &["x@gmail.example"],
            "Subject: tls\r\n\r\nx",
        )
        .await;
    assert!(end.unwrap().is_positive());
    c.cmd("QUIT").await;
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    let r = &recs[0];
    // TLS 1.2 with an ECDHE-RSA suite: EOP's defaults
    assert_eq!(r.tls.as_ref().unwrap().version, "TLSv1_2");
    assert_eq!(
        r.tls.as_ref().unwrap().cipher_suite,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    );
    assert_eq!(
        r.attribution.as_ref().unwrap().kind(),
        VerdictKind::Attributed
    );
    assert_eq!(
        r.messages[0].attribution.connector(),
        Some("Inbound from contoso")
    );
}

#[tokio::test(start_paused = true)]
async fn handshake_faults_alert_garbage_and_close_after_starttls() {
    let roots_of = |m: &mock_eop::MockEopHandle| vec![m.ca_certificate().clone()];
    for (fault, expect) in [
        (
            Fault::new(
                Stage::TlsHandshake,
                FaultAction::TlsAlert(TlsAlert::ProtocolVersion),
            ),
            "ProtocolVersion",
        ),
        (
            Fault::new(
                Stage::Starttls,
                FaultAction::TlsGarbage("HTTP/1.0 400 Bad Request\r\n".into()),
            ),
            "",
        ),
        (Fault::new(Stage::TlsHandshake, FaultAction::Drop), ""),
    ] {
        let mock = start_paused(vec![fault], vec![]).await;
        let roots = roots_of(&mock);
        let c = vclient(&mock, "127.0.0.41:40001");
        let err = c
            .starttls(&roots, None)
            .await
            .err()
            .expect("handshake must fail");
        assert!(err.to_string().contains(expect), "{err}");
        let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
        assert_eq!(recs[0].close_reason, CloseReason::TlsFailed);
        assert!(recs[0].tls_error.as_ref().unwrap().starts_with("fault: "));
    }
    let mock = start_paused(
        vec![Fault::new(Stage::Starttls, FaultAction::CloseAfterStarttls)],
        vec![],
    )
    .await;
    let roots = roots_of(&mock);
    let c = vclient(&mock, "127.0.0.41:40001");
    assert!(c.starttls(&roots, None).await.is_err());
    mock.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn first_attempts_fail_then_recover() {
    let mock = start_paused(
        vec![Fault::new(Stage::Mail, FaultAction::Throttle(Default::default())).first(2)],
        vec![],
    )
    .await;
    let mut replies = Vec::new();
    for i in 0..3 {
        let mut c = vclient(&mock, format!("127.0.0.5:4000{i}"));
        c.reply().await;
        c.cmd("EHLO x").await;
        replies.push(c.cmd("MAIL FROM:<alice@contoso.com>").await.one_line());
        c.cmd("QUIT").await;
    }
    assert_eq!(
        replies,
        vec![
            "451 4.7.500 Server busy. Please try again later from [127.0.0.5]. (S77714)",
            "451 4.7.500 Server busy. Please try again later from [127.0.0.5]. (S77714)",
            "250 2.1.0 Sender OK"
        ]
    );
    mock.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_tells_open_sessions_421() {
    let mock = start_paused(vec![], vec![]).await;
    let mut c = vclient(&mock, "127.0.0.5:40001");
    c.reply().await;
    c.cmd("EHLO x").await;
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    assert_eq!(
        c.reply().await.one_line(),
        "421 4.3.2 Service not available"
    );
    assert!(c.try_reply().await.is_none());
    assert_eq!(recs[0].close_reason, CloseReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn version_and_cipher_restrictions() {
    // TLS 1.3 only on the endpoint, a TLS 1.2-only sender: no common version.
    let mut cfg = lab_tenants();
    cfg.tls.tls12 = false;
    cfg.tls.tls13 = true;
    let mock = start_paused_with(cfg, vec![], vec![]).await;
    let connector = tls_connector(&[mock.ca_certificate().clone()], None, true);
    let c = vclient(&mock, "127.0.0.42:40001");
    let err = c
        .starttls_with(connector)
        .await
        .err()
        .expect("no common version");
    assert!(err.to_string().contains("ProtocolVersion"), "{err}");
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    assert_eq!(recs[0].close_reason, CloseReason::TlsFailed);
    let tls_error = recs[0].tls_error.clone().unwrap();
    assert!(
        tls_error.contains("Tls12NotOfferedOrEnabled"),
        "{tls_error}"
    );

    // One cipher suite only: it is the one negotiated and recorded.
    let mut cfg = lab_tenants();
    cfg.tls.tls13 = true;
    cfg.tls.cipher_suites = vec!["TLS13_CHACHA20_POLY1305_SHA256".parse().unwrap()];
    let mock = start_paused_with(cfg, vec![], vec![]).await;
    let c = vclient(&mock, "127.0.0.42:40002");
    let mut c = c
        .starttls(&[mock.ca_certificate().clone()], None)
        .await
        .unwrap();
    c.cmd("QUIT").await;
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    let tls = recs[0].tls.as_ref().unwrap();
    assert_eq!(tls.cipher_suite, "TLS13_CHACHA20_POLY1305_SHA256");
    assert_eq!(tls.sni.as_deref(), Some("mail.protection.outlook.com"));
}
