//! Tenant attribution, pure: session facts and the envelope in, a verdict and the reply out
//! (docs/domain.md's attribution rules).
//!
//! Step A picks the tenant: a valid client certificate whose names match the
//! TlsSenderCertificateName of an OnPremises connector (and, by default, that name is an accepted
//! domain of the tenant) wins outright; otherwise the tenant owning the MAIL FROM domain; otherwise
//! the tenant owning the RCPT TO domain. Step B picks the connector inside that tenant: one whose
//! certificate name matches, else one whose SenderIPAddresses holds the client's IPv4 address;
//! either must cover the MAIL FROM domain in SenderDomains. Then:
//!
//! | situation | verdict | reply |
//! |---|---|---|
//! | connector found, RequireTls, no TLS | `tls_required` | `451 5.7.3 STARTTLS is required to send mail` (at MAIL, or RCPT) |
//! | tenant region differs from the endpoint's | `wrong_region` | `451 4.4.62 ... ATTR35 ...` (RCPT) |
//! | OnPremises connector | `attributed` | accepted, any recipient (relay allowed) |
//! | Partner connector, recipient outside its tenant | `relay_denied` | `550 5.7.64 TenantAttribution; Relay Access Denied [host]` |
//! | no connector, recipient in a tenant with a restricting Partner connector for the sender domain | `partner_restricted` | `550 5.7.51 TenantInboundAttribution; ...` |
//! | no connector, RejectDirectSend, sender domain accepted by the recipient's tenant | `direct_send_denied` | `550 5.7.68 ...` |
//! | no connector, recipient in a tenant | `unattributed` | accepted as anonymous Internet mail |
//! | no connector, recipient in no tenant, sender domain accepted somewhere | `relay_denied` | `550 5.7.64 TenantAttribution; ...` |
//! | no connector, recipient in no tenant, sender domain accepted nowhere | `relay_denied_attr36` | `550 5.7.64 Relay Access Denied ATTR36 ...` |
//!
//! # Contract
//! [`AttributionVerdict`] serialises with a `verdict` tag in snake_case
//! (`{"verdict":"attributed","tenant":"contoso","connector":"Inbound from contoso","by":"certificate"}`)
//! and [`VerdictKind`] is its name alone, the string scenario files compare with
//! (`expect.attribution = "attributed"`).

use std::net::IpAddr;

use crate::config::{EopConfig, ReplyTemplate, WildcardMatching};
pub use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};
use hybridlab_model::exo::{ConnectorType, InboundConnector, Tenant};
use hybridlab_model::record::ClientCertificate;
use hybridlab_model::reply::{Reply, eop};
use hybridlab_model::x509::name_matches;

/// What attribution needs to know about the session.
#[derive(Debug, Clone)]
pub struct SessionFacts<'a> {
    /// The client's IP: what a connector's SenderIPAddresses must hold.
    pub peer: IpAddr,
    /// Whether STARTTLS completed.
    pub tls: bool,
    /// The client certificate, if one was presented.
    pub client_certificate: Option<&'a ClientCertificate>,
    /// What goes between the brackets at the end of a reject text
    /// ([`crate::config::Endpoint::reply_tag`]: host, time and session id, or the host alone).
    pub reply_tag: String,
}

/// The verdict and, when the command is refused, the reply to send instead of the 250.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The tenant and connector the transaction is attributed to, or why it is not (what the
    /// session record's `attribution` shows).
    pub verdict: AttributionVerdict,
    /// `Some` when the command is refused.
    pub reject: Option<Reply>,
    /// Whether the matched connector has CloudServicesMailEnabled, so EOP keeps the
    /// cross-premises (`X-MS-Exchange-Organization-*`) headers.
    pub cross_premises: bool,
}

/// The domain part of an address (`None` for the null sender or no `@`).
pub fn domain_of(address: &str) -> Option<&str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, d) = address.rsplit_once('@')?;
    (!d.is_empty()).then_some(d)
}

