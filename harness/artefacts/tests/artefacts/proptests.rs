//! Property tests for the readers: arbitrary bytes and truncations never panic; valid files
//! survive being split, re-encoded as UTF-16 or given CRLF/LF line ends (same parse); random
//! sessions and listing rows survive a write→read round trip.

use std::net::SocketAddr;

use crate::support::*;
use hybridlab_artefacts::certs::{self, CertListingRow};
use hybridlab_artefacts::format_list::{self, FlOptions};
use hybridlab_artefacts::protocol_log::{
    self, CertBlockStyle, CertRole, LogWriterOptions, ProtocolLogReader, ProtocolLogSession,
    SessionEvent, TimedEvent, logged_view, read_log, write_log,
};
use hybridlab_artefacts::ps_json::{self, JsonStyle};
use hybridlab_artefacts::queue::{self, LastError};
use hybridlab_artefacts::text::{self, LineEnding, TextEncoding};
use hybridlab_artefacts::{ArtefactReader, connectivity, detect, ps};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use proptest::prelude::*;
use time::macros::datetime;

fn read_everything(bytes: &[u8]) {
    let _ = detect(bytes);
    let mut r = ArtefactReader::new();
    r.add_bytes("x", bytes);
    let a = r.finish();
    let _ = serde_json::to_string(&a).unwrap();
    let t = text::decode(bytes).text;
    let _ = read_log("x", &t);
    let _ = connectivity::read_log("x", &t);
    let _ = format_list::parse("x", &t);
    let _ = ps_json::parse("x", &t);
    let _ = hybridlab_artefacts::ndr::read_dsn("x", &t);
    let _ = hybridlab_artefacts::mock_records::read_records("x", &t);
    for line in t.lines().take(50) {
        let _ = ps::parse_ps_datetime(line);
        let _ = protocol_log::parse_log_reply(line);
        let _ = protocol_log::parse_one_line_cert(line);
        let _ = LastError::parse_lenient(line);
        let _ = ps::parse_multi_value(line);
        let _ = hybridlab_model::size::ByteSize::parse_listing(line);
        let _ = hybridlab_model::timespan::TimeSpan::from_dotnet(line);
        let _ = line.parse::<hybridlab_model::timespan::TimeSpan>();
    }
}

fn samples() -> Vec<Vec<u8>> {
    let fl = FlOptions::default();
    vec![
        write_log(
            &[classic_session(), success_session()],
            &LogWriterOptions::send(),
        )
        .into_bytes(),
        write_log(
            &[success_session()],
            &LogWriterOptions::send().with_cert_style(CertBlockStyle::OneLine),
        )
        .into_bytes(),
        text::encode(
            &certs::write_cert_provider_list(&cert_rows(), &fl),
            TextEncoding::Utf16LeBom,
        ),
        certs::write_exchange_certificate_json(
            &cert_rows(),
            JsonStyle::WindowsPowerShell,
            "EDGE01",
        )
        .into_bytes(),
        queue::write_queue_list(&[classic_queue(), idle_queue()], &fl).into_bytes(),
        input("CONNECTLOG20190502-1.LOG"),
        input("messages.txt"),
        sample("fm27-over-advertised-size-ndr/Undeliverable Campaign master files (final).eml"),
        sample("fm10-mock-records-missing-intermediate/mock-eop-sessions.jsonl"),
    ]
}

fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../diagnose/tests/samples")
            .join(rel),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "[ -~\\r\\n\\t{}\"\\\\,:;<>=]{0,600}") {
        read_everything(s.as_bytes());
        // the same text as a delivery status or a records line
        read_everything(format!("Content-Type: multipart/report; report-type=delivery-status\r\n\r\nReporting-MTA: dns;x\r\nFinal-Recipient: rfc822;{s}\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp;{s}\r\n").as_bytes());
        read_everything(format!("{{\"session_id\":\"{s}\",\"peer\":1,\"transcript\":[],\"close_reason\":\"quit\"}}\n{s}").as_bytes());
        read_everything(&text::encode(&s, TextEncoding::Utf16LeBom));
    }

    #[test]
    fn truncated_valid_files_never_panic(which in 0usize..9, cut in 0.0f64..1.0) {
        let all = samples();
        let b = &all[which];
        let n = (b.len() as f64 * cut) as usize;
        read_everything(&b[..n]);
    }
}

