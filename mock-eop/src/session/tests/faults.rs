//! Scripted faults at every stage.

use super::*;

#[test]
fn fault_reply_throttle_close421_drop_at_command_stages() {
    let faults = vec![
        Fault::rejects_at(
            Stage::Mail,
            "451 4.7.500 Access denied, please try again later",
        ),
        Fault::new(Stage::Rcpt, FaultAction::Throttle(Throttle::default())),
        Fault::new(Stage::Data, FaultAction::Close421),
    ];
    let mut p = Probe::new(config(), faults.clone());
    p.send("EHLO x\r\n");
    assert_eq!(
        p.send("MAIL FROM:<a@gmail.example>\r\n"),
        "451 4.7.500 Access denied, please try again later\r\n"
    );
    let rec = p.finish();
    assert_eq!(rec.faults_fired.len(), 1);
    assert_eq!(rec.faults_fired[0].stage, "mail");

    let mut p = Probe::new(config(), faults[1..].to_vec());
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\n");
    assert_eq!(
        p.send("RCPT TO:<bob@contoso.com>\r\n"),
        "451 4.7.500 Server busy. Please try again later from [127.0.0.5]. (S77714)\r\n"
    );
    let mut p = Probe::new(config(), faults[2..].to_vec());
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    assert_eq!(p.send("DATA\r\n"), "421 4.3.2 Service not available\r\n");
    assert!(p.closed);

    let mut p = Probe::new(
        config(),
        vec![Fault::new(Stage::EndOfData, FaultAction::Drop)],
    );
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    assert_eq!(p.send("hi\r\n.\r\n"), "");
    assert!(p.closed);
    assert!(p.messages.is_empty());
    assert_eq!(p.finish().close_reason, CloseReason::Fault);
}

#[test]
fn fault_at_connect_banner_and_stall() {
    let p = Probe::new(
        config(),
        vec![Fault::new(Stage::Connect, FaultAction::Drop)],
    );
    assert!(p.wire.is_empty());
    assert!(p.closed);

    let p = Probe::new(
        config(),
        vec![Fault::rejects_at(
            Stage::Banner,
            "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using Customer Block list (AS16012607)",
        )],
    );
    assert!(p.banner().starts_with("554 5.7.1 Service unavailable"));
    assert!(p.closed);

    let p = Probe::new(
        config(),
        vec![Fault::new(
            Stage::Connect,
            FaultAction::Stall(TimeSpan::from_secs(90)),
        )],
    );
    let later = t0() + time::Duration::seconds(90);
    assert_eq!(p.stalls, vec![later]);
    assert!(
        p.banner()
            .contains(" ready at Sat, 2 May 2026 06:31:30 +0000")
    );
    assert_eq!(p.timer, Some(later + time::Duration::minutes(5)));

    let mut p = Probe::new(
        config(),
        vec![Fault::new(
            Stage::Rcpt,
            FaultAction::Stall(TimeSpan::from_secs(30)),
        )],
    );
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\n");
    let writes = p.writes;
    assert_eq!(
        p.send("RCPT TO:<bob@contoso.com>\r\nNOOP\r\n"),
        "250 2.1.5 Recipient OK\r\n250 2.0.0 OK\r\n"
    );
    assert_eq!(p.stalls, vec![t0() + time::Duration::seconds(30)]);
    assert_eq!(p.writes, writes + 1);
}

#[test]
fn fault_omit_and_mask_starttls() {
    let mut p = Probe::new(
        config(),
        vec![Fault::new(Stage::Ehlo, FaultAction::OmitStarttls)],
    );
    assert!(!p.send("EHLO x\r\n").contains("STARTTLS"));
    assert_eq!(p.send("STARTTLS\r\n"), "500 5.3.3 Unrecognized command\r\n");

    let mut p = Probe::new(
        config(),
        vec![Fault::new(Stage::Connect, FaultAction::MaskStarttls)],
    );
    let banner = p.banner();
    assert!(banner.starts_with("220 ****"), "{banner}");
    assert!(banner[4..].chars().all(|c| c == '*'));
    let ehlo = p.send("EHLO x\r\n");
    assert!(ehlo.contains("250-XXXXXXXA\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"));
    assert_eq!(p.send("STARTTLS\r\n"), "500 5.3.3 Unrecognized command\r\n");
}

