//! Receive connectors with Exchange's settings (`New-/Set-ReceiveConnector`), the defaults of the
//! two connectors EXO talks to (`Default Frontend <SERVER>` on a Mailbox server, `Default internal
//! receive connector <EDGE>` on an Edge), the checks `Set-ReceiveConnector` makes, and the row
//! `Get-ReceiveConnector | Format-List` lists.
//!
//! In TOML a connector is a table with snake_case keys; `server` is required, `role`
//! (`frontend`, default, or `edge`) picks the defaults of every key left out:
//! ```toml
//! server = "EXCH01"
//! tls_certificate_name = "<I>CN=Lab CA<S>CN=mail.contoso.com"
//! tls_domain_capabilities = ["mail.protection.outlook.com:AcceptCloudServicesMail"]
//! fqdn = "mail.contoso.com"
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use hybridlab_artefacts::connectors::ReceiveConnectorRow;
use hybridlab_model::exchange::UnknownToken;
use hybridlab_model::identifier::X509Identifier;
use hybridlab_model::serde_via_str;
use hybridlab_model::size::ByteSize;
use hybridlab_model::timespan::TimeSpan;
use hybridlab_model::token_enum;
use serde::{Deserialize, Serialize};

/// A receive connector setting `Set-ReceiveConnector` would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveConnectorError {
    /// Two settings contradict each other, or one is out of range (Exchange's message in words).
    #[error("receive connector {connector:?}: {field}: {reason}")]
    Invalid {
        /// The connector's name.
        connector: String,
        /// The offending setting (Exchange's property name).
        field: &'static str,
        /// What Exchange would say.
        reason: String,
    },
}

token_enum! {
    /// Which transport service a connector belongs to (`TransportRole`).
    TransportRole {
        /// The Front End Transport service of a Mailbox server (port 25 from the Internet).
        FrontendTransport => "FrontendTransport",
        /// The Transport service (Hub; also every connector of an Edge server).
        HubTransport => "HubTransport",
    }
}

token_enum! {
    /// `PermissionGroups` flags.
    PermissionGroup {
        /// No group.
        None => "None",
        /// Anonymous senders (EOP's sessions arrive anonymous).
        AnonymousUsers => "AnonymousUsers",
        /// Authenticated mailbox users.
        ExchangeUsers => "ExchangeUsers",
        /// Exchange servers of the organisation.
        ExchangeServers => "ExchangeServers",
        /// Exchange 2003/2007 servers.
        ExchangeLegacyServers => "ExchangeLegacyServers",
        /// Partner domains (domain-secure mail).
        Partners => "Partners",
        /// Permissions granted with Add-ADPermission only.
        Custom => "Custom",
    }
}

token_enum! {
    /// `AuthMechanism` flags.
    AuthMechanism {
        /// No authentication.
        None => "None",
        /// STARTTLS (without it STARTTLS is never advertised).
        Tls => "Tls",
        /// NTLM / Kerberos (`AUTH NTLM`, `X-EXPS GSSAPI NTLM`).
        Integrated => "Integrated",
        /// Basic authentication (`AUTH LOGIN`).
        BasicAuth => "BasicAuth",
        /// Basic authentication only after STARTTLS.
        BasicAuthRequireTLS => "BasicAuthRequireTLS",
        /// Exchange server authentication (`X-EXPS`).
        ExchangeServer => "ExchangeServer",
        /// The remote is externally secured (IPsec, a partner line).
        ExternalAuthoritative => "ExternalAuthoritative",
    }
}

token_enum! {
    /// `ProtocolLoggingLevel`.
    ProtocolLoggingLevel {
        /// Nothing is logged.
        None => "None",
        /// Every session goes to the RECV log.
        Verbose => "Verbose",
    }
}

