//! The transport's artefacts written as a real server's files and read back through the readers:
//! the classic case against the mock EOP (in memory, virtual time) gives a send log whose tail has
//! the shape of the classic send log in docs/formats.md, a connectivity log, Get-Queue / Get-Message with the
//! misleading LED, both certificate listings (the key-less twin only in the Cert: listing) and the
//! send connector; DNS and connect failures reach the connectivity log; exported keys are 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{self, Net, SMART_HOST, message, pinned, t0};
use hybridlab_artefacts::bundle::{self, BundleOptions};
use hybridlab_artefacts::certs::CertListingSource;
use hybridlab_artefacts::connectivity::ConnectivityNote;
use hybridlab_artefacts::protocol_log::{CertRole, LogKind, SessionEvent};
use hybridlab_artefacts::queue::MessageStatus;
use hybridlab_artefacts::{ArtefactKind, read_dir};
use hybridlab_model::exchange::{DisconnectReason, QueueStatus, SecurityStatus, TlsAuthLevel};
use hybridlab_onprem::resolver::{ConnectFailure, LabResolver};
use hybridlab_onprem::transport::run_until;

const CLASSIC_LED: &str =
    "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out";

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `event,data,context` of a CSV log line (the columns after the endpoints).
fn tail_columns(line: &str) -> String {
    let f = hybridlab_artefacts::csv::split_record(line);
    assert_eq!(f.len(), 9, "{line}");
    let mut out = String::new();
    hybridlab_artefacts::csv::write_record(&mut out, [&*f[6], &*f[7], &*f[8]]);
    out
}

