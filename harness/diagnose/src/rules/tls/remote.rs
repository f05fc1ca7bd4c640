//! Validating EOP's certificate: `remote-cert-untrusted`, `remote-cert-name-mismatch` (from the
//! log, or from the queue alone).

use hybridlab_model::exchange::{SecurityStatus, TlsAuthLevel};
use hybridlab_model::x509::names_match;

use super::{by_connector, connector_name, hybrid_sessions};
use crate::FindingId;
use crate::model::{ChainProblem, ConnectorView, Model, SessionView};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill, when};

/// Names of a remote certificate event, if any.
fn remote_names(s: &SessionView<'_>) -> Vec<String> {
    s.remote_cert
        .and_then(|i| s.cert(i))
        .map(|c| c.names().into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn tls_domain_of(c: Option<&ConnectorView<'_>>) -> Option<String> {
    c.and_then(|c| c.row)
        .and_then(|r| r.row.tls_domain.clone())
        .filter(|d| !d.trim().is_empty())
}

fn auth_level_of(c: Option<&ConnectorView<'_>>) -> Option<TlsAuthLevel> {
    c.and_then(|c| c.row).and_then(|r| r.row.tls_auth_level)
}

/// The root to import for EOP's chain, from the issuer the session logged.
fn root_for(issuer: &str) -> &'static str {
    let l = issuer.to_ascii_lowercase();
    if l.contains("g2") {
        "DigiCertGlobalRootG2"
    } else if l.contains("digicert") {
        "DigiCertGlobalRootCA"
    } else if l.contains("microsoft") {
        "Microsoft RSA Root Certificate Authority 2017"
    } else {
        "<ROOT_CERTIFICATE>"
    }
}

/// remote-cert-untrusted and remote-cert-name-mismatch.
pub(super) fn remote_validation(m: &Model<'_>) -> Vec<Draft> {
    let mut untrusted = Vec::new();
    let mut mismatch = Vec::new();
    for s in hybrid_sessions(m) {
        match validation_failure(m, s) {
            Some((ChainProblem::Untrusted, tok, i)) => untrusted.push((s, (tok, i))),
            Some((ChainProblem::NameMismatch, tok, i)) => mismatch.push((s, (tok, i))),
            None => {}
        }
    }
    let mut out: Vec<Draft> = by_connector(untrusted)
        .into_iter()
        .map(|(conn, v)| untrusted_draft(m, conn, &v))
        .collect();
    out.extend(
        by_connector(mismatch)
            .into_iter()
            .map(|(conn, v)| name_mismatch_draft(m, conn, &v)),
    );
    out.extend(validation_from_queues(m, &out));
    out
}

/// What is wrong with the remote certificate in a session, if anything: the problem, the token
/// that says so (chain status, SChannel status or the 421's words) and the event index.
fn validation_failure(m: &Model<'_>, s: &SessionView<'_>) -> Option<(ChainProblem, String, usize)> {
    let conn = m.connector_of(s);
    let dv = auth_level_of(conn) == Some(TlsAuthLevel::DomainValidation);
    let tls_domain = tls_domain_of(conn);
    // Only a DomainValidation connector with a TlsDomain checks the remote names.
    let names_ok = || {
        !dv || tls_domain.as_deref().is_none_or(|d| {
            let names = remote_names(s);
            names.is_empty() || names_match(d, names.iter().map(String::as_str))
        })
    };
    let mismatch = |tok: &str, i| Some((ChainProblem::NameMismatch, tok.to_string(), i));
    match (s.chain.clone(), s.tls_failed) {
        (Some((ChainProblem::NameMismatch, tok, i)), _) => mismatch(&tok, i),
        (_, Some((SecurityStatus::WrongPrincipal, i))) => mismatch("WrongPrincipal", i),
        (Some((ChainProblem::Untrusted, tok, i)), _) => Some((ChainProblem::Untrusted, tok, i)),
        (
            _,
            Some((
                st @ (SecurityStatus::UntrustedRoot
                | SecurityStatus::CertExpired
                | SecurityStatus::CertUnknown
                | SecurityStatus::TimeSkew),
                i,
            )),
        ) => {
            if st == SecurityStatus::CertUnknown && !names_ok() {
                mismatch("SubjectMismatch", i)
            } else {
                Some((ChainProblem::Untrusted, st.as_str().to_string(), i))
            }
        }
        _ => {
            let domain_syn = s.replies().find(|(_, r)| {
                r.code == 421 && r.text().contains("TLSAuthLevel cannot be DomainValidation")
            });
            if let Some((i, _)) = domain_syn {
                mismatch("TLSAuthLevel without TlsDomain", i)
            } else if s.tls_ok.is_some()
                && s.sent_any("MAIL").is_none()
                && s.disconnect.is_some()
                && !names_ok()
            {
                // Handshake done, names do not match TlsDomain, the session ends.
                mismatch("SubjectMismatch", s.remote_cert.or(s.tls_ok).unwrap_or(0))
            } else {
                None
            }
        }
    }
}

/// remote-cert-untrusted for one connector's sessions (newest first), each with the token and
/// the event that says so.
fn untrusted_draft(
    m: &Model<'_>,
    conn: Option<usize>,
    v: &[(&SessionView<'_>, (String, usize))],
) -> Draft {
    let (s0, _) = &v[0];
    let cname = connector_name(m, s0);
    let mut d = Draft::new(FindingId::RemoteCertUntrusted, cname);
    d.connector = conn;
    d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
    for (k, (s, (_, i))) in v.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
        if let Some(rc) = s.remote_cert {
            d.occurrence(k, s.ev(rc));
        }
    }
    d.evidence
        .extend(m.queue_evs(conn, &["4.7.5 Certificate validation failure"]));
    let connector = conn.map(|i| &m.connectors[i]);
    d.evidence
        .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
    let issuer = s0
        .remote_cert
        .and_then(|i| s0.cert(i))
        .map(|c| c.issuer.clone())
        .unwrap_or_default();
    let mut tokens: Vec<String> = v.iter().map(|(_, (t, _))| t.clone()).collect();
    tokens.sort();
    tokens.dedup();
    let level =
        auth_level_of(connector).map_or("certificate validation".to_string(), |l| l.to_string());
    d.explanation = format!(
        "With TlsAuthLevel {level}, Exchange checks EOP's certificate chain{} and cannot build it to a trusted \
         root (chain status {}, {}, the last at {}): the session ends with 454 4.7.5 Certificate validation \
         failure. The root (for EOP since March 2026, DigiCert Global Root G2) is missing from the server's \
         Trusted Root store, typically on DMZ or Server Core machines where automatic root updates are disabled.{}",
        if issuer.is_empty() { String::new() } else { format!(" (issued by {issuer})") },
        tokens.join(", "),
        count(v.len(), "session"),
        s0.start.map(when).unwrap_or_default(),
        tls_domain_of(connector)
            .filter(|t| {
                let names = remote_names(s0);
                !names.is_empty() && names_match(t, names.iter().map(String::as_str))
            })
            .map(|t| format!(" The remote certificate's names match TlsDomain {t}, so the name is not the problem."))
            .unwrap_or_default(),
    );
    d.fix = fill(FIX_UNTRUSTED, &[("ROOT_CERTIFICATE", root_for(&issuer))]);
    d
}

/// remote-cert-name-mismatch for one connector's sessions (newest first).
fn name_mismatch_draft(
    m: &Model<'_>,
    conn: Option<usize>,
    v: &[(&SessionView<'_>, (String, usize))],
) -> Draft {
    let (s0, _) = &v[0];
    let cname = connector_name(m, s0);
    let connector = conn.map(|i| &m.connectors[i]);
    let mut d = Draft::new(FindingId::RemoteCertNameMismatch, cname.clone());
    d.connector = conn;
    d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
    for (k, (s, (_, i))) in v.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
        if let Some(rc) = s.remote_cert.filter(|rc| rc != i) {
            d.occurrence(k, s.ev(rc));
        }
    }
    d.evidence
        .push_opt(connector.and_then(|c| c.prop("TlsDomain")));
    d.evidence
        .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
    d.evidence.extend(m.queue_evs(
        conn,
        &[
            "4.7.5 Certificate validation failure",
            "TLSAuthLevel cannot be",
        ],
    ));
    let names = remote_names(s0);
    let eop = names.iter().any(|n| {
        n.eq_ignore_ascii_case("mail.protection.outlook.com")
            || n.ends_with(".mail.protection.outlook.com")
    });
    let td = tls_domain_of(connector).unwrap_or_else(|| "(empty)".to_string());
    d.explanation = format!(
        "The send connector \"{cname}\" uses DomainValidation and only accepts a remote certificate named {td}; \
         {} ({}). Set the TLS domain Exchange Online really uses.{}",
        if names.is_empty() {
            "the remote certificate does not match it".to_string()
        } else {
            format!("the remote side presents {}", names.join(", "))
        },
        count(v.len(), "session"),
        if !names.is_empty() && !eop {
            " The presented certificate is not EOP's at all: a TLS-intercepting proxy on the path re-signs the \
             connection (FM-18); exempt the EOP ranges from TLS inspection."
        } else {
            ""
        },
    );
    d.fix = fill(FIX_NAME_MISMATCH, &[("CONNECTOR", &cname)]);
    d
}

/// The transport's own verdicts that only the queue shows: `421 TLSAuthLevel cannot be
/// DomainValidation with out a valid TLS Domain.` (the session never gets to STARTTLS), and
/// `454 4.7.5 Certificate validation failure` for a connector no log covers.
fn validation_from_queues(m: &Model<'_>, already: &[Draft]) -> Vec<Draft> {
    let mut out: Vec<Draft> = Vec::new();
    for q in &m.queues {
        let led = q.led();
        let no_domain = led.contains("TLSAuthLevel cannot be DomainValidation");
        let untrusted = !no_domain
            && led.contains("4.7.5 Certificate validation failure")
            && q.connector
                .is_none_or(|ci| m.connectors[ci].sessions.is_empty());
        let id = match (no_domain, untrusted) {
            (true, _) => FindingId::RemoteCertNameMismatch,
            (_, true) => FindingId::RemoteCertUntrusted,
            _ => continue,
        };
        let connector = q.connector.map(|i| &m.connectors[i]);
        let cname = connector.map_or_else(|| "<CONNECTOR>".to_string(), |c| c.name.clone());
        if already
            .iter()
            .chain(out.iter())
            .any(|d| d.id == id && d.key == cname)
        {
            continue;
        }
        let mut d = Draft::new(id, cname.clone());
        d.connector = q.connector;
        d.evidence.push_opt(q.ev.clone());
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsDomain")));
        if no_domain {
            d.evidence
                .push_opt(connector.and_then(|c| c.prop("SmartHosts")));
            // The sessions it stopped: EHLO answered, then QUIT without STARTTLS.
            if let Some(ci) = q.connector {
                let mut quiet: Vec<&SessionView<'_>> = m
                    .sessions_of(ci)
                    .filter(|s| {
                        s.starttls.is_none()
                            && s.sent_any("MAIL").is_none()
                            && s.ehlo_reply.is_some()
                    })
                    .collect();
                quiet.sort_by_key(|s| std::cmp::Reverse(s.start));
                for (k, s) in quiet.iter().take(MAX_OCCURRENCES).enumerate() {
                    if let Some(i) = s.ehlo_reply {
                        d.occurrence(k, s.ev(i));
                    }
                    if let Some(i) = s.disconnect {
                        d.occurrence(k, s.ev(i));
                    }
                }
                d.sessions = quiet.iter().map(|s| s.id().to_string()).collect();
            }
            d.explanation = format!(
                "The send connector \"{cname}\" uses TlsAuthLevel DomainValidation without a TlsDomain. It sends to \
                 smart hosts, so Exchange has no domain to check EOP's certificate against and gives up before \
                 STARTTLS: the queue shows \"{led}\", the transport's own verdict (EOP is never asked). Set the TLS \
                 domain Exchange Online really uses."
            );
            d.fix = fill(FIX_NAME_MISMATCH, &[("CONNECTOR", &cname)]);
        } else {
            d.explanation = format!(
                "The queue of the send connector \"{cname}\" shows \"{led}\": with certificate validation on, \
                 Exchange could not validate the remote certificate's chain. No protocol log covers this connector; \
                 the usual cause is a root missing from the server's Trusted Root store (for EOP since March 2026, \
                 DigiCert Global Root G2). Collect the send protocol log to see the chain status."
            );
            d.fix = fill(
                FIX_UNTRUSTED,
                &[("ROOT_CERTIFICATE", "DigiCertGlobalRootG2")],
            );
        }
        out.push(d);
    }
    out
}

const FIX_UNTRUSTED: &str = "Import-Certificate -FilePath C:\\Temp\\<ROOT_CERTIFICATE>.crt -CertStoreLocation Cert:\\LocalMachine\\Root
# keep the root list current (often disabled on Edge servers)
Set-ItemProperty 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates\\AuthRoot' -Name DisableRootAutoUpdate -Value 0
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_NAME_MISMATCH: &str =
    "Set-SendConnector \"<CONNECTOR>\" -TlsDomain mail.protection.outlook.com
Get-Queue | Where Status -eq Retry | Retry-Queue";