token_enum! {
    /// The capability names `TlsDomainCapabilities` grants (flags of `SmtpReceiveCapabilities`).
    Capability {
        /// Accept organisation headers (`X-MS-Exchange-Organization-*`) as they are.
        AcceptOorgHeader => "AcceptOorgHeader",
        /// Exchange 2010 / Edge hybrid: XOORG and cross-premises headers.
        AcceptOorgProtocol => "AcceptOorgProtocol",
        /// XPROXY.
        AcceptProxyProtocol => "AcceptProxyProtocol",
        /// XPROXYFROM.
        AcceptProxyFromProtocol => "AcceptProxyFromProtocol",
        /// XPROXYTO.
        AcceptProxyToProtocol => "AcceptProxyToProtocol",
        /// XATTR.
        AcceptXAttrProtocol => "AcceptXAttrProtocol",
        /// Organisation headers of another forest.
        AcceptOrgHeaders => "AcceptOrgHeaders",
        /// XSYSPROBE.
        AcceptXSysProbeProtocol => "AcceptXSysProbeProtocol",
        /// Cross-forest mail.
        AcceptCrossForestMail => "AcceptCrossForestMail",
        /// Exchange 2013+ hybrid: mail from Exchange Online is trusted as internal.
        AcceptCloudServicesMail => "AcceptCloudServicesMail",
        /// Submission rights.
        AllowSubmit => "AllowSubmit",
        /// XORIGFROM.
        AcceptXOriginalFromProtocol => "AcceptXOriginalFromProtocol",
        /// Consumer mail.
        AllowConsumerMail => "AllowConsumerMail",
    }
}

impl Capability {
    /// Whether the capability lets the session carry cross-premises headers (and XOORG).
    pub fn trusts_cross_premises(self) -> bool {
        matches!(
            self,
            Self::AcceptCloudServicesMail | Self::AcceptOorgProtocol
        )
    }
}

/// One `TlsDomainCapabilities` entry: `domain:Capability1,Capability2` (the domain `NO-TLS` stands
/// for sessions without TLS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsDomainCapabilities {
    /// The certificate domain (`mail.protection.outlook.com`), or `NO-TLS`.
    pub domain: String,
    /// What a session whose client certificate matches the domain may do.
    pub capabilities: Vec<Capability>,
}

/// A `TlsDomainCapabilities` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TlsDomainCapabilities {value:?}: {reason}")]
pub struct BadTlsDomainCapabilities {
    /// The value as written.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for TlsDomainCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.domain)?;
        let names: Vec<&str> = self.capabilities.iter().map(|c| c.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for TlsDomainCapabilities {
    type Err = BadTlsDomainCapabilities;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| BadTlsDomainCapabilities {
            value: s.to_string(),
            reason,
        };
        let (domain, caps) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| bad("expected domain:Capability[,Capability]".into()))?;
        let domain = domain.trim();
        if domain.is_empty() || !(domain == "NO-TLS" || is_domain(domain.trim_start_matches("*.")))
        {
            return Err(bad(format!("{domain:?} is not a domain name")));
        }
        let capabilities = caps
            .split(',')
            .map(|c| c.trim().parse::<Capability>())
            .collect::<Result<Vec<_>, UnknownToken>>()
            .map_err(|e| bad(e.to_string()))?;
        if capabilities.is_empty() {
            return Err(bad("no capability".into()));
        }
        Ok(Self {
            domain: domain.to_string(),
            capabilities,
        })
    }
}

serde_via_str!(TlsDomainCapabilities, ToString::to_string);

/// A `RemoteIPRanges` entry: a single address, `start-end`, or CIDR `net/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address (same family as `start`).
    pub end: IpAddr,
}

/// A `RemoteIPRanges` entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address, a range (a-b) or a CIDR block (net/len)")]
pub struct BadIpRange(pub String);

