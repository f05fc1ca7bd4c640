//! The certificate EOP attributes the session by: `no-client-certificate`,
//! `inbound-connector-cert-mismatch`.

use hybridlab_artefacts::connectors::InboundConnectorRow;
use hybridlab_artefacts::ps::Parsed;
use hybridlab_model::attribution::AttributionVerdict;
use hybridlab_model::x509::{dn_eq, names_match};

use super::{by_connector, connector_name, hybrid_sessions};
use crate::FindingId;
use crate::model::{Ev, Model, SessionView, StoreCert, prop_ev};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill};

/// no-client-certificate and inbound-connector-cert-mismatch: what EOP can attribute by.
pub(super) fn client_certificate(m: &Model<'_>) -> Vec<Draft> {
    let inbound = InboundExpectation::of(m);
    if inbound.connectors.is_empty() && m.eop.is_empty() {
        return Vec::new();
    }
    let mut none_or_self = Vec::new();
    let mut mismatch = Vec::new();
    for s in hybrid_sessions(m) {
        match client_cert_problem(m, s, &inbound) {
            Some((ClientCertProblem::NoneOrSelfSigned, i)) => none_or_self.push((s, i)),
            Some((ClientCertProblem::NameNotExpected, i)) => mismatch.push((s, i)),
            None => {}
        }
    }
    let mut out: Vec<Draft> = by_connector(none_or_self)
        .into_iter()
        .map(|(conn, v)| no_client_cert_draft(m, &inbound, conn, &v))
        .collect();
    out.extend(
        by_connector(mismatch)
            .into_iter()
            .map(|(conn, v)| inbound_mismatch_draft(m, &inbound, conn, &v)),
    );
    out
}

/// What Exchange Online's OnPremises inbound connectors expect of the certificate a session
/// presents.
struct InboundExpectation<'a> {
    /// The enabled OnPremises inbound connectors with a TlsSenderCertificateName.
    connectors: Vec<&'a Parsed<InboundConnectorRow>>,
    /// The first one's TlsSenderCertificateName (empty without a connector listing).
    expected: String,
    /// The first one's name, else the `<INBOUND_CONNECTOR>` placeholder.
    name: String,
    /// The first one's TlsSenderCertificateName line.
    ev: Option<Ev>,
}

impl<'a> InboundExpectation<'a> {
    fn of(m: &Model<'a>) -> Self {
        let connectors: Vec<_> = m
            .onprem_inbound()
            .filter(|c| {
                c.row
                    .tls_sender_certificate_name
                    .as_deref()
                    .is_some_and(|n| !n.trim().is_empty())
            })
            .collect();
        let first = connectors.first();
        Self {
            expected: first
                .and_then(|c| c.row.tls_sender_certificate_name.clone())
                .unwrap_or_default(),
            name: first.map_or_else(|| "<INBOUND_CONNECTOR>".to_string(), |c| c.row.name.clone()),
            ev: first.and_then(|c| prop_ev(&c.evidence, "TlsSenderCertificateName")),
            connectors,
        }
    }

    /// Whether any of the connectors accepts a certificate carrying `names`.
    fn accepts(&self, names: &[&str]) -> bool {
        self.connectors.iter().any(|ic| {
            ic.row
                .tls_sender_certificate_name
                .as_deref()
                .is_some_and(|n| names_match(n.trim(), names.iter().copied()))
        })
    }
}

/// Why EOP cannot attribute a session by its client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCertProblem {
    /// No certificate, or a self-signed one.
    NoneOrSelfSigned,
    /// A public certificate whose names the inbound connector does not expect.
    NameNotExpected,
}

/// The Exchange Online side (the mock's record standing in for the message trace): the session
/// was not attributed to any connector.
fn eop_unattributed(m: &Model<'_>, s: &SessionView<'_>) -> bool {
    m.session_index(s)
        .and_then(|si| m.eop_of(si))
        .and_then(|e| e.verdict())
        .is_some_and(|v| {
            matches!(
                v,
                AttributionVerdict::Unattributed { .. }
                    | AttributionVerdict::RelayDenied { .. }
                    | AttributionVerdict::RelayDeniedAttr36
                    | AttributionVerdict::DirectSendDenied { .. }
            )
        })
}

