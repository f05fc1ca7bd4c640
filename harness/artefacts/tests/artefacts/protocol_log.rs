//! Protocol logs: writer goldens (classic and one-line certificate blocks, send and receive),
//! write→read round trips, and reader goldens on hand-written real-shaped files (several days,
//! interleaved sessions, a BOM, another build's `#Version`, both certificate styles, junk and a
//! truncated last line).

use crate::support::*;
use hybridlab_artefacts::protocol_log::{
    CertBlockStyle, LogKind, LogWriterOptions, ProtocolLogReader, ProtocolLogSession, SessionEvent,
    logged_view, read_log, write_files, write_log,
};
use hybridlab_artefacts::text::{self, LineEnding, TextEncoding};
use hybridlab_model::exchange::SecurityStatus;

fn normalise(s: &ProtocolLogSession, style: CertBlockStyle) -> ProtocolLogSession {
    let mut s = s.clone();
    for e in &mut s.events {
        if let SessionEvent::Certificate { cert, .. } = &mut e.event {
            *cert = logged_view(cert, style);
        }
    }
    s
}

#[test]
fn classic_case_send_log_golden_multiline() {
    let text = write_log(
        &[classic_session(), success_session()],
        &LogWriterOptions::send(),
    );
    assert_golden("SEND20190502-1.classic.LOG", text.as_bytes());
    // The tail a support engineer looks for (docs/domain.md section 5.3).
    assert!(text.contains(&format!(",*,{KEYLESS_THUMB},Certificate thumbprint\r\n")));
    assert!(text.contains(",*,,TLS negotiation failed with error NoCredentials\r\n"));
    assert!(text.contains(",-,,Local\r\n"));
    // Line 0 of a send session has no local endpoint.
    assert!(text.contains(",08D6CEB1A2F3C4D5,0,,104.47.10.36:25,*,,attempting to connect\r\n"));
    // The EHLO reply collapsed on one line with two spaces after the code.
    assert!(text.contains(",<,250  AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10] SIZE 157286400 PIPELINING"));
}

#[test]
fn classic_case_send_log_golden_one_line() {
    let opts = LogWriterOptions::send().with_cert_style(CertBlockStyle::OneLine);
    let text = write_log(&[classic_session(), success_session()], &opts);
    assert_golden("SEND20190502-1.oneline.LOG", text.as_bytes());
    assert!(text.contains(",Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names\r\n"));
    assert!(text.contains(",Remote certificate Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names\r\n"));
}

#[test]
fn receive_log_golden() {
    let text = write_log(&[receive_session()], &LogWriterOptions::receive());
    assert_golden("RECV20190502-1.LOG", text.as_bytes());
    assert!(text.starts_with("#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n#Log-type: SMTP Receive Protocol Log\r\n#Date: 2019-05-02T06:40:02.010Z\r\n"));
}

#[test]
fn write_then_read_is_lossless_for_what_the_log_carries() {
    for style in [CertBlockStyle::MultiLine, CertBlockStyle::OneLine] {
        let sessions = vec![classic_session(), success_session()];
        let text = write_log(&sessions, &LogWriterOptions::send().with_cert_style(style));
        let logs = read_log("SEND20190502-1.LOG", &text);
        assert_eq!(logs.files[0].skipped.count, 0, "{style:?}");
        assert_eq!(logs.files[0].kind, Some(LogKind::Send));
        let back: Vec<ProtocolLogSession> =
            logs.sessions.iter().map(|p| p.session.clone()).collect();
        let want: Vec<ProtocolLogSession> = sessions.iter().map(|s| normalise(s, style)).collect();
        assert_eq!(back, want, "{style:?}");
        for p in &logs.sessions {
            assert_eq!(p.kind, Some(LogKind::Send));
            assert_eq!(p.sources.len(), p.session.events.len());
        }
    }
    let text = write_log(&[receive_session()], &LogWriterOptions::receive());
    let logs = read_log("RECV", &text);
    assert_eq!(logs.sessions[0].kind, Some(LogKind::Receive));
    assert_eq!(
        logs.sessions[0].session,
        normalise(&receive_session(), CertBlockStyle::MultiLine)
    );
}

