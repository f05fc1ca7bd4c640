//! The artefacts of a replay, written per scenario by `hybridlab run --out DIR` in Exchange's own
//! formats (the writers of [`crate::artefacts`]), so `hybridlab diagnose` reads the lab's output
//! exactly as it reads a customer's:
//! - `SENDyyyymmdd-N.LOG`: the send protocol log (CSV, classic certificate block);
//! - `Get-Queue.txt`, `Get-Message.txt`: `Format-List` listings at the end of the run;
//! - `Get-ExchangeCertificate.txt` (keyed certificates only, as the cmdlet) and
//!   `Get-ChildItem-Cert-LocalMachine-My.txt` (every certificate, with HasPrivateKey);
//! - `Get-SendConnector.txt`;
//! - `mock-sessions.jsonl`: the mock's record, one JSON document per SMTP session;
//! - `transcript.txt`: the narrated replay (plain text); `sequence.svg`: the picture.
//!
//! [`send_log_lines`] gives the send log as written (file, line number), for the evidence of the
//! expectation checks.

use std::path::{Path, PathBuf};

use super::model::Scenario;
use super::runner::Replay;
use crate::artefacts::certs::{
    CertListingRow, CertificateStatus, RootCaType, parse_services, write_cert_provider_list,
    write_exchange_certificate_list,
};
use crate::artefacts::connectors::{SendConnectorRow, write_send_connector_list};
use crate::artefacts::format_list::FlOptions;
use crate::artefacts::protocol_log::{LogFile, LogWriterOptions, write_files};
use crate::artefacts::queue::{
    MessageSnapshot, MessageStatus, write_message_list, write_queue_list,
};
use crate::transport::MessageQueueStatus;

/// One line of the send protocol log as written, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The file it is in (`SEND20260502-1.LOG`).
    pub file: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The session id.
    pub session: String,
    /// The `event,data,context` part, unquoted (`*,,TLS negotiation failed with error NoCredentials`).
    pub text: String,
}

/// The send protocol log files of a replay.
pub fn send_log_files(r: &Replay) -> Vec<LogFile> {
    let sessions: Vec<_> = r.sessions.iter().map(|s| s.log.clone()).collect();
    write_files(&sessions, &LogWriterOptions::send())
}

/// The send log as it is written, line by line (header lines left out).
pub fn send_log_lines(r: &Replay) -> Vec<LogLine> {
    let mut out = Vec::new();
    for f in send_log_files(r) {
        for (i, line) in f.content.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let fields = crate::artefacts::csv::split_record(line);
            if fields.len() < 9 {
                continue;
            }
            out.push(LogLine {
                file: f.name.clone(),
                line: i + 1,
                session: fields[2].to_string(),
                text: format!("{},{},{}", fields[6], fields[7], fields[8]),
            });
        }
    }
    out
}

fn cert_rows(r: &Replay) -> Vec<CertListingRow> {
    r.certificates
        .iter()
        .map(|c| {
            let mut row = CertListingRow::from_facts(&c.facts, c.has_private_key);
            row.services = Some(parse_services(&c.services));
            row.friendly_name = Some(c.friendly_name.clone());
            let in_date = c.facts.is_time_valid(r.end);
            let trusted = r
                .store
                .entry(&c.name)
                .is_some_and(|e| r.store.chains_to_trusted_root(e, r.end) || !in_date);
            row.status = Some(if !in_date {
                CertificateStatus::DateInvalid
            } else if trusted || c.facts.is_self_signed {
                CertificateStatus::Valid
            } else {
                CertificateStatus::Untrusted
            });
            row.root_ca_type = Some(if c.facts.is_self_signed {
                RootCaType::None
            } else {
                RootCaType::ThirdParty
            });
            row
        })
        .collect()
}

