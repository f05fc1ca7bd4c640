//! Connector listings: on-premises `Get-SendConnector | Format-List` and
//! `Get-ReceiveConnector | Format-List`, Exchange Online `Get-InboundConnector | Format-List` and
//! `Get-OutboundConnector | Format-List` (also read from `ConvertTo-Json`).
//!
//! Each row type uses Exchange's property names (snake_case) and `Option` for everything a
//! listing may leave out (`fl Name,TlsCertificateName` shows two properties): `None` is "not shown
//! or empty", never a default that could pass for a setting. The on-prem model converts its send
//! connector into a [`SendConnectorRow`] for the writer; the readers fill every row type from real
//! output. Property orders are reconstructed from Exchange 2013-2019 / Exchange Online output and
//! documentation (see docs/formats.md); readers do not depend on the order.

use serde::{Deserialize, Serialize};

use super::format_list::{self, FlOptions, FlRecord};
use super::ps::{Parsed, PsObject, PsValue};
use super::ps_json::{self, JsonStyle};
use super::queue::LAB_RUNSPACE_ID;
use super::text::LineEnding;
use hybridlab_model::exchange::TlsAuthLevel;
use hybridlab_model::size::ByteSize;
use hybridlab_model::timespan::TimeSpan;

/// A send connector as `Get-SendConnector | Format-List` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendConnectorRow {
    /// `Name`: how the connector is named in listings and in the send log's connector-id column.
    pub name: String,
    /// `Identity`: the connector's unique name (for send connectors the same as `Name`).
    pub identity: Option<String>,
    /// `Guid`: the connector's object GUID, what `Get-Queue` shows as NextHopConnector.
    pub guid: Option<String>,
    /// `AddressSpaces`: the recipient domains the connector is chosen for, each `SMTP:domain;cost`
    /// (`*` for every domain).
    pub address_spaces: Vec<String>,
    /// `CloudServicesMailEnabled`: the connector keeps the hybrid headers
    /// (`X-MS-Exchange-Organization-*`) Exchange Online needs to treat the mail as internal; the
    /// Hybrid wizard sets it.
    pub cloud_services_mail_enabled: Option<bool>,
    /// `Comment`: free text an admin (or the Hybrid wizard) left on the connector.
    pub comment: Option<String>,
    /// `ConnectionInactivityTimeOut`: how long an idle session stays open before the transport
    /// drops it (10 minutes by default).
    pub connection_inactivity_timeout: Option<time::Duration>,
    /// `ConnectorType`: `Default`, or `XPremises` for a connector that carries hybrid mail to
    /// another organisation of the same tenant.
    pub connector_type: Option<String>,
    /// `DNSRoutingEnabled`: deliver by MX lookup of the recipient domain (false: through
    /// `SmartHosts`).
    pub dns_routing_enabled: Option<bool>,
    /// `DomainSecureEnabled`: mutual TLS with domain validation for the address spaces (Domain
    /// Security).
    pub domain_secure_enabled: Option<bool>,
    /// `Enabled`: a disabled connector routes nothing.
    pub enabled: Option<bool>,
    /// `ErrorPolicies`: which delivery errors the connector treats as transient (`Default`,
    /// `DowngradeDnsFailures`, `DowngradeCustomFailures`, `UpgradeCustomFailures`).
    pub error_policies: Option<String>,
    /// `ForceHELO`: greet with `HELO` instead of `EHLO` (no STARTTLS then).
    pub force_helo: Option<bool>,
    /// Fqdn (used in EHLO and, when TlsCertificateName is empty, to find the certificate).
    pub fqdn: Option<String>,
    /// `FrontendProxyEnabled`: outbound mail leaves through the Front End Transport service of a
    /// Client Access server, which then presents its own certificate.
    pub frontend_proxy_enabled: Option<bool>,
    /// `IgnoreSTARTTLS`: never start TLS even when the peer offers it (mail goes in clear text).
    pub ignore_starttls: Option<bool>,
    /// `IsScopedConnector`: only servers of the connector's Active Directory site use it.
    pub is_scoped_connector: Option<bool>,
    /// `MaxMessageSize`: larger messages are not sent through this connector.
    #[serde(default, with = "hybridlab_model::size::tagged")]
    pub max_message_size: Option<ByteSize>,
    /// `Port`: the destination TCP port (25 by default).
    pub port: Option<u16>,
    /// `ProtocolLoggingLevel`: `Verbose` when the sessions are written to the send protocol log,
    /// `None` when they are not (then no log shows them).
    pub protocol_logging_level: Option<String>,
    /// `RequireOorg`: the connector requires the `XOORG` organisation header on the mail it sends.
    pub require_oorg: Option<bool>,
    /// `RequireTLS`: refuse to send without TLS (a peer that does not offer STARTTLS makes the
    /// message queue).
    pub require_tls: Option<bool>,
    /// `SmartHostAuthMechanism`: how the connector authenticates to its smart hosts (`None`,
    /// `BasicAuth`, `ExchangeServer`, `ExternalAuthoritative`).
    pub smart_host_auth_mechanism: Option<String>,
    /// `SmartHosts`: the hosts mail is relayed to instead of the recipient domain's MX (for
    /// hybrid: the tenant's `*.mail.protection.outlook.com` host).
    pub smart_hosts: Vec<String>,
    /// `SmtpMaxMessagesPerConnection`: how many messages one session carries before a new one is
    /// opened.
    pub smtp_max_messages_per_connection: Option<u32>,
    /// `SourceIPAddress`: the local address sessions are opened from (`0.0.0.0`: any).
    pub source_ip_address: Option<String>,
    /// `SourceTransportServers`: the Mailbox or Edge servers that send through this connector.
    pub source_transport_servers: Vec<String>,
    /// `TlsAuthLevel`: how far the remote certificate is checked (`EncryptionOnly`,
    /// `CertificateValidation`, `DomainValidation`); `None` when the listing leaves it empty.
    pub tls_auth_level: Option<TlsAuthLevel>,
    /// `TlsCertificateName`: the certificate the connector presents, by issuer and subject
    /// (`<I>issuer<S>subject`), not by thumbprint.
    pub tls_certificate_name: Option<String>,
    /// `TlsDomain`: with `TlsAuthLevel DomainValidation`, the name the remote certificate must
    /// carry (`mail.protection.outlook.com` for Exchange Online).
    pub tls_domain: Option<String>,
    /// `UseExternalDNSServersEnabled`: resolve MX records with the transport's external DNS servers
    /// instead of the server's own.
    pub use_external_dns_servers_enabled: Option<bool>,
}

