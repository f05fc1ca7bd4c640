//! The send connector (`New-/Set-SendConnector`): its settings, the address spaces it routes, the
//! rules `Set-SendConnector` enforces, and its `Get-SendConnector` row.
//!
//! It deserializes from TOML/JSON with snake_case keys and `deny_unknown_fields`, so a scenario can
//! embed it (`[onprem.send_connector]`). `tls_certificate_name` stays the literal
//! `<I>issuer<S>subject` string; a scenario runner that allows a reference to a scenario-local
//! certificate resolves it before building the connector.
//!
//! [`SendConnector::validate`] refuses what `Set-SendConnector` refuses, with Exchange's messages.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use hybridlab_model::exchange::TlsAuthLevel;
use hybridlab_model::identifier::{BadX509Identifier, X509Identifier};
use hybridlab_model::size::ByteSize;
use hybridlab_model::timespan::TimeSpan;

mod address_space;
mod listing;

pub use address_space::AddressSpace;

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
    /// `AddressSpaces` is empty: the connector would route nothing.
    #[error("AddressSpaces can't be empty.")]
    NoAddressSpaces,
    /// A value outside its range.
    #[error("The value of property {property} is out of range: {value} (allowed {range}).")]
    OutOfRange {
        /// Exchange's property name (`Port`, `ConnectionInactivityTimeOut`...).
        property: &'static str,
        /// The refused value, as Exchange would echo it.
        value: String,
        /// The values Exchange accepts (`1-65535`).
        range: &'static str,
    },
    /// `TlsCertificateName` is not `<I>issuer<S>subject`.
    #[error(transparent)]
    BadTlsCertificateName(#[from] BadX509Identifier),
    /// An address space that does not parse.
    #[error("address space {value:?}: {reason}")]
    BadAddressSpace {
        /// The text as given.
        value: String,
        /// Which part is wrong (`cost is not 1-100`, `the domain is empty`).
        reason: &'static str,
    },
}

/// `SmartHostAuthMechanism`: how the connector authenticates to its smart hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SmartHostAuthMechanism {
    /// No authentication (the default, and what the hybrid connector uses).
    #[default]
    None,
    /// Basic authentication, after STARTTLS when it is offered.
    BasicAuth,
    /// Basic authentication that forbids falling back to clear text.
    BasicAuthRequireTLS,
    /// Exchange server authentication (Kerberos between Exchange servers).
    ExchangeServer,
    /// The path is secured outside Exchange (IPsec, a private line): no authentication on the wire.
    ExternalAuthoritative,
}

/// `ConnectorType`: whether the connector carries cross-premises (hybrid) mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConnectorType {
    /// An ordinary send connector (what the Hybrid Configuration Wizard creates too).
    #[default]
    Default,
    /// Marked cross-premises: mail keeps its organisation headers across the connector.
    XPremises,
}

/// `ProtocolLoggingLevel`: whether the connector's sessions go to the send protocol log.
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
fn default_max_message_size() -> ByteSize {
    ByteSize::mb(35)
}
fn default_max_messages() -> u32 {
    20
}
fn default_connector_name() -> String {
    "Outbound to Office 365".to_string()
}

/// A send connector with the settings that matter for hybrid mail flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SendConnector {
    /// Name; the send protocol log's connector-id.
    #[serde(default = "default_connector_name")]
    pub name: String,
    /// `AddressSpaces`: the recipient domains the connector routes, each with a cost.
    pub address_spaces: Vec<AddressSpace>,
    /// `DNSRoutingEnabled` (default `$true`): send to the recipient domain's MX hosts; `$false`
    /// sends to the smart hosts.
    #[serde(default = "default_true")]
    pub dns_routing_enabled: bool,
    /// `SmartHosts` (FQDN or IP, optionally `[ip]`).
    #[serde(default)]
    pub smart_hosts: Vec<String>,
    /// `SmartHostAuthMechanism`: how it authenticates to the smart hosts.
    #[serde(default)]
    pub smart_host_auth_mechanism: SmartHostAuthMechanism,
    /// `Port` (default 25): the TCP port of the next hop.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `Fqdn`: EHLO name and the FQDN certificate search name; `None` uses the server's FQDN.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// `RequireTLS`: never send in plain text; no STARTTLS offered (or a failed one) fails the
    /// session instead.
    #[serde(default)]
    pub require_tls: bool,
    /// `IgnoreSTARTTLS`: never issue STARTTLS, even when the server offers it.
    #[serde(default, rename = "ignore_starttls")]
    pub ignore_starttls: bool,
    /// `TlsAuthLevel`: how the remote certificate is checked (`None`: encryption only).
    #[serde(default)]
    pub tls_auth_level: Option<TlsAuthLevel>,
    /// `TlsDomain`: the name the remote certificate must carry under DomainValidation
    /// (wildcards allowed; empty: the next-hop domain).
    #[serde(default)]
    pub tls_domain: Option<String>,
    /// `TlsCertificateName`, the literal `<I>issuer<S>subject` (parsed by [`Self::tls_certificate_identifier`]).
    #[serde(default)]
    pub tls_certificate_name: Option<String>,
    /// `CloudServicesMailEnabled`: promote the organisation headers to
    /// `X-MS-Exchange-CrossPremises-*` so Exchange Online treats the mail as internal.
    #[serde(default)]
    pub cloud_services_mail_enabled: bool,
    /// `ConnectorType`: ordinary or cross-premises.
    #[serde(default)]
    pub connector_type: ConnectorType,
    /// `ConnectionInactivityTimeOut` (default 00:10:00): how long the sender waits for a reply
    /// before it drops the session (`421 4.4.1 Connection timed out`).
    #[serde(default = "default_inactivity")]
    pub connection_inactivity_timeout: TimeSpan,
    /// `MaxMessageSize` (default 35 MB; the documented default varies by version \[U\]): the
    /// largest message the connector sends.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: ByteSize,
    /// `SmtpMaxMessagesPerConnection` (default 20): messages one session carries before QUIT; the
    /// rest wait for the next session.
    #[serde(default = "default_max_messages")]
    pub smtp_max_messages_per_connection: u32,
    /// `ProtocolLoggingLevel`: whether its sessions are written to the send protocol log.
    #[serde(default)]
    pub protocol_logging_level: ProtocolLoggingLevel,
    /// `SourceIPAddress` (Edge): the local address to bind; in the lab, within 127.0.0.0/8.
    #[serde(default)]
    pub source_ip_address: Option<IpAddr>,
    /// `ForceHELO`: greet with HELO instead of EHLO (no extensions, so no STARTTLS).
    #[serde(default)]
    pub force_helo: bool,
    /// `Enabled`: a disabled connector routes nothing.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl SendConnector {
    /// The connector's object `Guid` (what `Get-Queue` shows as NextHopConnector): derived from
    /// its name, so a scenario's connector keeps its GUID from run to run.
    pub fn guid(&self) -> String {
        let fnv = |seed: u64| {
            self.name.bytes().fold(seed, |h, b| {
                (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x100_0000_01b3)
            })
        };
        let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
        // A version-4 layout (`xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`).
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.max_message_size, ByteSize::mb(25));
        let err = toml::from_str::<SendConnector>("address_spaces=[\"*\"]\nrequire_tsl = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("require_tsl") && err.contains("line 2"),
            "{err}"
        );
    }
}