fn cert_matches(
    cfg: &EopConfig,
    connector: &InboundConnector,
    cert: Option<&ClientCertificate>,
) -> bool {
    let (Some(pattern), Some(cert)) = (&connector.tls_sender_certificate_name, cert) else {
        return false;
    };
    if !cert.verdict.is_valid() {
        return false;
    }
    cert.leaf
        .names()
        .into_iter()
        .any(|n| name_match(pattern, n, cfg.attribution.wildcard))
}

fn name_match(configured: &str, cert_name: &str, mode: WildcardMatching) -> bool {
    if name_matches(configured, cert_name) || name_matches(cert_name, configured) {
        return true;
    }
    if mode == WildcardMatching::AnyDepth {
        let deep = |pattern: &str, name: &str| -> bool {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match pattern.to_ascii_lowercase().strip_prefix("*.") {
                Some(suffix) => name.ends_with(&format!(".{suffix}")),
                None => false,
            }
        };
        return deep(configured, cert_name) || deep(cert_name, configured);
    }
    false
}

/// The connector found for the session, with how.
#[derive(Debug, Clone, Copy)]
struct Found<'a> {
    tenant: &'a Tenant,
    connector: &'a InboundConnector,
    by: AttributedBy,
}

fn find_connector<'a>(
    cfg: &'a EopConfig,
    facts: &SessionFacts<'_>,
    sender_domain: Option<&str>,
    rcpt_domain: Option<&str>,
) -> Option<Found<'a>> {
    // Step A1: the certificate against OnPremises connectors of every tenant.
    if facts.client_certificate.is_some() {
        for t in &cfg.tenants {
            for c in t
                .inbound_connectors
                .iter()
                .filter(|c| c.enabled && c.connector_type == ConnectorType::OnPremises)
            {
                if cert_matches(cfg, c, facts.client_certificate)
                    && (!cfg.attribution.certificate_domain_must_be_accepted
                        || c.tls_sender_certificate_name
                            .as_deref()
                            .is_some_and(|n| t.covers_name(n.trim_start_matches("*."))))
                {
                    return Some(Found {
                        tenant: t,
                        connector: c,
                        by: AttributedBy::Certificate,
                    });
                }
            }
        }
    }
    // Step A2/A3: the tenant by sender domain, then by recipient domain; step B inside it.
    let by_sender = sender_domain.and_then(|d| cfg.tenant_of_domain(d));
    let by_rcpt = rcpt_domain.and_then(|d| cfg.tenant_of_domain(d));
    for t in [by_sender, by_rcpt].into_iter().flatten() {
        let candidates = || {
            t.inbound_connectors
                .iter()
                .filter(|c| c.enabled && c.covers_sender(sender_domain))
        };
        if let Some(c) = candidates().find(|c| cert_matches(cfg, c, facts.client_certificate)) {
            return Some(Found {
                tenant: t,
                connector: c,
                by: AttributedBy::Certificate,
            });
        }
        if let Some(c) = candidates().find(|c| c.covers_ip(facts.peer)) {
            return Some(Found {
                tenant: t,
                connector: c,
                by: AttributedBy::Ip,
            });
        }
    }
    None
}

/// The configured replacement for a reply (placeholders filled), else EOP's text `dflt`.
fn render(cfg: &EopConfig, over: Option<&ReplyTemplate>, peer: IpAddr, dflt: Reply) -> Reply {
    match over {
        Some(t) => t.render(&cfg.endpoint.reject_host, &peer.to_string(), 0),
        None => dflt,
    }
}

fn tls_required(cfg: &EopConfig, f: &Found<'_>, peer: IpAddr) -> Decision {
    Decision {
        verdict: AttributionVerdict::TlsRequired {
            tenant: f.tenant.name.clone(),
            connector: f.connector.name.clone(),
        },
        reject: Some(render(
            cfg,
            cfg.replies.starttls_required.as_ref(),
            peer,
            eop::starttls_required(),
        )),
        cross_premises: false,
    }
}

