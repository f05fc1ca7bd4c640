//! Exchange Online objects the lab and the diagnosis share: tenants (organisations), their accepted
//! domains and inbound connectors (`New-InboundConnector`), as `[[eop.tenants]]` tables describe them
//! and `Get-InboundConnector` lists them (exchange-hybrid.md section 3).

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Exchange Online organisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Name used in records and verdicts (`contoso`).
    pub name: String,
    /// The tenant's region; unset = the endpoint's region.
    #[serde(default)]
    pub region: Option<String>,
    /// Accepted domains.
    #[serde(default)]
    pub accepted_domains: Vec<AcceptedDomain>,
    /// Inbound connectors (New-InboundConnector).
    #[serde(default)]
    pub inbound_connectors: Vec<InboundConnector>,
    /// `Set-OrganizationConfig -RejectDirectSend $true`: unattributed mail from an accepted
    /// domain gets `550 5.7.68`.
    #[serde(default)]
    pub reject_direct_send: bool,
}

impl Tenant {
    /// Whether `domain` is one of the tenant's accepted domains (case-insensitive, exact).
    pub fn accepts(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.accepted_domains
            .iter()
            .any(|d| d.domain.eq_ignore_ascii_case(domain))
    }

    /// Whether `name` is an accepted domain or a subdomain of one.
    pub fn covers_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.accepted_domains.iter().any(|d| {
            let d = d.domain.to_ascii_lowercase();
            name == d || name.ends_with(&format!(".{d}"))
        })
    }
}

/// One accepted domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedDomain {
    /// The domain.
    pub domain: String,
    /// Authoritative (default) or InternalRelay.
    #[serde(rename = "type", default)]
    pub kind: DomainType,
}

/// Accepted domain type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainType {
    /// All recipients are in Exchange Online.
    #[default]
    Authoritative,
    /// Shared namespace: unknown recipients are relayed (to on-premises).
    InternalRelay,
}

/// Inbound connector type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorType {
    /// Third-party sender; may not relay; restrictions apply.
    #[default]
    Partner,
    /// The organisation's own servers; may relay to any recipient.
    OnPremises,
}

/// An Exchange Online inbound connector (`New-InboundConnector`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConnector {
    /// Connector name (`Inbound from contoso`).
    pub name: String,
    /// OnPremises or Partner.
    pub connector_type: ConnectorType,
    /// Disabled connectors never match.
    pub enabled: bool,
    /// MAIL FROM domains the connector covers (`*`, `contoso.com`, `*.contoso.com`; the
    /// `smtp:*;1` form is accepted).
    pub sender_domains: Vec<SenderDomain>,
    /// IPv4 addresses or /24../32 ranges, matched on the client's address.
    pub sender_ip_addresses: Vec<SenderIpRange>,
    /// Domain in the client certificate (CN or DNS SAN); `*.` allowed.
    pub tls_sender_certificate_name: Option<String>,
    /// All mail through the connector must use TLS (`451 5.7.3` otherwise).
    pub require_tls: bool,
    /// Partner only: mail from SenderDomains must present the certificate.
    pub restrict_domains_to_certificate: bool,
    /// Partner only: mail from SenderDomains must come from SenderIPAddresses.
    pub restrict_domains_to_ip_addresses: bool,
    /// Honour `X-MS-Exchange-CrossPremises-*` headers (hybrid).
    pub cloud_services_mail_enabled: bool,
    /// OnPremises only: treat messages as internal without hybrid headers.
    pub treat_messages_as_internal: bool,
}

impl Default for InboundConnector {
    fn default() -> Self {
        Self {
            name: String::new(),
            connector_type: ConnectorType::Partner,
            enabled: true,
            sender_domains: vec![SenderDomain("*".into())],
            sender_ip_addresses: Vec::new(),
            tls_sender_certificate_name: None,
            require_tls: false,
            restrict_domains_to_certificate: false,
            restrict_domains_to_ip_addresses: false,
            cloud_services_mail_enabled: false,
            treat_messages_as_internal: false,
        }
    }
}

impl InboundConnector {
    /// Whether the connector covers MAIL FROM domain `domain` (`None` = null sender: only `*`).
    pub fn covers_sender(&self, domain: Option<&str>) -> bool {
        self.sender_domains.iter().any(|s| s.covers(domain))
    }

    /// Whether `ip` is in SenderIPAddresses (IPv4 only, as in Exchange Online).
    pub fn covers_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        self.sender_ip_addresses.iter().any(|r| r.0.contains(&ip))
    }
}

/// One SenderDomains entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderDomain(pub String);

impl SenderDomain {
    /// Whether this entry covers `domain`.
    pub fn covers(&self, domain: Option<&str>) -> bool {
        if self.0 == "*" {
            return true;
        }
        let Some(domain) = domain else { return false };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(suffix) => {
                domain == suffix || domain.ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
            }
            None => domain.eq_ignore_ascii_case(&self.0),
        }
    }
}

impl Serialize for SenderDomain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SenderDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        let t = t
            .strip_prefix("smtp:")
            .or_else(|| t.strip_prefix("SMTP:"))
            .unwrap_or(t);
        let t = t.split(';').next().unwrap_or(t).trim();
        if t.is_empty() {
            return Err(serde::de::Error::custom("empty sender domain"));
        }
        Ok(Self(t.to_ascii_lowercase()))
    }
}

/// One SenderIPAddresses entry: an IPv4 address or a /24../32 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderIpRange(pub Ipv4Net);

impl FromStr for SenderIpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.contains(':') {
            return Err(format!(
                "{s:?}: SenderIPAddresses takes IPv4 only (Exchange Online does not support IPv6 here)"
            ));
        }
        let net = if s.contains('/') {
            s.parse::<Ipv4Net>()
                .map_err(|e| format!("{s:?} is not an IPv4 range: {e}"))?
        } else {
            let ip: Ipv4Addr = s
                .parse()
                .map_err(|e| format!("{s:?} is not an IPv4 address: {e}"))?;
            Ipv4Net::new(ip, 32).map_err(|e| e.to_string())?
        };
        if net.prefix_len() < 24 {
            return Err(format!(
                "{s:?}: ranges wider than /24 are rejected by Exchange Online"
            ));
        }
        Ok(Self(net.trunc()))
    }
}

serde_via_str!(SenderIpRange, |v| v.0.to_string());
