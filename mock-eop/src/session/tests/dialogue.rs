//! The whole dialogue, the timers (idle, session lifetime) and the end of a session.

use super::*;

#[test]
fn hybrid_dialogue_with_starttls_and_certificate() {
    let mut p = Probe::new(config(), vec![]);
    let banner = p.banner();
    assert!(
        banner.starts_with(
            "220 AMS0EPF0000019A.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at Sat, 2 May 2026 06:30:00 +0000 ["
        ),
        "{banner}"
    );
    let sid = &banner[banner.len() - 17..banner.len() - 1];
    assert_eq!(sid.len(), 16);
    assert!(
        sid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    assert_eq!(sid, p.s.session_id());
    assert_eq!(p.timer, Some(t0() + time::Duration::minutes(5)));

    assert_eq!(p.send("EHLO edge01.contoso.com\r\n"), EHLO_PRE);
    assert_eq!(p.send("STARTTLS\r\n"), "220 2.0.0 SMTP server ready\r\n");
    assert_eq!(p.starttls, Some(None));
    p.tls(Some(client_cert("mail.contoso.com", ChainVerdict::Valid)));
    assert_eq!(p.send("EHLO edge01.contoso.com\r\n"), EHLO_POST);
    assert_eq!(
        p.send("MAIL FROM:<alice@contoso.com> SIZE=120\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(
        p.send("RCPT TO:<bob@contoso.mail.onmicrosoft.com>\r\n"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert_eq!(
        p.send("DATA\r\n"),
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    let msg = "Message-ID: <a1@EXCH01.contoso.com>\r\nX-MS-Exchange-CrossPremises-AuthAs: Internal\r\nSubject: hi\r\n\r\n..dot line\r\nbody\r\n";
    let reply = p.send(&format!("{msg}.\r\n"));
    assert!(
        reply.starts_with("250 2.6.0 <a1@EXCH01.contoso.com> [InternalId="),
        "{reply}"
    );
    assert!(
        reply.ends_with(
            ", Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] 115 bytes in 0.000, 112.305 KB/sec Queued mail for delivery\r\n"
        ),
        "{reply}"
    );
    assert_eq!(p.messages.len(), 1);
    let m = &p.messages[0];
    assert_eq!(&*m.raw, msg.replace("..dot", ".dot").as_bytes());
    assert_eq!(m.size, 115);
    assert_eq!(m.attribution.kind(), VerdictKind::Attributed);
    assert!(m.cross_premises_honoured);
    assert!(m.tls);
    assert_eq!(m.internal_id.to_string().len(), 14);
    assert_eq!(
        p.send("QUIT\r\n"),
        "221 2.0.0 Service closing transmission channel\r\n"
    );
    assert!(p.closed);
    let rec = p.finish();
    assert_eq!(rec.close_reason, CloseReason::Quit);
    assert_eq!(rec.helo.as_deref(), Some("edge01.contoso.com"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(
        rec.attribution.as_ref().map(|v| v.kind().as_str()),
        Some("attributed")
    );
    let mut m = rec.messages[0].clone();
    m.ensure_parsed();
    let parsed = m.parsed.unwrap();
    assert_eq!(parsed.subject.as_deref(), Some("hi"));
    assert_eq!(parsed.cross_premises.len(), 1);
    assert_eq!(
        rec.commands().collect::<Vec<_>>(),
        vec![
            "EHLO edge01.contoso.com",
            "STARTTLS",
            "EHLO edge01.contoso.com",
            "MAIL FROM:<alice@contoso.com> SIZE=120",
            "RCPT TO:<bob@contoso.mail.onmicrosoft.com>",
            "DATA",
            "QUIT"
        ]
    );
}

#[test]
fn shutdown_and_eof() {
    let mut p = Probe::new(config(), vec![]);
    p.s.handle_shutdown(p.now);
    p.drain();
    assert!(String::from_utf8_lossy(&p.wire).ends_with("421 4.3.2 Service not available\r\n"));
    assert_eq!(p.finish().close_reason, CloseReason::Shutdown);

    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\npartial");
    p.s.handle_eof(p.now);
    p.drain();
    assert!(p.closed);
    assert!(p.messages.is_empty());
    assert_eq!(p.finish().close_reason, CloseReason::ClientClosed);
}

#[test]
fn idle_timeout_is_driven_by_now() {
    let mut p = Probe::new(config(), vec![]);
    p.now += time::Duration::minutes(4);
    p.send("EHLO x\r\n");
    let deadline = t0() + time::Duration::minutes(9);
    assert_eq!(p.timer, Some(deadline));
    // an early wake-up does nothing
    p.s.handle_timeout(deadline - time::Duration::seconds(1));
    p.drain();
    assert!(!p.closed);
    let before = p.wire.len();
    p.s.handle_timeout(deadline);
    p.drain();
    assert_eq!(
        String::from_utf8_lossy(&p.wire[before..]),
        "451 4.7.0 Timeout waiting for client input\r\n"
    );
    assert!(p.closed);
    assert_eq!(p.finish().close_reason, CloseReason::IdleTimeout);
}

#[test]
fn session_timeout_when_configured() {
    let mut cfg = config();
    cfg.limits.session_timeout = Some(TimeSpan::from_secs(60));
    let mut p = Probe::new(cfg, vec![]);
    assert_eq!(p.timer, Some(t0() + time::Duration::minutes(1)));
    p.s.handle_timeout(t0() + time::Duration::minutes(1));
    p.drain();
    assert!(String::from_utf8_lossy(&p.wire).ends_with("421 4.4.1 Connection timed out\r\n"));
    assert_eq!(p.finish().close_reason, CloseReason::SessionTimeout);
}