fn connector_row(r: &Replay) -> SendConnectorRow {
    let c = &r.connector;
    SendConnectorRow {
        name: c.name.clone(),
        identity: Some(c.name.clone()),
        address_spaces: c.address_spaces.iter().map(|a| a.to_string()).collect(),
        cloud_services_mail_enabled: Some(c.cloud_services_mail_enabled),
        connection_inactivity_timeout: Some(c.connection_inactivity_timeout.to_time()),
        connector_type: Some(format!("{:?}", c.connector_type)),
        dns_routing_enabled: Some(c.dns_routing_enabled),
        enabled: Some(c.enabled),
        force_helo: Some(c.force_helo),
        fqdn: c.fqdn.clone(),
        ignore_starttls: Some(c.ignore_starttls),
        port: Some(c.port),
        protocol_logging_level: Some(format!("{:?}", c.protocol_logging_level)),
        require_tls: Some(c.require_tls),
        smart_host_auth_mechanism: Some(format!("{:?}", c.smart_host_auth_mechanism)),
        smart_hosts: c.smart_hosts.clone(),
        smtp_max_messages_per_connection: Some(c.smtp_max_messages_per_connection),
        source_ip_address: c.source_ip_address.map(|a| a.to_string()),
        source_transport_servers: vec![r.server.name.clone()],
        tls_auth_level: c.tls_auth_level,
        tls_certificate_name: c.tls_certificate_name.clone().filter(|s| !s.is_empty()),
        tls_domain: c.tls_domain.clone().filter(|s| !s.is_empty()),
        ..SendConnectorRow::default()
    }
}

fn message_rows(r: &Replay) -> Vec<MessageSnapshot> {
    r.queued
        .iter()
        .map(|m| MessageSnapshot {
            identity: m.identity.clone(),
            queue: m.queue.clone(),
            subject: m.subject.clone(),
            from_address: m.from_address.clone(),
            status: match m.status {
                MessageQueueStatus::Active => MessageStatus::Active,
                MessageQueueStatus::Ready => MessageStatus::Ready,
                MessageQueueStatus::Retry => MessageStatus::Retry,
                MessageQueueStatus::Suspended => MessageStatus::Suspended,
            },
            size_bytes: Some(m.size),
            message_source_name: "FromLocal".into(),
            source_ip: "127.0.0.1".into(),
            scl: Some(-1),
            date_received: Some(m.date_received),
            expiration_time: Some(m.expiration_time),
            last_error: m.last_error.clone(),
            retry_count: m.retry_count,
            recipients: m.recipients.clone(),
            internet_message_id: format!("<{}>", m.identity.rsplit('\\').next().unwrap_or("")),
        })
        .collect()
}

/// Writes every artefact of `r` (and `svg`, the picture) into `dir`, returning the files written.
///
/// # Errors
/// A file cannot be written.
pub fn write(dir: &Path, s: &Scenario, r: &Replay, svg: &str) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let fl = FlOptions::default();
    let rows = cert_rows(r);
    let keyed: Vec<CertListingRow> = rows
        .iter()
        .filter(|c| c.has_private_key == Some(true))
        .cloned()
        .collect();
    let mock_sessions: Vec<String> = r.mock_sessions.iter().map(|m| m.to_json_line()).collect();
    let mut files: Vec<(String, String)> = send_log_files(r)
        .into_iter()
        .map(|f| (f.name, f.content))
        .collect();
    files.extend([
        (
            "Get-Queue.txt".to_string(),
            write_queue_list(std::slice::from_ref(&r.queue), &fl),
        ),
        (
            "Get-Message.txt".to_string(),
            write_message_list(&message_rows(r), &fl),
        ),
        (
            "Get-ExchangeCertificate.txt".to_string(),
            write_exchange_certificate_list(&keyed, &fl),
        ),
        (
            "Get-ChildItem-Cert-LocalMachine-My.txt".to_string(),
            write_cert_provider_list(&rows, &fl),
        ),
        (
            "Get-SendConnector.txt".to_string(),
            write_send_connector_list(&[connector_row(r)], &fl),
        ),
        (
            "mock-sessions.jsonl".to_string(),
            mock_sessions.join("\n") + "\n",
        ),
        (
            "transcript.txt".to_string(),
            crate::report::explain::narrate(s, r, &crate::report::explain::Style::plain()),
        ),
        ("sequence.svg".to_string(), svg.to_string()),
    ]);
    let mut written = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    Ok(written)
}