#[test]
fn evidence_points_at_the_lines() {
    let text = write_log(
        &[classic_session(), success_session()],
        &LogWriterOptions::send(),
    );
    let logs = read_log("SEND20190502-1.LOG", &text);
    let classic = logs
        .sessions
        .iter()
        .find(|s| s.session.session_id == "08D6CEB1A2F3C4D5")
        .unwrap();
    let (cert_ev, cert_src) = classic
        .events()
        .find(|(e, _)| matches!(e.event, SessionEvent::Certificate { .. }))
        .unwrap();
    let SessionEvent::Certificate { cert, .. } = &cert_ev.event else {
        unreachable!()
    };
    assert_eq!(cert.thumbprint, KEYLESS_THUMB);
    assert_eq!(cert_src.lines.len(), 6);
    assert!(!cert_src.cert_validity_logged);
    let thumb_line = cert_src.line_containing("Certificate thumbprint");
    let physical: Vec<&str> = text::split_lines(&text).collect();
    assert_eq!(physical[thumb_line.line - 1], thumb_line.text);
    assert!(
        thumb_line
            .text
            .ends_with(&format!("{KEYLESS_THUMB},Certificate thumbprint"))
    );
    let (_, fail_src) = classic
        .events()
        .find(|(e, _)| {
            e.event
                == SessionEvent::TlsFailed {
                    status: SecurityStatus::NoCredentials,
                }
        })
        .unwrap();
    assert!(
        fail_src
            .first()
            .text
            .ends_with(",*,,TLS negotiation failed with error NoCredentials")
    );
}

#[test]
fn files_split_by_day_and_size_and_read_back_as_one() {
    let mut late = success_session();
    late.session_id = "08D6CEB1A2F3C4E1".into();
    let shift =
        time::Duration::hours(17) + time::Duration::minutes(27) + time::Duration::seconds(46);
    for e in &mut late.events {
        e.at += shift; // 2019-05-02T23:59:59.850Z onwards: crosses midnight
    }
    let sessions = vec![classic_session(), success_session(), late.clone()];
    let opts = LogWriterOptions {
        max_file_bytes: 4096,
        ..LogWriterOptions::send()
    };
    let files = write_files(&sessions, &opts);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.contains(&"SEND20190502-1.LOG") && names.contains(&"SEND20190502-2.LOG"),
        "{names:?}"
    );
    assert!(names.contains(&"SEND20190503-1.LOG"), "{names:?}");
    assert!(names.last().unwrap().starts_with("SEND20190503-"));
    for f in &files {
        assert!(
            f.content
                .starts_with("#Software: Microsoft Exchange Server\r\n")
        );
        assert!(f.content.len() <= 4096 + 512);
    }
    // Read in reverse order: the sessions come back whole.
    let mut reader = ProtocolLogReader::new();
    for f in files.iter().rev() {
        reader.add_text(&f.name, &f.content);
    }
    let logs = reader.finish();
    let back: Vec<ProtocolLogSession> = logs.sessions.iter().map(|p| p.session.clone()).collect();
    let want: Vec<ProtocolLogSession> = sessions
        .iter()
        .map(|s| normalise(s, CertBlockStyle::MultiLine))
        .collect();
    assert_eq!(back, want);
}

#[test]
fn reads_hand_written_real_files_across_days() {
    let mut reader = ProtocolLogReader::new();
    for name in ["SEND20190503-1.LOG", "SEND20190502-1.LOG"] {
        let d = text::decode(&input(name));
        reader.add_text(name, &d.text);
        if name == "SEND20190502-1.LOG" {
            assert_eq!(d.encoding, TextEncoding::Utf8Bom);
        }
    }
    let logs = reader.finish();
    assert_golden("read_send_logs.json", &json(&logs));

    let day1 = logs
        .files
        .iter()
        .find(|f| f.file == "SEND20190502-1.LOG")
        .unwrap();
    assert_eq!(day1.header.version.as_deref(), Some("15.02.0330.005"));
    assert_eq!(day1.skipped.count, 1);
    let day2 = logs
        .files
        .iter()
        .find(|f| f.file == "SEND20190503-1.LOG")
        .unwrap();
    assert_eq!(day2.skipped.count, 1, "the truncated last line");
    let ids: Vec<&str> = logs
        .sessions
        .iter()
        .map(|s| s.session.session_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["08D6CEB1A2F3C4D5", "08D6CEB1A2F3C4D9", "08D6CEB1A2F3C4E0"]
    );

    let classic = &logs.sessions[0];
    let tail: Vec<&SessionEvent> = classic
        .session
        .events
        .iter()
        .rev()
        .take(3)
        .map(|e| &e.event)
        .collect();
    assert!(matches!(tail[0], SessionEvent::Disconnected { .. }));
    assert_eq!(
        tail[1],
        &SessionEvent::TlsFailed {
            status: SecurityStatus::NoCredentials
        }
    );
    let SessionEvent::Certificate { cert, .. } = tail[2] else {
        panic!("{tail:?}")
    };
    assert_eq!(cert.thumbprint, KEYLESS_THUMB);
    assert_eq!(cert.subject, SUBJECT);

    // The Google session: one-line certificate blocks, lines spread over both files.
    let google = &logs.sessions[1];
    let certs: Vec<_> = google
        .events()
        .filter_map(|(e, s)| match &e.event {
            SessionEvent::Certificate { role, cert } => Some((role, cert, s)),
            _ => None,
        })
        .collect();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].1.subject, "CN=EDGE01");
    assert!(certs[0].1.is_self_signed);
    assert!(certs[0].2.cert_validity_logged);
    assert_eq!(
        certs[1].1.issuer,
        "CN=GTS CA 1O1, O=Google Trust Services, C=US"
    );
    assert_eq!(
        certs[1].1.dns_names,
        ["mx.google.com", "aspmx.l.google.com"]
    );
    let last = google.sources.last().unwrap();
    assert_eq!(last.first().file, "SEND20190503-1.LOG");

    // The session across midnight, and an info line that looks like a disconnect reason.
    let midnight = &logs.sessions[2];
    assert_eq!(midnight.session.events.len(), 7);
    assert!(matches!(
        midnight.session.events[5].event,
        SessionEvent::Info { .. }
    ));
}