impl IpRange {
    /// Every IPv4 address (`0.0.0.0-255.255.255.255`).
    pub const ALL_V4: Self = Self {
        start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        end: IpAddr::V4(Ipv4Addr::BROADCAST),
    };
    /// Every IPv6 address (`::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff`).
    pub const ALL_V6: Self = Self {
        start: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        end: IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        )),
    };

    /// Whether `ip` lies in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.start, self.end, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }

    /// How many addresses the range covers (to pick the most specific match).
    pub fn size(&self) -> u128 {
        match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(u32::from(b).saturating_sub(u32::from(a))),
            (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(b).saturating_sub(u128::from(a)),
            _ => u128::MAX,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl FromStr for IpRange {
    type Err = BadIpRange;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || BadIpRange(s.to_string());
        if let Some((a, b)) = t.split_once('-') {
            let start: IpAddr = a.trim().parse().map_err(|_| bad())?;
            let end: IpAddr = b.trim().parse().map_err(|_| bad())?;
            if start.is_ipv4() != end.is_ipv4() || start > end {
                return Err(bad());
            }
            return Ok(Self { start, end });
        }
        if t.contains('/') {
            let net: ipnet::IpNet = t.parse().map_err(|_| bad())?;
            return Ok(Self {
                start: net.network(),
                end: net.broadcast(),
            });
        }
        let ip: IpAddr = t.parse().map_err(|_| bad())?;
        Ok(Self { start: ip, end: ip })
    }
}

serde_via_str!(IpRange, ToString::to_string);

/// Which default connector a TOML table starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorRole {
    /// `Default Frontend <SERVER>` of a Mailbox server's Front End Transport service.
    #[default]
    Frontend,
    /// `Default internal receive connector <EDGE>` of an Edge Transport server.
    Edge,
}

/// A receive connector: the settings Exchange uses when a session arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReceiveConnectorConfig")]
pub struct ReceiveConnector {
    /// Name (`Default Frontend EXCH01`).
    pub name: String,
    /// The server that owns it (`EXCH01`); the log's connector id is `SERVER\Name`.
    pub server: String,
    /// Which default it was built from.
    pub role: ConnectorRole,
    /// Front End Transport or Transport (Hub/Edge): decides the event source.
    pub transport_role: TransportRole,
    /// Whether the connector accepts sessions.
    pub enabled: bool,
    /// Addresses and ports it listens on (`0.0.0.0:25`, `[::]:25`); the lab's listener stands in
    /// for them, so they are listed, not bound.
    pub bindings: Vec<SocketAddr>,
    /// Remote addresses it serves; the most specific range containing the client wins among
    /// connectors.
    pub remote_ip_ranges: Vec<IpRange>,
    /// Who may use it.
    pub permission_groups: Vec<PermissionGroup>,
    /// What authentication it offers (`Tls` must be present for STARTTLS).
    pub auth_mechanism: Vec<AuthMechanism>,
    /// `<I>issuer<S>subject` of the STARTTLS certificate; `None`: chosen by `Fqdn`.
    pub tls_certificate_name: Option<X509Identifier>,
    /// What a session whose client certificate matches a domain may do.
    pub tls_domain_capabilities: Vec<TlsDomainCapabilities>,
    /// MAIL before STARTTLS is refused with `530 5.7.0 Must issue a STARTTLS command first`.
    pub require_tls: bool,
    /// Name in the banner and EHLO reply, and the certificate search name; `None`: the server's
    /// FQDN.
    pub fqdn: Option<String>,
    /// A custom banner (must start with `220 `); `None`: Exchange's
    /// `220 <fqdn> Microsoft ESMTP MAIL Service ready at <date>`.
    pub banner: Option<String>,
    /// Sessions at once.
    pub max_inbound_connection: u32,
    /// Sessions at once from one address.
    pub max_inbound_connection_per_source: u32,
    /// Absolute session lifetime.
    pub connection_timeout: TimeSpan,
    /// Idle time before `451 4.7.0 Timeout waiting for client input`.
    pub connection_inactivity_timeout: TimeSpan,
    /// Largest message in bytes (advertised as `SIZE`).
    pub max_message_size: u64,
    /// Recipients per message before `452 4.5.3 Too many recipients`.
    pub max_recipients_per_message: u32,
    /// Protocol errors before `421 4.7.0 Too many errors on this connection, ...`.
    pub max_protocol_errors: u32,
    /// Whether sessions are written to the RECV log.
    pub protocol_logging_level: ProtocolLoggingLevel,
    /// Hide `X-ANONYMOUSTLS` from the EHLO reply.
    pub suppress_x_anonymous_tls: bool,
}

