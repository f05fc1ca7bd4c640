//! Exchange Online as a sender: delivery to on-premises through an outbound connector
//! (`[[eop.tenants.outbound_connectors]]`, [`hybridlab_model::exo::OutboundConnector`]), with
//! Exchange Online's retries and message trace, on the lab clock.
//!
//! # Layout
//! - [`client`]: the sans-IO SMTP client core ([`ExoClient`], a
//!   [`hybridlab_model::core::ProtocolCore`]): one session, one message, TLS per TlsSettings,
//!   the outcome as data.
//! - [`led`]: Exchange Online's LEDs (`450 4.4.316 ...`, `450 4.4.317 ... [Message=...]`, the
//!   expiry texts).
//! - [`reply`]: reply framing and EHLO capabilities.
//! - [`message`]: the message and its cross-premises headers.
//! - [`tls`]: EOP's client certificate, the rustls client configuration, the recorded chain check.
//! - [`driver`]: the tokio driver over any stream, [`Dialer`] and [`TcpDialer`].
//! - [`routing`]: connector selection, smart hosts, [`Resolver`].
//! - [`queue`]: the queue: retries, expiry and the message trace ([`ExoQueue`], [`run_until`]).
//! - [`standalone`]: `mock-eop deliver` (connector choice and overrides, one message).
//!
//! # Driving a delivery in-process
//! ```no_run
//! # async fn demo(tenant: hybridlab_model::exo::Tenant) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use hybridlab_labkit::clock::LabClock;
//! use hybridlab_model::delivery::DeliverySettings;
//! use mock_eop::exo::{
//!     ConnectFailure, Dialed, Dialer, ExoIdentity, ExoQueue, ExoTls, LiteralResolver,
//!     NewMessage, Route, run_until,
//! };
//!
//! /// Hands one end of an in-memory pipe to the lab's receiver, keeps the other.
//! struct Duplex;
//! impl Dialer for Duplex {
//!     type Stream = tokio::io::DuplexStream;
//!     async fn dial(&self, _to: std::net::SocketAddr) -> Result<Dialed<Self::Stream>, ConnectFailure> {
//!         let (ours, theirs) = tokio::io::duplex(64 * 1024);
//!         drop(theirs); // the lab would spawn its on-premises receive session on `theirs`
//!         Ok(Dialed { stream: ours, local: "40.92.0.1:49152".parse().unwrap() })
//!     }
//! }
//!
//! let clock = LabClock::starting_at(time::macros::datetime!(2026-05-02 06:30 UTC));
//! let identity = Arc::new(ExoIdentity::generate(clock.epoch())?);
//! let tls = ExoTls::new(identity, &[/* the on-premises trust anchor */], true)?;
//! let mut queue = ExoQueue::new(DeliverySettings::default(), 1, clock.now());
//! let route = Route::for_recipient(&tenant, "bob@contoso.com")?;
//! let message = NewMessage {
//!     from: "alice@contoso.com".into(),
//!     to: "bob@contoso.com".into(),
//!     subject: "hello".into(),
//!     body: "hi".into(),
//! };
//! let key = queue.submit(route, message, clock.now());
//! run_until(&mut queue, &Duplex, &LiteralResolver, &tls, &clock, None).await;
//! println!("{:?}", queue.record(key).unwrap().trace.status);
//! # Ok(()) }
//! ```

pub mod client;
pub mod driver;
pub mod led;
pub mod message;
pub mod queue;
pub mod reply;
pub mod routing;
pub mod standalone;
pub mod tls;

#[cfg(test)]
mod client_tests;

pub use client::{Action, ConnectFailure, ExoClient, SessionParams, TlsOutcome};
pub use driver::{Dialed, Dialer, TcpDialer, attempt, run_session};
pub use message::ExoMessage;
pub use queue::{ExoQueue, MessageKey, NewMessage, Planned, run_until, trace_line};
pub use routing::{LiteralResolver, NoRoute, ResolveError, Resolver, Route, Target};
pub use tls::{ExoIdentity, ExoTls};

use crate::config::Invalid;
use hybridlab_model::exo::Tenant;

/// Checks a tenant's outbound connectors for the `[eop]` validation; the error names the key
/// under `tenant_path` (`tenants[0].outbound_connectors[1].tls_domain`).
pub fn validate_outbound_connectors(tenant: &Tenant, tenant_path: &str) -> Result<(), Invalid> {
    tenant
        .validate_outbound_connectors()
        .map_err(|(i, e)| Invalid {
            path: format!("{tenant_path}.outbound_connectors[{i}].{}", e.field),
            message: e.message,
        })
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, MockFile};
    use hybridlab_model::exo::OutboundTlsSettings;

    #[test]
    fn outbound_connectors_and_delivery_settings_in_the_eop_tables() {
        let src = r#"
[eop.delivery]
retry_interval = "00:05:00"
certificate_failure = "certificate_validation_failed"

[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }]

[[eop.tenants.outbound_connectors]]
name = "Outbound to 5d3f1c2a-0b7e-4f4c-9a1d-2e6b8c9d0f11"
smart_hosts = ["mail.contoso.com"]
tls_domain = "mail.contoso.com"
recipient_domains = ["contoso.com"]
"#;
        let f = MockFile::from_toml(src, "eop.toml").unwrap();
        let c = &f.eop.tenants[0].outbound_connectors[0];
        assert_eq!(c.tls_settings, OutboundTlsSettings::DomainValidation);
        assert_eq!(f.eop.delivery.retry_interval.to_string(), "00:05:00");

        let bad = src.replace(
            "tls_domain = \"mail.contoso.com\"",
            "tls_domain = \"mail.contoso.com\"\ntls_settings = \"encryption_only\"",
        );
        match MockFile::from_toml(&bad, "eop.toml").unwrap_err() {
            ConfigError::Invalid(l) => {
                assert_eq!(
                    l.field,
                    Some(hybridlab_model::located::Field::Path(
                        "eop.tenants[0].outbound_connectors[0].tls_domain".into()
                    ))
                );
                assert_eq!(l.line, Some(13));
                assert!(l.message.contains("DomainValidation"), "{}", l.message);
            }
            other => panic!("{other:?}"),
        }
        let unknown = src.replace("smart_hosts", "smarthosts");
        assert!(MockFile::from_toml(&unknown, "eop.toml").is_err());
    }
}
