//! Rules that need the Exchange Online side of the session, which the on-premises exports cannot
//! show: `client-cert-untrusted` (FM-10/FM-13: EOP cannot build the client certificate's chain)
//! and `cert-domain-not-accepted` (FM-09: another tenant's connector takes the mail).
//!
//! The evidence is the mock EOP's session record (`mock-eop-sessions.jsonl`), the lab's stand-in
//! for a message trace: its attribution verdict and the client certificate it saw, joined with the
//! send session (banner session id) and, for FM-09, the organisation's `Get-InboundConnector`.

use std::collections::BTreeMap;

use hybridlab_model::attribution::{AttributedBy, AttributionVerdict};
use hybridlab_model::record::ChainVerdict;
use hybridlab_model::x509::names_match;

use super::{Draft, MAX_OCCURRENCES, count, fill};
use crate::FindingId;
use crate::model::{EopView, Model, prop_ev};

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(client_cert_untrusted(m));
    out.extend(cert_domain_not_accepted(m));
    out
}

/// EOP records grouped by the send connector of their session (newest first).
fn by_connector<'m, 'a>(
    m: &'m Model<'a>,
    items: Vec<&'m EopView<'a>>,
) -> BTreeMap<Option<usize>, Vec<&'m EopView<'a>>> {
    let mut g: BTreeMap<Option<usize>, Vec<&'m EopView<'a>>> = BTreeMap::new();
    for e in items {
        let c = e.session.and_then(|si| m.sessions[si].connector);
        g.entry(c).or_default().push(e);
    }
    for v in g.values_mut() {
        v.sort_by_key(|e| std::cmp::Reverse(e.m.record.started_at));
    }
    g
}

fn connector_name(m: &Model<'_>, c: Option<usize>, e: &EopView<'_>) -> String {
    c.map(|i| m.connectors[i].name.clone())
        .or_else(|| {
            e.session
                .map(|si| m.sessions[si].ps.session.connector_id.clone())
        })
        .unwrap_or_else(|| "<CONNECTOR>".to_string())
}

/// The send log's thumbprint line of the certificate the session presented, if logged.
fn thumbprint_line(m: &Model<'_>, e: &EopView<'_>) -> Option<crate::model::Ev> {
    let s = &m.sessions[e.session?];
    s.sending_cert.map(|i| s.thumbprint_ev(i))
}

fn client_cert_untrusted(m: &Model<'_>) -> Vec<Draft> {
    let hits: Vec<&EopView<'_>> = m
        .eop
        .iter()
        .filter(|e| {
            let Some(cc) = e.client_certificate() else {
                return false;
            };
            // Self-signed is no-client-certificate; an expired chain is cert-expired's.
            !cc.verdict.is_valid()
                && !cc.leaf.is_self_signed
                && !matches!(
                    cc.verdict,
                    ChainVerdict::Expired | ChainVerdict::NotValidYet
                )
                && e.verdict()
                    .is_some_and(|v| !matches!(v, AttributionVerdict::Attributed { .. }))
        })
        .collect();
    let mut out = Vec::new();
    for (conn, v) in by_connector(m, hits) {
        let e0 = v[0];
        let Some(cc) = e0.client_certificate() else {
            continue;
        };
        let cname = connector_name(m, conn, e0);
        let mut d = Draft::new(FindingId::ClientCertUntrusted, cname.clone());
        d.connector = conn;
        d.sessions = v
            .iter()
            .filter_map(|e| e.session.map(|si| m.sessions[si].id().to_string()))
            .collect();
        for (k, e) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            for ev in e.evs() {
                d.occurrence(k, ev);
            }
        }
        d.evidence.push_opt(thumbprint_line(m, e0));
        let issuer = cc.leaf.issuer.clone();
        let enterprise = issuer
            .split(',')
            .any(|rdn| rdn.trim().to_ascii_uppercase().starts_with("DC="));
        let root_sent = cc.chain.last().is_some_and(|c| c.is_self_signed);
        let private_ca = enterprise || root_sent;
        let name = cc
            .leaf
            .common_names
            .first()
            .cloned()
            .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string());
        let verdict = e0
            .verdict()
            .map_or_else(|| "unattributed".to_string(), |v| v.kind().to_string());
        let cause = if private_ca {
            format!(
                "The certificate comes from a private (enterprise) CA, \"{issuer}\", that Exchange Online does not \
                 trust: on-premises servers trust it, EOP does not. Hybrid needs a certificate from a public CA that \
                 carries {name}."
            )
        } else {
            format!(
                "The server sent the certificate {}: the issuing CA \"{issuer}\" is missing from the server's \
                 Intermediate Certification Authorities store (LocalMachine\\CA). Windows still validates the \
                 certificate locally (through the AIA URL), so the connector finds it, but SChannel sends only \
                 what is installed and EOP does not chase AIA URLs.",
                if cc.chain.is_empty() {
                    "alone, without any certificate of its chain".to_string()
                } else {
                    format!(
                        "with {} of its chain, not the one that issued it",
                        count(cc.chain.len(), "certificate")
                    )
                },
            )
        };
        d.explanation = format!(
            "Exchange Online's record of {} shows the client certificate {} (thumbprint {}) with chain verdict {}: \
             EOP cannot build its chain to a root it trusts, so the certificate cannot attribute the session \
             (verdict {verdict}) and the mail is treated as anonymous Internet mail (hybrid headers dropped, \
             relaying refused). {cause}",
            count(v.len(), "session"),
            cc.leaf.subject,
            cc.leaf.thumbprint,
            cc.verdict,
        );
        d.fix = if private_ca {
            fill(
                FIX_PRIVATE_CA,
                &[
                    ("CONNECTOR", &cname),
                    ("NAME", &name),
                    ("SERVER", &m.server_name()),
                ],
            )
        } else {
            fill(
                FIX_INTERMEDIATE,
                &[
                    ("ISSUING_CA", &cn_or(&issuer)),
                    ("SERVER", &m.server_name()),
                ],
            )
        };
        out.push(d);
    }
    out
}

