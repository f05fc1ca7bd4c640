//! The send connector (`New-/Set-SendConnector`), the transport service's retry settings
//! (`Set-TransportService`), the server's identity and the SChannel (operating system) TLS settings.
//!
//! Every settings type deserializes from TOML/JSON with snake_case keys and `deny_unknown_fields`, so a
//! scenario can embed them (`[onprem.send_connector]`, `[onprem.transport]`, `[onprem.schannel]`).
//! `tls_certificate_name` stays the literal `<I>issuer<S>subject` string; a scenario runner that
//! allows a reference to a scenario-local certificate resolves it before building the connector.
//!
//! [`SendConnector::validate`] refuses what `Set-SendConnector` refuses, with Exchange's meaning
//! (exchange-hybrid.md 1.1).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use hybridlab_artefacts::connectors::SendConnectorRow;
use hybridlab_artefacts::ps::ByteSize;
use hybridlab_model::exchange::{ExchangeVersion, TlsAuthLevel};

/// A configuration Exchange would refuse, or a value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// `TlsDomain` set while `TlsAuthLevel` is not DomainValidation.
    #[error("TLS Domain can only be specified with TLSAuthLevel set to DomainValidation.")]
    TlsDomainWithoutDomainValidation,
    /// `TlsAuthLevel` set while `RequireTLS` is `$false`.
    #[error("TlsAuthLevel can only be specified when RequireTLS is set to $true.")]
    TlsAuthLevelWithoutRequireTls,
    /// `RequireTLS` and `IgnoreSTARTTLS` both `$true`.
    #[error("RequireTLS and IgnoreSTARTTLS can't both be set to $true on the same send connector.")]
    RequireTlsWithIgnoreStartTls,
    /// `DNSRoutingEnabled` `$false` and no smart hosts.
    #[error("SmartHosts must be specified when DNSRoutingEnabled is set to $false.")]
    SmartHostsRequired,
    /// `DNSRoutingEnabled` `$true` and smart hosts set.
    #[error("SmartHosts can't be specified when DNSRoutingEnabled is set to $true.")]
    SmartHostsWithDnsRouting,
    /// `SmartHostAuthMechanism` other than None without smart hosts.
    #[error("SmartHostAuthMechanism can only be set when SmartHosts are specified.")]
    AuthMechanismWithoutSmartHosts,
    /// No address space.
    #[error("AddressSpaces can't be empty.")]
    NoAddressSpaces,
    /// A value outside its range.
    #[error("The value of property {property} is out of range: {value} (allowed {range}).")]
    OutOfRange {
        /// Exchange's property name.
        property: &'static str,
        /// The value.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
    /// `TlsCertificateName` is not `<I>issuer<S>subject`.
    #[error(transparent)]
    BadTlsCertificateName(#[from] BadX509Identifier),
    /// An address space that does not parse.
    #[error("address space {value:?}: {reason}")]
    BadAddressSpace {
        /// The input.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A size that does not parse.
    #[error("size {value:?} is not a byte quantity (`35 MB`, `36700160`, `unlimited`)")]
    BadSize {
        /// The input.
        value: String,
    },
    /// A cipher suite name rustls does not know.
    #[error("unknown cipher suite {0:?}")]
    UnknownCipherSuite(String),
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

pub use hybridlab_model::identifier::{BadX509Identifier, X509Identifier};
/// A .NET `TimeSpan` as Exchange shows it (`00:10:00`, `2.00:00:00`); the same type as the mock's
/// `[eop]` durations, so scenario files write durations one way everywhere (`"00:05:00"`,
/// `"1.00:00:00"`, `"30s"`, `"5m"` or a number of seconds).
pub use hybridlab_model::timespan::TimeSpan;

/// A byte quantity as Exchange shows it (`35 MB (36,700,160 bytes)`) or `Unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteQuantity(pub Option<u64>);

impl ByteQuantity {
    /// `n` megabytes.
    pub const fn mb(n: u64) -> Self {
        Self(Some(n * 1024 * 1024))
    }
    /// Whether `size` bytes fit.
    pub fn allows(self, size: u64) -> bool {
        self.0.is_none_or(|max| size <= max)
    }
}

impl fmt::Display for ByteQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("Unlimited"),
            Some(b) => {
                let (n, unit) = if b >= 1 << 30 && b % (1 << 30) == 0 {
                    (b >> 30, "GB")
                } else if b >= 1 << 20 && b % (1 << 20) == 0 {
                    (b >> 20, "MB")
                } else if b >= 1 << 10 && b % (1 << 10) == 0 {
                    (b >> 10, "KB")
                } else {
                    (b, "B")
                };
                write!(f, "{n} {unit} ({} bytes)", group_thousands(b))
            }
        }
    }
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl FromStr for ByteQuantity {
    type Err = ConnectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConnectorError::BadSize {
            value: s.to_string(),
        };
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(Self(None));
        }
        // `35 MB (36,700,160 bytes)`: take the byte count in parentheses when present.
        if let Some((_, rest)) = t.split_once('(') {
            let digits: String = rest.chars().take_while(|c| *c != ' ').collect();
            let n: u64 = digits.replace(',', "").parse().map_err(|_| bad())?;
            return Ok(Self(Some(n)));
        }
        let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t, ""),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mul: u64 = match unit.to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            _ => return Err(bad()),
        };
        Ok(Self(Some(n.checked_mul(mul).ok_or_else(bad)?)))
    }
}

