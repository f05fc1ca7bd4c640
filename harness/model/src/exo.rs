//! Exchange Online objects the lab and the diagnosis share: tenants (organisations), their accepted
//! domains, inbound connectors (`New-InboundConnector`) and outbound connectors
//! (`New-OutboundConnector`, the route from Exchange Online to on-premises), as `[[eop.tenants]]`
//! tables describe them and `Get-InboundConnector` / `Get-OutboundConnector` list them.
//!
//! The parameter semantics follow Microsoft's cmdlet reference
//! (<https://learn.microsoft.com/powershell/module/exchange/new-outboundconnector>).

use std::fmt;
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
    /// Outbound connectors (New-OutboundConnector): how Exchange Online delivers to on-premises
    /// or partner servers (`[[eop.tenants.outbound_connectors]]`).
    #[serde(default)]
    pub outbound_connectors: Vec<OutboundConnector>,
}

impl Tenant {
    /// Whether `domain` is one of the tenant's accepted domains (case-insensitive, exact).
    pub fn accepts(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.accepted_domains
            .iter()
            .any(|d| d.domain.eq_ignore_ascii_case(domain))
    }

    /// The tenant's initial domain (`contoso.onmicrosoft.com`), which Exchange Online names in
    /// `XOORG=`: the first accepted domain under `onmicrosoft.com` that is not the hybrid routing
    /// domain (`*.mail.onmicrosoft.com`), else `<name>.onmicrosoft.com`.
    pub fn initial_domain(&self) -> String {
        self.accepted_domains
            .iter()
            .map(|d| d.domain.to_ascii_lowercase())
            .find(|d| d.ends_with(".onmicrosoft.com") && !d.ends_with(".mail.onmicrosoft.com"))
            .unwrap_or_else(|| format!("{}.onmicrosoft.com", self.name.to_ascii_lowercase()))
    }

    /// The outbound connector Exchange Online routes mail for `recipient_domain` through: among
    /// the enabled connectors that are not transport-rule scoped, the most specific match wins
    /// (an exact RecipientDomains entry, then AllAcceptedDomains covering an accepted domain, then
    /// the longest `*.suffix` wildcard, then `*` and RouteAllMessagesViaOnPremises). `None` when
    /// no connector covers the domain (the message goes out by MX as ordinary Internet mail).
    pub fn outbound_connector_for(&self, recipient_domain: &str) -> Option<&OutboundConnector> {
        self.outbound_connectors
            .iter()
            .filter(|c| c.enabled && !c.is_transport_rule_scoped)
            .filter_map(|c| c.match_rank(recipient_domain, self).map(|r| (r, c)))
            // the first of equal ranks wins (stable max by rank)
            .fold(
                None,
                |best: Option<(usize, &OutboundConnector)>, (r, c)| match best {
                    Some((b, _)) if b >= r => best,
                    _ => Some((r, c)),
                },
            )
            .map(|(_, c)| c)
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

/// Outbound connector `TlsSettings`: what Exchange Online requires of the receiving server's TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundTlsSettings {
    /// `$null`: opportunistic TLS (STARTTLS when offered, plain text otherwise; any certificate).
    #[serde(rename = "none", alias = "opportunistic", alias = "None")]
    Opportunistic,
    /// TLS is required; any certificate is accepted (self-signed too).
    #[serde(alias = "EncryptionOnly")]
    EncryptionOnly,
    /// TLS is required and the certificate chain must be trusted and in date.
    #[serde(alias = "CertificateValidation")]
    CertificateValidation,
    /// As CertificateValidation, and the certificate must carry `TlsDomain` (HCW's choice).
    #[default]
    #[serde(alias = "DomainValidation")]
    DomainValidation,
}

impl OutboundTlsSettings {
    /// The value `Get-OutboundConnector` shows (empty for opportunistic TLS).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opportunistic => "",
            Self::EncryptionOnly => "EncryptionOnly",
            Self::CertificateValidation => "CertificateValidation",
            Self::DomainValidation => "DomainValidation",
        }
    }

    /// Whether a session without TLS is refused (every setting but opportunistic).
    pub fn requires_tls(self) -> bool {
        self != Self::Opportunistic
    }

    /// Whether the certificate chain must be trusted and in date.
    pub fn validates_chain(self) -> bool {
        matches!(self, Self::CertificateValidation | Self::DomainValidation)
    }

    /// Whether the certificate must carry the expected name.
    pub fn validates_name(self) -> bool {
        self == Self::DomainValidation
    }
}

