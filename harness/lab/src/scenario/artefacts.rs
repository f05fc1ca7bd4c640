//! The artefacts of a replay, written per scenario by `hybridlab run --out DIR`: the files a real
//! server gives ([`hybridlab_artefacts::bundle`]: `SENDyyyymmdd-N.LOG`, `CONNECTLOGyyyymmdd-1.LOG`,
//! `Get-Queue.txt`/`.json`, `Get-Message.txt`, `Get-ExchangeCertificate.txt`,
//! `Get-ChildItem-Cert.txt`, `Get-SendConnector.txt`, `mock-eop-sessions.jsonl`), so
//! `hybridlab diagnose` reads the lab's output exactly as a customer's, plus, from
//! [`crate::report::write_scenario_dir`], `transcript.txt` (the narrated replay) and `sequence.svg`.
//!
//! [`send_log_lines`] gives the send log as written (file, line number), for the evidence of the
//! expectation checks.

use super::model::Scenario;
use super::runner::Replay;
use hybridlab_artefacts::bundle::{ArtefactBundle, BundleOptions};

/// One line of the send protocol log as written, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The file it is in (`SEND20260502-1.LOG`).
    pub file: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The session-id column of the line: which SMTP session (delivery attempt) wrote it.
    pub session: String,
    /// The `event,data,context` part, unquoted (`*,,TLS negotiation failed with error NoCredentials`).
    pub text: String,
}

/// The send log as it is written, line by line (header lines left out). Empty when the connector's
/// ProtocolLoggingLevel is None, as on a real server.
pub fn send_log_lines(r: &Replay) -> Vec<LogLine> {
    let mut out = Vec::new();
    let opts = BundleOptions::default();
    let files =
        hybridlab_artefacts::protocol_log::write_files(&r.bundle.send_sessions, &opts.send_log);
    for f in files {
        for (i, line) in f.content.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let fields = hybridlab_artefacts::csv::split_record(line);
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

/// The Exchange Online tenant the on-premises organisation belongs to, whose `Get-InboundConnector`
/// the support engineer would get: the tenant that accepts the senders' domain (the first
/// message's), else one that accepts a domain of the send connector's address spaces, else the
/// only tenant. Other tenants of `[eop]` (a hoster's, a partner's) are not the customer's to
/// export.
pub fn organisation_tenant<'s>(
    s: &'s Scenario,
    connector: &hybridlab_onprem::connector::SendConnector,
) -> Option<&'s hybridlab_model::exo::Tenant> {
    let tenants = &s.eop.tenants;
    let domain_of = |a: &str| a.rsplit_once('@').map(|(_, d)| d.to_string());
    s.messages
        .iter()
        .filter_map(|m| domain_of(&m.from))
        .find_map(|d| tenants.iter().find(|t| t.accepts(&d)))
        .or_else(|| {
            connector
                .address_spaces
                .iter()
                .find_map(|a| tenants.iter().find(|t| t.accepts(&a.domain)))
        })
        .or_else(|| (tenants.len() == 1).then(|| &tenants[0]))
}

/// Diagnoses a lab run exactly as a customer's export: the bundle is rendered into the files a real
/// server gives and read back through [`hybridlab_artefacts::ArtefactReader`] (kinds detected from the
/// content), then [`hybridlab_diagnose::diagnose`] runs on what was read.
pub fn diagnose_bundle(bundle: &ArtefactBundle) -> hybridlab_diagnose::Report {
    let mut reader = hybridlab_artefacts::ArtefactReader::new();
    for f in bundle.render(&BundleOptions::default()) {
        if !f.secret {
            reader.add_bytes(&f.name, f.content.as_bytes());
        }
    }
    hybridlab_diagnose::diagnose(&reader.finish(), &hybridlab_diagnose::Options::default())
}
