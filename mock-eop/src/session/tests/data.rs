//! DATA, BDAT and the size limit.

use super::*;

#[test]
fn bdat_chunks_and_empty_data() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    assert_eq!(
        p.send("BDAT 12\r\nSubject: a\r\n"),
        "250 2.6.0 CHUNK received OK, 12 octets\r\n"
    );
    // the chunk may arrive split, with the next command in the same read
    assert_eq!(p.send("BDAT 8 LAST\r\n\r\nbo"), "");
    let out = p.send("dy\r\nNOOP\r\n");
    assert!(out.starts_with("250 2.6.0 <"), "{out}");
    assert!(out.ends_with("250 2.0.0 OK\r\n"), "{out}");
    assert_eq!(&*p.messages[0].raw, b"Subject: a\r\n\r\nbody\r\n");
    assert_eq!(p.messages[0].transfer, "bdat");
    // BDAT 0 LAST completes at once; DATA with an empty body too
    p.send("MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    assert!(p.send("BDAT 0 LAST\r\n").starts_with("250 2.6.0 <"));
    p.send("MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    assert!(p.send(".\r\n").starts_with("250 2.6.0 <"));
    assert_eq!(p.messages.len(), 3);
    assert_eq!(p.messages[2].size, 0);
    // DATA after BDAT in one transaction, BDAT without a transaction (chunk swallowed)
    p.send("MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nBDAT 3\r\nabc");
    assert_eq!(p.send("DATA\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
    p.send("RSET\r\n");
    assert_eq!(
        p.send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
        "503 5.5.2 Need mail command\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn size_limits() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\n");
    assert_eq!(
        p.send("MAIL FROM:<a@gmail.example> SIZE=2001\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    p.send("MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    let big = "x".repeat(76) + "\r\n";
    let mut out = String::new();
    for _ in 0..40 {
        out.push_str(&p.send(&big));
    }
    assert_eq!(out, "");
    assert_eq!(
        p.send(".\r\nNOOP\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
    );
    assert!(p.messages.is_empty());
    // BDAT over the limit: the chunk is swallowed, then 552
    p.send("MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    let out = p.send(&format!("BDAT 2500 LAST\r\n{}NOOP\r\n", "y".repeat(2500)));
    assert_eq!(
        out,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn bdat_size_is_checked_before_buffering() {
    // issue 12: after BDAT 2, a huge declared chunk wrapped the size check and was buffered.
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\n");
    assert_eq!(
        p.send("BDAT 2\r\nab"),
        "250 2.6.0 CHUNK received OK, 2 octets\r\n"
    );
    assert_eq!(p.send("BDAT 18446744073709551614 LAST\r\n"), "");
    // The chunk is read and thrown away: nothing is kept.
    for _ in 0..64 {
        assert_eq!(p.send_bytes(&[b'x'; 64 * 1024]), "");
    }
    assert!(p.s.txn.is_none());
    assert!(p.messages.is_empty());
    // With oversize_bdat = "close": 552 at once, and the connection closes.
    let mut cfg = config();
    cfg.limits.oversize_bdat = crate::config::OversizeBdat::Close;
    let mut p = Probe::new(cfg, vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nBDAT 2\r\nab");
    assert_eq!(
        p.send("BDAT 18446744073709551614 LAST\r\nxxxx"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(p.closed);
    assert_eq!(p.finish().close_reason, CloseReason::Limit);
}

#[test]
fn bare_line_endings_kept_or_refused() {
    let body = "Subject: a\r\n\r\nline\nwith a bare LF\r\n.\r\n";
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    assert!(p.send(body).starts_with("250 2.6.0"));
    assert_eq!(
        &*p.messages[0].raw,
        b"Subject: a\r\n\r\nline\nwith a bare LF\r\n"
    );
    let mut cfg = config();
    cfg.limits.bare_line_endings = crate::config::BareLineEndings::Reject;
    let mut p = Probe::new(cfg, vec![]);
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    assert_eq!(
        p.send(body),
        "554 5.6.0 Invalid message content, contains bare linefeeds\r\n"
    );
    assert!(p.messages.is_empty());
}

#[test]
fn transcript_is_capped() {
    let mut cfg = config();
    cfg.limits.max_transcript_bytes = 4096;
    cfg.limits.max_protocol_errors = 1_000_000;
    let mut p = Probe::new(cfg, vec![]);
    let noop = format!("NOOP {}\r\n", "a".repeat(1000));
    for _ in 0..200 {
        p.send(&noop);
    }
    let rec = p.finish();
    let kept: usize = rec.transcript.len();
    assert!(kept < 20, "{kept} entries kept");
    let last = format!("{:?}", rec.transcript.last().unwrap());
    assert!(last.contains("transcript entries not kept"), "{last}");
}

#[test]
fn a_byte_at_a_time_does_not_hold_the_session() {
    let mut p = Probe::new(config(), vec![]);
    let idle = p.timer.unwrap();
    // Half a command line every minute: the idle deadline does not move.
    for _ in 0..3 {
        p.now += time::Duration::minutes(1);
        p.send("N");
        assert_eq!(p.timer, Some(idle));
    }
    p.now += time::Duration::minutes(1);
    p.send("OOP\r\n");
    assert!(p.timer.unwrap() > idle);
    // Message data slower than min_data_rate does not restart the timer either.
    p.send("EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n");
    let idle = p.timer.unwrap();
    for _ in 0..3 {
        p.now += time::Duration::seconds(2);
        p.send("x");
    }
    assert_eq!(p.timer, Some(idle));
}