impl fmt::Display for OutboundTlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a connector was created (`ConnectorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorSource {
    /// Created by the Hybrid Configuration Wizard.
    #[default]
    #[serde(alias = "HybridWizard")]
    HybridWizard,
    /// Created by an admin (cmdlet default).
    #[serde(alias = "Default")]
    Default,
    /// Created in the admin centre.
    #[serde(rename = "admin_ui", alias = "AdminUI")]
    AdminUi,
    /// Migrated from an older service.
    #[serde(alias = "Migrated")]
    Migrated,
}

impl ConnectorSource {
    /// The value `Get-OutboundConnector` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HybridWizard => "HybridWizard",
            Self::Default => "Default",
            Self::AdminUi => "AdminUI",
            Self::Migrated => "Migrated",
        }
    }
}

/// One `RecipientDomains` entry of an outbound connector: `*`, a domain, or `*.domain` (the domain
/// and its subdomains), lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecipientDomain(pub String);

impl RecipientDomain {
    /// How specifically this entry covers `domain`: `None` when it does not, else a rank where a
    /// higher number is more specific (exact > `*.suffix`, longer suffixes first > `*`).
    pub fn rank(&self, domain: &str) -> Option<usize> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.0 == "*" {
            return Some(RANK_ANY);
        }
        match self.0.strip_prefix("*.") {
            Some(suffix) => (domain == suffix || domain.ends_with(&format!(".{suffix}")))
                .then(|| RANK_WILDCARD + suffix.len().min(RANK_ALL_ACCEPTED - RANK_WILDCARD - 1)),
            None => (domain == self.0).then_some(RANK_EXACT),
        }
    }
}

const RANK_ANY: usize = 1;
const RANK_WILDCARD: usize = 10;
const RANK_ALL_ACCEPTED: usize = 1_000;
const RANK_EXACT: usize = 2_000;

impl Serialize for RecipientDomain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecipientDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if t != "*" && !is_domain(t.strip_prefix("*.").unwrap_or(&t)) {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is not *, a domain or *.domain"
            )));
        }
        Ok(Self(t))
    }
}

/// Why a smart host entry is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a host name, an IP address or an address range")]
pub struct SmartHostError(pub String);

/// One `SmartHosts` entry: a host name, an IP address, or an address range (CIDR).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmartHost {
    /// A fully qualified host name (resolved through DNS at delivery time).
    Name(String),
    /// A literal address.
    Ip(IpAddr),
    /// An address range; Exchange Online delivers to addresses inside it.
    Range(ipnet::IpNet),
}

impl FromStr for SmartHost {
    type Err = SmartHostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if t.contains('/') {
            return t
                .parse::<ipnet::IpNet>()
                .map(|n| Self::Range(n.trunc()))
                .map_err(|_| SmartHostError(s.to_string()));
        }
        let name = t.trim_end_matches('.').to_ascii_lowercase();
        if (is_domain(&name) && name.contains('.')) || name == "localhost" {
            Ok(Self::Name(name))
        } else {
            Err(SmartHostError(s.to_string()))
        }
    }
}

impl fmt::Display for SmartHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Range(n) => write!(f, "{n}"),
        }
    }
}

serde_via_str!(SmartHost, |v| v.to_string());

/// An Exchange Online outbound connector (`New-OutboundConnector`): how mail leaves Exchange
/// Online for the on-premises organisation (or a partner). Defaults are the values the Hybrid
/// Configuration Wizard sets: OnPremises, smart hosts (no MX), DomainValidation,
/// CloudServicesMailEnabled, enabled.
///
/// ```toml
/// [[eop.tenants.outbound_connectors]]
/// name = "Outbound to 5d3f1c2a-0b7e-4f4c-9a1d-2e6b8c9d0f11"
/// smart_hosts = ["mail.contoso.com"]
/// tls_settings = "domain_validation"   # none | encryption_only | certificate_validation
/// tls_domain = "mail.contoso.com"
/// recipient_domains = ["contoso.com"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConnector {
    /// Connector name; HCW writes `Outbound to <guid>`.
    pub name: String,
    /// Disabled connectors route nothing.
    pub enabled: bool,
    /// OnPremises (hybrid) or Partner.
    pub connector_type: ConnectorType,
    /// How it was created (HybridWizard for HCW).
    pub connector_source: ConnectorSource,
    /// Where to deliver (host names, addresses or ranges); required unless `use_mx_record`.
    pub smart_hosts: Vec<SmartHost>,
    /// Deliver to the recipient domain's MX hosts instead of smart hosts.
    pub use_mx_record: bool,
    /// What TLS the receiving server must offer.
    pub tls_settings: OutboundTlsSettings,
    /// With DomainValidation: the name the receiving certificate must carry (`*.` allowed).
    pub tls_domain: Option<String>,
    /// Recipient domains routed through the connector (`*` and `*.domain` allowed).
    pub recipient_domains: Vec<RecipientDomain>,
    /// Convert organisation headers to `X-MS-Exchange-CrossPremises-*` on the way out (hybrid).
    pub cloud_services_mail_enabled: bool,
    /// Centralized mail transport: all mail, Internet-bound too, goes through on-premises.
    pub route_all_messages_via_on_premises: bool,
    /// Only a transport rule routes to this connector (RecipientDomains are not used).
    pub is_transport_rule_scoped: bool,
    /// Route mail for every accepted domain of the tenant.
    pub all_accepted_domains: bool,
}

