//! The on-premises receive side: what Exchange Online delivers to.
//!
//! # Layout
//! - [`connector`]: receive connectors with Exchange's settings, defaults and checks, and their
//!   `Get-ReceiveConnector` rows.
//! - [`certificate`]: inbound STARTTLS certificate selection (TlsCertificateName, Fqdn, the
//!   self-signed fallback), every candidate with its verdict.
//! - [`tls`]: the rustls server configuration, client-chain judgement, SChannel's success line.
//! - [`events`]: the Application-log events (12014, 12016, 12018, 11022, 15004, 15006).
//! - [`server`]: one server (store, connectors, settings); starting it selects certificates.
//! - [`session`]: the sans-IO Exchange-like SMTP receiver ([`hybridlab_model::core::ProtocolCore`]).
//! - [`perimeter`]: what stands in front of the servers: allow-list, NAT, SMTP inspection, a
//!   TLS-terminating device.
//! - [`site`]: several servers behind one name, the perimeter, and the records they produce.
//! - [`driver`]: the tokio driver of a session over any stream (STARTTLS with tokio-rustls).
//!
//! # Serving a receive side in-process
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use hybridlab_onprem::certstore::{CertStore, StoreDescription, fixtures};
//! use hybridlab_receive::server::ReceiveServer;
//! use hybridlab_receive::site::ReceiveSite;
//!
//! let clock = hybridlab_labkit::clock::LabClock::starting_at(time::macros::datetime!(2026-05-02 06:30 UTC));
//! let store = CertStore::build(&StoreDescription {
//!     authorities: fixtures::authorities(),
//!     certificates: vec![fixtures::contoso("hybrid")],
//! }, clock.now())?;
//! let server = ReceiveServer::new("EXCH01", "EXCH01.contoso.com", Arc::new(store));
//! let site = Arc::new(ReceiveSite::start(vec![server], Default::default(), clock, 7)?);
//! let (client, server_side) = tokio::io::duplex(64 * 1024);
//! let peer = "40.107.22.55:57811".parse()?;
//! let local = "10.0.0.10:25".parse()?;
//! tokio::spawn({ let site = site.clone(); async move { site.serve_stream(server_side, peer, local).await } });
//! // ... speak SMTP on `client` ...
//! # drop(client);
//! let records = site.records(); // sessions (RECV-log sessions inside), messages, events
//! # let _ = records; Ok(()) }
//! ```

pub mod certificate;
pub mod connector;
pub mod driver;
pub mod events;
pub mod perimeter;
pub mod server;
pub mod session;
pub mod site;
pub mod tls;
