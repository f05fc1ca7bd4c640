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
