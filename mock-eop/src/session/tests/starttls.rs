//! STARTTLS and the outcome of the handshake.

use super::*;

#[test]
fn starttls_pipelined_plaintext_is_discarded_and_recorded() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\n");
    assert_eq!(
        p.send("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\n"),
        "220 2.0.0 SMTP server ready\r\n"
    );
    assert_eq!(p.send("RCPT TO:<x@y.example>\r\n"), "");
    p.tls(None);
    // the pre-TLS EHLO is forgotten
    assert_eq!(
        p.send("MAIL FROM:<a@b.example>\r\n"),
        "503 5.5.2 Send hello first\r\n"
    );
    assert_eq!(p.send("EHLO x\r\n"), EHLO_POST);
    assert_eq!(
        p.send("STARTTLS\r\n"),
        "503 5.5.2 Only one STARTTLS command can be issued per session\r\n"
    );
    let rec = p.finish();
    let d = rec.discarded_after_starttls.unwrap();
    assert_eq!(d.bytes, 58);
    assert!(
        d.preview
            .starts_with("MAIL FROM:<evil@attacker.example>\r\nRCPT")
    );
    assert!(rec.tls.is_some());
}

#[test]
fn tls_failure_ends_the_session() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\nSTARTTLS\r\n");
    p.s.handle_tls_failed(p.now, "peer is incompatible: no common protocol version");
    p.drain();
    assert!(p.closed);
    let rec = p.finish();
    assert_eq!(rec.close_reason, CloseReason::TlsFailed);
    assert!(rec.tls_error.unwrap().contains("no common protocol"));
}

#[test]
fn the_idle_timer_stops_for_the_handshake_and_restarts_after_it() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(p.timer, Some(t0() + time::Duration::minutes(5)));
    p.send("STARTTLS\r\n");
    assert_eq!(p.timer, None, "the driver's handshake timeout runs instead");
    // the handshake completes at the same virtual instant: the idle period starts again
    p.tls(None);
    assert_eq!(p.timer, Some(t0() + time::Duration::minutes(5)));
    p.now += time::Duration::minutes(2);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(p.timer, Some(t0() + time::Duration::minutes(7)));
    p.send("QUIT\r\n");
    assert!(p.closed);
    assert_eq!(p.timer, None);
}
