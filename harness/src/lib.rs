//! hybridlab: the on-premises Exchange side of the lab, scenario replay and diagnosis.
//!
//! # Layout
//! - [`exchange`]: Exchange's vocabulary (SChannel status names, disconnect reasons, queue states,
//!   versions, the transport's synthetic replies), shared by the lab and the diagnosis.
//! - [`artefacts`]: protocol logs, connectivity log, certificate/queue/connector listings in
//!   Exchange's formats, NDRs ([`artefacts::ndr`], RFC 3464 `.eml`) and the mock EOP's session
//!   records ([`artefacts::mock_records`]): writers for the lab, readers (kind detected from
//!   content) for the diagnosis; [`artefacts::bundle`] writes everything a lab run knows into one
//!   folder; docs/formats.md.
//! - [`connector`]: the send connector, transport retry settings, server identity, SChannel settings.
//! - [`certstore`]: `Cert:\LocalMachine\My` with the Windows-only flags, plus the lab trust stores.
//! - [`resolver`]: the lab resolver (smart host / MX names to the mock; never real DNS).
//! - [`message`]: outbound messages and their MIME text (CrossPremises header promotion).
//! - [`selection`]: outbound STARTTLS certificate selection (TlsCertificateName and FQDN paths).
//! - [`sender`]: the sans-IO Exchange-like SMTP client, its SChannel-like TLS, and the tokio driver.
//! - [`transport`]: the delivery queue, retries on the virtual clock, DSN/NDR, the LastError wrapper.
//! - [`diagnose`]: artefacts to ranked findings (correlated model, one rule per finding id of
//!   docs/findings.md, root cause first), rendered for an admin or as JSON.
//! - [`scenario`]: scenario files (model, loader with file/line/column errors and `extend`), the
//!   replay runner (paused virtual clock or real loopback sockets) and the expectation checks.
//! - [`report`]: verdict table, JSON, JUnit XML, the narrated replay and the SVG sequence diagram.
//!
//! # The classic case in a few lines
//! A key-less twin enumerated first, the HCW connector pinned to the certificate's issuer and
//! subject, one message, one attempt against an SMTP server offering STARTTLS at `addr`:
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use harness::certstore::{CertStore, fixtures};
//! use harness::{connector::SendConnector, message::OutboundMessage, resolver::LabResolver};
//! use harness::transport::{TcpDeliver, Transport, TransportConfig, run_until};
//!
//! let clock = mock_eop::clock::LabClock::starting_at(time::macros::datetime!(2019-05-02 06:30 UTC));
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

pub mod artefacts;
pub mod certstore;
pub mod connector;
pub mod diagnose;
pub mod exchange;
pub mod message;
pub mod report;
pub mod resolver;
pub mod scenario;
pub mod selection;
pub mod sender;
pub mod transport;