fn b(v: Option<bool>) -> PsValue {
    PsValue::opt_bool(v)
}
fn t(v: &Option<String>) -> PsValue {
    PsValue::opt_text(v.as_deref())
}

/// `Get-SendConnector | Format-List` records.
pub fn send_connector_records(rows: &[SendConnectorRow]) -> Vec<FlRecord> {
    rows.iter()
        .map(|r| {
            let identity = r.identity.clone().unwrap_or_else(|| r.name.clone());
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                ("AddressSpaces".into(), PsValue::list(&r.address_spaces)),
                ("AuthenticationCredential".into(), PsValue::Null),
                (
                    "CloudServicesMailEnabled".into(),
                    b(r.cloud_services_mail_enabled),
                ),
                ("Comment".into(), t(&r.comment)),
                ("ConnectedDomains".into(), PsValue::list::<&str>([])),
                (
                    "ConnectionInactivityTimeOut".into(),
                    PsValue::opt_text(
                        r.connection_inactivity_timeout
                            .and_then(timespan_text)
                            .as_deref(),
                    ),
                ),
                ("ConnectorType".into(), t(&r.connector_type)),
                ("DNSRoutingEnabled".into(), b(r.dns_routing_enabled)),
                ("DomainSecureEnabled".into(), b(r.domain_secure_enabled)),
                ("Enabled".into(), b(r.enabled)),
                ("ErrorPolicies".into(), t(&r.error_policies)),
                ("ForceHELO".into(), b(r.force_helo)),
                ("Fqdn".into(), t(&r.fqdn)),
                ("FrontendProxyEnabled".into(), b(r.frontend_proxy_enabled)),
                ("Guid".into(), t(&r.guid)),
                ("HomeMTA".into(), PsValue::text("Microsoft MTA")),
                ("Identity".into(), PsValue::text(identity)),
                ("IgnoreSTARTTLS".into(), b(r.ignore_starttls)),
                ("IsScopedConnector".into(), b(r.is_scoped_connector)),
                ("IsSmtpConnector".into(), PsValue::Bool(true)),
                (
                    "MaxMessageSize".into(),
                    PsValue::opt_text(r.max_message_size.map(ByteSize::display_listing).as_deref()),
                ),
                ("Name".into(), PsValue::text(&r.name)),
                ("Port".into(), PsValue::opt_num(r.port)),
                ("ProtocolLoggingLevel".into(), t(&r.protocol_logging_level)),
                ("RequireOorg".into(), b(r.require_oorg)),
                ("RequireTLS".into(), b(r.require_tls)),
                (
                    "SmartHostAuthMechanism".into(),
                    t(&r.smart_host_auth_mechanism),
                ),
                ("SmartHosts".into(), PsValue::list(&r.smart_hosts)),
                (
                    "SmartHostsString".into(),
                    PsValue::text(r.smart_hosts.join(",")),
                ),
                (
                    "SmtpMaxMessagesPerConnection".into(),
                    PsValue::opt_num(r.smtp_max_messages_per_connection),
                ),
                ("SourceIPAddress".into(), t(&r.source_ip_address)),
                (
                    "SourceTransportServers".into(),
                    PsValue::list(&r.source_transport_servers),
                ),
                (
                    "TlsAuthLevel".into(),
                    PsValue::opt_text(r.tls_auth_level.map(|l| l.as_str())),
                ),
                ("TlsCertificateName".into(), t(&r.tls_certificate_name)),
                ("TlsDomain".into(), t(&r.tls_domain)),
                (
                    "UseExternalDNSServersEnabled".into(),
                    b(r.use_external_dns_servers_enabled),
                ),
                ("IsValid".into(), PsValue::Bool(true)),
            ]
        })
        .collect()
}

