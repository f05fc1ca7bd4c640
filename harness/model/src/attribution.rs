//! Tenant attribution verdicts: what EOP decided about a session (docs/domain.md section 3.2); the mock
//! decides them, its records carry them, scenarios and the diagnosis compare them.
//!
//! # Contract
//! [`AttributionVerdict`] serialises with a `verdict` tag in snake_case
//! (`{"verdict":"attributed","tenant":"contoso","connector":"Inbound from contoso","by":"certificate"}`)
//! and [`VerdictKind`] is its name alone, the string scenario files compare with
//! (`expect.attribution = "attributed"`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a connector was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributedBy {
    /// The client certificate's CN or DNS SAN matched TlsSenderCertificateName.
    Certificate,
    /// The client's IPv4 address is in SenderIPAddresses.
    Ip,
}

impl fmt::Display for AttributedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Certificate => "certificate",
            Self::Ip => "ip",
        })
    }
}

/// The outcome of attribution for a MAIL or RCPT command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum AttributionVerdict {
    /// The session belongs to `connector` of `tenant`.
    Attributed {
        /// Tenant name.
        tenant: String,
        /// Connector name.
        connector: String,
        /// How it was matched.
        by: AttributedBy,
    },
    /// No connector: anonymous Internet mail (for the recipient's tenant, when known).
    Unattributed {
        /// The tenant the mail is delivered to as Internet mail, if any.
        tenant: Option<String>,
    },
    /// The matched connector requires TLS and the session is cleartext.
    TlsRequired {
        /// Tenant name.
        tenant: String,
        /// Connector name.
        connector: String,
    },
    /// Relay refused (`550 5.7.64 TenantAttribution`).
    RelayDenied {
        /// The tenant the sender was placed in, if any.
        tenant: Option<String>,
    },
    /// Relay refused because the sender domain is nobody's accepted domain (ATTR36).
    RelayDeniedAttr36,
    /// A Partner connector's RestrictDomainsTo* was not met (5.7.51).
    PartnerRestricted {
        /// Tenant name.
        tenant: String,
        /// The restricting connector.
        connector: String,
    },
    /// RejectDirectSend (5.7.68).
    DirectSendDenied {
        /// Tenant name.
        tenant: String,
    },
    /// The tenant lives in another region than the endpoint (4.4.62, ATTR35).
    WrongRegion {
        /// Tenant name.
        tenant: String,
        /// Its region.
        tenant_region: String,
        /// The endpoint's region.
        endpoint_region: String,
    },
}

/// The verdict's name only, as scenario files write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// See [`AttributionVerdict::Attributed`].
    Attributed,
    /// See [`AttributionVerdict::Unattributed`].
    Unattributed,
    /// See [`AttributionVerdict::TlsRequired`].
    TlsRequired,
    /// See [`AttributionVerdict::RelayDenied`].
    RelayDenied,
    /// See [`AttributionVerdict::RelayDeniedAttr36`].
    RelayDeniedAttr36,
    /// See [`AttributionVerdict::PartnerRestricted`].
    PartnerRestricted,
    /// See [`AttributionVerdict::DirectSendDenied`].
    DirectSendDenied,
    /// See [`AttributionVerdict::WrongRegion`].
    WrongRegion,
}

impl VerdictKind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::Attributed,
        Self::Unattributed,
        Self::TlsRequired,
        Self::RelayDenied,
        Self::RelayDeniedAttr36,
        Self::PartnerRestricted,
        Self::DirectSendDenied,
        Self::WrongRegion,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attributed => "attributed",
            Self::Unattributed => "unattributed",
            Self::TlsRequired => "tls_required",
            Self::RelayDenied => "relay_denied",
            Self::RelayDeniedAttr36 => "relay_denied_attr36",
            Self::PartnerRestricted => "partner_restricted",
            Self::DirectSendDenied => "direct_send_denied",
            Self::WrongRegion => "wrong_region",
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VerdictKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown verdict {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl AttributionVerdict {
    /// The verdict's name.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Self::Attributed { .. } => VerdictKind::Attributed,
            Self::Unattributed { .. } => VerdictKind::Unattributed,
            Self::TlsRequired { .. } => VerdictKind::TlsRequired,
            Self::RelayDenied { .. } => VerdictKind::RelayDenied,
            Self::RelayDeniedAttr36 => VerdictKind::RelayDeniedAttr36,
            Self::PartnerRestricted { .. } => VerdictKind::PartnerRestricted,
            Self::DirectSendDenied { .. } => VerdictKind::DirectSendDenied,
            Self::WrongRegion { .. } => VerdictKind::WrongRegion,
        }
    }

    /// The tenant concerned, if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Attributed { tenant, .. }
            | Self::TlsRequired { tenant, .. }
            | Self::PartnerRestricted { tenant, .. }
            | Self::DirectSendDenied { tenant }
            | Self::WrongRegion { tenant, .. } => Some(tenant),
            Self::Unattributed { tenant } | Self::RelayDenied { tenant } => tenant.as_deref(),
            Self::RelayDeniedAttr36 => None,
        }
    }

    /// The connector concerned, if any.
    pub fn connector(&self) -> Option<&str> {
        match self {
            Self::Attributed { connector, .. }
            | Self::TlsRequired { connector, .. }
            | Self::PartnerRestricted { connector, .. } => Some(connector),
            _ => None,
        }
    }
}

impl fmt::Display for AttributionVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attributed {
                tenant,
                connector,
                by,
            } => write!(f, "attributed to {connector:?} of {tenant} by {by}"),
            Self::Unattributed { tenant: Some(t) } => {
                write!(f, "unattributed (anonymous Internet mail for {t})")
            }
            Self::Unattributed { tenant: None } => f.write_str("unattributed"),
            Self::TlsRequired { tenant, connector } => {
                write!(f, "tls_required by {connector:?} of {tenant}")
            }
            Self::RelayDenied { tenant: Some(t) } => write!(f, "relay_denied (sender in {t})"),
            Self::RelayDenied { tenant: None } => f.write_str("relay_denied"),
            Self::RelayDeniedAttr36 => f.write_str("relay_denied_attr36"),
            Self::PartnerRestricted { tenant, connector } => {
                write!(f, "partner_restricted by {connector:?} of {tenant}")
            }
            Self::DirectSendDenied { tenant } => write!(f, "direct_send_denied by {tenant}"),
            Self::WrongRegion {
                tenant,
                tenant_region,
                endpoint_region,
            } => write!(
                f,
                "wrong_region: {tenant} is in {tenant_region}, endpoint in {endpoint_region}"
            ),
        }
    }
}
