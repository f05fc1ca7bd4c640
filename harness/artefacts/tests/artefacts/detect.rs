//! Kind detection from content, the folder entry point, per-file skipped counts, and the
//! connectivity log golden.

use crate::support::*;
use hybridlab_artefacts::connectivity::{self, ConnectivityEvent, ConnectivityNote};
use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::protocol_log::{LogWriterOptions, SessionEvent, write_log};
use hybridlab_artefacts::ps_json::JsonStyle;
use hybridlab_artefacts::text::{self, LineEnding, TextEncoding};
use hybridlab_artefacts::{
    ArtefactKind, ListingFormat, ListingKind, certs, connectors, detect, queue, read_dir,
    read_paths,
};
use time::macros::datetime;

fn connectivity_events() -> Vec<ConnectivityEvent> {
    let t = datetime!(2019-05-02 06:32:13.790 UTC);
    let ms = |n: i64| t + time::Duration::milliseconds(n);
    let s = "08D6CEB1A2F3C4D5";
    let ep: std::net::SocketAddr = "104.47.10.36:25".parse().unwrap();
    vec![
        ConnectivityEvent::queue_start(ms(0), s, NEXT_HOP, CONNECTOR, 12),
        ConnectivityEvent::dns_resolved(ms(9), s, NEXT_HOP, NEXT_HOP, &[ep.ip()]),
        ConnectivityEvent::established(ms(62), s, NEXT_HOP, ep),
        ConnectivityEvent::summary(
            ms(223),
            s,
            NEXT_HOP,
            0,
            0,
            Some("Retry : 421 4.4.1 Connection timed out"),
        ),
    ]
}

#[test]
fn connectivity_log_golden_and_hand_written_reader() {
    let text = connectivity::write_log(&connectivity_events(), "15.0.0.0", LineEnding::CrLf);
    assert_golden("CONNECTLOG20190502-1.LOG", text.as_bytes());
    assert_eq!(
        connectivity::file_name(time::macros::date!(2019 - 05 - 02), 1),
        "CONNECTLOG20190502-1.LOG"
    );
    let back = connectivity::read_log("c", &text);
    let events: Vec<_> = back.events.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(events, connectivity_events());

    let d = text::decode(&input("CONNECTLOG20190502-1.LOG"));
    let log = connectivity::read_log("CONNECTLOG20190502-1.LOG", &d.text);
    assert_golden("read_connectivity.json", &json(&log));
    assert_eq!(log.skipped.count, 1);
    let notes: Vec<ConnectivityNote> = log.events.iter().map(|(e, _)| e.note()).collect();
    assert!(notes.contains(&ConnectivityNote::FailedConnection {
        endpoint: "192.0.2.25:25".into(),
        reason: "TimedOut:10060".into()
    }));
    assert!(notes.iter().any(
        |n| matches!(n, ConnectivityNote::DnsFailed { text } if text.contains("NonExistentDomain"))
    ));
    let last = log.events.last().unwrap();
    let ConnectivityNote::Summary {
        detail: Some(d), ..
    } = last.0.note()
    else {
        panic!()
    };
    assert!(
        d.contains("\"Failed to connect. Winsock error code: 10060, Win32 error code: 10060.\"")
    );
}