/// The TOML form of a [`ReceiveConnector`]: `server` and every key the role's default should not
/// decide. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveConnectorConfig {
    /// The owning server (`EXCH01`).
    pub server: String,
    /// The default the other keys start from.
    #[serde(default)]
    pub role: ConnectorRole,
    /// Name; default `Default Frontend <server>` / `Default internal receive connector <server>`.
    #[serde(default)]
    pub name: Option<String>,
    /// See [`ReceiveConnector::enabled`].
    #[serde(default)]
    pub enabled: Option<bool>,
    /// See [`ReceiveConnector::bindings`].
    #[serde(default)]
    pub bindings: Option<Vec<SocketAddr>>,
    /// See [`ReceiveConnector::remote_ip_ranges`].
    #[serde(default)]
    pub remote_ip_ranges: Option<Vec<IpRange>>,
    /// See [`ReceiveConnector::permission_groups`].
    #[serde(default)]
    pub permission_groups: Option<Vec<PermissionGroup>>,
    /// See [`ReceiveConnector::auth_mechanism`].
    #[serde(default)]
    pub auth_mechanism: Option<Vec<AuthMechanism>>,
    /// See [`ReceiveConnector::tls_certificate_name`].
    #[serde(default)]
    pub tls_certificate_name: Option<X509Identifier>,
    /// See [`ReceiveConnector::tls_domain_capabilities`].
    #[serde(default)]
    pub tls_domain_capabilities: Option<Vec<TlsDomainCapabilities>>,
    /// See [`ReceiveConnector::require_tls`].
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// See [`ReceiveConnector::fqdn`].
    #[serde(default)]
    pub fqdn: Option<String>,
    /// See [`ReceiveConnector::banner`].
    #[serde(default)]
    pub banner: Option<String>,
    /// See [`ReceiveConnector::max_inbound_connection`].
    #[serde(default)]
    pub max_inbound_connection: Option<u32>,
    /// See [`ReceiveConnector::max_inbound_connection_per_source`].
    #[serde(default)]
    pub max_inbound_connection_per_source: Option<u32>,
    /// See [`ReceiveConnector::connection_timeout`].
    #[serde(default)]
    pub connection_timeout: Option<TimeSpan>,
    /// See [`ReceiveConnector::connection_inactivity_timeout`].
    #[serde(default)]
    pub connection_inactivity_timeout: Option<TimeSpan>,
    /// See [`ReceiveConnector::max_message_size`] (bytes).
    #[serde(default)]
    pub max_message_size: Option<u64>,
    /// See [`ReceiveConnector::max_recipients_per_message`].
    #[serde(default)]
    pub max_recipients_per_message: Option<u32>,
    /// See [`ReceiveConnector::max_protocol_errors`].
    #[serde(default)]
    pub max_protocol_errors: Option<u32>,
    /// See [`ReceiveConnector::protocol_logging_level`].
    #[serde(default)]
    pub protocol_logging_level: Option<ProtocolLoggingLevel>,
    /// See [`ReceiveConnector::suppress_x_anonymous_tls`].
    #[serde(default)]
    pub suppress_x_anonymous_tls: Option<bool>,
}

