//! The mock EOP's own record: one JSON document per SMTP session, one per line
//! (`mock-eop-sessions.jsonl`, written by `mock-eop serve --records` and by the lab), in the shape
//! of [`hybridlab_model::record::SessionRecord`].
//!
//! It is the lab's stand-in for what Exchange Online would tell about the same sessions (the
//! message trace, the connector report): which inbound connector and tenant EOP attributed the
//! session to, or why not; the client certificate it saw and whether its chain validated; every
//! reply it gave. The diagnosis uses it as EOP-side evidence next to the on-premises logs.
//!
//! [`is_records`] recognises the file by content (the first non-empty line is a JSON object with
//! `session_id`, `peer`, `transcript` and `close_reason`); [`read_records`] parses every line,
//! skipping (and counting) lines that are not session records. Messages keep their envelope and
//! verdicts; their raw bytes are dropped (a record may carry megabytes of message data that no
//! rule reads). Evidence quotes the member of the line that matters (`"attribution":{...}`), a
//! verbatim substring of the line cut at [`MAX_EVIDENCE_CHARS`] characters.

use hybridlab_model::record::SessionRecord;
use serde::{Deserialize, Serialize};

use super::text::{Evidence, Skipped, split_lines, truncate_chars};

/// How much of a JSON member an evidence line quotes.
pub const MAX_EVIDENCE_CHARS: usize = 240;

/// One session record with the lines to quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockSession {
    /// The record (messages without their raw bytes).
    pub record: SessionRecord,
    /// The file as given.
    pub file: String,
    /// 1-based line in the file.
    pub line: usize,
    /// `"peer":"127.0.0.5:27436"`.
    pub ev_peer: Evidence,
    /// `"attribution":{"verdict":...}` (the session's last verdict).
    pub ev_attribution: Option<Evidence>,
    /// `"client_certificate":{...}` or `"client_certificate":null` inside `"tls"`, or
    /// `"tls":null` when the handshake never happened.
    pub ev_client_certificate: Option<Evidence>,
}

/// Every record of a file, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockRecords {
    /// The sessions, in file order.
    pub sessions: Vec<MockSession>,
    /// Lines that are not session records.
    pub skipped: Skipped,
}

/// The keys every session record has.
#[derive(Deserialize)]
struct Probe {
    #[allow(dead_code)]
    session_id: String,
    #[allow(dead_code)]
    peer: serde::de::IgnoredAny,
    #[allow(dead_code)]
    transcript: serde::de::IgnoredAny,
    #[allow(dead_code)]
    close_reason: serde::de::IgnoredAny,
}

/// Whether the text is a file of mock session records.
pub fn is_records(text: &str) -> bool {
    split_lines(text)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with('{') && serde_json::from_str::<Probe>(l).is_ok())
}

/// The member `"name":<json of value>` of `line`, quoted (cut), when the line has it verbatim.
fn member<T: Serialize>(
    file: &str,
    line_no: usize,
    line: &str,
    name: &str,
    value: &T,
) -> Option<Evidence> {
    let json = serde_json::to_string(value).ok()?;
    let needle = format!("\"{name}\":{json}");
    let at = line.find(&needle)?;
    let text = &line[at..at + needle.len()];
    let cut = truncate_chars(text, MAX_EVIDENCE_CHARS);
    let quoted = if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut.to_string()
    };
    Some(Evidence::new(file, line_no, &quoted))
}

/// The start of the line, cut.
fn head(file: &str, line_no: usize, line: &str) -> Evidence {
    let cut = truncate_chars(line, MAX_EVIDENCE_CHARS);
    if cut.len() < line.len() {
        Evidence::new(file, line_no, &format!("{cut}…"))
    } else {
        Evidence::new(file, line_no, cut)
    }
}

