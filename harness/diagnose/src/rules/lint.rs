//! Configuration warnings that need no failure: `lint-domainvalidation-without-tlsdomain`,
//! `lint-hybrid-connector-without-requiretls`, `lint-dns-routing-with-smarthosts`,
//! `lint-smarthost-not-tenant-mx`. (The certificate lints live in `certs`.)

use super::{Draft, fill};
use crate::FindingId;
use crate::model::{Model, is_eop_host};
use hybridlab_model::exchange::TlsAuthLevel;

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for (ci, c) in m.connectors.iter().enumerate() {
        let Some(row) = c.row.map(|r| &r.row) else {
            continue;
        };
        if row.enabled == Some(false) {
            continue;
        }
        let tls_domain = row
            .tls_domain
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());

        if row.tls_auth_level == Some(TlsAuthLevel::DomainValidation) && tls_domain.is_none() {
            let mut d = Draft::new(
                FindingId::LintDomainValidationWithoutTlsDomain,
                c.name.clone(),
            );
            d.connector = Some(ci);
            d.evidence.push_opt(c.prop("TlsAuthLevel"));
            d.evidence.push_opt(c.prop("TlsDomain"));
            // The name the remote side really presents, from the connector's own sessions.
            let remote = m
                .sessions_of(ci)
                .filter_map(|s| s.remote_cert.and_then(|i| s.cert(i)))
                .last()
                .and_then(|cert| cert.names().first().map(|n| n.to_string()))
                .or_else(|| c.hybrid.then(|| "mail.protection.outlook.com".to_string()));
            let smart = !c.smart_hosts().is_empty();
            d.explanation = format!(
                "The send connector \"{}\" uses TlsAuthLevel DomainValidation but has no TlsDomain. {}",
                c.name,
                if smart {
                    "On a smart-host connector every session fails with 421 TLSAuthLevel cannot be DomainValidation \
                     with out a valid TLS Domain."
                } else {
                    "It routes by MX, so Exchange checks the remote certificate against the recipient domain instead, \
                     which works only while the remote certificate carries that name."
                }
            );
            let name = remote.unwrap_or_else(|| "<REMOTE_CERTIFICATE_NAME>".to_string());
            d.fix = fill(
                FIX_TLSDOMAIN,
                &[("CONNECTOR", &c.name), ("REMOTE_CERTIFICATE_NAME", &name)],
            );
            out.push(d);
        }

        if c.hybrid && (row.require_tls == Some(false) || row.ignore_starttls == Some(true)) {
            let mut d = Draft::new(
                FindingId::LintHybridConnectorWithoutRequireTls,
                c.name.clone(),
            );
            d.connector = Some(ci);
            d.evidence.push_opt(c.prop("RequireTLS"));
            if row.ignore_starttls == Some(true) {
                d.evidence.push_opt(c.prop("IgnoreSTARTTLS"));
            }
            d.explanation = format!(
                "The hybrid send connector \"{}\" has {}. A TLS failure silently falls back to clear text; EOP then \
                 rejects the mail (451 5.7.3) or treats it as anonymous, and the real fault stays hidden.",
                c.name,
                if row.ignore_starttls == Some(true) {
                    "IgnoreSTARTTLS True (it never starts TLS)"
                } else {
                    "RequireTLS False"
                }
            );
            d.fix = fill(FIX_REQUIRETLS, &[("CONNECTOR", &c.name)]);
            out.push(d);
        }

        if row.dns_routing_enabled == Some(true) && !row.smart_hosts.is_empty() {
            let mut d = Draft::new(FindingId::LintDnsRoutingWithSmarthosts, c.name.clone());
            d.connector = Some(ci);
            d.evidence.push_opt(c.prop("DNSRoutingEnabled"));
            d.evidence
                .push_opt(c.prop("SmartHosts").or_else(|| c.prop("SmartHostsString")));
            d.explanation = format!(
                "The send connector \"{}\" has DNSRoutingEnabled True and smart hosts ({}): the two contradict each \
                 other, and which one the transport follows depends on how the connector was written. Choose one.",
                c.name,
                row.smart_hosts.join(", ")
            );
            d.fix = fill(
                FIX_DNS_ROUTING,
                &[("CONNECTOR", &c.name), ("SMART_HOST", &row.smart_hosts[0])],
            );
            out.push(d);
        }

        let bad: Vec<&String> = row.smart_hosts.iter().filter(|h| !is_eop_host(h)).collect();
        if c.hybrid && !bad.is_empty() && !row.smart_hosts.iter().all(|h| h.trim() == "--") {
            let mut d = Draft::new(FindingId::LintSmarthostNotTenantMx, c.name.clone());
            d.connector = Some(ci);
            d.evidence
                .push_opt(c.prop("SmartHosts").or_else(|| c.prop("SmartHostsString")));
            let tenant = m.tenant_domain();
            let dashed = tenant.as_deref().map_or_else(
                || "<TENANT_DOMAIN_WITH_DASHES>".to_string(),
                |t| t.replace('.', "-"),
            );
            let bad_s: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
            d.explanation = format!(
                "The hybrid send connector \"{}\" smart-hosts to {}, which is not a tenant MX host \
                 (<name>.mail.protection.outlook.com): legacy FOPE names and fixed addresses may land in another \
                 region or tenant forest (451 4.4.62 ATTR35) or stop working without notice.",
                c.name,
                bad_s.join(", ")
            );
            d.fix = fill(
                FIX_SMARTHOST,
                &[
                    ("CONNECTOR", &c.name),
                    ("TENANT_DOMAIN_WITH_DASHES", &dashed),
                ],
            );
            out.push(d);
        }
    }
    out
}

const FIX_TLSDOMAIN: &str =
    "Set-SendConnector \"<CONNECTOR>\" -TlsDomain <REMOTE_CERTIFICATE_NAME>";

const FIX_REQUIRETLS: &str = "Set-SendConnector \"<CONNECTOR>\" -RequireTLS $true -TlsAuthLevel DomainValidation -TlsDomain mail.protection.outlook.com";

const FIX_DNS_ROUTING: &str =
    "Set-SendConnector \"<CONNECTOR>\" -DNSRoutingEnabled $false -SmartHosts <SMART_HOST>";

const FIX_SMARTHOST: &str = "Set-SendConnector \"<CONNECTOR>\" -SmartHosts <TENANT_DOMAIN_WITH_DASHES>.mail.protection.outlook.com";