impl TryFrom<ReceiveConnectorConfig> for ReceiveConnector {
    type Error = ReceiveConnectorError;
    fn try_from(c: ReceiveConnectorConfig) -> Result<Self, Self::Error> {
        let mut r = match c.role {
            ConnectorRole::Frontend => Self::default_frontend(&c.server),
            ConnectorRole::Edge => Self::default_edge(&c.server),
        };
        macro_rules! take {
            ($($f:ident),+) => { $(if let Some(v) = c.$f { r.$f = v; })+ };
        }
        take!(
            name,
            enabled,
            bindings,
            remote_ip_ranges,
            permission_groups,
            auth_mechanism,
            tls_domain_capabilities,
            require_tls,
            max_inbound_connection,
            max_inbound_connection_per_source,
            connection_timeout,
            connection_inactivity_timeout,
            max_message_size,
            max_recipients_per_message,
            max_protocol_errors,
            protocol_logging_level,
            suppress_x_anonymous_tls
        );
        if c.tls_certificate_name.is_some() {
            r.tls_certificate_name = c.tls_certificate_name;
        }
        if c.fqdn.is_some() {
            r.fqdn = c.fqdn;
        }
        if c.banner.is_some() {
            r.banner = c.banner;
        }
        r.validate()?;
        Ok(r)
    }
}

/// `36 MB`: Exchange's default `MaxMessageSize` (advertised as `SIZE 37748736`).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 36 * 1024 * 1024;