impl Default for OutboundConnector {
    fn default() -> Self {
        Self {
            name: String::new(),
            enabled: true,
            connector_type: ConnectorType::OnPremises,
            connector_source: ConnectorSource::HybridWizard,
            smart_hosts: Vec::new(),
            use_mx_record: false,
            tls_settings: OutboundTlsSettings::DomainValidation,
            tls_domain: None,
            recipient_domains: Vec::new(),
            cloud_services_mail_enabled: true,
            route_all_messages_via_on_premises: false,
            is_transport_rule_scoped: false,
            all_accepted_domains: false,
        }
    }
}

/// An outbound connector setting Exchange Online would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OutboundConnectorError {
    /// The offending key (`tls_domain`, `smart_hosts`...).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl OutboundConnectorError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl OutboundConnector {
    /// Checks the combinations the cmdlets refuse: a name; SmartHosts with UseMXRecord $false and
    /// only then; TlsDomain only with DomainValidation (and a domain or `*.domain`);
    /// RouteAllMessagesViaOnPremises only on an OnPremises connector.
    pub fn validate(&self) -> Result<(), OutboundConnectorError> {
        if self.name.trim().is_empty() {
            return Err(OutboundConnectorError::new("name", "must not be empty"));
        }
        if self.use_mx_record && !self.smart_hosts.is_empty() {
            return Err(OutboundConnectorError::new(
                "smart_hosts",
                "SmartHosts must be empty when UseMXRecord is $true",
            ));
        }
        if !self.use_mx_record && self.smart_hosts.is_empty() {
            return Err(OutboundConnectorError::new(
                "smart_hosts",
                "SmartHosts is required when UseMXRecord is $false",
            ));
        }
        if let Some(d) = &self.tls_domain {
            if self.tls_settings != OutboundTlsSettings::DomainValidation {
                return Err(OutboundConnectorError::new(
                    "tls_domain",
                    "TlsDomain can be set only when TlsSettings is DomainValidation",
                ));
            }
            if !is_domain(d.strip_prefix("*.").unwrap_or(d)) {
                return Err(OutboundConnectorError::new(
                    "tls_domain",
                    format!("{d:?} is not a domain or *.domain"),
                ));
            }
        }
        if self.route_all_messages_via_on_premises
            && self.connector_type != ConnectorType::OnPremises
        {
            return Err(OutboundConnectorError::new(
                "route_all_messages_via_on_premises",
                "RouteAllMessagesViaOnPremises requires ConnectorType OnPremises",
            ));
        }
        Ok(())
    }

    /// How specifically the connector covers `domain` for `tenant` (higher is more specific;
    /// `None` when it does not). Ignores Enabled and IsTransportRuleScoped.
    pub fn match_rank(&self, domain: &str, tenant: &Tenant) -> Option<usize> {
        let listed = self.recipient_domains.iter().filter_map(|r| r.rank(domain));
        let all_accepted =
            (self.all_accepted_domains && tenant.accepts(domain)).then_some(RANK_ALL_ACCEPTED);
        let route_all = self.route_all_messages_via_on_premises.then_some(RANK_ANY);
        listed.chain(all_accepted).chain(route_all).max()
    }

    /// The name the receiving certificate is checked against under DomainValidation: TlsDomain,
    /// else the host connected to (an assumption: Exchange Online's rule without TlsDomain is
    /// not documented).
    pub fn expected_certificate_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.tls_domain.as_deref().unwrap_or(host)
    }
}

