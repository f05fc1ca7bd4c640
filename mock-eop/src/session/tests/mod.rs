//! Sans-IO session tests: a virtual clock, no tokio, no sockets. [`Probe`] plays the driver;
//! one module per protocol phase.

mod data;
mod dialogue;
mod envelope;
mod faults;
mod fidelity;
mod framing;
mod hello;
mod starttls;

use super::data::header_message_id;
use super::*;
use crate::attribution::{AttributionVerdict, VerdictKind};
use crate::fault::{Fault, FaultAction, Stage, Throttle};
use hybridlab_labkit::pki::{CertAuthority, CertSpec};
use hybridlab_model::record::{ChainVerdict, ClientCertificate, TlsFacts};
use hybridlab_model::timespan::TimeSpan;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

/// The contoso tenant ([`EopConfig::contoso`]) with a 2000-byte message size limit.
fn config() -> EopConfig {
    let mut cfg = EopConfig::contoso();
    cfg.limits.max_message_size = 2000;
    cfg
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
    /// What the driver's timer is set to after the last call.
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
                Action::StartTls(f) => self.starttls = Some(f),
                Action::Message(m) => self.messages.push(*m),
                Action::Close => self.closed = true,
            }
        }
        self.timer = self.s.poll_timeout();
    }

    /// Sends `input` and returns the reply text written in response.
    fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> String {
        let before = self.wire.len();
        self.s.handle_input(self.now, input);
        self.drain();
        String::from_utf8(self.wire[before..].to_vec()).unwrap()
    }

    fn banner(&self) -> String {
        let text = String::from_utf8(self.wire.clone()).unwrap();
        text.lines().next().unwrap_or("").to_string()
    }

    fn tls(&mut self, cert: Option<ClientCertificate>) {
        self.s.handle_tls_established(
            self.now,
            TlsFacts {
                version: "TLSv1_3".into(),
                cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
                sni: None,
                resumed: false,
                client_certificate: cert,
            },
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

const EHLO_PRE: &str = "250-AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.5]\r\n250-SIZE 2000\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EHLO_POST: &str = "250-AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.5]\r\n250-SIZE 2000\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