// ---------------------------------------------------------------------------------------------
// Random sessions
// ---------------------------------------------------------------------------------------------

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,9}"
}

fn free_text() -> impl Strategy<Value = String> {
    // Printable text including CSV specials; no line breaks, no leading space.
    "[A-Za-z0-9<>\\[\\]@.=;:'\"-][ -~]{0,40}"
}

fn cert_facts() -> impl Strategy<Value = CertFacts> {
    (
        word(),
        word(),
        word(),
        "[0-9A-F]{8,32}",
        "[0-9A-F]{40}",
        0i64..100_000_000,
        proptest::collection::vec((word(), word()), 0..4),
    )
        .prop_map(|(host, org, ca, serial, thumb, secs, sans)| {
            let subject = format!("CN={host}.contoso.com, O={org} Ltd, C=US");
            let issuer = format!("CN={ca} CA1, O={ca} Inc, C=US");
            let nb = datetime!(2019-01-01 00:00:00 UTC) + time::Duration::seconds(secs);
            CertFacts {
                common_names: vec![format!("{host}.contoso.com")],
                is_self_signed: false,
                subject,
                issuer,
                serial,
                thumbprint: thumb,
                not_before: nb,
                not_after: nb + time::Duration::days(365),
                dns_names: sans
                    .into_iter()
                    .map(|(a, b)| format!("{a}.{b}.com"))
                    .collect(),
                is_ca: false,
                public_key_bits: 2048,
                key_algorithm: "RSA".into(),
                extended_key_usages: vec![],
            }
        })
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        (200u16..600, free_text()).prop_map(|(c, t)| Reply::new(c, t)),
        proptest::collection::vec(
            proptest::sample::select(vec![
                "SIZE 157286400",
                "PIPELINING",
                "DSN",
                "ENHANCEDSTATUSCODES",
                "STARTTLS",
                "8BITMIME",
                "BINARYMIME",
                "CHUNKING",
                "SMTPUTF8",
                "AUTH NTLM LOGIN",
                "X-ANONYMOUSTLS",
            ]),
            1..8
        )
        .prop_map(|kw| {
            let mut lines = vec!["mx.example.com Hello [192.0.2.1]".to_string()];
            lines.extend(kw.into_iter().map(str::to_string));
            Reply::multi(250, lines)
        }),
    ]
}

fn event() -> impl Strategy<Value = SessionEvent> {
    prop_oneof![
        free_text().prop_map(|line| SessionEvent::Sent { line }),
        reply().prop_map(|reply| SessionEvent::Received { reply }),
        "[A-Za-z][ -~]{0,30}".prop_map(|line| SessionEvent::ReceivedLine { line }),
        (proptest::sample::select(vec![CertRole::Sending, CertRole::Remote, CertRole::Received]), cert_facts())
            .prop_map(|(role, cert)| SessionEvent::Certificate { role, cert }),
        Just(SessionEvent::TlsNegotiated { text: "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits".into() }),
        proptest::sample::select(SecurityStatus::ALL.to_vec()).prop_map(|status| SessionEvent::TlsFailed { status }),
        ("[ -~]{0,30}", "[a-z ,\"]{0,20}").prop_map(|(data, c)| SessionEvent::Info { data, context: format!("ctx {c}") }),
    ]
}

