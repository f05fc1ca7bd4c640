//! The on-premises Exchange of the lab: what sends to Exchange Online and what the admin sees.
//!
//! # Layout
//! - [`server`]: the sending server's identity (name, FQDN, role, Exchange version).
//! - [`connector`]: the send connector (settings, address spaces, validation, listing row).
//! - [`schannel`]: the operating system's SChannel client settings (TLS versions, cipher suites).
//! - [`certstore`]: `Cert:\LocalMachine\My` with the Windows-only flags, plus the lab trust stores.
//! - [`resolver`]: the lab resolver (smart host / MX names to the mock; never real DNS).
//! - [`message`]: outbound messages and their MIME text (CrossPremises header promotion).
//! - [`selection`]: outbound STARTTLS certificate selection (TlsCertificateName and FQDN paths).
//! - [`sender`]: the sans-IO Exchange-like SMTP client, its SChannel-like TLS, and the tokio driver.
//! - [`transport`]: the delivery queue, its retry settings, retries on the virtual clock, DSN/NDR,
//!   the LastError wrapper, and the one delivery loop ([`transport::drive`]).
//!
//! # The classic case in a few lines
//! A key-less twin enumerated first, the HCW connector pinned to the certificate's issuer and
//! subject, one message, one attempt against an SMTP server offering STARTTLS at `addr`:
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use hybridlab_onprem::certstore::{CertStore, fixtures};
//! use hybridlab_onprem::{connector::SendConnector, message::OutboundMessage, resolver::LabResolver};
//! use hybridlab_onprem::transport::{TcpDeliver, Transport, TransportConfig, run_until};
//!
//! let clock = hybridlab_labkit::clock::LabClock::starting_at(time::macros::datetime!(2019-05-02 06:30 UTC));
//! let store = CertStore::build(&fixtures::classic_twins(true), clock.now())?;
//! let pin = store.entry("keyed").unwrap().x509_identifier();
//! let connector = SendConnector::hybrid("contoso", Some(pin));
//! let resolver = LabResolver::new().with_host("contoso.mail.protection.outlook.com", addr);
//! let mut t = Transport::new(TransportConfig::new(connector), Arc::new(store));
//! t.submit(OutboundMessage::simple(1, "alice@contoso.com", "bob@contoso.mail.onmicrosoft.com", clock.now()));
//! run_until(&mut t, &resolver, &mut TcpDeliver::default(), &clock, clock.now(), 10).await;
//! // Retry, LED `451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out`,
//! // and the session's log ends with `TLS negotiation failed with error NoCredentials`, `-,,Local`.
//! println!("{:?}\n{}", t.snapshot(), t.sessions()[0].transcript());
//! # Ok(()) }
//! ```

pub mod certstore;
pub mod connector;
pub mod message;
pub mod resolver;
pub mod schannel;
pub mod selection;
pub mod sender;
pub mod server;
pub mod transport;
