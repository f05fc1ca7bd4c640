//! `mock-eop deliver`: one message delivered as Exchange Online would, through one outbound
//! connector of an `[eop]` configuration, to a server given as `HOST:PORT` (a real Exchange in a
//! lab, Postfix, the lab's receive side). The binary parses the arguments and prints; this
//! module chooses the connector, applies the overrides and runs the queue.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::delivery::DeliveryRecord;
use hybridlab_model::exo::{
    OutboundConnector, OutboundTlsSettings, RecipientDomain, SmartHost, Tenant,
};
use hybridlab_model::timespan::TimeSpan;
use rustls::pki_types::CertificateDer;

use super::driver::{DialerError, TcpDialer};
use super::queue::{ExoQueue, NewMessage, run_until};
use super::routing::{LiteralResolver, Resolver, Route};
use super::tls::{ExoIdentity, ExoTls, ExoTlsError};
use crate::config::EopConfig;

/// The connector the embedded contoso configuration gets when it has none: what HCW creates
/// for contoso (smart host `mail.contoso.com`, DomainValidation with TlsDomain
/// `mail.contoso.com`, recipient domain `contoso.com`).
pub fn default_outbound_connector() -> OutboundConnector {
    OutboundConnector {
        name: "Outbound to 2f6c8a4e-9b1d-4c3e-8f5a-7d2e1b0c9a83".into(),
        smart_hosts: vec![SmartHost::Name("mail.contoso.com".into())],
        tls_settings: OutboundTlsSettings::DomainValidation,
        tls_domain: Some("mail.contoso.com".into()),
        recipient_domains: vec![RecipientDomain("contoso.com".into())],
        ..OutboundConnector::default()
    }
}

/// Why `deliver` cannot start (a usage error: exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// `--to` is not `HOST:PORT` with a literal address or `localhost`.
    #[error(
        "--to {0}: expected HOST:PORT with an IP address or localhost (names are not resolved)"
    )]
    Target(String),
    /// No tenant has an outbound connector (or the named one).
    #[error("{0}")]
    Connector(String),
    /// The TLS setup failed.
    #[error(transparent)]
    Tls(#[from] ExoTlsError),
    /// The source address is not loopback.
    #[error(transparent)]
    Dialer(#[from] DialerError),
    /// The resulting connector is not valid.
    #[error("the outbound connector after the overrides: {0}")]
    Invalid(String),
}

/// What to deliver and how.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// The server, `HOST:PORT` (HOST an address or `localhost`).
    pub to: String,
    /// The connector's name; default: the only or first OnPremises outbound connector.
    pub connector: Option<String>,
    /// Overrides TlsDomain (and sets DomainValidation).
    pub tls_domain: Option<String>,
    /// Trust anchors for CertificateValidation and DomainValidation.
    pub trust: Vec<CertificateDer<'static>>,
    /// Envelope sender.
    pub from: String,
    /// Recipient.
    pub rcpt: String,
    /// Subject.
    pub subject: String,
    /// Keep retrying this long (the expiry); `None`: one attempt.
    pub retry_for: Option<TimeSpan>,
    /// Overrides the retry interval (and the first retry).
    pub retry_interval: Option<TimeSpan>,
    /// Bind this loopback source address.
    pub source_ip: Option<IpAddr>,
    /// Seed for GUIDs and random target order.
    pub seed: u64,
}

/// The tenant and connector `deliver` uses, after the overrides.
pub fn choose(
    config: &EopConfig,
    opts: &DeliverOptions,
) -> Result<(Tenant, OutboundConnector, SocketAddr), DeliverError> {
    let (host, addr) = parse_to(&opts.to)?;
    let (tenant, mut connector) = pick(config, opts.connector.as_deref())?;
    connector.smart_hosts = vec![host];
    connector.use_mx_record = false;
    if let Some(d) = &opts.tls_domain {
        connector.tls_settings = OutboundTlsSettings::DomainValidation;
        connector.tls_domain = Some(d.clone());
    }
    connector
        .validate()
        .map_err(|e| DeliverError::Invalid(e.to_string()))?;
    Ok((tenant, connector, addr))
}

fn parse_to(to: &str) -> Result<(SmartHost, SocketAddr), DeliverError> {
    let bad = || DeliverError::Target(to.to_string());
    let (host, port) = to.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = *LiteralResolver
        .resolve(host)
        .map_err(|_| bad())?
        .first()
        .ok_or_else(bad)?;
    let h = host.trim_matches(['[', ']']);
    let smart = if h.parse::<IpAddr>().is_ok() {
        SmartHost::Ip(ip)
    } else {
        SmartHost::Name(h.to_ascii_lowercase())
    };
    Ok((smart, SocketAddr::new(ip, port)))
}

