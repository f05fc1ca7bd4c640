//! The `[eop]` configuration: the endpoint, its TLS and limits, the tenants with their accepted
//! domains and inbound connectors, and the EOP behaviours docs/domain.md marks as uncertain.
//!
//! # Contract
//! Scenario files embed [`EopConfig`] under `[eop]` (and [`crate::fault::Fault`] under
//! `[[faults]]`); `mock-eop serve --config FILE` reads the same two tables ([`MockFile`]). Keys are
//! snake_case; every table denies unknown keys; every key has a default, so `[eop]` may be empty.
//! An empty config has **no tenant**: every recipient is then outside any tenant and relaying is
//! refused. [`EopConfig::contoso`] is the contoso-like default `mock-eop serve` uses when no file
//! is given.
//!
//! ```toml
//! [eop.endpoint]
//! hostname = "AMS0EPF0000019A.mail.protection.outlook.com"
//! region = "EUR"
//!
//! [eop.limits]
//! idle_timeout = "00:05:00"          # Exchange timespan, or "30s", "5m", "250ms", or seconds
//!
//! [[eop.tenants]]
//! name = "contoso"
//! accepted_domains = [
//!   { domain = "contoso.com", type = "internal_relay" },
//!   { domain = "contoso.mail.onmicrosoft.com" },
//! ]
//!
//! [[eop.tenants.inbound_connectors]]
//! name = "Inbound from contoso"
//! connector_type = "on_premises"
//! tls_sender_certificate_name = "*.contoso.com"
//! sender_ip_addresses = ["127.0.0.5", "127.0.1.0/24"]
//! require_tls = true
//! cloud_services_mail_enabled = true
//! ```
//!
//! Errors from [`MockFile::from_toml`] and [`MockFile::from_path`] name the file, line, column and
//! key: a TOML or serde error at toml's span, a failed check at the key its path names in the
//! right `[[eop.tenants]]` entry ([`hybridlab_model::located`]).
//!
//! Settings for behaviours docs/domain.md tags as uncertain: the idle and session timeouts
//! ([`Limits`]), TLS 1.3 on/off ([`TlsSettings::tls13`]), what happens with an invalid client
//! certificate ([`TlsSettings::invalid_client_certificate`]), wildcard depth and the
//! accepted-domain rule for certificate names ([`AttributionSettings`]), the exact reject texts
//! ([`ReplyOverrides`]), the line length and protocol-error limits, and the BDAT chunk reply.
//!
//! # Layout
//! - this file: [`EopConfig`], the contoso default and the tenant lookups;
//! - `file`: [`MockFile`], the file `serve --config` reads;
//! - `endpoint`, `tls`, `limits`, `attribution`, `replies`: one `[eop.*]` table each;
//! - `validate`: the checks serde cannot do;
//! - `error`: [`ConfigError`] and [`Invalid`], placed by [`hybridlab_model::located`].

mod attribution;
mod endpoint;
mod error;
mod file;
mod limits;
mod replies;
mod tls;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use attribution::{AttributionSettings, WildcardMatching};
pub use endpoint::{Endpoint, ReplyTagEra};
pub use error::{ConfigError, Invalid};
pub use file::MockFile;
pub use hybridlab_model::exo::{
    AcceptedDomain, ConnectorType, DomainType, InboundConnector, SenderDomain, SenderIpRange,
    Tenant,
};
pub use limits::Limits;
pub use replies::{NotAReplyLine, ReplyOverrides, ReplyTemplate};
pub use tls::{
    CertIssuer, ChainSent, CipherSuiteName, InvalidClientCertificate, KxGroupName,
    ServerCertificate, TlsSettings, UnknownTlsName,
};

/// The `[eop]` tables of the contoso tenant (the file `mock-eop/src/contoso.toml`): what
/// [`EopConfig::contoso`] parses, and the text tests and benches extend with their own tables
/// (`[[eop.tenants.inbound_connectors]]` right after it adds a connector to contoso).
pub const CONTOSO_TOML: &str = include_str!("../contoso.toml");

/// Everything the mock EOP endpoint needs to know (the `[eop]` tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EopConfig {
    /// The front-end host the sender talks to, as the banner and replies name it.
    pub endpoint: Endpoint,
    /// STARTTLS, protocol versions, the server certificate, client-certificate handling.
    pub tls: TlsSettings,
    /// Size, recipient, line, error and time limits.
    pub limits: Limits,
    /// Uncertain details of the attribution rules.
    pub attribution: AttributionSettings,
    /// Replacement texts for the replies EOP's wording is not certain for.
    pub replies: ReplyOverrides,
    /// The Exchange Online organisations behind the endpoint; empty = every recipient is outside
    /// any tenant.
    pub tenants: Vec<Tenant>,
    /// Exchange Online's delivery to on-premises (retries, expiry, timeouts): see
    /// [`crate::exo`].
    pub delivery: hybridlab_model::delivery::DeliverySettings,
}

impl EopConfig {
    /// The default of `mock-eop serve` without a config file: the endpoint's defaults and the
    /// contoso tenant of [`CONTOSO_TOML`] (accepted domains `contoso.com` (InternalRelay),
    /// `contoso.mail.onmicrosoft.com` and `contoso.onmicrosoft.com`; one HCW-style OnPremises
    /// inbound connector `Inbound from contoso`, TlsSenderCertificateName `mail.contoso.com`,
    /// RequireTls, CloudServicesMailEnabled).
    pub fn contoso() -> Self {
        MockFile::from_toml(CONTOSO_TOML, "mock-eop/src/contoso.toml")
            .expect("the embedded contoso fixture is valid (a unit test parses it)")
            .eop
    }

    /// The tenant that has `domain` as an accepted domain.
    pub fn tenant_of_domain(&self, domain: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.accepts(domain))
    }

    /// A tenant by name (case-insensitive).
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The region a tenant lives in (its own, else the endpoint's).
    pub fn region_of<'a>(&'a self, tenant: &'a Tenant) -> &'a str {
        tenant.region.as_deref().unwrap_or(&self.endpoint.region)
    }
}