impl Serialize for ByteQuantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteQuantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self(Some(n))),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One address space: `SMTP:contoso.mail.onmicrosoft.com;1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressSpace {
    /// `SMTP` (other types are kept verbatim).
    pub kind: String,
    /// `contoso.com`, `*.contoso.com` or `*`.
    pub domain: String,
    /// 1..=100.
    pub cost: u8,
}

impl AddressSpace {
    /// Whether a recipient domain falls in this space (`*` all; `*.contoso.com` any subdomain).
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let p = self.domain.to_ascii_lowercase();
        if p == "*" {
            return true;
        }
        match p.strip_prefix("*.") {
            Some(suffix) => d.ends_with(&format!(".{suffix}")),
            None => d == p,
        }
    }

    /// How specific the space is (longer is more specific; `*` is least).
    pub fn specificity(&self) -> usize {
        if self.domain == "*" {
            0
        } else {
            self.domain.trim_start_matches("*.").len() + usize::from(!self.domain.starts_with('*'))
        }
    }
}

impl fmt::Display for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{};{}", self.kind, self.domain, self.cost)
    }
}

impl FromStr for AddressSpace {
    type Err = ConnectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ConnectorError::BadAddressSpace {
            value: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (kind, rest) = match t.split_once(':') {
            Some((k, r)) => (k.to_ascii_uppercase(), r),
            None => ("SMTP".to_string(), t),
        };
        let (domain, cost) = match rest.rsplit_once(';') {
            Some((d, c)) => (
                d,
                c.trim()
                    .parse::<u8>()
                    .map_err(|_| bad("cost is not 1-100"))?,
            ),
            None => (rest, 1),
        };
        if !(1..=100).contains(&cost) {
            return Err(bad("cost is not 1-100"));
        }
        let domain = domain.trim();
        if domain.is_empty() {
            return Err(bad("the domain is empty"));
        }
        Ok(Self {
            kind,
            domain: domain.to_string(),
            cost,
        })
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(AddressSpace);

/// `SmartHostAuthMechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SmartHostAuthMechanism {
    /// No authentication.
    #[default]
    None,
    /// Basic authentication.
    BasicAuth,
    /// Basic authentication that forbids falling back to clear text.
    BasicAuthRequireTLS,
    /// Exchange server authentication.
    ExchangeServer,
    /// Externally secured.
    ExternalAuthoritative,
}

/// `ConnectorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConnectorType {
    /// Default.
    #[default]
    Default,
    /// Cross-premises (hybrid).
    XPremises,
}

/// `ProtocolLoggingLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProtocolLoggingLevel {
    /// No send protocol log for this connector.
    #[default]
    None,
    /// Full send protocol log.
    Verbose,
}

fn default_true() -> bool {
    true
}
fn default_port() -> u16 {
    25
}
fn default_inactivity() -> TimeSpan {
    TimeSpan::minutes(10)
}
fn default_max_message_size() -> ByteQuantity {
    ByteQuantity::mb(35)
}
fn default_max_messages() -> u32 {
    20
}
fn default_connector_name() -> String {
    "Outbound to Office 365".to_string()
}

