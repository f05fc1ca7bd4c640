//! A mock Exchange Online Protection (EOP) endpoint for the hybridlab.
//!
//! It speaks EOP's dialogue (banner, EHLO list, STARTTLS, `250 2.6.0 ... Queued mail for
//! delivery`), asks for an optional client certificate, attributes each transaction to a tenant
//! and inbound connector (or refuses it with EOP's 5.7.64 / ATTR36 / 5.7.51 / 5.7.68 / 4.4.62 /
//! 5.7.3 replies), runs scripted faults, and records every session and accepted message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mock_eop::{MockEop, config::EopConfig};
//!
//! let mock = MockEop::builder().config(EopConfig::contoso()).seed(1).start().await?;
//! println!("EOP at {}, trust {} bytes of CA", mock.local_addr(), mock.ca_certificate().len());
//! mock.wait_for_messages(1).await;
//! for session in mock.shutdown().await {
//!     println!("{} {:?}", session.session_id, session.attribution);
//! }
//! # Ok(()) }
//! ```
//!
//! Contracts other parts rely on are documented on [`config`] (the `[eop]` tables),
//! [`fault`] (`[[faults]]`), [`attribution::AttributionVerdict`] (the verdict names),
//! [`hybridlab_model::record`] (the JSON records) and [`server`] (the embedding API).
//!
//! The vocabulary it shares with the on-premises side (replies, certificate facts, Exchange Online
//! objects, verdicts, records) lives in `hybridlab_model`; the lab clock and PKI in
//! `hybridlab_labkit`.
//!
//! # Layout
//! - [`config`]: the `[eop]` tables (endpoint, tenants, connectors, TLS, limits, uncertain
//!   behaviours as settings) with file/line/column errors.
//! - [`attribution`]: pure tenant attribution: session facts and envelope in, verdict and reply out.
//! - [`fault`]: declarative faults (stage x action, first N attempts or seeded probability).
//! - [`session`]: the sans-IO SMTP server session (bytes and `now` in, actions out).
//! - [`tls`]: the EOP-like server certificate, the rustls config (ring only), client-certificate
//!   verdicts and the facts recorded after a handshake.
//! - [`server`]: the tokio driver (generic over the stream; STARTTLS moves it into TLS), the
//!   accept loop and the embedding API [`MockEop::builder`].
//! - [`exo`]: Exchange Online as a sender: delivery to on-premises through an outbound
//!   connector (sans-IO client core, tokio driver, retries and message trace on the lab clock),
//!   behind `mock-eop deliver`.
//! - [`records`]: the records file of `serve --records` (a line per message before its `250`,
//!   a torn last line cut at start, no symlinks followed).
//! - [`api`]: the HTTP/1.1 JSON API of `mock-eop serve --api` (records, counts, waits, the lab CA,
//!   faults at run time) over a running mock (axum); `http_guard` (private): its listener with a
//!   header-read deadline.

pub mod attribution;
pub mod config;
pub mod exo;
pub mod fault;
pub mod records;
pub mod server;
pub mod session;
pub mod tls;

// Over the embedding API: the HTTP API of `mock-eop serve --api`.
pub mod api;
mod http_guard;

pub use server::{
    Counts, MessageHook, MockEop, MockEopBuilder, MockEopError, MockEopHandle, SessionHook,
};