fn session(id: u32) -> impl Strategy<Value = ProtocolLogSession> {
    (
        proptest::collection::vec((event(), 0i64..5000), 0..14),
        any::<bool>(),
        any::<[u8; 4]>(),
        1024u16..65000,
        0i64..200_000_000,
    )
        .prop_map(move |(evs, local_closed, ip, port, start)| {
            let t0 = datetime!(2019-05-02 00:00:00 UTC) + time::Duration::milliseconds(start);
            let mut t = t0;
            let mut events = vec![
                TimedEvent {
                    at: t,
                    event: SessionEvent::AttemptingConnect,
                },
                TimedEvent {
                    at: t,
                    event: SessionEvent::Connected,
                },
            ];
            for (e, dt) in evs {
                t += time::Duration::milliseconds(dt);
                events.push(TimedEvent { at: t, event: e });
            }
            events.push(TimedEvent {
                at: t,
                event: SessionEvent::Disconnected {
                    reason: if local_closed {
                        DisconnectReason::Local
                    } else {
                        DisconnectReason::Remote("SocketError".into())
                    },
                },
            });
            ProtocolLogSession {
                connector_id: "Outbound to Office 365".into(),
                session_id: format!("08D6CEB1A2F3{id:04X}"),
                local: Some(SocketAddr::from((ip, port))),
                remote: "104.47.10.36:25".parse().unwrap(),
                events,
            }
        })
}

fn sessions() -> impl Strategy<Value = Vec<ProtocolLogSession>> {
    (session(1), session(2), session(3)).prop_map(|(a, b, c)| vec![a, b, c])
}

fn normalise(s: &ProtocolLogSession, style: CertBlockStyle) -> ProtocolLogSession {
    let mut s = s.clone();
    for e in &mut s.events {
        if let SessionEvent::Certificate { cert, .. } = &mut e.event {
            *cert = logged_view(cert, style);
        }
    }
    s
}

fn by_id(mut v: Vec<ProtocolLogSession>) -> Vec<ProtocolLogSession> {
    v.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_round_trip(ss in sessions(), one_line in any::<bool>()) {
        let style = if one_line { CertBlockStyle::OneLine } else { CertBlockStyle::MultiLine };
        let text = write_log(&ss, &LogWriterOptions::send().with_cert_style(style));
        let logs = read_log("x", &text);
        prop_assert_eq!(logs.files[0].skipped.count, 0);
        let got = by_id(logs.sessions.into_iter().map(|p| p.session).collect());
        let want = by_id(ss.iter().map(|s| normalise(s, style)).collect());
        prop_assert_eq!(got, want);
    }

    #[test]
    fn logs_survive_splitting_reencoding_and_line_ends(
        ss in sessions(),
        cut in 0.0f64..1.0,
        enc in proptest::sample::select(vec![TextEncoding::Utf8, TextEncoding::Utf8Bom, TextEncoding::Utf16LeBom, TextEncoding::Utf16Le]),
        lf in any::<bool>(),
    ) {
        let text = write_log(&ss, &LogWriterOptions::send());
        let whole = by_id(read_log("x", &text).sessions.into_iter().map(|p| p.session).collect());
        let lines: Vec<&str> = text::split_lines(&text).collect();
        let k = ((lines.len() as f64) * cut) as usize;
        let ending = if lf { LineEnding::Lf } else { LineEnding::CrLf };
        let parts = [lines[..k].join("\n"), lines[k..].join("\n")];
        let mut r = ProtocolLogReader::new();
        for (i, p) in parts.iter().enumerate().rev() {
            let bytes = text::encode(&text::with_line_endings(p, ending), enc);
            r.add_text(&format!("part{i}"), &text::decode(&bytes).text);
        }
        let split = by_id(r.finish().sessions.into_iter().map(|p| p.session).collect());
        prop_assert_eq!(split, whole);
    }
}

// ---------------------------------------------------------------------------------------------
// Random listing rows
// ---------------------------------------------------------------------------------------------