#[test]
fn detects_every_kind_from_content() {
    use ListingFormat::*;
    use ListingKind::*;
    let l = |of, format| ArtefactKind::Listing { of, format };
    let send = write_log(&[classic_session()], &LogWriterOptions::send());
    let recv = write_log(&[receive_session()], &LogWriterOptions::receive());
    let headerless_send: String = send.lines().skip(5).collect::<Vec<_>>().join("\n");
    let headerless_recv: String = recv.lines().skip(5).collect::<Vec<_>>().join("\n");
    let conn = connectivity::write_log(&connectivity_events(), "15.0.0.0", LineEnding::CrLf);
    let rows = cert_rows();
    let fl = FlOptions::default();
    let cases: Vec<(Vec<u8>, ArtefactKind)> = vec![
        (send.into_bytes(), ArtefactKind::SendProtocolLog),
        (recv.into_bytes(), ArtefactKind::ReceiveProtocolLog),
        (headerless_send.into_bytes(), ArtefactKind::SendProtocolLog),
        (
            headerless_recv.into_bytes(),
            ArtefactKind::ReceiveProtocolLog,
        ),
        (conn.clone().into_bytes(), ArtefactKind::ConnectivityLog),
        (
            conn.lines()
                .skip(5)
                .collect::<Vec<_>>()
                .join("\r\n")
                .into_bytes(),
            ArtefactKind::ConnectivityLog,
        ),
        (
            text::encode(
                &certs::write_exchange_certificate_list(&rows, &fl),
                TextEncoding::Utf16LeBom,
            ),
            l(ExchangeCertificate, FormatList),
        ),
        (
            certs::write_cert_provider_list(&rows, &fl).into_bytes(),
            l(CertProvider, FormatList),
        ),
        (
            certs::write_exchange_certificate_json(&rows, JsonStyle::WindowsPowerShell, "EDGE01")
                .into_bytes(),
            l(ExchangeCertificate, Json),
        ),
        (
            certs::write_cert_provider_json(&rows, JsonStyle::PowerShell7).into_bytes(),
            l(CertProvider, Json),
        ),
        (
            queue::write_queue_list(&[classic_queue()], &fl).into_bytes(),
            l(Queue, FormatList),
        ),
        (
            queue::write_queue_json(&[classic_queue()], JsonStyle::WindowsPowerShell).into_bytes(),
            l(Queue, Json),
        ),
        (
            queue::write_message_list(&[classic_message()], &fl).into_bytes(),
            l(Message, FormatList),
        ),
        (
            queue::write_message_json(&[classic_message()], JsonStyle::PowerShell7).into_bytes(),
            l(Message, Json),
        ),
        (
            connectors::write_send_connector_list(&[hcw_send_connector()], &fl).into_bytes(),
            l(SendConnector, FormatList),
        ),
        (
            connectors::write_send_connector_json(&[hcw_send_connector()], JsonStyle::PowerShell7)
                .into_bytes(),
            l(SendConnector, Json),
        ),
        (
            connectors::write_receive_connector_list(&[receive_connector()], &fl).into_bytes(),
            l(ReceiveConnector, FormatList),
        ),
        (
            connectors::write_inbound_connector_list(&[inbound_connector()], &fl).into_bytes(),
            l(InboundConnector, FormatList),
        ),
        (
            connectors::write_outbound_connector_list(&[outbound_connector()], &fl).into_bytes(),
            l(OutboundConnector, FormatList),
        ),
        (
            std::fs::read(samples("fm27-over-advertised-size-ndr/Undeliverable Campaign master files (final).eml")).unwrap(),
            ArtefactKind::Ndr,
        ),
        (
            text::encode(
                &String::from_utf8(std::fs::read(samples("fm27-over-advertised-size-ndr/Undeliverable Campaign master files (final).eml")).unwrap()).unwrap(),
                TextEncoding::Utf16LeBom,
            ),
            ArtefactKind::Ndr,
        ),
        (
            std::fs::read(samples("fm10-mock-records-missing-intermediate/mock-eop-sessions.jsonl")).unwrap(),
            ArtefactKind::MockRecords,
        ),
        (
            b"Status: 5.3.4\r\nAction: failed\r\n".to_vec(),
            ArtefactKind::Unknown,
        ),
        (
            b"{\"session_id\":\"x\"}\n".to_vec(),
            ArtefactKind::Unknown,
        ),
        (
            b"hello world\nthis is a note\n".to_vec(),
            ArtefactKind::Unknown,
        ),
        (
            vec![0u8, 159, 146, 150, 255, 0, 1, 2],
            ArtefactKind::Unknown,
        ),
        (b"{\"a\": 1}".to_vec(), ArtefactKind::Unknown),
        (Vec::new(), ArtefactKind::Unknown),
    ];
    for (i, (bytes, want)) in cases.iter().enumerate() {
        assert_eq!(detect(bytes), *want, "case {i}");
    }
    for name in [
        "SEND20190502-1.LOG",
        "exchange-certificates.txt",
        "cert-provider-selected.txt",
        "queues.txt",
        "messages.txt",
        "receive-connectors.txt",
    ] {
        assert_ne!(detect(&input(name)), ArtefactKind::Unknown, "{name}");
    }
}

fn samples(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../diagnose/tests/samples")
        .join(rel)
}

#[test]
fn a_folder_reads_by_content_and_garbage_only_adds_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // Names that do not reveal the kind.
    std::fs::write(
        p.join("export1.txt"),
        write_log(
            &[classic_session(), success_session()],
            &LogWriterOptions::send(),
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("export2.txt"),
        text::encode(
            &certs::write_cert_provider_list(&cert_rows(), &FlOptions::default()),
            TextEncoding::Utf16LeBom,
        ),
    )
    .unwrap();
    std::fs::create_dir(p.join("sub")).unwrap();
    std::fs::write(
        p.join("sub/q.txt"),
        queue::write_queue_list(&[classic_queue()], &FlOptions::default()),
    )
    .unwrap();
    let clean = read_dir(p).unwrap();

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(p.join("zz-garbage.bin"), &garbage).unwrap();
    let dirty = read_dir(p).unwrap();

    assert_eq!(dirty.files.len(), clean.files.len() + 1);
    let g = dirty.files.last().unwrap();
    assert_eq!(g.kind, ArtefactKind::Unknown);
    assert!(g.skipped.count > 0);
    assert_eq!(
        dirty.skipped_total(),
        clean.skipped_total() + g.skipped.count
    );
    assert_eq!(dirty.protocol, clean.protocol);
    assert_eq!(dirty.certificates, clean.certificates);
    assert_eq!(dirty.queues, clean.queues);
    assert_eq!(clean.skipped_total(), 0);

    let kinds: Vec<ArtefactKind> = clean.files.iter().map(|f| f.kind).collect();
    assert_eq!(kinds[0], ArtefactKind::SendProtocolLog);
    assert_eq!(
        kinds[1],
        ArtefactKind::Listing {
            of: ListingKind::CertProvider,
            format: ListingFormat::FormatList
        }
    );
    let classic = clean
        .protocol
        .sessions
        .iter()
        .find(|s| s.session.session_id == "08D6CEB1A2F3C4D5")
        .unwrap();
    assert!(classic.session.events.iter().any(|e| matches!(&e.event, SessionEvent::Certificate { cert, .. } if cert.thumbprint == KEYLESS_THUMB)));
    let keyless = clean
        .certificates
        .iter()
        .find(|c| c.parsed.row.thumbprint == KEYLESS_THUMB)
        .unwrap();
    assert_eq!(keyless.parsed.row.has_private_key, Some(false));
    assert!(
        keyless
            .parsed
            .evidence
            .prop("HasPrivateKey")
            .unwrap()
            .file
            .ends_with("export2.txt")
    );

    // A missing path is an error naming the path; an unknown file never is.
    let err = read_paths(&[p.join("nope")]).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
