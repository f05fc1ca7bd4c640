//! The artefacts of a replay, written per scenario by `hybridlab run --out DIR`: the send protocol
//! log, the queue and message listings, the certificate listings, the connector, the mock's session
//! records, the transcript and the picture.
//!
//! Everything goes through [`write`] and [`send_log_lines`], so the formats can move to Exchange's
//! own (the artefact writers) without touching the runner or the expectation checks. Until those
//! writers are in this build, the listings are JSON and the send log is the protocol log's
//! `event,data,context` lines with the time and the session id in front.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::Scenario;
use super::runner::Replay;

/// The send log's file name.
pub const SEND_LOG: &str = "send-protocol-log.txt";

/// One line of the send protocol log as written, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The file it is in.
    pub file: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The session id.
    pub session: String,
    /// The `event,data,context` part.
    pub text: String,
}

/// The send log as it is written, line by line.
pub fn send_log_lines(r: &Replay) -> Vec<LogLine> {
    let mut out = Vec::new();
    let mut n = 1; // line 1 is the header
    for s in &r.sessions {
        for line in s.transcript().lines() {
            n += 1;
            let text = line.split_once(' ').map(|(_, t)| t).unwrap_or(line);
            out.push(LogLine {
                file: SEND_LOG.into(),
                line: n,
                session: s.log.session_id.clone(),
                text: text.to_string(),
            });
        }
    }
    out
}

fn send_log_text(r: &Replay) -> String {
    let mut out =
        String::from("# date-time session-id event,data,context (hybridlab send protocol log)\n");
    for s in &r.sessions {
        for line in s.transcript().lines() {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            out.push_str(&format!("{ts} {} {rest}\n", s.log.session_id));
        }
    }
    out
}

#[derive(Serialize)]
struct Listing<'a, T: Serialize> {
    scenario: &'a str,
    items: T,
}

fn json<T: Serialize>(id: &str, items: T) -> String {
    serde_json::to_string_pretty(&Listing {
        scenario: id,
        items,
    })
    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Writes every artefact of `r` (and `svg`, the picture) into `dir`, returning the files written.
///
/// # Errors
/// A file cannot be written.
pub fn write(dir: &Path, s: &Scenario, r: &Replay, svg: &str) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let id = s.scenario.id.as_str();
    let store_rows: Vec<_> = r.certificates.iter().collect();
    let exchange_rows: Vec<_> = r
        .certificates
        .iter()
        .filter(|c| c.has_private_key)
        .collect();
    let mock_sessions: Vec<String> = r.mock_sessions.iter().map(|m| m.to_json_line()).collect();
    let files: Vec<(&str, String)> = vec![
        (SEND_LOG, send_log_text(r)),
        ("Get-Queue.json", json(id, &r.queue)),
        ("Get-Message.json", json(id, &r.queued)),
        ("Get-ExchangeCertificate.json", json(id, exchange_rows)),
        ("Cert-LocalMachine-My.json", json(id, store_rows)),
        ("Get-SendConnector.json", json(id, &r.connector)),
        ("queue-timeline.json", json(id, &r.timeline)),
        ("mock-sessions.jsonl", mock_sessions.join("\n") + "\n"),
        (
            "transcript.txt",
            crate::report::explain::narrate(s, r, &crate::report::explain::Style::plain()),
        ),
        ("sequence.svg", svg.to_string()),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    Ok(written)
}