#[test]
fn crlf_lf_and_utf16_give_the_same_sessions() {
    let text = write_log(
        &[classic_session(), success_session()],
        &LogWriterOptions::send(),
    );
    let base = read_log("x", &text).sessions;
    for (ending, enc) in [
        (LineEnding::Lf, TextEncoding::Utf8),
        (LineEnding::CrLf, TextEncoding::Utf16LeBom),
        (LineEnding::Lf, TextEncoding::Utf8Bom),
    ] {
        let bytes = text::encode(&text::with_line_endings(&text, ending), enc);
        let d = text::decode(&bytes);
        let got = read_log("x", &d.text).sessions;
        let a: Vec<_> = got.iter().map(|s| &s.session).collect();
        let b: Vec<_> = base.iter().map(|s| &s.session).collect();
        assert_eq!(a, b, "{ending:?} {enc:?}");
    }
}

#[test]
fn reads_a_hand_written_receive_log() {
    let d = text::decode(&input("RECV20190502-1.LOG"));
    let logs = read_log("RECV20190502-1.LOG", &d.text);
    assert_golden("read_recv_log.json", &json(&logs));
    assert_eq!(logs.files[0].kind, Some(LogKind::Receive));
    assert_eq!(logs.files[0].skipped.count, 0);
    let s = &logs.sessions[0];
    assert_eq!(s.kind, Some(LogKind::Receive));
    assert!(
        matches!(&s.session.events[3].event, SessionEvent::ReceivedLine { line } if line.starts_with("EHLO "))
    );
    let received: Vec<_> = s
        .events()
        .filter_map(|(e, src)| match &e.event {
            SessionEvent::Certificate {
                role: hybridlab_artefacts::protocol_log::CertRole::Received,
                cert,
            } => Some((cert, src)),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].0.thumbprint,
        "A0C1E2F3849566778899AABBCCDDEEFF00112233"
    );
    assert!(received[0].1.cert_validity_logged);
    let v6 = &logs.sessions[1];
    assert_eq!(v6.session.remote, "[2001:db8::77]:51234".parse().unwrap());
    assert_eq!(
        v6.session.events.last().unwrap().event,
        SessionEvent::Disconnected {
            reason: hybridlab_model::exchange::DisconnectReason::Remote("ConnectionReset".into())
        }
    );
}

