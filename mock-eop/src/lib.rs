//! A mock Exchange Online Protection (EOP) endpoint for the hybridlab.
//!
//! # Layout
//! - [`clock`]: the lab clock (wall-clock epoch + tokio's possibly paused clock).
//! - [`reply`]: SMTP replies as data and the canned texts EOP sends.
//! - [`x509`]: certificate facts the Windows way (thumbprint, .NET DN rendering, wildcard rules).
//! - [`pki`]: the lab PKI built with rcgen at run time.
//! - [`config`]: the `[eop]` tables (endpoint, tenants, connectors, TLS, limits, uncertain
//!   behaviours as settings) with file/line/column errors.
//! - [`attribution`]: pure tenant attribution: session facts and envelope in, verdict and reply out.
//! - [`fault`]: declarative faults (stage x action, first N attempts or seeded probability).
//! - [`record`]: session and message records (serde JSON); headers parsed when read.
//! - [`session`]: the sans-IO SMTP server session (bytes and `now` in, actions out).
//! - [`tls`]: the EOP-like server certificate, the rustls config (ring only), client-certificate
//!   verdicts and the facts recorded after a handshake.
//! - [`server`]: the tokio driver (generic over the stream; STARTTLS moves it into TLS), the
//!   accept loop and the embedding API [`MockEop::builder`].

pub mod attribution;
pub mod clock;
pub mod config;
pub mod fault;
pub mod pki;
pub mod record;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;
pub mod x509;

pub use server::{Counts, MockEop, MockEopBuilder, MockEopError, MockEopHandle};