/// Reads every line of a records file.
pub fn read_records(file: &str, text: &str) -> MockRecords {
    let mut out = MockRecords::default();
    for (i, raw) in split_lines(text).enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let Ok(mut record) = serde_json::from_str::<SessionRecord>(line) else {
            out.skipped.push(file, n, raw);
            continue;
        };
        let ev_peer =
            member(file, n, line, "peer", &record.peer).unwrap_or_else(|| head(file, n, line));
        let ev_attribution = record
            .attribution
            .as_ref()
            .and_then(|a| member(file, n, line, "attribution", a));
        let ev_client_certificate = match &record.tls {
            Some(tls) => member(file, n, line, "client_certificate", &tls.client_certificate),
            None => member(file, n, line, "tls", &record.tls),
        };
        for m in &mut record.messages {
            m.raw = std::sync::Arc::from(Vec::new());
        }
        out.sessions.push(MockSession {
            record,
            file: file.to_string(),
            line: n,
            ev_peer,
            ev_attribution,
            ev_client_certificate,
        });
    }
    drop_superseded(&mut out.sessions);
    out
}

/// `mock-eop serve --records` writes an open snapshot of the session (`close_reason` `open`)
/// for each accepted message before its 250, then the complete record when the session ends:
/// a snapshot whose session has a complete record later in the file is dropped (one that has
/// none, because the mock was killed, stays: it is all there is of that message).
fn drop_superseded(sessions: &mut Vec<MockSession>) {
    use hybridlab_model::record::CloseReason;
    let complete: std::collections::HashSet<String> = sessions
        .iter()
        .filter(|s| s.record.close_reason != CloseReason::Open)
        .map(|s| s.record.session_id.clone())
        .collect();
    sessions.retain(|s| {
        s.record.close_reason != CloseReason::Open || !complete.contains(&s.record.session_id)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"session_id":"08DE89CB6182BB6A","index":0,"peer":"127.0.0.5:27436","local":"127.0.0.1:25","started_at":"2026-05-02T06:30:00Z","ended_at":"2026-05-02T06:30:00Z","helo":"mail.contoso.com","tls":{"version":"TLSv1_2","cipher_suite":"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384","sni":null,"resumed":false,"client_certificate":null},"tls_error":null,"attribution":{"verdict":"unattributed","tenant":"contoso"},"transcript":[{"kind":"command","at":"2026-05-02T06:30:00Z","line":"EHLO mail.contoso.com"}],"faults_fired":[],"discarded_after_starttls":null,"protocol_errors":0,"close_reason":"quit","messages":[]}"#;

    #[test]
    fn reads_records_and_quotes_members() {
        let text = format!("{LINE}\r\nnot json\r\n\r\n{LINE}\r\n");
        assert!(is_records(&text));
        let r = read_records("mock-eop-sessions.jsonl", &text);
        assert_eq!(r.sessions.len(), 2);
        assert_eq!(r.skipped.count, 1);
        assert_eq!(r.skipped.samples[0].line, 2);
        let s = &r.sessions[1];
        assert_eq!(s.line, 4);
        assert_eq!(s.record.session_id, "08DE89CB6182BB6A");
        assert_eq!(s.ev_peer.text, r#""peer":"127.0.0.5:27436""#);
        assert_eq!(
            s.ev_attribution.as_ref().unwrap().text,
            r#""attribution":{"verdict":"unattributed","tenant":"contoso"}"#
        );
        assert_eq!(
            s.ev_client_certificate.as_ref().unwrap().text,
            r#""client_certificate":null"#
        );
    }

    #[test]
    fn open_snapshots_are_superseded_by_the_complete_record() {
        let open = LINE.replace(r#""close_reason":"quit""#, r#""close_reason":"open""#);
        let other = open.replace("08DE89CB6182BB6A", "08DE000000000001");
        let text = format!("{open}\n{other}\n{LINE}\n");
        let r = read_records("mock-eop-sessions.jsonl", &text);
        let ids: Vec<_> = r
            .sessions
            .iter()
            .map(|s| (s.record.session_id.as_str(), s.line))
            .collect();
        assert_eq!(ids, vec![("08DE000000000001", 2), ("08DE89CB6182BB6A", 3)]);
    }

    #[test]
    fn other_json_is_not_records() {
        assert!(!is_records(r#"{"Name":"x","Identity":"y"}"#));
        assert!(!is_records("[1,2]"));
        assert!(!is_records(""));
    }
}