#[tokio::test(start_paused = true)]
async fn classic_case_artefacts_read_back_with_the_real_shapes() {
    let lab = support::start(true, Net::Memory).await;
    let keyless = lab.store.entry("twin-nokey").unwrap().facts.clone();
    let keyed = lab.store.entry("keyed").unwrap().facts.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(12_884_901_890));
    let peer = "10.0.0.5:27436".parse().unwrap();
    run_until(
        &mut t,
        &lab.resolver(),
        &mut lab.memory(peer),
        &lab.clock,
        t0(),
        5,
    )
    .await;
    assert_eq!(t.sessions().len(), 1);
    lab.mock.wait_for_sessions(1).await;

    let dir = tempfile::tempdir().unwrap();
    let b = t
        .artefact_bundle(lab.clock.now())
        .with_mock_records(lab.mock.records());
    let written = b.write_to(dir.path(), &BundleOptions::default()).unwrap();
    assert_eq!(written.len(), 9);
    assert_eq!(
        names(dir.path()),
        [
            "CONNECTLOG20190502-1.LOG",
            "Get-ChildItem-Cert.txt",
            "Get-ExchangeCertificate.txt",
            "Get-Message.txt",
            "Get-Queue.json",
            "Get-Queue.txt",
            "Get-SendConnector.txt",
            "SEND20190502-1.LOG",
            "mock-eop-sessions.jsonl"
        ]
    );

    // the send log's tail, column for column, as the classic send log of docs/formats.md shows it
    let send = std::fs::read_to_string(dir.path().join("SEND20190502-1.LOG")).unwrap();
    let lines: Vec<&str> = send.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "#Software: Microsoft Exchange Server");
    assert_eq!(lines[2], "#Log-type: SMTP Send Protocol Log");
    assert_eq!(
        lines[4],
        "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context"
    );
    let records = &lines[5..];
    for (i, l) in records.iter().enumerate() {
        let f = hybridlab_artefacts::csv::split_record(l);
        assert_eq!(f[1], "Outbound to Office 365");
        assert_eq!(f[2], "08D6CEB1A2F3C4D5");
        assert_eq!(f[3], i.to_string(), "sequence numbers from 0: {l}");
        assert_eq!(f[5], "127.0.0.1:25");
        assert_eq!(f[4], if i == 0 { "" } else { "10.0.0.5:27436" });
    }
    assert!(records[0].starts_with("2019-05-02T06:30:00.000Z,"));
    let tail: Vec<String> = records[records.len() - 9..]
        .iter()
        .map(|l| tail_columns(l))
        .collect();
    assert_eq!(
        tail,
        [
            "<,220 2.0.0 SMTP server ready,".to_string(),
            "*,,Sending certificate".into(),
            "*,\"CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US\",Certificate subject".into(),
            "*,\"CN=Lab Global G2 TLS RSA SHA256 2020 CA1, O=Lab CA Inc, C=US\",Certificate issuer name".into(),
            format!("*,{},Certificate serial number", keyless.serial),
            format!("*,{},Certificate thumbprint", keyless.thumbprint),
            "*,mail.contoso.com;autodiscover.contoso.com,Certificate alternate names".into(),
            "*,,TLS negotiation failed with error NoCredentials".into(),
            "-,,Local".into(),
        ]
    );
    assert_eq!(keyless.thumbprint.len(), 40);
    assert!(
        keyless
            .thumbprint
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );

    // everything through the readers
    let a = read_dir(dir.path()).unwrap();
    for f in &a.files {
        assert_eq!(f.skipped.count, 0, "{}: {:?}", f.file, f.skipped);
        assert_ne!(f.kind, ArtefactKind::Unknown, "{}", f.file);
        if f.file.ends_with(".jsonl") {
            assert_eq!(f.kind, ArtefactKind::MockRecords);
            assert_eq!(f.items, 1);
        }
    }
    assert_eq!(a.mock_sessions.len(), 1);
    assert!(
        a.mock_sessions[0].record.tls.is_none(),
        "NoCredentials: no handshake at EOP"
    );
    assert_eq!(a.protocol.sessions.len(), 1);
    let s = &a.protocol.sessions[0];
    assert_eq!(s.kind, Some(LogKind::Send));
    let ev: Vec<&SessionEvent> = s.session.events.iter().map(|e| &e.event).collect();
    let n = ev.len();
    match ev[n - 3] {
        SessionEvent::Certificate { role, cert } => {
            assert_eq!(*role, CertRole::Sending);
            assert_eq!(cert.thumbprint, keyless.thumbprint);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ev[n - 2],
        &SessionEvent::TlsFailed {
            status: SecurityStatus::NoCredentials
        }
    );
    assert_eq!(
        ev[n - 1],
        &SessionEvent::Disconnected {
            reason: DisconnectReason::Local
        }
    );

    let q = &a.queues[0].row;
    assert_eq!(q.identity, "EDGE01\\3");
    assert_eq!(q.status, QueueStatus::Retry);
    assert_eq!(q.message_count, 1);
    assert_eq!(q.retry_count, 1);
    let le = q.last_error.as_ref().unwrap();
    assert_eq!(le.led, CLASSIC_LED);
    assert_eq!(le.fqdn, SMART_HOST);
    assert_eq!(le.ip, "127.0.0.1");
    assert_eq!(le.lrt, "5/2/2019 6:30:00 AM");
    assert_eq!(a.queues.len(), 2, "Get-Queue.txt and Get-Queue.json");
    assert_eq!(a.queues[1].row, a.queues[0].row);

    let m = &a.messages[0].row;
    assert_eq!(m.identity, "EDGE01\\3\\12884901890");
    assert_eq!(m.status, MessageStatus::Retry);
    assert_eq!(m.last_error.as_ref().unwrap().led, CLASSIC_LED);
    assert_eq!(m.recipients, ["bob@contoso.mail.onmicrosoft.com"]);
    assert_eq!(
        m.message_source_name,
        "SMTP:Default internal receive connector EDGE01"
    );

    // Get-ExchangeCertificate hides the key-less twin; the Cert: provider shows it first
    let ex: Vec<String> = a
        .certificates_from(CertListingSource::ExchangeCertificate)
        .map(|c| c.row.thumbprint.clone())
        .collect();
    assert_eq!(ex, std::slice::from_ref(&keyed.thumbprint));
    let all: Vec<(String, Option<bool>)> = a
        .certificates_from(CertListingSource::CertProvider)
        .map(|c| (c.row.thumbprint.clone(), c.row.has_private_key))
        .collect();
    assert_eq!(
        all,
        [
            (keyless.thumbprint.clone(), Some(false)),
            (keyed.thumbprint.clone(), Some(true))
        ]
    );
    let gec = a
        .certificates_from(CertListingSource::ExchangeCertificate)
        .next()
        .unwrap();
    assert_eq!(
        gec.row.x509_identifier(),
        pinned().tls_certificate_name.unwrap()
    );
    assert_eq!(
        gec.row.status,
        Some(hybridlab_artefacts::certs::CertificateStatus::Valid)
    );
    assert_eq!(
        gec.row.services.as_deref(),
        Some(
            &[
                hybridlab_artefacts::certs::ExchangeService::Iis,
                hybridlab_artefacts::certs::ExchangeService::Smtp
            ][..]
        )
    );

    let sc = &a.send_connectors[0].row;
    // the connectivity log's `+` line names the connector by its Guid, as Get-Queue does
    assert_eq!(sc.name, "Outbound to Office 365");
    assert_eq!(sc.tls_certificate_name, pinned().tls_certificate_name);
    assert_eq!(sc.tls_auth_level, Some(TlsAuthLevel::DomainValidation));
    assert_eq!(
        sc.tls_domain.as_deref(),
        Some("mail.protection.outlook.com")
    );
    assert_eq!(sc.require_tls, Some(true));
    assert_eq!(sc.smart_hosts, [SMART_HOST]);
    assert_eq!(sc.address_spaces, ["smtp:contoso.mail.onmicrosoft.com;1"]);

    let notes: Vec<ConnectivityNote> = a.connectivity.iter().map(|(e, _)| e.note()).collect();
    assert_eq!(
        notes,
        [
            ConnectivityNote::QueueStart {
                connector: sc.guid.clone().expect("Get-SendConnector shows the Guid")
            },
            ConnectivityNote::DnsResolved {
                addresses: "127.0.0.1".into()
            },
            ConnectivityNote::Established {
                endpoint: "127.0.0.1".into()
            },
            ConnectivityNote::Summary {
                messages: 0,
                bytes: 0,
                detail: Some("Retry : 421 4.4.1 Connection timed out".into())
            },
        ]
    );
    assert!(
        a.connectivity
            .iter()
            .all(|(e, _)| e.session == "08D6CEB1A2F3C4D5")
    );
    assert!(
        a.connectivity
            .iter()
            .all(|(e, _)| e.destination == SMART_HOST)
    );

    // the mock's own record of the same session: STARTTLS answered, no handshake
    let jsonl = std::fs::read_to_string(dir.path().join(bundle::MOCK_RECORDS)).unwrap();
    let recs: Vec<hybridlab_model::record::SessionRecord> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1);
    assert!(recs[0].tls.is_none());
    assert_eq!(recs[0].peer.to_string(), "10.0.0.5:27436");
    assert!(
        recs[0]
            .commands()
            .any(|c| c.eq_ignore_ascii_case("STARTTLS"))
    );
}

