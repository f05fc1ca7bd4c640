//! The send connector as `Get-SendConnector | Format-List` shows it.

use hybridlab_artefacts::connectors::SendConnectorRow;

use super::{ConnectorType, ProtocolLoggingLevel, SendConnector, SmartHostAuthMechanism};
use crate::server::ServerIdentity;

impl SendConnector {
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
            guid: Some(self.guid()),
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
            max_message_size: Some(self.max_message_size),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_model::exchange::TlsAuthLevel;
    use hybridlab_model::size::ByteSize;

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
        c.max_message_size = ByteSize::Unlimited;
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
}