/// What is wrong with the certificate a session presented to EOP, with the event to quote; only
/// sessions that negotiated TLS (or went cleartext because the connector ignores STARTTLS) count.
fn client_cert_problem(
    m: &Model<'_>,
    s: &SessionView<'_>,
    inbound: &InboundExpectation<'_>,
) -> Option<(ClientCertProblem, usize)> {
    let cleartext_by_config = s.starttls.is_none()
        && s.sent_any("MAIL").is_some()
        && m.connector_of(s).and_then(|c| c.ignore_starttls()) == Some(true);
    if s.tls_ok.is_none() && !cleartext_by_config {
        return None;
    }
    let cert_based = !inbound.connectors.is_empty();
    match s.sending_cert.and_then(|i| s.cert(i).map(|c| (i, c))) {
        None if cert_based || eop_unattributed(m, s) => Some((
            ClientCertProblem::NoneOrSelfSigned,
            s.tls_ok.or(s.ehlo_reply).unwrap_or(0),
        )),
        Some((i, c)) if dn_eq(&c.subject, &c.issuer) && (cert_based || eop_unattributed(m, s)) => {
            Some((ClientCertProblem::NoneOrSelfSigned, i))
        }
        Some((_, c)) if dn_eq(&c.subject, &c.issuer) => None,
        None => None,
        Some(_) if !cert_based => None,
        Some((i, c)) => {
            (!inbound.accepts(&c.names())).then_some((ClientCertProblem::NameNotExpected, i))
        }
    }
}

/// The EOP record's verdict and client-certificate lines of the newest sessions.
fn eop_evs(m: &Model<'_>, v: &[(&SessionView<'_>, usize)]) -> Vec<Ev> {
    v.iter()
        .take(MAX_OCCURRENCES)
        .filter_map(|(s, _)| m.session_index(s).and_then(|si| m.eop_of(si)))
        .take(1)
        .flat_map(|e| e.evs())
        .collect()
}

/// A keyed, time-valid public certificate carrying the `expected` name (without one: enabled for
/// SMTP), the one to pin on the connector.
fn public_cert_for<'s>(m: &'s Model<'_>, expected: &str) -> Option<&'s StoreCert> {
    m.store
        .certs
        .iter()
        .filter(|x| x.is_keyed() && x.valid_at(m.as_of) && !dn_eq(&x.subject, &x.issuer))
        .find(|x| {
            if expected.trim().is_empty() {
                // No connector listing: the keyed public certificate enabled for SMTP.
                return x
                    .services
                    .as_ref()
                    .is_some_and(|sv| sv.iter().any(|s| s.as_str() == "SMTP"));
            }
            let mut names: Vec<&str> = x.domains.iter().map(String::as_str).collect();
            let cns = hybridlab_artefacts::protocol_log::common_names_of(&x.subject);
            names.extend(cns.iter().map(String::as_str));
            names_match(expected.trim(), names)
        })
}