/// `Get-SendConnector | Format-List` text.
pub fn write_send_connector_list(rows: &[SendConnectorRow], opts: &FlOptions) -> String {
    format_list::render(&send_connector_records(rows), opts)
}

/// `Get-SendConnector | ConvertTo-Json`.
pub fn write_send_connector_json(rows: &[SendConnectorRow], style: JsonStyle) -> String {
    ps_json::render(&send_connector_records(rows), style, LineEnding::CrLf)
}

fn name_of(obj: &PsObject) -> Option<String> {
    obj.text("Name").or_else(|| {
        obj.text("Identity")
            .map(|i| i.rsplit('\\').next().unwrap_or(&i).to_string())
    })
}

/// A send connector from a listed object; `None` without a Name or Identity.
pub fn send_connector_from_object(obj: &PsObject) -> Option<Parsed<SendConnectorRow>> {
    let row = SendConnectorRow {
        name: name_of(obj)?,
        identity: obj.text("Identity"),
        guid: obj.text("Guid"),
        address_spaces: obj.list("AddressSpaces"),
        cloud_services_mail_enabled: obj.bool("CloudServicesMailEnabled"),
        comment: obj.text("Comment"),
        connection_inactivity_timeout: obj
            .text("ConnectionInactivityTimeOut")
            .and_then(|s| timespan(&s)),
        connector_type: obj.text("ConnectorType"),
        dns_routing_enabled: obj.bool("DNSRoutingEnabled"),
        domain_secure_enabled: obj.bool("DomainSecureEnabled"),
        enabled: obj.bool("Enabled"),
        error_policies: obj.text("ErrorPolicies"),
        force_helo: obj.bool("ForceHELO"),
        fqdn: obj.text("Fqdn"),
        frontend_proxy_enabled: obj.bool("FrontendProxyEnabled"),
        ignore_starttls: obj.bool("IgnoreSTARTTLS"),
        is_scoped_connector: obj.bool("IsScopedConnector"),
        max_message_size: obj
            .text("MaxMessageSize")
            .and_then(|s| ByteSize::parse_listing(&s)),
        port: obj.u64("Port").and_then(|n| u16::try_from(n).ok()),
        protocol_logging_level: obj.text("ProtocolLoggingLevel"),
        require_oorg: obj.bool("RequireOorg"),
        require_tls: obj.bool("RequireTLS"),
        smart_host_auth_mechanism: obj.text("SmartHostAuthMechanism"),
        smart_hosts: {
            let l = obj.list("SmartHosts");
            if l.is_empty() {
                obj.text("SmartHostsString")
                    .map(|s| {
                        s.split(',')
                            .map(|h| h.trim().to_string())
                            .filter(|h| !h.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                l
            }
        },
        smtp_max_messages_per_connection: obj
            .u64("SmtpMaxMessagesPerConnection")
            .and_then(|n| u32::try_from(n).ok()),
        source_ip_address: obj.text("SourceIPAddress"),
        source_transport_servers: obj.list("SourceTransportServers"),
        tls_auth_level: obj.text("TlsAuthLevel").and_then(|s| s.parse().ok()),
        tls_certificate_name: obj.text("TlsCertificateName"),
        tls_domain: obj.text("TlsDomain"),
        use_external_dns_servers_enabled: obj.bool("UseExternalDNSServersEnabled"),
    };
    Some(Parsed::of(row, obj))
}

/// A receive connector as `Get-ReceiveConnector | Format-List` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReceiveConnectorRow {
    /// Name (`Default Frontend EXCH01`).
    pub name: String,
    /// Identity (`EXCH01\Default Frontend EXCH01`).
    pub identity: Option<String>,
    /// `Server`: the Exchange server the connector belongs to.
    pub server: Option<String>,
    /// `TransportRole`: the service that listens, `FrontendTransport` (port 25 from the Internet
    /// and Exchange Online) or `HubTransport`.
    pub transport_role: Option<String>,
    /// AuthMechanism flags (`Tls`, `Integrated`, `BasicAuth`...).
    pub auth_mechanism: Vec<String>,
    /// `Banner`: the text of the 220 greeting (empty: Exchange's default).
    pub banner: Option<String>,
    /// Bindings (`0.0.0.0:25`, `[::]:25`).
    pub bindings: Vec<String>,
    /// `Enabled`: a disabled connector accepts no session.
    pub enabled: Option<bool>,
    /// `Fqdn`: the name the connector gives in its greeting and EHLO reply, and the name its
    /// certificate is looked up by when `TlsCertificateName` is empty.
    pub fqdn: Option<String>,
    /// `TlsCertificateName`: the certificate offered for STARTTLS, by issuer and subject
    /// (`<I>issuer<S>subject`).
    pub tls_certificate_name: Option<String>,
    /// TlsDomainCapabilities (`mail.protection.outlook.com:AcceptCloudServicesMail`).
    pub tls_domain_capabilities: Vec<String>,
    /// `RequireTLS`: refuse mail from a session that did not start TLS.
    pub require_tls: Option<bool>,
    /// `PermissionGroups`: who may submit through the connector (`AnonymousUsers`,
    /// `ExchangeServers`, `Partners`...).
    pub permission_groups: Vec<String>,
    /// `RemoteIPRanges`: the client addresses the connector answers (the most specific range wins
    /// between connectors on the same binding).
    pub remote_ip_ranges: Vec<String>,
    /// `MaxMessageSize`: the largest message accepted (advertised in the EHLO `SIZE` keyword).
    #[serde(default, with = "hybridlab_model::size::tagged")]
    pub max_message_size: Option<ByteSize>,
    /// `ProtocolLoggingLevel`: `Verbose` when sessions are written to the receive protocol log.
    pub protocol_logging_level: Option<String>,
    /// `ConnectionTimeout`: the longest a session may last, busy or not.
    pub connection_timeout: Option<time::Duration>,
    /// `ConnectionInactivityTimeout`: how long an idle session stays open.
    pub connection_inactivity_timeout: Option<time::Duration>,
    /// `SuppressXAnonymousTls`: do not offer `X-ANONYMOUSTLS` (the TLS Exchange servers use among
    /// themselves).
    pub suppress_x_anonymous_tls: Option<bool>,
}

/// `Get-ReceiveConnector | Format-List` records (a subset of the real properties, in their order).
pub fn receive_connector_records(rows: &[ReceiveConnectorRow]) -> Vec<FlRecord> {
    rows.iter()
        .map(|r| {
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                (
                    "AuthMechanism".into(),
                    PsValue::text(r.auth_mechanism.join(", ")),
                ),
                ("Banner".into(), t(&r.banner)),
                ("Bindings".into(), PsValue::list(&r.bindings)),
                (
                    "SuppressXAnonymousTls".into(),
                    b(r.suppress_x_anonymous_tls),
                ),
                ("Fqdn".into(), t(&r.fqdn)),
                ("TlsCertificateName".into(), t(&r.tls_certificate_name)),
                ("Enabled".into(), b(r.enabled)),
                (
                    "ConnectionTimeout".into(),
                    PsValue::opt_text(r.connection_timeout.and_then(timespan_text).as_deref()),
                ),
                (
                    "ConnectionInactivityTimeout".into(),
                    PsValue::opt_text(
                        r.connection_inactivity_timeout
                            .and_then(timespan_text)
                            .as_deref(),
                    ),
                ),
                (
                    "MaxMessageSize".into(),
                    PsValue::opt_text(r.max_message_size.map(ByteSize::display_listing).as_deref()),
                ),
                (
                    "PermissionGroups".into(),
                    PsValue::text(r.permission_groups.join(", ")),
                ),
                ("ProtocolLoggingLevel".into(), t(&r.protocol_logging_level)),
                ("RemoteIPRanges".into(), PsValue::list(&r.remote_ip_ranges)),
                ("RequireTLS".into(), b(r.require_tls)),
                (
                    "TlsDomainCapabilities".into(),
                    PsValue::list(&r.tls_domain_capabilities),
                ),
                ("Server".into(), t(&r.server)),
                ("TransportRole".into(), t(&r.transport_role)),
                ("Name".into(), PsValue::text(&r.name)),
                (
                    "Identity".into(),
                    PsValue::text(r.identity.clone().unwrap_or_else(|| r.name.clone())),
                ),
                ("IsValid".into(), PsValue::Bool(true)),
            ]
        })
        .collect()
}

/// `Get-ReceiveConnector | Format-List` text.
pub fn write_receive_connector_list(rows: &[ReceiveConnectorRow], opts: &FlOptions) -> String {
    format_list::render(&receive_connector_records(rows), opts)
}

/// A receive connector from a listed object.
pub fn receive_connector_from_object(obj: &PsObject) -> Option<Parsed<ReceiveConnectorRow>> {
    let row = ReceiveConnectorRow {
        name: name_of(obj)?,
        identity: obj.text("Identity"),
        server: obj.text("Server"),
        transport_role: obj.text("TransportRole"),
        auth_mechanism: obj.flags("AuthMechanism"),
        banner: obj.text("Banner"),
        bindings: obj.list("Bindings"),
        enabled: obj.bool("Enabled"),
        fqdn: obj.text("Fqdn"),
        tls_certificate_name: obj.text("TlsCertificateName"),
        tls_domain_capabilities: obj.list("TlsDomainCapabilities"),
        require_tls: obj.bool("RequireTLS"),
        permission_groups: obj.flags("PermissionGroups"),
        remote_ip_ranges: obj.list("RemoteIPRanges"),
        max_message_size: obj
            .text("MaxMessageSize")
            .and_then(|s| ByteSize::parse_listing(&s)),
        protocol_logging_level: obj.text("ProtocolLoggingLevel"),
        connection_timeout: obj.text("ConnectionTimeout").and_then(|s| timespan(&s)),
        connection_inactivity_timeout: obj
            .text("ConnectionInactivityTimeout")
            .and_then(|s| timespan(&s)),
        suppress_x_anonymous_tls: obj.bool("SuppressXAnonymousTls"),
    };
    Some(Parsed::of(row, obj))
}

/// An Exchange Online inbound connector as `Get-InboundConnector | Format-List` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboundConnectorRow {
    /// Name (`Inbound from 3a5f...`).
    pub name: String,
    /// `Identity`: the connector's unique name in the tenant.
    pub identity: Option<String>,
    /// `Enabled`: a disabled connector attributes no mail.
    pub enabled: Option<bool>,
    /// `ConnectorType`: `OnPremises` for mail from the organisation's own servers (hybrid),
    /// `Partner` for mail from a partner organisation.
    pub connector_type: Option<String>,
    /// `ConnectorSource`: who created it (`Default`, `HybridWizard`, `Migrated`).
    pub connector_source: Option<String>,
    /// `Comment`: free text an admin (or the Hybrid wizard) left on the connector.
    pub comment: Option<String>,
    /// `SenderIPAddresses`: the addresses mail must come from to be attributed by IP.
    pub sender_ip_addresses: Vec<String>,
    /// `SenderDomains`: the sender domains the connector applies to (`smtp:*;1`: all).
    pub sender_domains: Vec<String>,
    /// `AssociatedAcceptedDomains`: the accepted domains the connector is limited to (empty: all).
    pub associated_accepted_domains: Vec<String>,
    /// `RequireTls`: mail attributed to the connector must arrive over TLS.
    pub require_tls: Option<bool>,
    /// `RestrictDomainsToIPAddresses`: reject mail from the sender domains that does not come from
    /// `SenderIPAddresses`.
    pub restrict_domains_to_ip_addresses: Option<bool>,
    /// `RestrictDomainsToCertificate`: reject mail from the sender domains whose TLS certificate
    /// does not match `TlsSenderCertificateName`.
    pub restrict_domains_to_certificate: Option<bool>,
    /// `CloudServicesMailEnabled`: keep the hybrid headers of on-premises mail (the mail counts as
    /// internal to the organisation).
    pub cloud_services_mail_enabled: Option<bool>,
    /// `TreatMessagesAsInternal`: treat every message through the connector as internal (without
    /// the hybrid headers).
    pub treat_messages_as_internal: Option<bool>,
    /// `TlsSenderCertificateName`: the name (`mail.contoso.com`, `*.contoso.com`) the certificate
    /// the on-premises server presents must carry for its mail to be attributed to this connector.
    pub tls_sender_certificate_name: Option<String>,
}