/// A send connector with the settings that matter for hybrid mail flow (exchange-hybrid.md 1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SendConnector {
    /// Name; the send protocol log's connector-id.
    #[serde(default = "default_connector_name")]
    pub name: String,
    /// `AddressSpaces`.
    pub address_spaces: Vec<AddressSpace>,
    /// `DNSRoutingEnabled` (default `$true`).
    #[serde(default = "default_true")]
    pub dns_routing_enabled: bool,
    /// `SmartHosts` (FQDN or IP, optionally `[ip]`).
    #[serde(default)]
    pub smart_hosts: Vec<String>,
    /// `SmartHostAuthMechanism`.
    #[serde(default)]
    pub smart_host_auth_mechanism: SmartHostAuthMechanism,
    /// `Port` (default 25).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `Fqdn`: EHLO name and the FQDN certificate search name; `None` uses the server's FQDN.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// `RequireTLS`.
    #[serde(default)]
    pub require_tls: bool,
    /// `IgnoreSTARTTLS`.
    #[serde(default, rename = "ignore_starttls")]
    pub ignore_starttls: bool,
    /// `TlsAuthLevel`.
    #[serde(default)]
    pub tls_auth_level: Option<TlsAuthLevel>,
    /// `TlsDomain` (wildcards allowed).
    #[serde(default)]
    pub tls_domain: Option<String>,
    /// `TlsCertificateName`, the literal `<I>issuer<S>subject` (parsed by [`Self::tls_certificate_identifier`]).
    #[serde(default)]
    pub tls_certificate_name: Option<String>,
    /// `CloudServicesMailEnabled`.
    #[serde(default)]
    pub cloud_services_mail_enabled: bool,
    /// `ConnectorType`.
    #[serde(default)]
    pub connector_type: ConnectorType,
    /// `ConnectionInactivityTimeOut` (default 00:10:00).
    #[serde(default = "default_inactivity")]
    pub connection_inactivity_timeout: TimeSpan,
    /// `MaxMessageSize` (default 35 MB; the documented default varies by version \[U\]).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: ByteQuantity,
    /// `SmtpMaxMessagesPerConnection` (default 20).
    #[serde(default = "default_max_messages")]
    pub smtp_max_messages_per_connection: u32,
    /// `ProtocolLoggingLevel`.
    #[serde(default)]
    pub protocol_logging_level: ProtocolLoggingLevel,
    /// `SourceIPAddress` (Edge): the local address to bind; in the lab, within 127.0.0.0/8.
    #[serde(default)]
    pub source_ip_address: Option<IpAddr>,
    /// `ForceHELO`.
    #[serde(default)]
    pub force_helo: bool,
    /// `Enabled`.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl SendConnector {
    /// The connector the Hybrid Configuration Wizard creates: `smtp:<tenant>.mail.onmicrosoft.com;1`,
    /// RequireTLS, DomainValidation against `mail.protection.outlook.com`, CloudServicesMailEnabled,
    /// smart host `<tenant>.mail.protection.outlook.com`, Verbose logging.
    pub fn hybrid(tenant: &str, tls_certificate_name: Option<String>) -> Self {
        Self {
            name: default_connector_name(),
            address_spaces: vec![AddressSpace {
                kind: "smtp".into(),
                domain: format!("{tenant}.mail.onmicrosoft.com"),
                cost: 1,
            }],
            dns_routing_enabled: false,
            smart_hosts: vec![format!("{tenant}.mail.protection.outlook.com")],
            smart_host_auth_mechanism: SmartHostAuthMechanism::None,
            port: 25,
            fqdn: Some("mail.contoso.com".into()),
            require_tls: true,
            ignore_starttls: false,
            tls_auth_level: Some(TlsAuthLevel::DomainValidation),
            tls_domain: Some("mail.protection.outlook.com".into()),
            tls_certificate_name,
            cloud_services_mail_enabled: true,
            connector_type: ConnectorType::Default,
            connection_inactivity_timeout: default_inactivity(),
            max_message_size: default_max_message_size(),
            smtp_max_messages_per_connection: default_max_messages(),
            protocol_logging_level: ProtocolLoggingLevel::Verbose,
            source_ip_address: None,
            force_helo: false,
            enabled: true,
        }
    }

    /// A plain connector to one smart host with everything else at Exchange's defaults.
    pub fn to_smart_host(name: &str, host: &str, port: u16) -> Self {
        Self {
            name: name.to_string(),
            address_spaces: vec![AddressSpace {
                kind: "SMTP".into(),
                domain: "*".into(),
                cost: 1,
            }],
            dns_routing_enabled: false,
            smart_hosts: vec![host.to_string()],
            port,
            require_tls: false,
            tls_auth_level: None,
            tls_domain: None,
            tls_certificate_name: None,
            cloud_services_mail_enabled: false,
            fqdn: None,
            protocol_logging_level: ProtocolLoggingLevel::Verbose,
            ..Self::hybrid("x", None)
        }
    }

    /// The parsed `TlsCertificateName`, if set.
    ///
    /// # Errors
    /// The value is not `<I>issuer<S>subject`.
    pub fn tls_certificate_identifier(&self) -> Result<Option<X509Identifier>, ConnectorError> {
        match self.tls_certificate_name.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(ConnectorError::from),
        }
    }

    /// The EHLO name and certificate search name: `Fqdn`, else the server's FQDN.
    pub fn effective_fqdn<'a>(&'a self, server_fqdn: &'a str) -> &'a str {
        self.fqdn
            .as_deref()
            .filter(|f| !f.is_empty())
            .unwrap_or(server_fqdn)
    }

    /// Whether plain text is forbidden (RequireTLS, or BasicAuthRequireTLS).
    pub fn tls_required(&self) -> bool {
        self.require_tls
            || self.smart_host_auth_mechanism == SmartHostAuthMechanism::BasicAuthRequireTLS
    }

    /// The lowest-cost, most specific address space matching `domain`, if any.
    pub fn route_cost(&self, domain: &str) -> Option<(u8, usize)> {
        self.address_spaces
            .iter()
            .filter(|a| a.matches(domain))
            .map(|a| (a.cost, usize::MAX - a.specificity()))
            .min()
    }

    /// The connector as `Get-SendConnector | Format-List` shows it on `server`.
    ///
    /// Properties the lab does not model get Exchange's defaults (DomainSecureEnabled,
    /// FrontendProxyEnabled, IsScopedConnector, RequireOorg, UseExternalDNSServersEnabled `False`,
    /// ErrorPolicies `Default`); SourceTransportServers is the sending server's name (on an Edge the
    /// real value is the Edge subscription's server, which is the same name).
    pub fn listing_row(&self, server: &ServerIdentity) -> SendConnectorRow {
        SendConnectorRow {
            name: self.name.clone(),
            identity: Some(self.name.clone()),
            address_spaces: self
                .address_spaces
                .iter()
                .map(ToString::to_string)
                .collect(),
            cloud_services_mail_enabled: Some(self.cloud_services_mail_enabled),
            comment: None,
            connection_inactivity_timeout: Some(self.connection_inactivity_timeout.to_time()),
            connector_type: Some(
                match self.connector_type {
                    ConnectorType::Default => "Default",
                    ConnectorType::XPremises => "XPremises",
                }
                .to_string(),
            ),
            dns_routing_enabled: Some(self.dns_routing_enabled),
            domain_secure_enabled: Some(false),
            enabled: Some(self.enabled),
            error_policies: Some("Default".to_string()),
            force_helo: Some(self.force_helo),
            fqdn: self.fqdn.clone().filter(|f| !f.is_empty()),
            frontend_proxy_enabled: Some(false),
            ignore_starttls: Some(self.ignore_starttls),
            is_scoped_connector: Some(false),
            max_message_size: Some(match self.max_message_size.0 {
                Some(n) => ByteSize::Bytes(n),
                None => ByteSize::Unlimited,
            }),
            port: Some(self.port),
            protocol_logging_level: Some(
                match self.protocol_logging_level {
                    ProtocolLoggingLevel::None => "None",
                    ProtocolLoggingLevel::Verbose => "Verbose",
                }
                .to_string(),
            ),
            require_oorg: Some(false),
            require_tls: Some(self.require_tls),
            smart_host_auth_mechanism: Some(
                match self.smart_host_auth_mechanism {
                    SmartHostAuthMechanism::None => "None",
                    SmartHostAuthMechanism::BasicAuth => "BasicAuth",
                    SmartHostAuthMechanism::BasicAuthRequireTLS => "BasicAuthRequireTLS",
                    SmartHostAuthMechanism::ExchangeServer => "ExchangeServer",
                    SmartHostAuthMechanism::ExternalAuthoritative => "ExternalAuthoritative",
                }
                .to_string(),
            ),
            smart_hosts: self.smart_hosts.clone(),
            smtp_max_messages_per_connection: Some(self.smtp_max_messages_per_connection),
            source_ip_address: Some(
                self.source_ip_address
                    .map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string()),
            ),
            source_transport_servers: vec![server.name.clone()],
            tls_auth_level: self.tls_auth_level,
            tls_certificate_name: self
                .tls_certificate_name
                .clone()
                .filter(|n| !n.trim().is_empty()),
            tls_domain: self.tls_domain.clone().filter(|d| !d.is_empty()),
            use_external_dns_servers_enabled: Some(false),
        }
    }

    /// Refuses what `New-/Set-SendConnector` refuses.
    ///
    /// # Errors
    /// The first rule the connector breaks.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        if self.address_spaces.is_empty() {
            return Err(ConnectorError::NoAddressSpaces);
        }
        if self.require_tls && self.ignore_starttls {
            return Err(ConnectorError::RequireTlsWithIgnoreStartTls);
        }
        if self.tls_domain.as_deref().is_some_and(|d| !d.is_empty())
            && self.tls_auth_level != Some(TlsAuthLevel::DomainValidation)
        {
            return Err(ConnectorError::TlsDomainWithoutDomainValidation);
        }
        if self.tls_auth_level.is_some() && !self.require_tls {
            return Err(ConnectorError::TlsAuthLevelWithoutRequireTls);
        }
        if !self.dns_routing_enabled && self.smart_hosts.is_empty() {
            return Err(ConnectorError::SmartHostsRequired);
        }
        if self.dns_routing_enabled && !self.smart_hosts.is_empty() {
            return Err(ConnectorError::SmartHostsWithDnsRouting);
        }
        if self.smart_hosts.is_empty()
            && self.smart_host_auth_mechanism != SmartHostAuthMechanism::None
        {
            return Err(ConnectorError::AuthMechanismWithoutSmartHosts);
        }
        if self.port == 0 {
            return Err(ConnectorError::OutOfRange {
                property: "Port",
                value: "0".into(),
                range: "1-65535",
            });
        }
        let t = self.connection_inactivity_timeout;
        if t < TimeSpan::secs(1) || t > TimeSpan::days(1) {
            return Err(ConnectorError::OutOfRange {
                property: "ConnectionInactivityTimeOut",
                value: t.to_string(),
                range: "00:00:01-1.00:00:00",
            });
        }
        if self.smtp_max_messages_per_connection == 0 {
            return Err(ConnectorError::OutOfRange {
                property: "SmtpMaxMessagesPerConnection",
                value: "0".into(),
                range: "1-2147483647",
            });
        }
        self.tls_certificate_identifier()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Server identity, transport retry settings, SChannel settings
