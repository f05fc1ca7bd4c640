//! `[eop.attribution]`: the details of tenant attribution docs/domain.md marks as
//! uncertain (how far a certificate wildcard reaches, whether a certificate name must be an
//! accepted domain).

use serde::{Deserialize, Serialize};

/// Uncertain details of tenant attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionSettings {
    /// How far `*.` in TlsSenderCertificateName (and in a wildcard certificate) reaches \[U\].
    pub wildcard: WildcardMatching,
    /// A certificate attributes a connector only when the connector's TlsSenderCertificateName
    /// is (a subdomain of) an accepted domain of the tenant (MC1226222) [D/U].
    pub certificate_domain_must_be_accepted: bool,
}

impl Default for AttributionSettings {
    fn default() -> Self {
        Self {
            wildcard: WildcardMatching::SingleLabel,
            certificate_domain_must_be_accepted: true,
        }
    }
}

/// Wildcard semantics for certificate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WildcardMatching {
    /// RFC 6125: `*.contoso.com` covers exactly one left-most label.
    #[default]
    SingleLabel,
    /// `*.contoso.com` covers any depth (`a.b.contoso.com`), never the bare `contoso.com`.
    AnyDepth,
}
