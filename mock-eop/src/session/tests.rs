//! Sans-IO session tests: a virtual clock, no tokio, no sockets.

use super::*;
use crate::attribution::VerdictKind;
use crate::config::MockFile;
use crate::fault::{Fault, Throttle};
use hybridlab_labkit::pki::{CertAuthority, CertSpec};
use hybridlab_model::record::{ChainVerdict, ClientCertificate};
use hybridlab_model::timespan::TimeSpan;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

const CONFIG: &str = r#"
[eop.limits]
max_message_size = 2000
idle_timeout = "00:05:00"

[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }, { domain = "contoso.mail.onmicrosoft.com" }]
[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
connector_type = "on_premises"
tls_sender_certificate_name = "mail.contoso.com"
require_tls = true
cloud_services_mail_enabled = true
"#;

fn config() -> EopConfig {
    MockFile::from_toml(CONFIG, "t.toml").unwrap().eop
}

/// A session and what its driver would have seen.
struct Probe {
    s: Session,
    now: OffsetDateTime,
    wire: Vec<u8>,
    writes: usize,
    closed: bool,
    starttls: Option<Option<HandshakeFault>>,
    messages: Vec<MessageRecord>,
    timer: Option<OffsetDateTime>,
    stalls: Vec<OffsetDateTime>,
}

impl Probe {
    fn new(cfg: EopConfig, faults: Vec<Fault>) -> Self {
        Self::at(cfg, faults, 0, "127.0.0.5:40001")
    }

    fn at(cfg: EopConfig, faults: Vec<Fault>, index: u64, peer: &str) -> Self {
        Self::with_book(cfg, Arc::new(FaultBook::new(faults, 7)), index, peer)
    }

    fn with_book(cfg: EopConfig, book: Arc<FaultBook>, index: u64, peer: &str) -> Self {
        let ctx = SessionContext {
            config: Arc::new(cfg),
            faults: book,
            index,
            seed: 7,
            peer: peer.parse().unwrap(),
            local: "127.0.0.1:25".parse().unwrap(),
        };
        let mut p = Self {
            s: Session::new(ctx, t0()),
            now: t0(),
            wire: Vec::new(),
            writes: 0,
            closed: false,
            starttls: None,
            messages: Vec::new(),
            timer: None,
            stalls: Vec::new(),
        };
        p.drain();
        p
    }

    fn drain(&mut self) {
        while let Some(a) = self.s.poll_action() {
            assert!(!self.closed, "action after Close: {a:?}");
            match a {
                Action::Write(b) => {
                    self.writes += 1;
                    self.wire.extend_from_slice(&b)
                }
                Action::Stall(t) => {
                    self.stalls.push(t);
                    self.now = t
                }
                Action::ArmTimer(t) => self.timer = Some(t),
                Action::StartTls(f) => self.starttls = Some(f),
                Action::Message(m) => self.messages.push(*m),
                Action::Close => self.closed = true,
            }
        }
    }

    /// Sends `input` and returns the reply text written in response.
    fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> String {
        let before = self.wire.len();
        self.s.handle_input(input, self.now);
        self.drain();
        String::from_utf8(self.wire[before..].to_vec()).unwrap()
    }

    fn banner(&self) -> String {
        let text = String::from_utf8(self.wire.clone()).unwrap();
        text.lines().next().unwrap_or("").to_string()
    }

    fn tls(&mut self, cert: Option<ClientCertificate>) {
        self.s.handle_tls_established(
            TlsFacts {
                version: "TLSv1_3".into(),
                cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
                sni: None,
                resumed: false,
                client_certificate: cert,
            },
            self.now,
        );
        self.drain();
    }

    fn finish(self) -> SessionRecord {
        let now = self.now;
        self.s.finish(now)
    }
}

fn client_cert(cn: &str, verdict: ChainVerdict) -> ClientCertificate {
    let root =
        CertAuthority::root(&CertSpec::authority("CN=Lab Root".parse().unwrap(), t0())).unwrap();
    let leaf = root.issue(&CertSpec::leaf(cn, t0())).unwrap();
    ClientCertificate {
        leaf: leaf.facts,
        chain: Vec::new(),
        verdict,
    }
}

const EHLO_PRE: &str = "250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.5]\r\n250-SIZE 2000\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EHLO_POST: &str = "250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.5]\r\n250-SIZE 2000\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

#[test]
fn hybrid_dialogue_with_starttls_and_certificate() {
    let mut p = Probe::new(config(), vec![]);
    let banner = p.banner();
    assert!(
        banner.starts_with(
            "220 AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at Sat, 2 May 2026 06:30:00 +0000 ["
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
fn cleartext_to_require_tls_connector_by_cert_name_is_not_possible_but_by_sender_is_unattributed() {
    // Without TLS there is no certificate: contoso's connector (certificate-based) cannot match,
    // so mail to the Internet is relay-denied and mail into the tenant is anonymous.
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(
        p.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
    assert!(
        p.send("RCPT TO:<someone@gmail.example>\r\n")
            .starts_with("550 5.7.64 TenantAttribution; Relay Access Denied [")
    );
    assert_eq!(
        p.send("RCPT TO:<bob@contoso.com>\r\n"),
        "250 2.1.5 Recipient OK\r\n"
    );
    let rec = p.finish();
    assert_eq!(
        rec.attribution,
        Some(AttributionVerdict::Unattributed {
            tenant: Some("contoso".into())
        })
    );
}

#[test]
fn ip_connector_with_require_tls_in_cleartext_gets_451_5_7_3() {
    let mut cfg = config();
    cfg.tenants[0].inbound_connectors[0].sender_ip_addresses = vec!["127.0.0.5".parse().unwrap()];
    let mut p = Probe::new(cfg, vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(
        p.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "451 5.7.3 STARTTLS is required to send mail\r\n"
    );
    // from another address the same connector does not match
    let mut cfg = config();
    cfg.tenants[0].inbound_connectors[0].sender_ip_addresses = vec!["127.0.0.5".parse().unwrap()];
    let mut q = Probe::at(cfg, vec![], 1, "127.0.0.6:40002");
    q.send("EHLO x\r\n");
    assert_eq!(
        q.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
}

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

#[test]
fn protocol_errors_and_long_lines() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("MAIL FROM:<a@b.example>\r\n"),
        "503 5.5.2 Send hello first\r\n"
    );
    assert_eq!(p.send("XYZZY\r\n"), "500 5.3.3 Unrecognized command\r\n");
    assert_eq!(p.send("EHLO\r\n"), "501 5.5.4 Invalid arguments\r\n");
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
    p.s.handle_tls_failed("peer is incompatible: no common protocol version", p.now);
    p.drain();
    assert!(p.closed);
    let rec = p.finish();
    assert_eq!(rec.close_reason, CloseReason::TlsFailed);
    assert!(rec.tls_error.unwrap().contains("no common protocol"));
}

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
fn helo_and_header_message_id() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("HELO legacy\r\n"),
        "250 AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.5]\r\n"
    );
    assert_eq!(
        header_message_id(b"Subject: x\r\nmessage-id:  abc@d \r\n\r\n"),
        Some("<abc@d>".into())
    );
    assert_eq!(
        header_message_id(b"Subject: x\r\n\r\nMessage-ID: <late@x>\r\n"),
        None
    );
    assert_eq!(header_message_id(b""), None);
}