// ---------------------------------------------------------------------------------------------

/// The transport role: decides the retry defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// Edge Transport (the background case).
    #[default]
    Edge,
    /// Mailbox (Hub/Front End transport).
    Mailbox,
}

fn default_server_name() -> String {
    "EDGE01".into()
}
fn default_server_fqdn() -> String {
    "edge01.contoso.com".into()
}

/// Who is sending: the server's name, FQDN, role and Exchange version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerIdentity {
    /// NetBIOS name (`EDGE01`): queue identities are `EDGE01\<n>`.
    #[serde(default = "default_server_name")]
    pub name: String,
    /// FQDN: EHLO name when the connector has no `Fqdn`.
    #[serde(default = "default_server_fqdn")]
    pub fqdn: String,
    /// Role.
    #[serde(default)]
    pub role: ServerRole,
    /// Exchange version (LastError wording).
    #[serde(default = "default_version")]
    pub version: ExchangeVersion,
}

fn default_version() -> ExchangeVersion {
    ExchangeVersion::Exchange2019
}

impl Default for ServerIdentity {
    fn default() -> Self {
        Self {
            name: default_server_name(),
            fqdn: default_server_fqdn(),
            role: ServerRole::Edge,
            version: default_version(),
        }
    }
}

/// How glitch retries and transient retries interleave after a connection failure \[U\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryInterleaving {
    /// `QueueGlitchRetryCount` retries `QueueGlitchRetryInterval` apart, then
    /// `TransientFailureRetryCount` retries `TransientFailureRetryInterval` apart, then every
    /// `OutboundConnectionFailureRetryInterval`.
    #[default]
    GlitchThenTransient,
    /// No glitch retries: transient retries, then the long interval.
    TransientOnly,
}