/// `Get-InboundConnector | Format-List` records.
pub fn inbound_connector_records(rows: &[InboundConnectorRow]) -> Vec<FlRecord> {
    rows.iter()
        .map(|r| {
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                ("Enabled".into(), b(r.enabled)),
                ("ConnectorType".into(), t(&r.connector_type)),
                ("ConnectorSource".into(), t(&r.connector_source)),
                ("Comment".into(), t(&r.comment)),
                (
                    "SenderIPAddresses".into(),
                    PsValue::list(&r.sender_ip_addresses),
                ),
                ("SenderDomains".into(), PsValue::list(&r.sender_domains)),
                ("TrustedOrganizations".into(), PsValue::list::<&str>([])),
                (
                    "AssociatedAcceptedDomains".into(),
                    PsValue::list(&r.associated_accepted_domains),
                ),
                ("RequireTls".into(), b(r.require_tls)),
                (
                    "RestrictDomainsToIPAddresses".into(),
                    b(r.restrict_domains_to_ip_addresses),
                ),
                (
                    "RestrictDomainsToCertificate".into(),
                    b(r.restrict_domains_to_certificate),
                ),
                (
                    "CloudServicesMailEnabled".into(),
                    b(r.cloud_services_mail_enabled),
                ),
                (
                    "TreatMessagesAsInternal".into(),
                    b(r.treat_messages_as_internal),
                ),
                (
                    "TlsSenderCertificateName".into(),
                    t(&r.tls_sender_certificate_name),
                ),
                ("EFTestMode".into(), PsValue::Bool(false)),
                ("ScanAndDropRecipients".into(), PsValue::list::<&str>([])),
                ("EFSkipLastIP".into(), PsValue::Bool(false)),
                ("EFSkipIPs".into(), PsValue::list::<&str>([])),
                ("EFSkipMailGateway".into(), PsValue::list::<&str>([])),
                ("EFUsers".into(), PsValue::list::<&str>([])),
                ("AdminDisplayName".into(), PsValue::Null),
                ("Name".into(), PsValue::text(&r.name)),
                (
                    "Identity".into(),
                    PsValue::text(r.identity.clone().unwrap_or_else(|| r.name.clone())),
                ),
                ("IsValid".into(), PsValue::Bool(true)),
            ]
        })
        .collect()
}