fn wrong_region(cfg: &EopConfig, t: &Tenant, peer: IpAddr) -> Option<Decision> {
    let region = cfg.region_of(t);
    if region.eq_ignore_ascii_case(&cfg.endpoint.region) {
        return None;
    }
    Some(Decision {
        verdict: AttributionVerdict::WrongRegion {
            tenant: t.name.clone(),
            tenant_region: region.to_string(),
            endpoint_region: cfg.endpoint.region.clone(),
        },
        reject: Some(render(
            cfg,
            cfg.replies.wrong_region.as_ref(),
            peer,
            eop::wrong_region(),
        )),
        cross_premises: false,
    })
}

fn attributed(f: &Found<'_>) -> Decision {
    Decision {
        verdict: AttributionVerdict::Attributed {
            tenant: f.tenant.name.clone(),
            connector: f.connector.name.clone(),
            by: f.by,
        },
        reject: None,
        cross_premises: f.connector.cloud_services_mail_enabled,
    }
}

/// The decision at MAIL FROM: a matched connector that requires TLS refuses a cleartext session
/// here; everything else is decided per recipient.
pub fn evaluate_mail(cfg: &EopConfig, facts: &SessionFacts<'_>, sender: &str) -> Decision {
    let sender_domain = domain_of(sender);
    match find_connector(cfg, facts, sender_domain, None) {
        Some(f) if f.connector.require_tls && !facts.tls => tls_required(cfg, &f, facts.peer),
        Some(f) => attributed(&f),
        None => Decision {
            verdict: AttributionVerdict::Unattributed {
                tenant: sender_domain
                    .and_then(|d| cfg.tenant_of_domain(d))
                    .map(|t| t.name.clone()),
            },
            reject: None,
            cross_premises: false,
        },
    }
}

/// The decision for one RCPT TO.
pub fn evaluate_rcpt(
    cfg: &EopConfig,
    facts: &SessionFacts<'_>,
    sender: &str,
    recipient: &str,
) -> Decision {
    let sender_domain = domain_of(sender);
    let rcpt_domain = domain_of(recipient);
    let rcpt_tenant = rcpt_domain.and_then(|d| cfg.tenant_of_domain(d));
    if let Some(f) = find_connector(cfg, facts, sender_domain, rcpt_domain) {
        return by_connector(cfg, &f, facts, rcpt_tenant);
    }
    match rcpt_tenant {
        Some(r) => into_tenant(cfg, r, sender_domain, facts),
        None => {
            let reply = |r: Option<&ReplyTemplate>, dflt| render(cfg, r, facts.peer, dflt);
            let host = &facts.reply_tag;
            match sender_domain.and_then(|d| cfg.tenant_of_domain(d)) {
                Some(t) => refused(
                    AttributionVerdict::RelayDenied {
                        tenant: Some(t.name.clone()),
                    },
                    reply(cfg.replies.relay_denied.as_ref(), eop::relay_denied(host)),
                ),
                None => refused(
                    AttributionVerdict::RelayDeniedAttr36,
                    reply(
                        cfg.replies.relay_denied_attr36.as_ref(),
                        eop::relay_denied_attr36(host),
                    ),
                ),
            }
        }
    }
}

/// A connector matched (step B found one): TLS, region, then a Partner connector relays only into
/// its own tenant; an OnPremises connector relays anywhere.
fn by_connector(
    cfg: &EopConfig,
    f: &Found<'_>,
    facts: &SessionFacts<'_>,
    rcpt_tenant: Option<&Tenant>,
) -> Decision {
    if f.connector.require_tls && !facts.tls {
        return tls_required(cfg, f, facts.peer);
    }
    if let Some(d) = wrong_region(cfg, f.tenant, facts.peer) {
        return d;
    }
    let in_tenant = rcpt_tenant.is_some_and(|r| std::ptr::eq(r, f.tenant));
    if f.connector.connector_type == ConnectorType::Partner && !in_tenant {
        return refused(
            AttributionVerdict::RelayDenied {
                tenant: Some(f.tenant.name.clone()),
            },
            render(
                cfg,
                cfg.replies.relay_denied.as_ref(),
                facts.peer,
                eop::relay_denied(&facts.reply_tag),
            ),
        );
    }
    attributed(f)
}

