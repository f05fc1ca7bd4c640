//! Command framing: pipelining, long lines, protocol errors.

use super::*;

#[test]
fn pipelined_commands_get_one_batched_write() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\n");
    let writes = p.writes;
    let out = p.send(
        "MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nRCPT TO:<carol@contoso.com>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    assert_eq!(p.writes, writes + 1);
    let out = p.send("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
    assert!(out.starts_with("250 2.6.0 <"), "{out}");
    assert!(out.ends_with("221 2.0.0 Service closing transmission channel\r\n"));
    assert_eq!(
        p.messages[0].rcpt_to,
        vec!["bob@contoso.com", "carol@contoso.com"]
    );
    assert_eq!(
        p.messages[0].attribution,
        AttributionVerdict::Unattributed {
            tenant: Some("contoso".into())
        }
    );
}

#[test]
fn protocol_errors_and_long_lines() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("MAIL FROM:<a@b.example>\r\n"),
        "503 5.5.2 Send hello first\r\n"
    );
    assert_eq!(
        p.send("XYZZY\r\n"),
        "500 5.3.3 Unrecognized command 'XYZZY'\r\n"
    );
    assert!(
        p.send("EHLO\r\n")
            .starts_with("501 5.5.4 Unrecognized parameter [")
    );
    let long = format!("NOOP {}\r\n", "a".repeat(5000));
    assert_eq!(p.send(&long), "500 5.5.2 Line too long\r\n");
    // long line split over reads
    assert_eq!(p.send(&"b".repeat(3000)), "");
    assert_eq!(p.send(&"b".repeat(3000)), "");
    assert_eq!(p.send("\r\n"), "500 5.5.2 Line too long\r\n");
    assert_eq!(
        p.send("AUTH LOGIN\r\n"),
        "421 4.7.0 Too many errors on this connection, closing transmission channel\r\n"
    );
    assert!(p.closed);
    let rec = p.finish();
    assert_eq!(rec.protocol_errors, 6);
    assert_eq!(rec.close_reason, CloseReason::TooManyErrors);
}