#[tokio::test(start_paused = true)]
async fn delivered_session_logs_messages_and_bytes() {
    let lab = support::start(false, Net::Memory).await;
    let mut t = lab.transport(pinned());
    let m = message(1);
    let size = m.wire(true).len() as u64;
    t.submit(m);
    let peer = "10.0.0.5:27436".parse().unwrap();
    run_until(
        &mut t,
        &lab.resolver(),
        &mut lab.memory(peer),
        &lab.clock,
        t0(),
        5,
    )
    .await;
    assert!(t.messages().is_empty());
    let notes: Vec<ConnectivityNote> = t.connectivity().iter().map(|e| e.note()).collect();
    assert_eq!(
        notes.last(),
        Some(&ConnectivityNote::Summary {
            messages: 1,
            bytes: size,
            detail: None
        })
    );
    let b = t.artefact_bundle(lab.clock.now());
    assert_eq!(b.queues[0].status, QueueStatus::Ready);
    assert_eq!(b.queues[0].message_count, 0);
    assert!(b.messages.is_empty());
}

#[tokio::test(start_paused = true)]
async fn dns_and_connect_failures_reach_the_connectivity_log() {
    let lab = support::start(false, Net::Memory).await;
    let peer = "10.0.0.5:27436".parse().unwrap();

    // the smart host does not resolve: no send log session, a connectivity line
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    run_until(
        &mut t,
        &LabResolver::new(),
        &mut lab.memory(peer),
        &lab.clock,
        t0(),
        1,
    )
    .await;
    let b = t.artefact_bundle(lab.clock.now());
    assert!(b.send_sessions.is_empty());
    let notes: Vec<ConnectivityNote> = b.connectivity.iter().map(|e| e.note()).collect();
    let dns = "DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain";
    assert_eq!(
        notes,
        [
            ConnectivityNote::QueueStart {
                connector: b.send_connectors[0]
                    .guid
                    .clone()
                    .expect("the connector's Guid")
            },
            ConnectivityNote::DnsFailed { text: dns.into() },
            ConnectivityNote::Summary {
                messages: 0,
                bytes: 0,
                detail: Some(dns.into())
            }
        ]
    );
    assert_eq!(
        b.queues[0].last_error.as_ref().unwrap().led,
        format!("451 4.4.0 {dns}")
    );

    // the smart host resolves but nobody answers: Failed connection (TimedOut:10060)
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let r = LabResolver::new().with_unreachable(
        SMART_HOST,
        "104.47.10.36".parse().unwrap(),
        ConnectFailure::TimedOut,
    );
    run_until(&mut t, &r, &mut lab.memory(peer), &lab.clock, t0(), 1).await;
    let b = t.artefact_bundle(lab.clock.now());
    let notes: Vec<ConnectivityNote> = b.connectivity.iter().map(|e| e.note()).collect();
    assert_eq!(
        notes[2],
        ConnectivityNote::FailedConnection {
            endpoint: "104.47.10.36:25".into(),
            reason: "TimedOut:10060".into()
        }
    );
    assert_eq!(
        notes[3],
        ConnectivityNote::Summary {
            messages: 0,
            bytes: 0,
            detail: Some("Retry : 421 4.2.1 Unable to connect".into())
        }
    );
    // the send log holds only `attempting to connect`
    assert_eq!(b.send_sessions.len(), 1);
    assert_eq!(b.send_sessions[0].events.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn exported_keys_are_private_and_logs_follow_protocol_logging_level() {
    let lab = support::start(true, Net::Memory).await;
    let mut c = pinned();
    c.protocol_logging_level = hybridlab_onprem::connector::ProtocolLoggingLevel::None;
    let mut t = lab.transport(c);
    t.submit(message(1));
    let peer = "10.0.0.5:27436".parse().unwrap();
    run_until(
        &mut t,
        &lab.resolver(),
        &mut lab.memory(peer),
        &lab.clock,
        t0(),
        1,
    )
    .await;
    let mut b = t.artefact_bundle(lab.clock.now());
    assert!(
        b.send_sessions.is_empty(),
        "ProtocolLoggingLevel None: no send log"
    );
    assert_eq!(
        b.connectivity.len(),
        4,
        "the connectivity log is not per connector"
    );

    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join(bundle::CERTIFICATE_DIR);
    // a key file left over with loose permissions is tightened
    let keyed = lab.store.entry("keyed").unwrap().facts.thumbprint.clone();
    std::fs::create_dir_all(&certs).unwrap();
    let stale = certs.join(format!("{keyed}.key"));
    std::fs::write(&stale, "old").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();

    b.exported_certificates = t.exported_certificates(true);
    b.write_to(dir.path(), &BundleOptions::default()).unwrap();
    let mut keys = 0;
    let mut cers = 0;
    for e in std::fs::read_dir(&certs).unwrap() {
        let p = e.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        match p.extension().and_then(|x| x.to_str()) {
            Some("key") => {
                keys += 1;
                assert_eq!(mode, 0o600, "{}", p.display());
                let pem = std::fs::read_to_string(&p).unwrap();
                assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            }
            Some("cer") => {
                cers += 1;
                let pem = std::fs::read_to_string(&p).unwrap();
                assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (cers, keys),
        (2, 1),
        "the key-less twin has no key to export"
    );

    // without keys: no key file at all
    let dir2 = tempfile::tempdir().unwrap();
    b.exported_certificates = t.exported_certificates(false);
    b.write_to(dir2.path(), &BundleOptions::default()).unwrap();
    assert!(
        std::fs::read_dir(dir2.path().join(bundle::CERTIFICATE_DIR))
            .unwrap()
            .all(|e| e.unwrap().path().extension().unwrap() == "cer")
    );
}