/// The CN of a DN, or the DN.
pub(super) fn cn_or(dn: &str) -> String {
    hybridlab_artefacts::protocol_log::common_names_of(dn)
        .into_iter()
        .next()
        .unwrap_or_else(|| dn.to_string())
}

fn cert_domain_not_accepted(m: &Model<'_>) -> Vec<Draft> {
    if m.a.inbound_connectors.is_empty() {
        // Without the organisation's connector listing, "another tenant's connector" cannot be told.
        return Vec::new();
    }
    let ours = |name: &str| {
        m.a.inbound_connectors
            .iter()
            .any(|c| c.row.name.eq_ignore_ascii_case(name))
    };
    let hits: Vec<&EopView<'_>> = m
        .eop
        .iter()
        .filter(|e| {
            matches!(
                e.verdict(),
                Some(AttributionVerdict::Attributed { connector, by: AttributedBy::Certificate, .. })
                    if !ours(connector)
            )
        })
        .collect();
    let mut out = Vec::new();
    for (conn, v) in by_connector(m, hits) {
        let e0 = v[0];
        let Some(AttributionVerdict::Attributed {
            tenant, connector, ..
        }) = e0.verdict()
        else {
            continue;
        };
        let cname = connector_name(m, conn, e0);
        let mut d = Draft::new(FindingId::CertDomainNotAccepted, cname.clone());
        d.connector = conn;
        d.sessions = v
            .iter()
            .filter_map(|e| e.session.map(|si| m.sessions[si].id().to_string()))
            .collect();
        for (k, e) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            for ev in e.evs() {
                d.occurrence(k, ev);
            }
        }
        d.evidence.push_opt(thumbprint_line(m, e0));
        let names: Vec<String> = e0
            .client_certificate()
            .map(|cc| cc.leaf.names().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let claim = m.onprem_inbound().find(|ic| {
            ic.row
                .tls_sender_certificate_name
                .as_deref()
                .is_some_and(|n| names_match(n.trim(), names.iter().map(String::as_str)))
        });
        if let Some(ic) = claim {
            d.evidence
                .push_opt(prop_ev(&ic.evidence, "TlsSenderCertificateName"));
        }
        let inbound = claim
            .or_else(|| m.onprem_inbound().next())
            .map_or_else(|| "<INBOUND_CONNECTOR>".to_string(), |c| c.row.name.clone());
        let name = names
            .first()
            .cloned()
            .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string());
        let domain = name
            .split_once('.')
            .map_or(name.as_str(), |(_, d)| d)
            .to_string();
        d.explanation = format!(
            "Exchange Online attributed {} of \"{cname}\" to the connector \"{connector}\" of another organisation \
             (tenant {tenant}), by the certificate {name} the server presents{}. Since the 2026 attribution change \
             (MC1226222) a certificate attributes a session only in the tenant that owns its domain as an accepted \
             domain, and {domain} is not one of yours: your mail is processed under the other organisation (its \
             connectors and rules apply, yours and the hybrid header handling do not). Present a certificate \
             with a name in one of your own accepted domains (one certificate and one send connector per tenant) \
             and name it in TlsSenderCertificateName.",
            count(v.len(), "session"),
            match claim {
                Some(ic) => format!(
                    ", although your connector \"{}\" expects that very name",
                    ic.row.name
                ),
                None => String::new(),
            },
        );
        d.fix = fill(
            FIX_DOMAIN,
            &[("CONNECTOR", &cname), ("INBOUND_CONNECTOR", &inbound)],
        );
        out.push(d);
    }
    out
}

pub(super) const FIX_INTERMEDIATE: &str =
    "# install the issuing CA's certificate (from the CA's bundle or the certificate's AIA URL)
Import-Certificate -FilePath \"C:\\Temp\\<ISSUING_CA>.cer\" -CertStoreLocation Cert:\\LocalMachine\\CA
# on every server in the connector's SourceTransportServers, then
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

pub(super) const FIX_PRIVATE_CA: &str = "# request a certificate for <NAME> from a public CA, complete it on this server, then
Import-ExchangeCertificate -Server <SERVER> -FileData ([System.IO.File]::ReadAllBytes('\\\\<SERVER>\\c$\\Temp\\public.pfx')) -Password (Read-Host 'PFX password' -AsSecureString)
Enable-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT> -Services SMTP
$c = Get-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeTransport";

const FIX_DOMAIN: &str = "# Exchange Online PowerShell: your accepted domains
Get-AcceptedDomain | Format-Table DomainName,DomainType
# on-premises: present a certificate named in one of them
$c = Get-ExchangeCertificate -Thumbprint <THUMBPRINT_OF_YOUR_OWN_CERTIFICATE>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
# Exchange Online PowerShell
Set-InboundConnector \"<INBOUND_CONNECTOR>\" -TlsSenderCertificateName <NAME_IN_YOUR_ACCEPTED_DOMAIN>";