impl From<&hybridlab_model::exo::InboundConnector> for InboundConnectorRow {
    /// What `Get-InboundConnector` shows for a connector of the mock's (scenario's) `[eop]`
    /// tables: SenderDomains as `smtp:domain;1`, a /32 range as the bare address, ConnectorSource
    /// `HybridWizard` for a hybrid (CloudServicesMailEnabled) OnPremises connector.
    fn from(c: &hybridlab_model::exo::InboundConnector) -> Self {
        use hybridlab_model::exo::ConnectorType;
        let on_prem = c.connector_type == ConnectorType::OnPremises;
        Self {
            name: c.name.clone(),
            identity: Some(c.name.clone()),
            enabled: Some(c.enabled),
            connector_type: Some(if on_prem { "OnPremises" } else { "Partner" }.to_string()),
            connector_source: Some(
                if on_prem && c.cloud_services_mail_enabled {
                    "HybridWizard"
                } else {
                    "Default"
                }
                .to_string(),
            ),
            comment: None,
            sender_ip_addresses: c
                .sender_ip_addresses
                .iter()
                .map(|r| {
                    if r.0.prefix_len() == 32 {
                        r.0.addr().to_string()
                    } else {
                        r.0.to_string()
                    }
                })
                .collect(),
            sender_domains: c
                .sender_domains
                .iter()
                .map(|d| format!("smtp:{};1", d.0))
                .collect(),
            associated_accepted_domains: Vec::new(),
            require_tls: Some(c.require_tls),
            restrict_domains_to_ip_addresses: Some(c.restrict_domains_to_ip_addresses),
            restrict_domains_to_certificate: Some(c.restrict_domains_to_certificate),
            cloud_services_mail_enabled: Some(c.cloud_services_mail_enabled),
            treat_messages_as_internal: Some(c.treat_messages_as_internal),
            tls_sender_certificate_name: c.tls_sender_certificate_name.clone(),
        }
    }
}

