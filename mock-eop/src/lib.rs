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
//! [`record`] (the JSON records) and [`server`] (the embedding API).
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
//! - [`api`]: the HTTP/1.1 JSON API of `mock-eop serve --api` (records, counts, waits, the lab CA,
//!   faults at run time) over a running mock (axum).

/// `Serialize` as a string and `Deserialize` through `FromStr` (its error becomes the serde
/// error, so the config loader can point at the field). `$to` turns a value into its text.
macro_rules! serde_via_str {
    ($t:ty, $to:expr) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let to: fn(&$t) -> String = $to;
                s.serialize_str(&to(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

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

// Over the embedding API: the HTTP API of `mock-eop serve --api`.
pub mod api;

pub use server::{Counts, MockEop, MockEopBuilder, MockEopError, MockEopHandle};