fn pick(
    config: &EopConfig,
    name: Option<&str>,
) -> Result<(Tenant, OutboundConnector), DeliverError> {
    let mut tenants = config.tenants.clone();
    if let [only] = tenants.as_mut_slice()
        && only.outbound_connectors.is_empty()
        && name.is_none()
    {
        only.outbound_connectors.push(default_outbound_connector());
    }
    let found = tenants.iter().find_map(|t| {
        let c = match name {
            Some(n) => t
                .outbound_connectors
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(n)),
            None => t
                .outbound_connectors
                .iter()
                .find(|c| c.connector_type == hybridlab_model::exo::ConnectorType::OnPremises)
                .or_else(|| t.outbound_connectors.first()),
        };
        c.map(|c| (t.clone(), c.clone()))
    });
    found.ok_or_else(|| {
        DeliverError::Connector(match name {
            Some(n) => format!("no outbound connector named {n:?} in the configuration"),
            None => "the configuration has no outbound connector".into(),
        })
    })
}

/// Delivers one message: one attempt, or retries for `retry_for` (real time unless the runtime's
/// clock is paused). Returns the message's record and EOP's client identity.
pub async fn deliver(
    config: &EopConfig,
    opts: &DeliverOptions,
    clock: &LabClock,
) -> Result<(DeliveryRecord, Arc<ExoIdentity>), DeliverError> {
    let (tenant, connector, addr) = choose(config, opts)?;
    let dialer = TcpDialer::new(opts.source_ip)?;
    let identity = Arc::new(ExoIdentity::generate(clock.epoch())?);
    let mut settings = config.delivery.clone();
    if let Some(r) = opts.retry_for {
        settings.expiry = r;
    }
    if let Some(i) = opts.retry_interval {
        settings.retry_interval = i;
        settings.first_retry = i;
    }
    let tls = ExoTls::new(identity.clone(), &opts.trust, settings.tls13)?;
    let mut route = Route::through(&tenant, connector);
    route.port = addr.port();
    let mut queue = ExoQueue::new(settings, opts.seed, clock.now());
    let key = queue.submit(
        route,
        NewMessage {
            from: opts.from.clone(),
            to: opts.rcpt.clone(),
            subject: opts.subject.clone(),
            body: "This message was sent by mock-eop deliver, as Exchange Online would send it.\n"
                .into(),
        },
        clock.now(),
    );
    let until = match opts.retry_for {
        Some(_) => None,
        None => Some(clock.now()),
    };
    run_until(&mut queue, &dialer, &LiteralResolver, &tls, clock, until).await;
    let record = queue
        .record(key)
        .cloned()
        .ok_or_else(|| DeliverError::Connector("the message was lost".into()))?;
    Ok((record, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(to: &str) -> DeliverOptions {
        DeliverOptions {
            to: to.into(),
            connector: None,
            tls_domain: None,
            trust: Vec::new(),
            from: "alice@contoso.com".into(),
            rcpt: "bob@contoso.com".into(),
            subject: "s".into(),
            retry_for: None,
            retry_interval: None,
            source_ip: None,
            seed: 1,
        }
    }

    #[test]
    fn contoso_gets_the_hcw_connector_and_overrides_apply() {
        let cfg = EopConfig::contoso();
        let (t, c, addr) = choose(&cfg, &opts("127.0.0.1:2525")).unwrap();
        assert_eq!(t.name, "contoso");
        assert_eq!(c.tls_domain.as_deref(), Some("mail.contoso.com"));
        assert_eq!(
            c.smart_hosts,
            vec![SmartHost::Ip("127.0.0.1".parse().unwrap())]
        );
        assert_eq!(addr.port(), 2525);
        let mut o = opts("localhost:25");
        o.tls_domain = Some("*.contoso.com".into());
        let (_, c, _) = choose(&cfg, &o).unwrap();
        assert_eq!(c.tls_domain.as_deref(), Some("*.contoso.com"));
        assert_eq!(c.smart_hosts, vec![SmartHost::Name("localhost".into())]);
        assert!(matches!(
            choose(&cfg, &opts("mail.contoso.com:25")),
            Err(DeliverError::Target(_))
        ));
        assert!(matches!(
            choose(&cfg, &opts("127.0.0.1")),
            Err(DeliverError::Target(_))
        ));
        let mut named = opts("127.0.0.1:25");
        named.connector = Some("nope".into());
        assert!(matches!(
            choose(&cfg, &named),
            Err(DeliverError::Connector(_))
        ));
        assert!(matches!(
            choose(&EopConfig::default(), &opts("127.0.0.1:25")),
            Err(DeliverError::Connector(_))
        ));
    }
}