/// `Get-InboundConnector | Format-List` text.
pub fn write_inbound_connector_list(rows: &[InboundConnectorRow], opts: &FlOptions) -> String {
    format_list::render(&inbound_connector_records(rows), opts)
}

/// An inbound connector from a listed object.
pub fn inbound_connector_from_object(obj: &PsObject) -> Option<Parsed<InboundConnectorRow>> {
    let row = InboundConnectorRow {
        name: name_of(obj)?,
        identity: obj.text("Identity"),
        enabled: obj.bool("Enabled"),
        connector_type: obj.text("ConnectorType"),
        connector_source: obj.text("ConnectorSource"),
        comment: obj.text("Comment"),
        sender_ip_addresses: obj.list("SenderIPAddresses"),
        sender_domains: obj.list("SenderDomains"),
        associated_accepted_domains: obj.list("AssociatedAcceptedDomains"),
        require_tls: obj.bool("RequireTls"),
        restrict_domains_to_ip_addresses: obj.bool("RestrictDomainsToIPAddresses"),
        restrict_domains_to_certificate: obj.bool("RestrictDomainsToCertificate"),
        cloud_services_mail_enabled: obj.bool("CloudServicesMailEnabled"),
        treat_messages_as_internal: obj.bool("TreatMessagesAsInternal"),
        tls_sender_certificate_name: obj.text("TlsSenderCertificateName"),
    };
    Some(Parsed::of(row, obj))
}