impl ReceiveConnector {
    /// `Default Frontend <server>` as setup creates it and HCW leaves it (without the certificate
    /// pin and capabilities: see [`ReceiveConnector::hybrid`]): bindings `0.0.0.0:25` and
    /// `[::]:25`, every remote address, anonymous users and Exchange servers, `Tls, Integrated,
    /// BasicAuth, BasicAuthRequireTLS, ExchangeServer`, 10 minutes lifetime, 5 minutes idle,
    /// 36 MB, 200 recipients, 5 protocol errors, verbose logging.
    pub fn default_frontend(server: &str) -> Self {
        Self {
            name: format!("Default Frontend {server}"),
            server: server.to_string(),
            role: ConnectorRole::Frontend,
            transport_role: TransportRole::FrontendTransport,
            enabled: true,
            bindings: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 25),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 25),
            ],
            remote_ip_ranges: vec![IpRange::ALL_V4, IpRange::ALL_V6],
            permission_groups: vec![
                PermissionGroup::AnonymousUsers,
                PermissionGroup::ExchangeServers,
                PermissionGroup::ExchangeLegacyServers,
            ],
            auth_mechanism: vec![
                AuthMechanism::Tls,
                AuthMechanism::Integrated,
                AuthMechanism::BasicAuth,
                AuthMechanism::BasicAuthRequireTLS,
                AuthMechanism::ExchangeServer,
            ],
            tls_certificate_name: None,
            tls_domain_capabilities: Vec::new(),
            require_tls: false,
            fqdn: None,
            banner: None,
            max_inbound_connection: 5000,
            max_inbound_connection_per_source: 20,
            connection_timeout: TimeSpan::minutes(10),
            connection_inactivity_timeout: TimeSpan::minutes(5),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_recipients_per_message: 200,
            max_protocol_errors: 5,
            protocol_logging_level: ProtocolLoggingLevel::Verbose,
            suppress_x_anonymous_tls: false,
        }
    }

    /// `Default internal receive connector <edge>` of an Edge Transport server: as the Frontend
    /// one with the Edge's shorter timeouts (5 minutes lifetime, 1 minute idle), anonymous users,
    /// Exchange servers and partners, Transport role.
    pub fn default_edge(edge: &str) -> Self {
        Self {
            name: format!("Default internal receive connector {edge}"),
            role: ConnectorRole::Edge,
            transport_role: TransportRole::HubTransport,
            permission_groups: vec![
                PermissionGroup::AnonymousUsers,
                PermissionGroup::ExchangeServers,
                PermissionGroup::Partners,
            ],
            auth_mechanism: vec![AuthMechanism::Tls, AuthMechanism::ExchangeServer],
            connection_timeout: TimeSpan::minutes(5),
            connection_inactivity_timeout: TimeSpan::minutes(1),
            ..Self::default_frontend(edge)
        }
    }

    /// The connector as the Hybrid Configuration Wizard leaves it: pinned to `certificate`
    /// (`<I>issuer<S>subject`) with the capability EOP's certificate earns
    /// (`mail.protection.outlook.com:AcceptCloudServicesMail` on a Mailbox server,
    /// `AcceptOorgProtocol` on an Edge, whose `Fqdn` HCW sets to the certificate's name).
    pub fn hybrid(mut self, certificate: X509Identifier, fqdn: Option<&str>) -> Self {
        let capability = match self.role {
            ConnectorRole::Frontend => Capability::AcceptCloudServicesMail,
            ConnectorRole::Edge => Capability::AcceptOorgProtocol,
        };
        self.tls_certificate_name = Some(certificate);
        self.tls_domain_capabilities = vec![TlsDomainCapabilities {
            domain: EOP_CERTIFICATE_DOMAIN.into(),
            capabilities: vec![capability],
        }];
        if let Some(f) = fqdn {
            self.fqdn = Some(f.to_string());
        }
        self
    }

    /// Parses a TOML table (see the module docs), applying the role's defaults and validating.
    ///
    /// # Errors
    /// The TOML error (with line and column) or the validation error, as text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// `SERVER\Name`: the connector id of the RECV log and the `Identity` of the listing.
    pub fn identity(&self) -> String {
        format!("{}\\{}", self.server, self.name)
    }

    /// The name in the banner, the EHLO reply and the certificate search.
    pub fn effective_fqdn<'a>(&'a self, server_fqdn: &'a str) -> &'a str {
        self.fqdn.as_deref().unwrap_or(server_fqdn)
    }

    /// Whether `AuthMechanism` holds `m`.
    pub fn has_auth(&self, m: AuthMechanism) -> bool {
        self.auth_mechanism.contains(&m)
    }

    /// The capabilities granted to a TLS client certificate carrying one of `names` (CN and DNS
    /// SANs), and the domain entry that matched (`None`: no entry matches).
    pub fn capabilities_for<'a>(&'a self, names: &[&str]) -> Option<&'a TlsDomainCapabilities> {
        self.tls_domain_capabilities.iter().find(|entry| {
            entry.domain != "NO-TLS"
                && hybridlab_model::x509::names_match(&entry.domain, names.iter().copied())
        })
    }

    /// The most specific `RemoteIPRanges` entry containing `ip` (`None`: the connector does not
    /// serve it).
    pub fn best_range_for(&self, ip: IpAddr) -> Option<u128> {
        self.remote_ip_ranges
            .iter()
            .filter(|r| r.contains(ip))
            .map(IpRange::size)
            .min()
    }

    /// The checks `Set-ReceiveConnector` makes before it saves.
    ///
    /// # Errors
    /// The first contradiction found, with Exchange's reasoning.
    pub fn validate(&self) -> Result<(), ReceiveConnectorError> {
        let bad = |field: &'static str, reason: &str| {
            Err(ReceiveConnectorError::Invalid {
                connector: self.name.clone(),
                field,
                reason: reason.to_string(),
            })
        };
        let tls = self.has_auth(AuthMechanism::Tls);
        if self.name.trim().is_empty() {
            return bad("Name", "the name is empty");
        }
        if self.bindings.is_empty() {
            return bad("Bindings", "at least one binding is required");
        }
        if self.remote_ip_ranges.is_empty() {
            return bad("RemoteIPRanges", "at least one remote IP range is required");
        }
        if self.require_tls && !tls {
            return bad(
                "RequireTLS",
                "RequireTLS is $true but AuthMechanism does not include Tls",
            );
        }
        if self.has_auth(AuthMechanism::BasicAuthRequireTLS)
            && !(tls && self.has_auth(AuthMechanism::BasicAuth))
        {
            return bad(
                "AuthMechanism",
                "BasicAuthRequireTLS needs both BasicAuth and Tls",
            );
        }
        if self.has_auth(AuthMechanism::ExchangeServer)
            && !(tls || self.has_auth(AuthMechanism::ExternalAuthoritative))
        {
            return bad(
                "AuthMechanism",
                "ExchangeServer authentication needs Tls or ExternalAuthoritative",
            );
        }
        if self.has_auth(AuthMechanism::ExternalAuthoritative)
            && !self
                .permission_groups
                .contains(&PermissionGroup::ExchangeServers)
        {
            return bad(
                "AuthMechanism",
                "ExternalAuthoritative needs the ExchangeServers permission group",
            );
        }
        if self.has_auth(AuthMechanism::None) && self.auth_mechanism.len() > 1 {
            return bad("AuthMechanism", "None cannot be combined with other values");
        }
        if let Some(b) = &self.banner
            && !b.starts_with("220 ")
        {
            return bad("Banner", "a custom banner must start with \"220 \"");
        }
        if let Some(f) = &self.fqdn
            && !is_domain(f)
        {
            return bad("Fqdn", "not a valid fully qualified domain name");
        }
        if self.max_inbound_connection == 0 || self.max_inbound_connection_per_source == 0 {
            return bad(
                "MaxInboundConnection",
                "connection limits must be at least 1",
            );
        }
        if self.max_inbound_connection_per_source > self.max_inbound_connection {
            return bad(
                "MaxInboundConnectionPerSource",
                "MaxInboundConnectionPerSource cannot exceed MaxInboundConnection",
            );
        }
        if self.connection_inactivity_timeout >= self.connection_timeout {
            return bad(
                "ConnectionInactivityTimeout",
                "ConnectionInactivityTimeout must be less than ConnectionTimeout",
            );
        }
        if self.connection_inactivity_timeout.0.is_zero() {
            return bad("ConnectionInactivityTimeout", "must be greater than zero");
        }
        if self.max_message_size == 0 || self.max_recipients_per_message == 0 {
            return bad(
                "MaxMessageSize",
                "message size and recipient limits must be at least 1",
            );
        }
        Ok(())
    }

    /// The connector as `Get-ReceiveConnector | Format-List` lists it.
    pub fn listing_row(&self) -> ReceiveConnectorRow {
        let tokens = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
        let mut ranges: Vec<String> = self
            .remote_ip_ranges
            .iter()
            .map(ToString::to_string)
            .collect();
        // Exchange lists IPv6 ranges first: `{::-ffff:..., 0.0.0.0-255.255.255.255}`.
        ranges.sort_by_key(|r| !r.contains(':'));
        let mut bindings: Vec<String> = self.bindings.iter().map(ToString::to_string).collect();
        bindings.sort_by_key(|b| !b.starts_with('['));
        ReceiveConnectorRow {
            name: self.name.clone(),
            identity: Some(self.identity()),
            server: Some(self.server.clone()),
            transport_role: Some(self.transport_role.to_string()),
            auth_mechanism: tokens(self.auth_mechanism.iter().map(|a| a.as_str()).collect()),
            banner: self.banner.clone(),
            bindings,
            enabled: Some(self.enabled),
            fqdn: self.fqdn.clone(),
            tls_certificate_name: self.tls_certificate_name.as_ref().map(ToString::to_string),
            tls_domain_capabilities: self
                .tls_domain_capabilities
                .iter()
                .map(ToString::to_string)
                .collect(),
            require_tls: Some(self.require_tls),
            permission_groups: tokens(self.permission_groups.iter().map(|p| p.as_str()).collect()),
            remote_ip_ranges: ranges,
            max_message_size: Some(ByteSize::Bytes(self.max_message_size)),
            protocol_logging_level: Some(self.protocol_logging_level.to_string()),
            connection_timeout: Some(self.connection_timeout.to_time()),
            connection_inactivity_timeout: Some(self.connection_inactivity_timeout.to_time()),
            suppress_x_anonymous_tls: Some(self.suppress_x_anonymous_tls),
        }
    }
}