/// no-client-certificate for one connector's sessions (newest first).
fn no_client_cert_draft(
    m: &Model<'_>,
    inbound: &InboundExpectation<'_>,
    conn: Option<usize>,
    v: &[(&SessionView<'_>, usize)],
) -> Draft {
    let (s0, i0) = v[0];
    let cname = connector_name(m, s0);
    let connector = conn.map(|i| &m.connectors[i]);
    let mut d = Draft::new(FindingId::NoClientCertificate, cname.clone());
    d.connector = conn;
    d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
    for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
    }
    let eop_lines = eop_evs(m, v);
    let eop_saw = !eop_lines.is_empty();
    d.evidence.extend(eop_lines);
    d.evidence
        .push_opt(connector.and_then(|c| c.prop("TlsCertificateName")));
    d.evidence.push_opt(inbound.ev.clone());
    if connector.and_then(|c| c.ignore_starttls()) == Some(true) {
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("IgnoreSTARTTLS")));
    }
    let presented = s0.cert(i0).map_or_else(
        || "no certificate".to_string(),
        |c| format!("the self-signed {}", c.subject),
    );
    let expected = &inbound.expected;
    let pick = public_cert_for(m, expected);
    let thumb = pick.map_or_else(|| "<THUMBPRINT>".to_string(), |x| x.thumbprint.clone());
    let name = if expected.starts_with("*.") || expected.trim().is_empty() {
        pick.and_then(|x| {
            hybridlab_artefacts::protocol_log::common_names_of(&x.subject)
                .into_iter()
                .next()
        })
        .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string())
    } else {
        expected.clone()
    };
    let expects = if expected.trim().is_empty() {
        String::new()
    } else {
        format!(
            ": the inbound connector \"{}\" expects {expected}",
            inbound.name
        )
    };
    d.explanation = format!(
        "EOP identifies hybrid mail by the certificate the server presents{expects}. The send connector \
         \"{cname}\" presents {presented} ({}), which EOP cannot use, so the mail is treated as anonymous \
         Internet mail{}. Pin the public certificate on the connector.",
        count(v.len(), "session"),
        if eop_saw {
            " (Exchange Online's record of the session shows it unattributed)"
        } else {
            ""
        },
    );
    d.fix = fill(
        FIX_NO_CLIENT_CERT,
        &[
            ("THUMBPRINT", &thumb),
            ("CONNECTOR", &cname),
            ("NAME_IN_CERTIFICATE", &name),
        ],
    );
    d
}

/// inbound-connector-cert-mismatch for one connector's sessions (newest first).
fn inbound_mismatch_draft(
    m: &Model<'_>,
    inbound: &InboundExpectation<'_>,
    conn: Option<usize>,
    v: &[(&SessionView<'_>, usize)],
) -> Draft {
    let (s0, i0) = v[0];
    let cname = connector_name(m, s0);
    let mut d = Draft::new(FindingId::InboundConnectorCertMismatch, cname.clone());
    d.connector = conn;
    d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
    for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
        d.occurrence(k, s.ev_containing(*i, "alternate names"));
    }
    d.evidence.push_opt(inbound.ev.clone());
    d.evidence.extend(eop_evs(m, v));
    for (s, _) in v.iter().take(MAX_OCCURRENCES) {
        for (i, r) in s.replies() {
            if r.text().starts_with("5.7.64") || r.text().starts_with("5.7.68") {
                d.evidence.push(s.ev(i));
            }
        }
    }
    let cert = s0.cert(i0);
    let names: Vec<String> = cert
        .map(|c| c.names().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    let cn = names
        .first()
        .cloned()
        .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string());
    d.explanation = format!(
        "Exchange Online recognises your servers by the name in the certificate they present. The connector \
         \"{inbound_name}\" expects {expected} but the certificate the send connector \"{cname}\" presents carries \
         {} ({}), so the mail is not attributed to your organisation: hybrid headers are dropped and relaying \
         through Exchange Online is refused.",
        names.join(", "),
        count(v.len(), "session"),
        inbound_name = inbound.name,
        expected = inbound.expected,
    );
    d.fix = fill(
        FIX_INBOUND_MISMATCH,
        &[
            ("INBOUND_CONNECTOR", &inbound.name),
            ("NAME_IN_CERTIFICATE", &cn),
            ("CONNECTOR", &cname),
        ],
    );
    d
}

const FIX_NO_CLIENT_CERT: &str = "$c = Get-ExchangeCertificate -Thumbprint <THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\" -Fqdn <NAME_IN_CERTIFICATE>
Restart-Service MSExchangeTransport";

const FIX_INBOUND_MISMATCH: &str = "# Exchange Online PowerShell
Set-InboundConnector \"<INBOUND_CONNECTOR>\" -TlsSenderCertificateName <NAME_IN_CERTIFICATE>
# or present a certificate that carries the expected name (on-premises)
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I><ISSUER><S><SUBJECT>\"";