/// No connector, the recipient is in tenant `r`: its region, a restricting Partner connector for
/// the sender's domain, RejectDirectSend; else anonymous Internet mail into the tenant.
fn into_tenant(
    cfg: &EopConfig,
    r: &Tenant,
    sender_domain: Option<&str>,
    facts: &SessionFacts<'_>,
) -> Decision {
    let peer = facts.peer;
    if let Some(d) = wrong_region(cfg, r, peer) {
        return d;
    }
    let host = &facts.reply_tag;
    if let Some(p) = r.inbound_connectors.iter().find(|c| {
        c.enabled
            && c.connector_type == ConnectorType::Partner
            && (c.restrict_domains_to_certificate || c.restrict_domains_to_ip_addresses)
            && c.sender_domains
                .iter()
                .any(|s| s.0 != "*" && s.covers(sender_domain))
    }) {
        return refused(
            AttributionVerdict::PartnerRestricted {
                tenant: r.name.clone(),
                connector: p.name.clone(),
            },
            render(
                cfg,
                cfg.replies.partner_restricted.as_ref(),
                peer,
                eop::partner_restriction(host),
            ),
        );
    }
    if r.reject_direct_send && sender_domain.is_some_and(|d| r.accepts(d)) {
        return refused(
            AttributionVerdict::DirectSendDenied {
                tenant: r.name.clone(),
            },
            render(
                cfg,
                cfg.replies.direct_send_denied.as_ref(),
                peer,
                eop::direct_send_denied(host),
            ),
        );
    }
    Decision {
        verdict: AttributionVerdict::Unattributed {
            tenant: Some(r.name.clone()),
        },
        reject: None,
        cross_premises: false,
    }
}