/// An Exchange Online outbound connector as `Get-OutboundConnector | Format-List` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboundConnectorRow {
    /// Name (`Outbound to 3a5f...`).
    pub name: String,
    /// `Identity`: the connector's unique name in the tenant.
    pub identity: Option<String>,
    /// `Enabled`: a disabled connector routes nothing.
    pub enabled: Option<bool>,
    /// `UseMXRecord`: deliver by MX lookup (false: through `SmartHosts`, the on-premises servers).
    pub use_mx_record: Option<bool>,
    /// `Comment`: free text an admin (or the Hybrid wizard) left on the connector.
    pub comment: Option<String>,
    /// `ConnectorType`: `OnPremises` for mail to the organisation's own servers, `Partner`
    /// otherwise.
    pub connector_type: Option<String>,
    /// `ConnectorSource`: who created it (`Default`, `HybridWizard`, `Migrated`).
    pub connector_source: Option<String>,
    /// `RecipientDomains`: the recipient domains routed through the connector.
    pub recipient_domains: Vec<String>,
    /// `SmartHosts`: the on-premises hosts mail is delivered to.
    pub smart_hosts: Vec<String>,
    /// `TlsDomain`: with `TlsSettings DomainValidation`, the name the on-premises certificate must
    /// carry.
    pub tls_domain: Option<String>,
    /// TlsSettings (`None` when `$null`, opportunistic TLS).
    pub tls_settings: Option<TlsAuthLevel>,
    /// `IsTransportRuleScoped`: only mail a transport rule sends here uses the connector.
    pub is_transport_rule_scoped: Option<bool>,
    /// `RouteAllMessagesViaOnPremises`: centralized mail transport: Internet mail from the tenant
    /// goes through the on-premises servers.
    pub route_all_messages_via_on_premises: Option<bool>,
    /// `CloudServicesMailEnabled`: keep the hybrid headers on mail sent to on-premises.
    pub cloud_services_mail_enabled: Option<bool>,
    /// `AllAcceptedDomains`: the connector applies to every accepted domain.
    pub all_accepted_domains: Option<bool>,
    /// `TestMode`: the connector is being validated, not used for mail.
    pub test_mode: Option<bool>,
    /// `IsValidated`: `Validate-OutboundConnector` succeeded for it.
    pub is_validated: Option<bool>,
}

/// `Get-OutboundConnector | Format-List` records.
pub fn outbound_connector_records(rows: &[OutboundConnectorRow]) -> Vec<FlRecord> {
    rows.iter()
        .map(|r| {
            vec![
                ("RunspaceId".into(), PsValue::text(LAB_RUNSPACE_ID)),
                ("Enabled".into(), b(r.enabled)),
                ("UseMXRecord".into(), b(r.use_mx_record)),
                ("Comment".into(), t(&r.comment)),
                ("ConnectorType".into(), t(&r.connector_type)),
                ("ConnectorSource".into(), t(&r.connector_source)),
                (
                    "RecipientDomains".into(),
                    PsValue::list(&r.recipient_domains),
                ),
                ("SmartHosts".into(), PsValue::list(&r.smart_hosts)),
                ("TlsDomain".into(), t(&r.tls_domain)),
                (
                    "TlsSettings".into(),
                    PsValue::opt_text(r.tls_settings.map(|l| l.as_str())),
                ),
                (
                    "IsTransportRuleScoped".into(),
                    b(r.is_transport_rule_scoped),
                ),
                (
                    "RouteAllMessagesViaOnPremises".into(),
                    b(r.route_all_messages_via_on_premises),
                ),
                (
                    "CloudServicesMailEnabled".into(),
                    b(r.cloud_services_mail_enabled),
                ),
                ("AllAcceptedDomains".into(), b(r.all_accepted_domains)),
                ("SenderRewritingEnabled".into(), PsValue::Bool(false)),
                ("TestMode".into(), b(r.test_mode)),
                (
                    "LinkForModifiedConnector".into(),
                    PsValue::text("00000000-0000-0000-0000-000000000000"),
                ),
                ("ValidationRecipients".into(), PsValue::list::<&str>([])),
                ("IsValidated".into(), b(r.is_validated)),
                ("AdminDisplayName".into(), PsValue::Null),
                ("Name".into(), PsValue::text(&r.name)),
                (
                    "Identity".into(),
                    PsValue::text(r.identity.clone().unwrap_or_else(|| r.name.clone())),
                ),
                ("IsValid".into(), PsValue::Bool(true)),
            ]
        })
        .collect()
}

