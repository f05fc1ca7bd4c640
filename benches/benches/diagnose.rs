//! `diagnose` over a large send log generated in memory with the lab's protocol-log writer:
//! hybrid sessions that deliver over TLS (classic certificate blocks), Internet sessions, and a
//! tenth failing with NoCredentials (the classic case), interleaved like a busy Edge server's log,
//! plus a certificate listing and a queue. Throughput is the log's bytes.
//!
//! - `diagnose/read+diagnose`: bytes to findings (decode, CSV, session rebuild, model, rules).
//! - `diagnose/rules`: the model and rules alone, on the already-read artefacts.
//!
//! Size: `HYBRIDLAB_BENCH_MB` (default 200 MB of log, split into 10 MB files as Exchange writes
//! them). `HYBRIDLAB_BENCH_MB=20 cargo bench -p benches --bench diagnose` for a quick run.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hybridlab_artefacts::certs::{CertListingRow, write_cert_provider_list};
use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::protocol_log::{
    CertRole, LogWriterOptions, ProtocolLogSession, SessionEvent, TimedEvent, write_files,
};
use hybridlab_artefacts::ps::parse_iso;
use hybridlab_artefacts::{ArtefactReader, Artefacts};
use hybridlab_diagnose::{Options, diagnose};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;

fn cert(subject: &str, issuer: &str, thumb: &str, names: &[&str]) -> CertFacts {
    let t = |s: &str| parse_iso(s).expect("fixed time");
    CertFacts {
        subject: subject.into(),
        issuer: issuer.into(),
        serial: "0E7B52A9D3C84F1E6A2B9C0D7F31E845".into(),
        thumbprint: thumb.into(),
        not_before: t("2019-04-24T00:00:00Z"),
        not_after: t("2021-04-28T12:00:00Z"),
        common_names: vec![names[0].into()],
        dns_names: names.iter().map(|n| (*n).to_string()).collect(),
        is_self_signed: subject == issuer,
        is_ca: false,
        public_key_bits: 2048,
        key_algorithm: "RSA".into(),
        extended_key_usages: vec![],
    }
}

const SUBJECT: &str = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US";
const ISSUER: &str = "CN=DigiCert SHA2 Secure Server CA, O=DigiCert Inc, C=US";
const KEYED: &str = "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41";
const KEYLESS: &str = "3D1F0A6B9C2E8D4F7A5B1C0E9D8F6A4B2C7E5D31";

struct Gen {
    keyed: CertFacts,
    keyless: CertFacts,
    edge: CertFacts,
    eop: CertFacts,
    google: CertFacts,
}

impl Gen {
    fn new() -> Self {
        Self {
            keyed: cert(
                SUBJECT,
                ISSUER,
                KEYED,
                &["mail.contoso.com", "autodiscover.contoso.com"],
            ),
            keyless: cert(
                SUBJECT,
                ISSUER,
                KEYLESS,
                &["mail.contoso.com", "autodiscover.contoso.com"],
            ),
            edge: cert(
                "CN=EDGE01",
                "CN=EDGE01",
                "2C4863417A8F52951B7DCFC3FA0982DFBC4DA612",
                &["EDGE01", "edge01.contoso.com"],
            ),
            eop: cert(
                "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
                "CN=DigiCert Cloud Services CA-1, O=DigiCert Inc, C=US",
                "6A24BF590212BEA48871C66A218D37FB572CEBB9",
                &[
                    "mail.protection.outlook.com",
                    "*.mail.protection.outlook.com",
                    "*.mail.eo.outlook.com",
                ],
            ),
            google: cert(
                "CN=mx.google.com",
                "CN=GTS CA 1C3, O=Google Trust Services LLC, C=US",
                "C282AB74A4E628550926F4AEC59FFAF955410D96",
                &["mx.google.com", "aspmx.l.google.com"],
            ),
        }
    }