#[test]
fn fault_starttls_and_handshake_stages() {
    let mut p = Probe::new(
        config(),
        vec![Fault::new(Stage::Starttls, FaultAction::CloseAfterStarttls)],
    );
    assert_eq!(
        p.send("EHLO x\r\nSTARTTLS\r\n").lines().last(),
        Some("220 2.0.0 SMTP server ready")
    );
    assert!(p.closed);
    assert_eq!(p.starttls, None);

    for (fault, expect) in [
        (
            Fault::new(
                Stage::TlsHandshake,
                FaultAction::TlsAlert(TlsAlert::ProtocolVersion),
            ),
            HandshakeFault::Alert(TlsAlert::ProtocolVersion),
        ),
        (
            Fault::new(Stage::Starttls, FaultAction::TlsGarbage("garbage".into())),
            HandshakeFault::Garbage(b"garbage".to_vec()),
        ),
        (
            Fault::new(Stage::TlsHandshake, FaultAction::Drop),
            HandshakeFault::Drop,
        ),
    ] {
        let mut p = Probe::new(config(), vec![fault]);
        p.send("EHLO x\r\n");
        assert_eq!(p.send("STARTTLS\r\n"), "220 2.0.0 SMTP server ready\r\n");
        assert_eq!(p.starttls, Some(Some(expect)));
    }

    let mut p = Probe::new(
        config(),
        vec![Fault::new(
            Stage::TlsHandshake,
            FaultAction::Stall(TimeSpan::from_secs(20)),
        )],
    );
    p.send("EHLO x\r\nSTARTTLS\r\n");
    assert_eq!(p.starttls, Some(None));
    assert_eq!(p.stalls, vec![t0() + time::Duration::seconds(20)]);

    let mut p = Probe::new(
        config(),
        vec![Fault::rejects_at(
            Stage::Starttls,
            "454 4.7.0 TLS not available due to temporary reason",
        )],
    );
    p.send("EHLO x\r\n");
    assert_eq!(
        p.send("STARTTLS\r\n"),
        "454 4.7.0 TLS not available due to temporary reason\r\n"
    );
    assert_eq!(p.starttls, None);
    assert_eq!(p.send("NOOP\r\n"), "250 2.0.0 OK\r\n");
}

#[test]
fn fault_post_tls_ehlo_and_end_of_data_reply() {
    let mut p = Probe::new(
        config(),
        vec![Fault::rejects_at(
            Stage::PostTlsEhlo,
            "421 4.3.2 System not accepting network messages",
        )],
    );
    p.send("EHLO x\r\nSTARTTLS\r\n");
    p.tls(None);
    assert_eq!(
        p.send("EHLO x\r\n"),
        "421 4.3.2 System not accepting network messages\r\n"
    );
    assert!(p.closed);

    let mut p = Probe::new(
        config(),
        vec![Fault::rejects_at(
            Stage::EndOfData,
            "451 4.4.4 Temporary server error. Please try again later ATTR1",
        )],
    );
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    assert_eq!(
        p.send("x\r\n.\r\n"),
        "451 4.4.4 Temporary server error. Please try again later ATTR1\r\n"
    );
    assert!(p.messages.is_empty());
    // BDAT: the data-stage fault swallows the chunk first
    let mut p = Probe::new(
        config(),
        vec![Fault::rejects_at(
            Stage::Data,
            "452 4.3.1 Insufficient system resources",
        )],
    );
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    assert_eq!(
        p.send("BDAT 4 LAST\r\nabcdNOOP\r\n"),
        "452 4.3.1 Insufficient system resources\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn first_attempts_recover_across_sessions() {
    let book = Arc::new(FaultBook::new(
        vec![Fault::new(Stage::Connect, FaultAction::Close421).first(2)],
        1,
    ));
    let banners: Vec<String> = (0..3)
        .map(|i| Probe::with_book(config(), Arc::clone(&book), i, "127.0.0.5:40001").banner())
        .collect();
    assert_eq!(banners[0], "421 4.3.2 Service not available");
    assert_eq!(banners[1], "421 4.3.2 Service not available");
    assert!(banners[2].starts_with("220 "));
}