/// `Get-OutboundConnector | Format-List` text.
pub fn write_outbound_connector_list(rows: &[OutboundConnectorRow], opts: &FlOptions) -> String {
    format_list::render(&outbound_connector_records(rows), opts)
}

/// An outbound connector from a listed object.
pub fn outbound_connector_from_object(obj: &PsObject) -> Option<Parsed<OutboundConnectorRow>> {
    let row = OutboundConnectorRow {
        name: name_of(obj)?,
        identity: obj.text("Identity"),
        enabled: obj.bool("Enabled"),
        use_mx_record: obj.bool("UseMXRecord"),
        comment: obj.text("Comment"),
        connector_type: obj.text("ConnectorType"),
        connector_source: obj.text("ConnectorSource"),
        recipient_domains: obj.list("RecipientDomains"),
        smart_hosts: obj.list("SmartHosts"),
        tls_domain: obj.text("TlsDomain"),
        tls_settings: obj.text("TlsSettings").and_then(|s| s.parse().ok()),
        is_transport_rule_scoped: obj.bool("IsTransportRuleScoped"),
        route_all_messages_via_on_premises: obj.bool("RouteAllMessagesViaOnPremises"),
        cloud_services_mail_enabled: obj.bool("CloudServicesMailEnabled"),
        all_accepted_domains: obj.bool("AllAcceptedDomains"),
        test_mode: obj.bool("TestMode"),
        is_validated: obj.bool("IsValidated"),
    };
    Some(Parsed::of(row, obj))
}

/// Which connector cmdlet printed this object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// `Get-SendConnector`.
    Send,
    /// `Get-ReceiveConnector`.
    Receive,
    /// `Get-InboundConnector` (Exchange Online).
    Inbound,
    /// `Get-OutboundConnector` (Exchange Online).
    Outbound,
}

/// Classifies a listed object as a connector, by the properties only that cmdlet prints.
pub fn classify(obj: &PsObject) -> Option<ConnectorKind> {
    let any = |keys: &[&str]| keys.iter().any(|k| obj.has(k));
    if any(&[
        "RecipientDomains",
        "TlsSettings",
        "UseMXRecord",
        "RouteAllMessagesViaOnPremises",
    ]) {
        return Some(ConnectorKind::Outbound);
    }
    if any(&[
        "SenderIPAddresses",
        "TlsSenderCertificateName",
        "RestrictDomainsToCertificate",
        "RestrictDomainsToIPAddresses",
        "SenderDomains",
    ]) {
        return Some(ConnectorKind::Inbound);
    }
    if any(&[
        "Bindings",
        "RemoteIPRanges",
        "PermissionGroups",
        "TlsDomainCapabilities",
        "AuthMechanism",
    ]) {
        return Some(ConnectorKind::Receive);
    }
    if any(&[
        "AddressSpaces",
        "SmartHosts",
        "DNSRoutingEnabled",
        "SmartHostsString",
        "SmartHostAuthMechanism",
        "SourceTransportServers",
        "IsSmtpConnector",
        "TlsAuthLevel",
        "IgnoreSTARTTLS",
        "ForceHELO",
    ]) {
        return Some(ConnectorKind::Send);
    }
    None
}
/// A listed TimeSpan (`00:10:00`, `2.00:00:00`), read by the model's one TimeSpan parser.
fn timespan(s: &str) -> Option<time::Duration> {
    TimeSpan::from_dotnet(s).ok().map(TimeSpan::to_time)
}

/// A duration as a listing prints it (the model's TimeSpan rendering); nothing when negative.
fn timespan_text(d: time::Duration) -> Option<String> {
    TimeSpan::from_time(d).map(|t| t.to_string())
}