/// `Set-TransportService` retry and expiry settings (exchange-hybrid.md 5.7), plus the lab's
/// interleaving knob. Defaults depend on the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSettings {
    /// `TransientFailureRetryCount` (0-15; default 6).
    pub transient_failure_retry_count: u32,
    /// `TransientFailureRetryInterval` (Mailbox 00:05:00, Edge 00:10:00).
    pub transient_failure_retry_interval: TimeSpan,
    /// `OutboundConnectionFailureRetryInterval` (Mailbox 00:10:00, Edge 00:30:00).
    pub outbound_connection_failure_retry_interval: TimeSpan,
    /// `MessageRetryInterval` (00:05:00 per the cmdlet reference; older docs 15 min).
    pub message_retry_interval: TimeSpan,
    /// `MessageExpirationTimeout` (2.00:00:00).
    pub message_expiration_timeout: TimeSpan,
    /// `DelayNotificationTimeout` (04:00:00).
    pub delay_notification_timeout: TimeSpan,
    /// Whether delay DSNs are sent (`ExternalDelayDsnEnabled`/`InternalDelayDsnEnabled`).
    pub delay_dsn_enabled: bool,
    /// `QueueGlitchRetryCount` (EdgeTransport.exe.config; 4).
    pub queue_glitch_retry_count: u32,
    /// `QueueGlitchRetryInterval` (00:01:00).
    pub queue_glitch_retry_interval: TimeSpan,
    /// Interleaving of glitch and transient retries \[U\].
    pub retry_interleaving: RetryInterleaving,
}

impl TransportSettings {
    /// Edge Transport defaults.
    pub fn edge() -> Self {
        Self {
            transient_failure_retry_count: 6,
            transient_failure_retry_interval: TimeSpan::minutes(10),
            outbound_connection_failure_retry_interval: TimeSpan::minutes(30),
            message_retry_interval: TimeSpan::minutes(5),
            message_expiration_timeout: TimeSpan::days(2),
            delay_notification_timeout: TimeSpan::hours(4),
            delay_dsn_enabled: true,
            queue_glitch_retry_count: 4,
            queue_glitch_retry_interval: TimeSpan::minutes(1),
            retry_interleaving: RetryInterleaving::GlitchThenTransient,
        }
    }