    /// Session `i`: hybrid delivery (7 in 10), Internet delivery (2 in 10) or NoCredentials.
    fn session(&self, i: u64, t0: time::OffsetDateTime) -> ProtocolLogSession {
        let kind = i % 10;
        let hybrid = kind < 7 || kind == 9;
        let mut t = t0 + StdDuration::from_millis(i * 40);
        let mut events = Vec::with_capacity(32);
        let mut ev = |e: SessionEvent| {
            events.push(TimedEvent { at: t, event: e });
            t += StdDuration::from_millis(3);
        };
        let (host, ehlo) = if hybrid {
            (
                "AM5EUR02FT017.mail.protection.outlook.com",
                "mail.contoso.com",
            )
        } else {
            ("mx.google.com", "edge01.contoso.com")
        };
        ev(SessionEvent::AttemptingConnect);
        ev(SessionEvent::Connected);
        ev(SessionEvent::Received {
            reply: Reply::new(
                220,
                format!(
                    "{host} Microsoft ESMTP MAIL Service ready at Thu, 2 May 2019 06:02:13 +0000"
                ),
            ),
        });
        ev(SessionEvent::Sent {
            line: format!("EHLO {ehlo}"),
        });
        let caps = |tls: bool| {
            let mut l = vec![
                format!("{host} Hello [198.51.100.10]"),
                "SIZE 157286400".into(),
                "PIPELINING".into(),
            ];
            if tls {
                l.push("STARTTLS".into());
            }
            l.extend([
                "8BITMIME".into(),
                "BINARYMIME".into(),
                "CHUNKING".into(),
                "SMTPUTF8".into(),
            ]);
            Reply::multi(250, l)
        };
        ev(SessionEvent::Received { reply: caps(true) });
        ev(SessionEvent::Sent {
            line: "STARTTLS".into(),
        });
        ev(SessionEvent::Received {
            reply: Reply::new(220, "2.0.0 SMTP server ready"),
        });
        if kind == 9 {
            ev(SessionEvent::Certificate {
                role: CertRole::Sending,
                cert: self.keyless.clone(),
            });
            ev(SessionEvent::TlsFailed {
                status: SecurityStatus::NoCredentials,
            });
            ev(SessionEvent::Disconnected {
                reason: DisconnectReason::Local,
            });
        } else {
            let (mine, theirs) = if hybrid {
                (&self.keyed, &self.eop)
            } else {
                (&self.edge, &self.google)
            };
            ev(SessionEvent::Certificate {
                role: CertRole::Sending,
                cert: mine.clone(),
            });
            ev(SessionEvent::TlsNegotiated {
                text: "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits".into(),
            });
            ev(SessionEvent::Certificate {
                role: CertRole::Remote,
                cert: theirs.clone(),
            });
            ev(SessionEvent::Sent {
                line: format!("EHLO {ehlo}"),
            });
            ev(SessionEvent::Received { reply: caps(false) });
            ev(SessionEvent::Info {
                data: format!("{};2019-05-02T06:04:40.981Z;1", 12884901913u64 + i),
                context: "sending message".into(),
            });
            ev(SessionEvent::Sent {
                line: format!(
                    "MAIL FROM:<user{}@contoso.com> SIZE={}",
                    i % 997,
                    4000 + i % 50000
                ),
            });
            ev(SessionEvent::Sent {
                line: format!("RCPT TO:<r{}@contoso.mail.onmicrosoft.com>", i % 1499),
            });
            ev(SessionEvent::Received {
                reply: Reply::new(250, "2.1.0 Sender OK"),
            });
            ev(SessionEvent::Received {
                reply: Reply::new(250, "2.1.5 Recipient OK"),
            });
            ev(SessionEvent::Sent {
                line: format!("BDAT {} LAST", 4000 + i % 50000),
            });
            ev(SessionEvent::Received {
                reply: Reply::new(
                    250,
                    "2.6.0 <AM6PR04MB4470C6B1D1E3A2F0F2A44B9DA0370@AM6PR04MB4470.eurprd04.prod.outlook.com> [InternalId=258793616976, Hostname=AM6PR04MB4470] Queued mail for delivery",
                ),
            });
            ev(SessionEvent::Sent {
                line: "QUIT".into(),
            });
            ev(SessionEvent::Received {
                reply: Reply::new(221, "2.0.0 Service closing transmission channel"),
            });
            ev(SessionEvent::Disconnected {
                reason: DisconnectReason::Local,
            });
        }
        ProtocolLogSession {
            connector_id: if hybrid {
                "Outbound to Office 365".into()
            } else {
                "EdgeSync - Default-First-Site-Name to Internet".into()
            },
            session_id: format!("{:016X}", 0x08D6_CEAF_0000_0000u64 + i),
            local: Some(
                format!("10.0.0.5:{}", 20000 + i % 40000)
                    .parse()
                    .expect("endpoint"),
            ),
            remote: if hybrid {
                "104.47.10.36:25".parse().expect("endpoint")
            } else {
                "108.177.15.26:25".parse().expect("endpoint")
            },
            events,
        }
    }
}

/// Log files of about `mb` megabytes in total, plus a store listing.
fn generate(mb: usize) -> (Vec<(String, Vec<u8>)>, usize) {
    let g = Gen::new();
    let t0 = parse_iso("2019-05-02T00:00:00Z").expect("fixed time");
    let target = mb * 1024 * 1024;
    let opts = LogWriterOptions::send();
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut next = 0u64;
    let batch = 2_000u64;
    while total < target {
        let sessions: Vec<ProtocolLogSession> =
            (next..next + batch).map(|i| g.session(i, t0)).collect();
        next += batch;
        for f in write_files(&sessions, &opts) {
            total += f.content.len();
            let name = format!("part{:03}-{}", files.len(), f.name);
            files.push((name, f.content.into_bytes()));
        }
    }
    let rows = vec![
        CertListingRow::from_facts(&g.keyless, false),
        CertListingRow::from_facts(&g.keyed, true),
    ];
    files.push((
        "store.txt".into(),
        write_cert_provider_list(&rows, &FlOptions::default()).into_bytes(),
    ));
    (files, total)
}

fn read(files: &[(String, Vec<u8>)]) -> Artefacts {
    let mut r = ArtefactReader::new();
    for (name, bytes) in files {
        r.add_bytes(name, bytes);
    }
    r.finish()
}

fn bench(c: &mut Criterion) {
    let mb: usize = std::env::var("HYBRIDLAB_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (files, bytes) = generate(mb);
    // The generated log must diagnose to the classic case, or the bench measures nothing useful.
    let a = read(&files);
    let report = diagnose(&a, &Options::default());
    assert_eq!(
        report.top_id(),
        Some("cert-keyless-duplicate"),
        "{:?}",
        report.ids()
    );
    let sessions = a.protocol.sessions.len();
    eprintln!(
        "diagnose bench: {} files, {:.1} MB of send log, {sessions} sessions",
        files.len(),
        bytes as f64 / 1048576.0
    );

    let mut g = c.benchmark_group("diagnose");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("rules", |b| {
        b.iter(|| black_box(diagnose(black_box(&a), &Options::default())))
    });
    drop(a);
    g.bench_function("read+diagnose", |b| {
        b.iter(|| {
            let a = read(black_box(&files));
            black_box(diagnose(&a, &Options::default()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