/// The name on EOP's client certificate that the HCW capability entry names.
pub const EOP_CERTIFICATE_DOMAIN: &str = "mail.protection.outlook.com";

/// A host name Exchange accepts as an FQDN: dot-separated labels of letters, digits and hyphens
/// (a single label is allowed: `Fqdn EXCH01`).
fn is_domain(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_role_from_toml() {
        let fe = ReceiveConnector::from_toml("server = \"EXCH01\"\n").unwrap();
        assert_eq!(fe.name, "Default Frontend EXCH01");
        assert_eq!(fe.identity(), "EXCH01\\Default Frontend EXCH01");
        assert_eq!(fe.connection_inactivity_timeout, TimeSpan::minutes(5));
        assert!(fe.has_auth(AuthMechanism::Tls));
        let edge = ReceiveConnector::from_toml(
            "server = \"EDGE01\"\nrole = \"edge\"\ntls_domain_capabilities = [\"mail.protection.outlook.com:AcceptOorgProtocol\"]\nfqdn = \"mail.contoso.com\"\n",
        )
        .unwrap();
        assert_eq!(edge.name, "Default internal receive connector EDGE01");
        assert_eq!(edge.connection_timeout, TimeSpan::minutes(5));
        assert_eq!(
            edge.tls_domain_capabilities[0].capabilities,
            vec![Capability::AcceptOorgProtocol]
        );
        let unknown = ReceiveConnector::from_toml("server = \"X\"\nrequire_tsl = true\n");
        assert!(unknown.unwrap_err().to_string().contains("require_tsl"));
    }

    #[test]
    fn validation_like_set_receiveconnector() {
        let bad = ReceiveConnector::from_toml(
            "server = \"EXCH01\"\nrequire_tls = true\nauth_mechanism = [\"Integrated\"]\n",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("RequireTLS"), "{bad}");
        let banner = ReceiveConnector::from_toml("server = \"EXCH01\"\nbanner = \"hello\"\n");
        assert!(banner.unwrap_err().to_string().contains("220"));
        let caps = ReceiveConnector::from_toml(
            "server = \"EXCH01\"\ntls_domain_capabilities = [\"mail.protection.outlook.com:AcceptCloudMail\"]\n",
        );
        assert!(caps.unwrap_err().to_string().contains("AcceptCloudMail"));
        let timeouts = ReceiveConnector::from_toml(
            "server = \"EXCH01\"\nconnection_inactivity_timeout = \"00:20:00\"\n",
        );
        assert!(timeouts.unwrap_err().to_string().contains("less than"));
    }

    #[test]
    fn ranges_and_capabilities() {
        let r: IpRange = "40.92.0.0/15".parse().unwrap();
        assert!(r.contains("40.93.1.2".parse().unwrap()));
        assert!(!r.contains("40.94.0.1".parse().unwrap()));
        assert!(IpRange::ALL_V4.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(
            "10.0.0.1-10.0.0.9".parse::<IpRange>().unwrap().to_string(),
            "10.0.0.1-10.0.0.9"
        );
        assert!("10.0.0.9-10.0.0.1".parse::<IpRange>().is_err());
        let c = ReceiveConnector::default_frontend("EXCH01")
            .hybrid("<I>CN=CA<S>CN=mail.contoso.com".parse().unwrap(), None);
        assert!(
            c.capabilities_for(&["mail.protection.outlook.com"])
                .is_some()
        );
        assert!(c.capabilities_for(&["*.protection.outlook.com"]).is_some());
        assert!(c.capabilities_for(&["mail.fabrikam.com"]).is_none());
        let row = c.listing_row();
        assert_eq!(row.bindings[0], "[::]:25");
        assert_eq!(
            row.tls_domain_capabilities,
            vec!["mail.protection.outlook.com:AcceptCloudServicesMail".to_string()]
        );
        assert_eq!(row.remote_ip_ranges[1], "0.0.0.0-255.255.255.255");
    }
}