#[test]
fn generated_certificates_survive_the_log_structurally() {
    use hybridlab_labkit::pki::{CertAuthority, CertSpec};
    let now = time::macros::datetime!(2019-05-02 06:00:00 UTC);
    let ca = CertAuthority::root(&CertSpec::authority(
        "CN=Lab Issuing CA 1, O=\"Contoso, Ltd\", C=US"
            .parse()
            .unwrap(),
        now,
    ))
    .unwrap();
    let mut spec = CertSpec::leaf("mail.contoso.com", now);
    spec.subject = SUBJECT.parse().unwrap();
    spec.dns_names = vec!["mail.contoso.com".into(), "autodiscover.contoso.com".into()];
    let leaf = ca.issue(&spec).unwrap();
    let mut session = classic_session();
    for e in &mut session.events {
        if let SessionEvent::Certificate { cert, .. } = &mut e.event {
            *cert = leaf.facts.clone();
        }
    }
    for style in [CertBlockStyle::MultiLine, CertBlockStyle::OneLine] {
        let text = write_log(
            &[session.clone()],
            &LogWriterOptions::send().with_cert_style(style),
        );
        let logs = read_log("gen", &text);
        let cert = logs.sessions[0]
            .session
            .events
            .iter()
            .find_map(|e| match &e.event {
                SessionEvent::Certificate { cert, .. } => Some(cert.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(cert, logged_view(&leaf.facts, style), "{style:?}");
        assert_eq!(cert.issuer, "CN=Lab Issuing CA 1, O=\"Contoso, Ltd\", C=US");
        assert_eq!(cert.subject, SUBJECT);
    }
}

/// Exchange 2013-2016 builds log a multi-line reply one line per keyword; the reader joins them
/// back into one reply (send log) or one collapsed line (receive log), so STARTTLS is seen.
#[test]
fn old_ehlo_layout_one_line_per_keyword() {
    let send = "#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n#Log-type: SMTP Send Protocol Log\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n\
2016-03-01T10:00:00.000Z,Outbound to Office 365,08D3419A00000001,0,,104.47.10.36:25,*,,attempting to connect\r\n\
2016-03-01T10:00:00.050Z,Outbound to Office 365,08D3419A00000001,1,10.0.0.5:24001,104.47.10.36:25,+,,\r\n\
2016-03-01T10:00:00.100Z,Outbound to Office 365,08D3419A00000001,2,10.0.0.5:24001,104.47.10.36:25,<,220 AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready,\r\n\
2016-03-01T10:00:00.110Z,Outbound to Office 365,08D3419A00000001,3,10.0.0.5:24001,104.47.10.36:25,>,EHLO mail.contoso.com,\r\n\
2016-03-01T10:00:00.150Z,Outbound to Office 365,08D3419A00000001,4,10.0.0.5:24001,104.47.10.36:25,<,250-AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10],\r\n\
2016-03-01T10:00:00.150Z,Outbound to Office 365,08D3419A00000001,5,10.0.0.5:24001,104.47.10.36:25,<,250-SIZE 157286400,\r\n\
2016-03-01T10:00:00.150Z,Outbound to Office 365,08D3419A00000001,6,10.0.0.5:24001,104.47.10.36:25,<,250-PIPELINING,\r\n\
2016-03-01T10:00:00.150Z,Outbound to Office 365,08D3419A00000001,7,10.0.0.5:24001,104.47.10.36:25,<,250-STARTTLS,\r\n\
2016-03-01T10:00:00.150Z,Outbound to Office 365,08D3419A00000001,8,10.0.0.5:24001,104.47.10.36:25,<,250 CHUNKING,\r\n\
2016-03-01T10:00:00.160Z,Outbound to Office 365,08D3419A00000001,9,10.0.0.5:24001,104.47.10.36:25,>,STARTTLS,\r\n";
    let logs = read_log("SEND20160301-1.LOG", send);
    assert_eq!(logs.files[0].skipped.count, 0);
    let s = &logs.sessions[0];
    let ehlo = s
        .session
        .events
        .iter()
        .position(|e| matches!(&e.event, SessionEvent::Received { reply } if reply.code == 250))
        .unwrap();
    let SessionEvent::Received { reply } = &s.session.events[ehlo].event else {
        unreachable!()
    };
    assert_eq!(
        reply.lines,
        [
            "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]",
            "SIZE 157286400",
            "PIPELINING",
            "STARTTLS",
            "CHUNKING"
        ]
    );
    assert_eq!(s.sources[ehlo].lines.len(), 5);
    assert_eq!(s.sources[ehlo].lines[3].line, 12);
    // The next event is the STARTTLS command, not a stray reply line.
    assert!(
        matches!(&s.session.events[ehlo + 1].event, SessionEvent::Sent { line } if line == "STARTTLS")
    );

    let recv = "#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n#Log-type: SMTP Receive Protocol Log\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n\
2016-03-01T10:00:00.000Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,0,10.0.0.5:25,40.107.22.55:41000,+,,\r\n\
2016-03-01T10:00:00.010Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,1,10.0.0.5:25,40.107.22.55:41000,>,220 mail.contoso.com Microsoft ESMTP MAIL Service ready,\r\n\
2016-03-01T10:00:00.020Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,2,10.0.0.5:25,40.107.22.55:41000,<,EHLO EUR01-HE1-obe.outbound.protection.outlook.com,\r\n\
2016-03-01T10:00:00.030Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,3,10.0.0.5:25,40.107.22.55:41000,>,250-mail.contoso.com Hello [40.107.22.55],\r\n\
2016-03-01T10:00:00.030Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,4,10.0.0.5:25,40.107.22.55:41000,>,250-SIZE 37748736,\r\n\
2016-03-01T10:00:00.030Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,5,10.0.0.5:25,40.107.22.55:41000,>,250-STARTTLS,\r\n\
2016-03-01T10:00:00.030Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,6,10.0.0.5:25,40.107.22.55:41000,>,250 XRDST,\r\n";
    let logs = read_log("RECV20160301-1.LOG", recv);
    let s = &logs.sessions[0];
    assert_eq!(s.kind, Some(LogKind::Receive));
    let lines: Vec<&str> = s
        .session
        .events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::Sent { line } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines[1],
        "250  mail.contoso.com Hello [40.107.22.55] SIZE 37748736 STARTTLS XRDST"
    );
    assert_eq!(s.session.events.len(), 4);
}