    /// Mailbox defaults.
    pub fn mailbox() -> Self {
        Self {
            transient_failure_retry_interval: TimeSpan::minutes(5),
            outbound_connection_failure_retry_interval: TimeSpan::minutes(10),
            ..Self::edge()
        }
    }

    /// Defaults for `role`.
    pub fn for_role(role: ServerRole) -> Self {
        match role {
            ServerRole::Edge => Self::edge(),
            ServerRole::Mailbox => Self::mailbox(),
        }
    }
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self::edge()
    }
}

/// The TOML form: `role` picks the defaults, any other key overrides one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportSettingsRaw {
    #[serde(default)]
    role: ServerRole,
    transient_failure_retry_count: Option<u32>,
    transient_failure_retry_interval: Option<TimeSpan>,
    outbound_connection_failure_retry_interval: Option<TimeSpan>,
    message_retry_interval: Option<TimeSpan>,
    message_expiration_timeout: Option<TimeSpan>,
    delay_notification_timeout: Option<TimeSpan>,
    delay_dsn_enabled: Option<bool>,
    queue_glitch_retry_count: Option<u32>,
    queue_glitch_retry_interval: Option<TimeSpan>,
    retry_interleaving: Option<RetryInterleaving>,
}

impl<'de> Deserialize<'de> for TransportSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = TransportSettingsRaw::deserialize(d)?;
        let b = Self::for_role(r.role);
        if r.transient_failure_retry_count.is_some_and(|c| c > 15) {
            return Err(serde::de::Error::custom(
                "transient_failure_retry_count must be 0-15",
            ));
        }
        Ok(Self {
            transient_failure_retry_count: r
                .transient_failure_retry_count
                .unwrap_or(b.transient_failure_retry_count),
            transient_failure_retry_interval: r
                .transient_failure_retry_interval
                .unwrap_or(b.transient_failure_retry_interval),
            outbound_connection_failure_retry_interval: r
                .outbound_connection_failure_retry_interval
                .unwrap_or(b.outbound_connection_failure_retry_interval),
            message_retry_interval: r.message_retry_interval.unwrap_or(b.message_retry_interval),
            message_expiration_timeout: r
                .message_expiration_timeout
                .unwrap_or(b.message_expiration_timeout),
            delay_notification_timeout: r
                .delay_notification_timeout
                .unwrap_or(b.delay_notification_timeout),
            delay_dsn_enabled: r.delay_dsn_enabled.unwrap_or(b.delay_dsn_enabled),
            queue_glitch_retry_count: r
                .queue_glitch_retry_count
                .unwrap_or(b.queue_glitch_retry_count),
            queue_glitch_retry_interval: r
                .queue_glitch_retry_interval
                .unwrap_or(b.queue_glitch_retry_interval),
            retry_interleaving: r.retry_interleaving.unwrap_or(b.retry_interleaving),
        })
    }
}

fn default_suites() -> Option<Vec<String>> {
    None
}

/// The operating system's SChannel client settings (registry `SCHANNEL\Protocols`, cipher suite
/// order). Exchange does not support TLS 1.3, so it is off by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchannelSettings {
    /// `TLS 1.2\Client Enabled`.
    #[serde(default = "default_true")]
    pub tls12: bool,
    /// `TLS 1.3\Client Enabled` (off: Exchange does not support TLS 1.3).
    #[serde(default)]
    pub tls13: bool,
    /// The cipher suites left enabled, by IANA name (`TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`);
    /// `None` keeps every suite rustls offers.
    #[serde(default = "default_suites")]
    pub cipher_suites: Option<Vec<String>>,
}

impl Default for SchannelSettings {
    fn default() -> Self {
        Self {
            tls12: true,
            tls13: false,
            cipher_suites: None,
        }
    }
}

