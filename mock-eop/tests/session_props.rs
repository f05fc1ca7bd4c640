//! Property tests of the sans-IO session (no tokio, fixed virtual time):
//! - arbitrary byte streams never panic and every byte written is a well-formed reply;
//! - the same input split at any chunk boundaries gives the same record and the same bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_model::record::{SessionRecord, TlsFacts};
use hybridlab_model::reply::Reply;
use hybridlab_model::timespan::TimeSpan;
use mock_eop::config::{EopConfig, MockFile};
use mock_eop::fault::{Fault, FaultAction, FaultBook, ReplyLine, Stage, TlsAlert};
use mock_eop::session::{Action, ProtocolCore, Session, SessionContext};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

fn config(small: bool) -> EopConfig {
    let mut cfg = MockFile::from_toml(
        r#"
[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com" }]
[[eop.tenants.inbound_connectors]]
name = "by ip"
connector_type = "on_premises"
sender_ip_addresses = ["127.0.0.5"]
"#,
        "p.toml",
    )
    .unwrap()
    .eop;
    if small {
        cfg.limits.max_line_length = 64;
        cfg.limits.max_message_size = 100;
        cfg.limits.max_recipients = 2;
        cfg.limits.max_protocol_errors = 50;
    }
    cfg
}

struct Run {
    wire: Vec<u8>,
    record: SessionRecord,
}

/// Every kind of fault at some stage, each armed with probability 1/2 (seeded).
fn faults() -> Vec<Fault> {
    let f = |stage, action| Fault::new(stage, action).with_probability(0.5);
    vec![
        f(Stage::Connect, FaultAction::Stall(TimeSpan::from_secs(3))),
        f(Stage::Banner, FaultAction::MaskStarttls),
        f(Stage::Ehlo, FaultAction::OmitStarttls),
        f(Stage::Starttls, FaultAction::TlsGarbage("garbage".into())),
        f(
            Stage::TlsHandshake,
            FaultAction::TlsAlert(TlsAlert::HandshakeFailure),
        ),
        f(Stage::PostTlsEhlo, FaultAction::Close421),
        f(Stage::Mail, FaultAction::Throttle(Default::default())),
        f(
            Stage::Rcpt,
            FaultAction::Reply(ReplyLine(Reply::new(451, "4.7.0 later"))),
        ),
        f(
            Stage::Data,
            FaultAction::Reply(ReplyLine(Reply::new(554, "5.6.0 no"))),
        ),
        f(Stage::EndOfData, FaultAction::Drop),
    ]
}

/// Feeds `chunks` in order; with `tls`, answers StartTls with a completed handshake (or a failed
/// one when a handshake fault fired).
fn run(cfg: &Arc<EopConfig>, chunks: &[&[u8]], tls: bool) -> Run {
    run_with(cfg, chunks, tls, Vec::new(), 1)
}

fn run_with(
    cfg: &Arc<EopConfig>,
    chunks: &[&[u8]],
    tls: bool,
    faults: Vec<Fault>,
    seed: u64,
) -> Run {
    let peer: SocketAddr = "127.0.0.5:40001".parse().unwrap();
    let ctx = SessionContext {
        config: Arc::clone(cfg),
        faults: Arc::new(FaultBook::new(faults, seed)),
        index: 0,
        seed,
        peer,
        local: "127.0.0.1:25".parse().unwrap(),
    };
    let mut s = Session::new(ctx, now());
    let mut wire = Vec::new();
    let mut closed = false;
    // Between StartTls and the handshake's outcome (for good when `tls` is off).
    let mut handshake = false;
    let drain = |s: &mut Session, wire: &mut Vec<u8>, closed: &mut bool, handshake: &mut bool| {
        let mut start_tls = None;
        while let Some(a) = s.poll_action() {
            assert!(!*closed, "action after Close: {a:?}");
            match a {
                Action::Write(b) => wire.extend_from_slice(&b),
                Action::Close => *closed = true,
                Action::StartTls(f) => {
                    *handshake = true;
                    start_tls = Some(f.is_none());
                }
                Action::Stall(_) | Action::Message(_) => {}
            }
        }
        assert_eq!(
            *closed,
            s.is_closed(),
            "Close is the last action of a closed session"
        );
        assert_eq!(
            s.poll_timeout().is_none(),
            *closed || *handshake,
            "a timer runs exactly while the session is open and not in the handshake"
        );
        start_tls
    };
    let _ = drain(&mut s, &mut wire, &mut closed, &mut handshake);
    for c in chunks {
        s.handle_input(now(), c);
        let started = drain(&mut s, &mut wire, &mut closed, &mut handshake);
        if started == Some(false) && tls {
            s.handle_tls_failed(now(), "handshake fault");
            drain(&mut s, &mut wire, &mut closed, &mut handshake);
        }
        if started == Some(true) && tls {
            s.handle_tls_established(
                now(),
                TlsFacts {
                    version: "TLSv1_3".into(),
                    cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
                    sni: None,
                    resumed: false,
                    client_certificate: None,
                },
            );
            handshake = false;
            let _ = drain(&mut s, &mut wire, &mut closed, &mut handshake);
        }
    }
    s.handle_eof(now());
    let _ = drain(&mut s, &mut wire, &mut closed, &mut handshake);
    assert!(closed, "the session must close at EOF");
    Run {
        wire,
        record: s.finish(now()),
    }
}

/// Every line is `ddd-text` or `ddd text`, CRLF-terminated, multi-line replies keep one code.
fn assert_well_formed(wire: &[u8]) {
    assert!(
        wire.is_empty() || wire.ends_with(b"\r\n"),
        "unterminated output"
    );
    let text = String::from_utf8(wire.to_vec()).expect("replies are UTF-8");
    let mut open: Option<&str> = None;
    for line in text.split_terminator("\r\n") {
        assert!(line.len() >= 4, "short reply line {line:?}");
        let (code, rest) = line.split_at(3);
        assert!(
            code.bytes().all(|b| b.is_ascii_digit()),
            "bad code in {line:?}"
        );
        let n: u16 = code.parse().unwrap();
        assert!((200..=599).contains(&n), "code out of range in {line:?}");
        assert!(
            !rest[1..].contains('\n') && !rest.contains('\r'),
            "{line:?}"
        );
        if let Some(c) = open {
            assert_eq!(c, code, "multi-line reply changed code");
        }
        open = match rest.as_bytes()[0] {
            b'-' => Some(code),
            b' ' => None,
            _ => panic!("bad separator in {line:?}"),
        };
    }
    assert!(open.is_none(), "multi-line reply not finished");
}

fn smtpish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"EHLO edge01.contoso.com\r\n".to_vec()),
        Just(b"HELO x\r\n".to_vec()),
        Just(b"MAIL FROM:<alice@contoso.com>\r\n".to_vec()),
        Just(b"MAIL FROM:<> SIZE=99999999999\r\n".to_vec()),
        Just(b"MAIL FROM:<a@gmail.example> BODY=8BITMIME SMTPUTF8\r\n".to_vec()),
        Just(b"RCPT TO:<bob@contoso.com>\r\n".to_vec()),
        Just(b"RCPT TO:<x@gmail.example> NOTIFY=NEVER\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 5\r\n".to_vec()),
        Just(b"BDAT 3 LAST\r\n".to_vec()),
        Just(b"BDAT 0 LAST\r\n".to_vec()),
        Just(b"Subject: hi\r\n\r\nbody\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"..x\r\n".to_vec()),
        Just(b"\n.\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"VRFY bob\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(vec![b'A'; 70]),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..2048), smtpish()]
}