/// A refusal: `verdict`, answered with `reply`.
fn refused(verdict: AttributionVerdict, reply: Reply) -> Decision {
    Decision {
        verdict,
        reject: Some(reply),
        cross_premises: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CONTOSO_TOML, MockFile, SenderDomain};
    use hybridlab_labkit::pki::{CertAuthority, CertSpec};
    use hybridlab_model::record::ChainVerdict;

    /// What these tests add to the contoso tenant: a second contoso connector by IP
    /// (127.0.0.7), fabrikam in another region, tailspin with RejectDirectSend and a Partner
    /// connector for woodgrove.com restricted to its certificate.
    const MORE_TENANTS: &str = r#"
[[eop.tenants.inbound_connectors]]
name = "Contoso by IP"
connector_type = "on_premises"
sender_ip_addresses = ["127.0.0.7"]

[[eop.tenants]]
name = "fabrikam"
region = "NAM"
accepted_domains = [{ domain = "fabrikam.com" }]

[[eop.tenants]]
name = "tailspin"
accepted_domains = [{ domain = "tailspin.com" }]
reject_direct_send = true
[[eop.tenants.inbound_connectors]]
name = "Partner woodgrove"
sender_domains = ["woodgrove.com"]
tls_sender_certificate_name = "mail.woodgrove.com"
restrict_domains_to_certificate = true
"#;

    /// The contoso tenant of `mock-eop serve` ([`CONTOSO_TOML`]) with its certificate connector
    /// widened to `*.contoso.com`, then [`MORE_TENANTS`].
    fn cfg() -> EopConfig {
        let mut cfg = MockFile::from_toml(&format!("{CONTOSO_TOML}{MORE_TENANTS}"), "t.toml")
            .unwrap()
            .eop;
        cfg.tenants[0].inbound_connectors[0].tls_sender_certificate_name =
            Some("*.contoso.com".into());
        cfg
    }

    fn cert(cn: &str, verdict: ChainVerdict) -> ClientCertificate {
        let now = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let root =
            CertAuthority::root(&CertSpec::authority("CN=Lab Root".parse().unwrap(), now)).unwrap();
        let leaf = root.issue(&CertSpec::leaf(cn, now)).unwrap();
        ClientCertificate {
            leaf: leaf.facts,
            chain: Vec::new(),
            verdict,
        }
    }

    fn facts<'a>(ip: &str, tls: bool, c: Option<&'a ClientCertificate>) -> SessionFacts<'a> {
        SessionFacts {
            peer: ip.parse().unwrap(),
            tls,
            client_certificate: c,
            reply_tag: "AMS0EPF0000019A.eurprd04.prod.outlook.com".into(),
        }
    }

    #[test]
    fn certificate_attribution_and_relay() {
        let cfg = cfg();
        let c = cert("mail.contoso.com", ChainVerdict::Valid);
        let f = facts("127.0.0.5", true, Some(&c));
        let d = evaluate_mail(&cfg, &f, "alice@contoso.com");
        assert_eq!(d.reject, None);
        assert_eq!(d.verdict.kind(), VerdictKind::Attributed);
        assert!(d.cross_premises);
        // relay to the Internet is allowed for an OnPremises connector, whatever the sender domain
        let d = evaluate_rcpt(&cfg, &f, "noreply@unaccepted.example", "x@gmail.example");
        assert_eq!(
            d.verdict,
            AttributionVerdict::Attributed {
                tenant: "contoso".into(),
                connector: "Inbound from contoso".into(),
                by: AttributedBy::Certificate
            }
        );
        // the same certificate without TLS cannot exist; without TLS and no cert the IP decides
        let d = evaluate_rcpt(
            &cfg,
            &facts("127.0.0.5", true, None),
            "a@contoso.com",
            "x@gmail.example",
        );
        assert_eq!(d.verdict.kind(), VerdictKind::RelayDenied);
        assert_eq!(
            d.reject.unwrap().one_line(),
            "550 5.7.64 TenantAttribution; Relay Access Denied [AMS0EPF0000019A.eurprd04.prod.outlook.com]"
        );
    }

    #[test]
    fn wrong_name_untrusted_and_deep_wildcards() {
        let cfg = cfg();
        for (cn, verdict) in [
            ("smtp.contoso.net", ChainVerdict::Valid),
            ("mail.contoso.com", ChainVerdict::UnknownIssuer),
            ("a.b.contoso.com", ChainVerdict::Valid),
            ("contoso.com", ChainVerdict::Valid),
        ] {
            let c = cert(cn, verdict.clone());
            let f = facts("127.0.0.5", true, Some(&c));
            let d = evaluate_rcpt(&cfg, &f, "a@contoso.com", "x@gmail.example");
            assert_eq!(d.verdict.kind(), VerdictKind::RelayDenied, "{cn} {verdict}");
        }
        let mut deep = cfg;
        deep.attribution.wildcard = WildcardMatching::AnyDepth;
        let c = cert("a.b.contoso.com", ChainVerdict::Valid);
        let d = evaluate_rcpt(
            &deep,
            &facts("127.0.0.5", true, Some(&c)),
            "a@contoso.com",
            "x@gmail.example",
        );
        assert_eq!(d.verdict.kind(), VerdictKind::Attributed);
    }

    #[test]
    fn require_tls_ip_attribution_and_attr36() {
        let cfg = cfg();
        // IP connector without RequireTls: attributed by IP, relay allowed
        let f = facts("127.0.0.7", false, None);
        let d = evaluate_rcpt(&cfg, &f, "a@contoso.com", "x@gmail.example");
        assert_eq!(d.verdict.kind(), VerdictKind::Attributed);
        assert_eq!(
            d.verdict,
            AttributionVerdict::Attributed {
                tenant: "contoso".into(),
                connector: "Contoso by IP".into(),
                by: AttributedBy::Ip
            }
        );
        // a sibling address is not covered
        let d = evaluate_rcpt(
            &cfg,
            &facts("127.0.0.8", false, None),
            "a@contoso.com",
            "x@gmail.example",
        );
        assert_eq!(d.verdict.kind(), VerdictKind::RelayDenied);
        // IP connector, but the sender domain is nobody's: ATTR36
        let d = evaluate_rcpt(&cfg, &f, "a@unaccepted.example", "x@gmail.example");
        assert_eq!(d.verdict, AttributionVerdict::RelayDeniedAttr36);
        assert!(d.reject.unwrap().text().contains("ATTR36"));
        // a RequireTls connector matched by IP in cleartext
        let mut req = cfg;
        req.tenants[0].inbound_connectors[1].require_tls = true;
        let d = evaluate_mail(&req, &f, "a@contoso.com");
        assert_eq!(d.verdict.kind(), VerdictKind::TlsRequired);
        assert_eq!(
            d.reject.unwrap().one_line(),
            "451 5.7.3 STARTTLS is required to send mail"
        );
    }

    #[test]
    fn inbound_region_partner_and_direct_send() {
        let cfg = cfg();
        let f = facts("127.0.0.9", true, None);
        // anonymous mail into a tenant is accepted
        let d = evaluate_rcpt(&cfg, &f, "x@gmail.example", "bob@contoso.com");
        assert_eq!(
            d.verdict,
            AttributionVerdict::Unattributed {
                tenant: Some("contoso".into())
            }
        );
        assert!(d.reject.is_none());
        // tenant in another region
        let d = evaluate_rcpt(&cfg, &f, "x@gmail.example", "bob@fabrikam.com");
        assert_eq!(d.verdict.kind(), VerdictKind::WrongRegion);
        assert!(
            d.reject
                .unwrap()
                .one_line()
                .starts_with("451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35.")
        );
        // partner restriction
        let d = evaluate_rcpt(&cfg, &f, "x@woodgrove.com", "bob@tailspin.com");
        assert_eq!(d.verdict.kind(), VerdictKind::PartnerRestricted);
        assert!(
            d.reject
                .unwrap()
                .text()
                .starts_with("5.7.51 TenantInboundAttribution;")
        );
        // the partner's certificate satisfies it
        let c = cert("mail.woodgrove.com", ChainVerdict::Valid);
        let d = evaluate_rcpt(
            &cfg,
            &facts("127.0.0.9", true, Some(&c)),
            "x@woodgrove.com",
            "bob@tailspin.com",
        );
        assert_eq!(d.verdict.kind(), VerdictKind::Attributed);
        // ... but a Partner connector cannot relay (and woodgrove.com is nobody's domain: ATTR36)
        let d = evaluate_rcpt(
            &cfg,
            &facts("127.0.0.9", true, Some(&c)),
            "x@woodgrove.com",
            "bob@gmail.example",
        );
        assert_eq!(d.verdict.kind(), VerdictKind::RelayDeniedAttr36);
        // direct send
        let d = evaluate_rcpt(&cfg, &f, "ceo@tailspin.com", "bob@tailspin.com");
        assert_eq!(d.verdict.kind(), VerdictKind::DirectSendDenied);
    }

    #[test]
    fn certificate_name_must_be_an_accepted_domain_by_default() {
        let mut cfg = cfg();
        cfg.tenants[0].inbound_connectors[0].tls_sender_certificate_name =
            Some("mail.contoso.net".into());
        let c = cert("mail.contoso.net", ChainVerdict::Valid);
        let f = facts("127.0.0.5", true, Some(&c));
        let d = evaluate_rcpt(&cfg, &f, "noreply@unaccepted.example", "x@gmail.example");
        assert_eq!(d.verdict.kind(), VerdictKind::RelayDeniedAttr36);
        cfg.attribution.certificate_domain_must_be_accepted = false;
        let d = evaluate_rcpt(&cfg, &f, "noreply@unaccepted.example", "x@gmail.example");
        assert_eq!(d.verdict.kind(), VerdictKind::Attributed);
        let _ = SenderDomain("*".into());
    }

    #[test]
    fn verdict_serde_forms_are_stable() {
        let v = AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso".into(),
            by: AttributedBy::Certificate,
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"verdict":"attributed","tenant":"contoso","connector":"Inbound from contoso","by":"certificate"}"#
        );
        assert_eq!(
            serde_json::to_string(&AttributionVerdict::RelayDeniedAttr36).unwrap(),
            r#"{"verdict":"relay_denied_attr36"}"#
        );
        for k in VerdictKind::ALL {
            assert_eq!(k.as_str().parse::<VerdictKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!(domain_of("<a@Contoso.com>"), Some("Contoso.com"));
        assert_eq!(domain_of(""), None);
    }
}
