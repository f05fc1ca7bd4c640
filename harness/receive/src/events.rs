//! The Application-log events of the receive side, as plain [`WindowsEvent`] records: 12014 (no
//! STARTTLS certificate), 12016 (STARTTLS certificate expired), 12018 (expires soon), 11022 (the
//! client certificate of a `TlsDomainCapabilities` domain failed validation), 15004 and 15006
//! (back pressure). Texts are those public posts and Microsoft's event pages quote; where only a
//! template is known the lab fills it and says so.

use hybridlab_model::event::{EventLevel, WindowsEvent};
use time::OffsetDateTime;

use super::connector::TransportRole;

/// Where an event is logged: the service, the computer and the time.
#[derive(Debug, Clone)]
pub struct EventOrigin {
    /// `MSExchangeFrontEndTransport` or `MSExchangeTransport`.
    pub source: String,
    /// The computer's FQDN.
    pub machine: String,
    /// When.
    pub time: OffsetDateTime,
}

impl EventOrigin {
    /// The provider name of a connector's service: Front End Transport connectors log as
    /// `MSExchangeFrontEndTransport`, Hub and Edge ones as `MSExchangeTransport`.
    pub fn for_role(role: TransportRole, machine: &str, time: OffsetDateTime) -> Self {
        let source = match role {
            TransportRole::FrontendTransport => "MSExchangeFrontEndTransport",
            TransportRole::HubTransport => "MSExchangeTransport",
        };
        Self {
            source: source.into(),
            machine: machine.into(),
            time,
        }
    }

    fn event(
        &self,
        id: u32,
        level: EventLevel,
        category: (&str, u16),
        name: &str,
        message: String,
        strings: Vec<String>,
    ) -> WindowsEvent {
        WindowsEvent {
            source: self.source.clone(),
            id,
            level,
            category: category.0.into(),
            category_number: category.1,
            symbolic_name: name.into(),
            time: self.time,
            machine: self.machine.clone(),
            message,
            replacement_strings: strings,
        }
    }
}

// Category numbers are the lab's \[U\]: Exchange's message files number them per service.
const TRANSPORT_SERVICE: (&str, u16) = ("TransportService", 1);
const MESSAGE_SECURITY: (&str, u16) = ("MessageSecurity", 12);
const RESOURCE_MANAGER: (&str, u16) = ("ResourceManager", 15);

/// Event 12014 `CannotLoadSTARTTLSCertificateFromStore` (Error): no certificate for `what` (the
/// FQDN, or the `<I>...<S>...` identifier of `TlsCertificateName`); STARTTLS is not offered on
/// `connector`.
pub fn cannot_load_starttls_certificate(
    origin: &EventOrigin,
    what: &str,
    connector: &str,
    fqdn: &str,
) -> WindowsEvent {
    origin.event(
        12014,
        EventLevel::Error,
        TRANSPORT_SERVICE,
        "CannotLoadSTARTTLSCertificateFromStore",
        format!(
            "Microsoft Exchange could not find a certificate that contains the domain name {what} in the personal store on the local computer. Therefore, it is unable to support the STARTTLS SMTP verb for the connector {connector} with a FQDN parameter of {fqdn}. If the connector's FQDN is not specified, the computer's FQDN is used. Verify the connector configuration and the installed certificates to make sure that there is a certificate with a domain name for that FQDN. If this certificate exists, run Enable-ExchangeCertificate -Services SMTP to make sure that the Microsoft Exchange Transport service has access to the certificate key."
        ),
        vec![what.into(), connector.into(), fqdn.into()],
    )
}

/// Event 12016 `STARTTLSCertificateExpired` (Error): the certificate found for `fqdn` expired on
/// `not_after` (the certificate is still presented).
pub fn starttls_certificate_expired(
    origin: &EventOrigin,
    fqdn: &str,
    not_after: &str,
) -> WindowsEvent {
    origin.event(
        12016,
        EventLevel::Error,
        TRANSPORT_SERVICE,
        "STARTTLSCertificateExpired",
        format!(
            "There is no valid SMTP Transport Layer Security (TLS) certificate for the FQDN of {fqdn}. The existing certificate for that FQDN has expired. The expiration date is {not_after}."
        ),
        vec![fqdn.into(), not_after.into()],
    )
}

/// Event 12018 `STARTTLSCertificateExpiresSoon` (Warning).
pub fn starttls_certificate_expires_soon(
    origin: &EventOrigin,
    subject: &str,
    thumbprint: &str,
    hours: i64,
) -> WindowsEvent {
    origin.event(
        12018,
        EventLevel::Warning,
        TRANSPORT_SERVICE,
        "STARTTLSCertificateExpiresSoon",
        format!(
            "The STARTTLS certificate will expire soon: subject: {subject}, thumbprint: {thumbprint}, hours remaining: {hours}. Run the New-ExchangeCertificate cmdlet to create a new certificate."
        ),
        vec![subject.into(), thumbprint.into(), hours.to_string()],
    )
}