/// Splits `bytes` at the (sorted, deduplicated) cut points.
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts {
        out.push(&bytes[at..c]);
        at = c;
    }
    out.push(&bytes[at..]);
    out
}

/// Deterministic by default (fixed seed, 384 cases); `PROPTEST_RNG_SEED` / `PROPTEST_CASES` in
/// the environment explore further.
fn prop_config() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            base.cases
        } else {
            384
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            base.rng_seed
        } else {
            RngSeed::Fixed(0x4859_4252_4944)
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..base
    }
}

proptest! {
    #![proptest_config(prop_config())]

    #[test]
    fn never_panics_and_replies_are_well_formed(bytes in input(), small in any::<bool>(), tls in any::<bool>(), with_faults in any::<bool>(), seed in any::<u64>(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let cfg = Arc::new(config(small));
        let list = if with_faults { faults() } else { Vec::new() };
        let r = run_with(&cfg, &split(&bytes, &cuts), tls, list, seed);
        assert_well_formed(&r.wire);
        prop_assert!(with_faults || r.wire.starts_with(b"220 "));
        prop_assert!(r.record.ended_at.is_some());
        let replies = r.record.replies().count();
        let lines = String::from_utf8(r.wire).unwrap().split_terminator("\r\n").filter(|l| l.as_bytes().get(3) == Some(&b' ')).count();
        prop_assert_eq!(replies, lines, "every reply written is in the record");
    }

    #[test]
    fn chunking_does_not_change_the_record(bytes in input(), small in any::<bool>(), cuts in proptest::collection::vec(any::<usize>(), 1..12)) {
        let cfg = Arc::new(config(small));
        let whole = run(&cfg, &[&bytes], false);
        let pieces = run(&cfg, &split(&bytes, &cuts), false);
        let faulty = run_with(&cfg, &[&bytes], false, faults(), cuts[0] as u64);
        let faulty_pieces = run_with(&cfg, &split(&bytes, &cuts), false, faults(), cuts[0] as u64);
        prop_assert_eq!(&faulty.record, &faulty_pieces.record);
        prop_assert_eq!(&whole.wire, &pieces.wire);
        prop_assert_eq!(&whole.record, &pieces.record);
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let bytewise = run(&cfg, &singles, false);
        prop_assert_eq!(&whole.record, &bytewise.record);
    }
}

/// The envelope sent before each message of the smuggling property.
const ENVELOPE: &[u8] = b"MAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n";

/// The reference for the end of DATA, written independently of the session: `.` alone on a
/// line, the line start being the start of the data or right after `<CRLF>`. Returns the wire
/// input (the envelope inserted after every end of data) and how many messages it holds.
fn smuggling_input(noise: &[u8]) -> (Vec<u8>, usize) {
    let mut data = noise.to_vec();
    data.extend_from_slice(b"\r\n.\r\n");
    let mut wire = b"EHLO x\r\n".to_vec();
    wire.extend_from_slice(ENVELOPE);
    let (mut pos, mut line_start, mut ends) = (0, true, 0);
    while pos < data.len() {
        let rest = &data[pos..];
        if line_start && rest.starts_with(b".\r\n") {
            wire.extend_from_slice(b".\r\n");
            ends += 1;
            pos += 3;
            if pos < data.len() {
                wire.extend_from_slice(ENVELOPE);
            }
        } else if rest.starts_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
            line_start = true;
            pos += 2;
        } else {
            wire.push(rest[0]);
            line_start = false;
            pos += 1;
        }
    }
    wire.extend_from_slice(b"QUIT\r\n");
    (wire, ends)
}