fn cert_row() -> impl Strategy<Value = CertListingRow> {
    (cert_facts(), any::<bool>(), proptest::option::of(word())).prop_map(|(f, key, fname)| {
        let mut r = CertListingRow::from_facts(&f, key);
        r.friendly_name = fname;
        r
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn listings_survive_width_encoding_and_object_splits(
        rows in proptest::collection::vec(cert_row(), 1..6),
        width in 60usize..200,
        enc in proptest::sample::select(vec![TextEncoding::Utf8, TextEncoding::Utf16LeBom, TextEncoding::Utf8Bom]),
        lf in any::<bool>(),
        split_at in 0usize..6,
    ) {
        let opts = FlOptions {
            width,
            enumeration_limit: None,
            line_ending: if lf { LineEnding::Lf } else { LineEnding::CrLf },
        };
        let records = certs::cert_provider_records(&rows);
        let whole = format_list::render(&records, &opts);
        let a = {
            let mut r = ArtefactReader::new();
            r.add_bytes("whole", &text::encode(&whole, enc));
            r.finish()
        };
        prop_assert_eq!(a.skipped_total(), 0);
        let got: Vec<CertListingRow> = a.certificates.iter().map(|c| c.parsed.row.clone()).collect();
        let want: Vec<CertListingRow> = rows.iter().map(|r| {
            let mut r = r.clone();
            r.services = None;
            r.is_self_signed = None;
            r.status = None;
            r.public_key_size = None;
            r.root_ca_type = None;
            r.private_key_exportable = None;
            r
        }).collect();
        prop_assert_eq!(&got, &want);

        // Split between objects into two files: the same rows.
        let k = split_at.min(records.len());
        let mut r = ArtefactReader::new();
        r.add_bytes("a", &text::encode(&format_list::render(&records[..k], &opts), enc));
        r.add_bytes("b", &text::encode(&format_list::render(&records[k..], &opts), enc));
        let split = r.finish();
        let got2: Vec<CertListingRow> = split.certificates.iter().map(|c| c.parsed.row.clone()).collect();
        prop_assert_eq!(got2, want);
    }
}

/// A cell value the table view and Export-Csv carry: no line breaks, no leading/trailing blanks.
fn cell() -> impl Strategy<Value = String> {
    "[A-Za-z0-9@.\\\\:-]{1,6}( [A-Za-z0-9.]{1,5}){0,2}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Table view written then read gives back every value (cut values as printed, ending in ...).
    #[test]
    fn table_round_trip(rows in proptest::collection::vec(proptest::collection::vec(cell(), 3), 1..6)) {
        use hybridlab_artefacts::table;
        let cols = ["Identity", "Status", "NextHopDomain"];
        let text = table::render(&cols, &rows, 12);
        let t = table::find_tables("t", &text);
        prop_assert_eq!(t.objects.len(), rows.len(), "{}", text);
        for (o, r) in t.objects.iter().zip(&rows) {
            for (i, c) in cols.iter().enumerate() {
                let got = o.text(c).unwrap_or_default();
                if i < 2 && r[i].chars().count() > 12 {
                    prop_assert!(table::is_cut(&got));
                } else {
                    prop_assert_eq!(&got, &r[i], "{}", text);
                }
            }
        }
    }

    /// Export-Csv written then read gives back every value, quotes and commas included.
    #[test]
    fn export_csv_round_trip(rows in proptest::collection::vec(proptest::collection::vec("[ -~]{1,12}", 3), 1..6)) {
        use hybridlab_artefacts::export_csv;
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| v.trim().to_string()).map(|v| if v.is_empty() { "x".into() } else { v }).collect())
            .collect();
        let cols = ["Date", "Event", "Detail"];
        let text = export_csv::render(Some("Deserialized.X"), &cols, &rows);
        let d = export_csv::parse("c", &text);
        prop_assert_eq!(d.objects.len(), rows.len());
        for (o, r) in d.objects.iter().zip(&rows) {
            for (i, c) in cols.iter().enumerate() {
                prop_assert_eq!(o.text(c).unwrap_or_default(), r[i].clone());
            }
        }
    }

    /// The new readers never panic on arbitrary text.
    #[test]
    fn new_readers_survive_garbage(s in "[ -~\r\n\t]{0,300}") {
        use hybridlab_artefacts::{events, export_csv, table, trace::TraceLed};
        let _ = table::find_tables("g", &s);
        let _ = export_csv::is_export_csv(&s);
        let _ = export_csv::parse("g", &s);
        let _ = events::parse_wevtutil("g", &s);
        let _ = TraceLed::parse(&s);
        let mut r = ArtefactReader::new();
        r.add_bytes("g", s.as_bytes());
        let _ = r.finish();
    }
}