/// Event 11022 `TlsDomainCapabilitiesCertificateValidationFailure` (Error): a client certificate
/// of a `TlsDomainCapabilities` domain did not validate, so no capability is granted \[U: text
/// reconstructed from the tuple's four strings\].
pub fn tls_domain_capabilities_validation_failure(
    origin: &EventOrigin,
    capabilities: &str,
    connector: &str,
    status: &str,
    domain: &str,
) -> WindowsEvent {
    origin.event(
        11022,
        EventLevel::Error,
        MESSAGE_SECURITY,
        "TlsDomainCapabilitiesCertificateValidationFailure",
        format!(
            "The TLS domain capabilities '{capabilities}' were not granted on the receive connector {connector} because the certificate presented for domain {domain} failed validation with status '{status}'."
        ),
        vec![
            capabilities.into(),
            connector.into(),
            status.into(),
            domain.into(),
        ],
    )
}

/// Event 15004 `ResourceUtilizationUp` (Warning): pressure on `resource` rose from `from` to `to`;
/// the body lists the resources under pressure and the components back pressure disabled.
pub fn resource_pressure_increased(
    origin: &EventOrigin,
    from: &str,
    to: &str,
    resource_line: &str,
) -> WindowsEvent {
    let detail = format!(
        "\r\n\r\nThe following resources are under pressure:\r\n{resource_line}\r\n\r\nThe following components are disabled due to back pressure:\r\nInbound mail submission from Hub Transport servers\r\nInbound mail submission from the Internet\r\nMail submission from Pickup directory\r\nMail submission from Replay directory\r\nMail submission from Mailbox server\r\nMail delivery to remote domains\r\nContent aggregation\r\nMail resubmission from the Message Resubmission component.\r\nMail resubmission from the Shadow Redundancy Component\r\n\r\nThe following resources are in normal state:\r\nPrivate bytes\r\nSystem memory\r\nVersion buckets\r\nJet Sessions\r\nCheckpoint Depth"
    );
    origin.event(
        15004,
        EventLevel::Warning,
        RESOURCE_MANAGER,
        "ResourceUtilizationUp",
        format!("The resource pressure increased from {from} to {to}.{detail}"),
        vec![from.into(), to.into(), detail],
    )
}

/// Event 15006 (Error): submissions are refused because the free disk space of `path` dropped
/// below the threshold (the text public posts quote, its missing space after the first period
/// included).
pub fn disk_space_back_pressure(origin: &EventOrigin, path: &str) -> WindowsEvent {
    let message = format!(
        "Microsoft Exchange Transport is rejecting message submissions because the available disk space has dropped below the configured threshold.The following resources are under pressure:\r\nUsed disk space (\"{path}\")\r\nOverall Resources\r\n\r\nThe following components are disabled due to back pressure:\r\nInbound mail submission from the Internet\r\nMail submission from Pickup directory\r\nMail submission from Replay directory\r\n\r\nThe following resources are in normal state:\r\nPrivate bytes\r\nSystem memory\r\nVersion buckets[{path}\\mail.que]\r\nJet Sessions[{path}\\mail.que]\r\nCheckpoint Depth[{path}\\mail.que]\r\nQueue database and disk space (\"{path}\\mail.que\")"
    );
    origin.event(
        15006,
        EventLevel::Error,
        RESOURCE_MANAGER,
        "DiskSpaceLow",
        message,
        vec![path.into()],
    )
}

/// `5/2/2019 6:30:01 AM`: the en-US date and time the event texts carry.
pub fn us_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (h, ampm) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {h}:{:02}:{:02} {ampm}",
        u8::from(t.month()),
        t.day(),
        t.year(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_texts() {
        let o = EventOrigin::for_role(
            TransportRole::FrontendTransport,
            "EXCH01.contoso.com",
            time::macros::datetime!(2019-05-02 06:30 UTC),
        );
        let e = cannot_load_starttls_certificate(
            &o,
            "mail.contoso.com",
            "Default Frontend EXCH01",
            "mail.contoso.com",
        );
        assert_eq!(e.source, "MSExchangeFrontEndTransport");
        assert!(e.message.starts_with(
            "Microsoft Exchange could not find a certificate that contains the domain name mail.contoso.com"
        ));
        assert_eq!(e.instance_id(), 3_221_237_486);
        let p = disk_space_back_pressure(&o, "C:\\Queue");
        assert!(p.message.contains("threshold.The following"));
        let up = resource_pressure_increased(&o, "Medium", "High", "Used disk space");
        assert!(
            up.message
                .starts_with("The resource pressure increased from Medium to High.")
        );
    }
}