proptest! {
    #![proptest_config(prop_config())]

    /// Every sequence of CR, LF, dot and text in DATA: the number of messages accepted equals
    /// the number of proper `<CRLF>.<CRLF>` terminators (issue 12: `<CRLF>.<CR><CR><LF>` ended
    /// DATA and smuggled a second message), whatever the read boundaries.
    #[test]
    fn messages_equal_proper_terminators(
        noise in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x')], 0..48),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut cfg = config(false);
        cfg.limits.max_protocol_errors = 1000;
        let cfg = Arc::new(cfg);
        let (wire, ends) = smuggling_input(&noise);
        let r = run(&cfg, &split(&wire, &cuts), false);
        prop_assert_eq!(r.record.messages.len(), ends, "{:?}", String::from_utf8_lossy(&wire));
        prop_assert_eq!(r.record.protocol_errors, 0);
        prop_assert_eq!(r.record.close_reason, hybridlab_model::record::CloseReason::Quit);
    }
}

#[test]
fn smuggling_variants_of_issue_12_stay_in_the_body() {
    let cfg = Arc::new(config(false));
    for end in [
        "\r\n.\r\r\n",
        "\r\n.\r\r\r\n",
        "\n.\n",
        "\r\n.\n",
        "\n.\r\n",
    ] {
        let input = format!(
            "EHLO x\r\nMAIL FROM:<a@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\nhi{end}MAIL FROM:<evil@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
        );
        let r = run(&cfg, &[input.as_bytes()], false);
        assert_eq!(r.record.messages.len(), 1, "{end:?}");
        assert!(
            String::from_utf8_lossy(&r.record.messages[0].raw).contains("evil@gmail.example"),
            "{end:?}"
        );
    }
}