impl SchannelSettings {
    /// The rustls provider with only the enabled suites, and the enabled versions.
    ///
    /// # Errors
    /// A suite name rustls does not know.
    pub fn provider_and_versions(
        &self,
    ) -> Result<
        (
            rustls::crypto::CryptoProvider,
            Vec<&'static rustls::SupportedProtocolVersion>,
        ),
        ConnectorError,
    > {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(names) = &self.cipher_suites {
            let all = provider.cipher_suites.clone();
            let mut keep = Vec::new();
            for n in names {
                let found = all
                    .iter()
                    .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(n.trim()))
                    .ok_or_else(|| ConnectorError::UnknownCipherSuite(n.clone()))?;
                keep.push(*found);
            }
            provider.cipher_suites = keep;
        }
        let mut versions = Vec::new();
        if self.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        Ok((provider, versions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans_and_sizes() {
        assert_eq!(
            "00:10:00".parse::<TimeSpan>().unwrap(),
            TimeSpan::minutes(10)
        );
        assert_eq!("2.00:00:00".parse::<TimeSpan>().unwrap(), TimeSpan::days(2));
        assert_eq!(
            "1.02:03:04".parse::<TimeSpan>().unwrap().to_string(),
            "1.02:03:04"
        );
        assert_eq!("10".parse::<TimeSpan>().unwrap(), TimeSpan::secs(10));
        assert_eq!("5m".parse::<TimeSpan>().unwrap().to_string(), "00:05:00");
        assert!("00:61:00".parse::<TimeSpan>().is_err());
        assert!("25:00:00".parse::<TimeSpan>().is_err());
        assert!("ten".parse::<TimeSpan>().is_err());
        assert_eq!(ByteQuantity::mb(35).to_string(), "35 MB (36,700,160 bytes)");
        assert_eq!(
            "35 MB (36,700,160 bytes)".parse::<ByteQuantity>().unwrap(),
            ByteQuantity::mb(35)
        );
        assert_eq!(
            "25MB".parse::<ByteQuantity>().unwrap(),
            ByteQuantity::mb(25)
        );
        assert_eq!(
            "Unlimited".parse::<ByteQuantity>().unwrap(),
            ByteQuantity(None)
        );
        assert!("12 parsecs".parse::<ByteQuantity>().is_err());
    }

    #[test]
    fn x509_identifier_parses_and_compares() {
        let id: X509Identifier = "<I>CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US<S>CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US".parse().unwrap();
        assert_eq!(
            id.subject,
            "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
        );
        assert!(id.matches(
            "cn=digicert global g2 tls rsa sha256 2020 ca1, o=digicert inc, c=us",
            "CN=MAIL.contoso.com,O=Contoso Ltd, L=Redmond, S=Washington, C=US"
        ));
        assert!(!id.matches("CN=Other CA", &id.subject));
        for bad in ["CN=x", "<I>CN=a", "<I><S>CN=b", "<I>CN=a<S>", "<I>a<S>b"] {
            assert!(bad.parse::<X509Identifier>().is_err(), "{bad}");
        }
        assert_eq!(id.to_string().parse::<X509Identifier>().unwrap(), id);
    }

    #[test]
    fn address_spaces() {
        let a: AddressSpace = "smtp:contoso.mail.onmicrosoft.com;1".parse().unwrap();
        assert!(a.matches("Contoso.mail.onmicrosoft.com"));
        assert!(!a.matches("fabrikam.mail.onmicrosoft.com"));
        let w: AddressSpace = "SMTP:*;5".parse().unwrap();
        assert!(w.matches("anything.example"));
        let s: AddressSpace = "*.contoso.com".parse().unwrap();
        assert!(s.matches("a.b.contoso.com") && !s.matches("contoso.com"));
        assert!("SMTP:x;0".parse::<AddressSpace>().is_err());
        assert!("SMTP:;1".parse::<AddressSpace>().is_err());
        let mut c = SendConnector::hybrid("contoso", None);
        c.address_spaces.push(w);
        assert_eq!(c.route_cost("contoso.mail.onmicrosoft.com").unwrap().0, 1);
        assert_eq!(c.route_cost("example.org").unwrap().0, 5);
    }

    #[test]
    fn validation_refuses_what_exchange_refuses() {
        let ok = SendConnector::hybrid("contoso", None);
        ok.validate().unwrap();
        let mut c = ok.clone();
        c.tls_auth_level = Some(TlsAuthLevel::CertificateValidation);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "TLS Domain can only be specified with TLSAuthLevel set to DomainValidation."
        );
        let mut c = ok.clone();
        c.ignore_starttls = true;
        assert_eq!(
            c.validate(),
            Err(ConnectorError::RequireTlsWithIgnoreStartTls)
        );
        let mut c = ok.clone();
        c.smart_hosts.clear();
        assert_eq!(c.validate(), Err(ConnectorError::SmartHostsRequired));
        let mut c = ok.clone();
        c.dns_routing_enabled = true;
        assert_eq!(c.validate(), Err(ConnectorError::SmartHostsWithDnsRouting));
        let mut c = ok.clone();
        c.require_tls = false;
        c.tls_domain = None;
        assert_eq!(
            c.validate(),
            Err(ConnectorError::TlsAuthLevelWithoutRequireTls)
        );
        let mut c = ok.clone();
        c.tls_certificate_name = Some("CN=mail.contoso.com".into());
        assert!(matches!(
            c.validate(),
            Err(ConnectorError::BadTlsCertificateName(_))
        ));
        let mut c = ok.clone();
        c.connection_inactivity_timeout = TimeSpan::days(2);
        assert!(matches!(
            c.validate(),
            Err(ConnectorError::OutOfRange { .. })
        ));
        // DomainValidation without TlsDomain is accepted at configuration time (it fails the session).
        let mut c = ok;
        c.tls_domain = None;
        c.validate().unwrap();
    }

    #[test]
    fn listing_row_round_trips_through_get_sendconnector() {
        use hybridlab_artefacts::connectors::{
            send_connector_from_object, write_send_connector_list,
        };
        use hybridlab_artefacts::format_list::{self, FlOptions};
        let mut c = SendConnector::hybrid(
            "contoso",
            Some("<I>CN=Lab CA, O=Lab<S>CN=mail.contoso.com, O=Contoso Ltd".into()),
        );
        c.max_message_size = ByteQuantity(None);
        c.source_ip_address = Some("127.0.0.9".parse().unwrap());
        let row = c.listing_row(&ServerIdentity::default());
        assert_eq!(row.address_spaces, ["smtp:contoso.mail.onmicrosoft.com;1"]);
        assert_eq!(row.source_transport_servers, ["EDGE01"]);
        assert_eq!(row.max_message_size, Some(ByteSize::Unlimited));
        assert_eq!(
            row.connection_inactivity_timeout,
            Some(time::Duration::minutes(10))
        );
        let text = write_send_connector_list(std::slice::from_ref(&row), &FlOptions::default());
        let doc = format_list::parse("Get-SendConnector.txt", &text);
        let back = send_connector_from_object(&doc.objects[0]).unwrap().row;
        assert_eq!(back.tls_certificate_name, c.tls_certificate_name);
        assert_eq!(back.tls_auth_level, Some(TlsAuthLevel::DomainValidation));
        assert_eq!(
            back.tls_domain.as_deref(),
            Some("mail.protection.outlook.com")
        );
        assert_eq!(back.require_tls, Some(true));
        assert_eq!(back.smart_hosts, c.smart_hosts);
        assert_eq!(back.max_message_size, Some(ByteSize::Unlimited));
        assert_eq!(back.source_ip_address.as_deref(), Some("127.0.0.9"));
        assert_eq!(back.protocol_logging_level.as_deref(), Some("Verbose"));
        assert_eq!(back.dns_routing_enabled, Some(false));
        // an unset TlsCertificateName is not shown as an empty identifier
        let plain = SendConnector::to_smart_host("To relay", "relay.lab", 25);
        let row = plain.listing_row(&ServerIdentity::default());
        assert_eq!(row.tls_certificate_name, None);
        assert_eq!(row.fqdn, None);
        assert_eq!(row.tls_auth_level, None);
    }

    #[test]
    fn toml_forms() {
        let c: SendConnector = toml::from_str(
            r#"
name = "Outbound to Office 365 4ed6f1b1"
address_spaces = ["smtp:contoso.mail.onmicrosoft.com;1"]
dns_routing_enabled = false
smart_hosts = ["contoso-com.mail.protection.outlook.com"]
require_tls = true
tls_auth_level = "DomainValidation"
tls_domain = "mail.protection.outlook.com"
tls_certificate_name = "<I>CN=CA<S>CN=mail.contoso.com"
connection_inactivity_timeout = "00:05:00"
max_message_size = "25 MB"
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.port, 25);
        assert_eq!(c.max_message_size, ByteQuantity::mb(25));
        let err = toml::from_str::<SendConnector>("address_spaces=[\"*\"]\nrequire_tsl = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("require_tsl") && err.contains("line 2"),
            "{err}"
        );

        let t: TransportSettings =
            toml::from_str("role = \"mailbox\"\nmessage_retry_interval = \"00:15:00\"\n").unwrap();
        assert_eq!(
            t.outbound_connection_failure_retry_interval,
            TimeSpan::minutes(10)
        );
        assert_eq!(t.message_retry_interval, TimeSpan::minutes(15));
        let e: TransportSettings = toml::from_str("").unwrap();
        assert_eq!(e, TransportSettings::edge());
        assert!(toml::from_str::<TransportSettings>("bogus = 1").is_err());
        assert!(toml::from_str::<TransportSettings>("transient_failure_retry_count = 16").is_err());

        let s: SchannelSettings =
            toml::from_str("cipher_suites = [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]")
                .unwrap();
        let (p, v) = s.provider_and_versions().unwrap();
        assert_eq!(p.cipher_suites.len(), 1);
        assert_eq!(v.len(), 1);
        let s: SchannelSettings = toml::from_str("cipher_suites = [\"TLS_NOPE\"]").unwrap();
        assert!(s.provider_and_versions().is_err());
    }
}