impl Tenant {
    /// Validates every outbound connector and their names' uniqueness; the error carries the
    /// connector's index.
    pub fn validate_outbound_connectors(&self) -> Result<(), (usize, OutboundConnectorError)> {
        for (i, c) in self.outbound_connectors.iter().enumerate() {
            c.validate().map_err(|e| (i, e))?;
            if self.outbound_connectors[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&c.name))
            {
                return Err((
                    i,
                    OutboundConnectorError::new(
                        "name",
                        format!(
                            "duplicate connector name {:?} in tenant {:?}",
                            c.name, self.name
                        ),
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(src: &str) -> Tenant {
        toml::from_str(src).unwrap()
    }

    const HYBRID: &str = r#"
name = "contoso"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }, { domain = "contoso.onmicrosoft.com" }, { domain = "fabrikam.com" }]
[[outbound_connectors]]
name = "Outbound to 5d3f1c2a-0b7e-4f4c-9a1d-2e6b8c9d0f11"
smart_hosts = ["mail.contoso.com"]
tls_domain = "mail.contoso.com"
recipient_domains = ["contoso.com"]
[[outbound_connectors]]
name = "wildcard"
smart_hosts = ["203.0.113.0/29"]
tls_settings = "EncryptionOnly"
recipient_domains = ["*.contoso.com"]
[[outbound_connectors]]
name = "all accepted"
smart_hosts = ["192.0.2.25"]
tls_settings = "none"
all_accepted_domains = true
[[outbound_connectors]]
name = "cmt"
smart_hosts = ["edge.contoso.com"]
route_all_messages_via_on_premises = true
"#;

    #[test]
    fn hcw_defaults_and_routing() {
        let t = tenant(HYBRID);
        t.validate_outbound_connectors().unwrap();
        let c = &t.outbound_connectors[0];
        assert_eq!(c.connector_type, ConnectorType::OnPremises);
        assert_eq!(c.tls_settings, OutboundTlsSettings::DomainValidation);
        assert!(c.cloud_services_mail_enabled && c.enabled && !c.use_mx_record);
        assert_eq!(
            c.smart_hosts,
            vec![SmartHost::Name("mail.contoso.com".into())]
        );
        assert_eq!(
            t.outbound_connectors[1].tls_settings.as_str(),
            "EncryptionOnly"
        );
        assert_eq!(
            t.outbound_connectors[2].tls_settings,
            OutboundTlsSettings::Opportunistic
        );
        let pick = |d: &str| t.outbound_connector_for(d).map(|c| c.name.as_str());
        assert_eq!(pick("CONTOSO.com"), Some(c.name.as_str()));
        assert_eq!(pick("sales.contoso.com"), Some("wildcard"));
        assert_eq!(pick("fabrikam.com"), Some("all accepted"));
        assert_eq!(pick("gmail.example"), Some("cmt"));
        assert_eq!(t.initial_domain(), "contoso.onmicrosoft.com");
        let round: Tenant = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
        assert_eq!(round, t);
    }

    #[test]
    fn disabled_and_rule_scoped_connectors_route_nothing() {
        let mut t = tenant(HYBRID);
        for c in &mut t.outbound_connectors {
            c.route_all_messages_via_on_premises = false;
        }
        t.outbound_connectors[0].enabled = false;
        t.outbound_connectors[1].is_transport_rule_scoped = true;
        assert_eq!(
            t.outbound_connector_for("contoso.com")
                .map(|c| c.name.as_str()),
            Some("all accepted")
        );
        assert!(t.outbound_connector_for("sales.contoso.com").is_none());
        assert_eq!(Tenant::default().initial_domain(), ".onmicrosoft.com");
    }

    #[test]
    fn validation_follows_the_cmdlets() {
        let base = OutboundConnector {
            name: "x".into(),
            smart_hosts: vec!["mail.contoso.com".parse().unwrap()],
            ..OutboundConnector::default()
        };
        base.validate().unwrap();
        let bad = |c: OutboundConnector| c.validate().unwrap_err().field;
        assert_eq!(
            bad(OutboundConnector {
                tls_domain: Some("mail.contoso.com".into()),
                tls_settings: OutboundTlsSettings::CertificateValidation,
                ..base.clone()
            }),
            "tls_domain"
        );
        assert_eq!(
            bad(OutboundConnector {
                tls_domain: Some("not a domain".into()),
                ..base.clone()
            }),
            "tls_domain"
        );
        assert_eq!(
            bad(OutboundConnector {
                smart_hosts: Vec::new(),
                ..base.clone()
            }),
            "smart_hosts"
        );
        assert_eq!(
            bad(OutboundConnector {
                use_mx_record: true,
                ..base.clone()
            }),
            "smart_hosts"
        );
        assert_eq!(
            bad(OutboundConnector {
                connector_type: ConnectorType::Partner,
                route_all_messages_via_on_premises: true,
                ..base.clone()
            }),
            "route_all_messages_via_on_premises"
        );
        assert_eq!(
            bad(OutboundConnector {
                name: " ".into(),
                ..base.clone()
            }),
            "name"
        );
        OutboundConnector {
            tls_domain: Some("*.contoso.com".into()),
            ..base.clone()
        }
        .validate()
        .unwrap();
        let dup = Tenant {
            outbound_connectors: vec![base.clone(), base],
            ..Tenant::default()
        };
        assert_eq!(dup.validate_outbound_connectors().unwrap_err().0, 1);
        assert!("not a host!".parse::<SmartHost>().is_err());
        assert_eq!(
            "[192.0.2.1]".parse::<SmartHost>().unwrap(),
            SmartHost::Ip("192.0.2.1".parse().unwrap())
        );
        assert!(
            toml::from_str::<Tenant>("name='t'\n[[outbound_connectors]]\nname='x'\nbogus=1")
                .is_err()
        );
        assert!(
            toml::from_str::<Tenant>(
                "name='t'\n[[outbound_connectors]]\nrecipient_domains=['a b']"
            )
            .is_err()
        );
    }
}
