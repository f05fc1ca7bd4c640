//! The Exchange-like sender: a sans-IO SMTP client machine ([`machine`]) plus a tokio driver
//! ([`driver`]) generic over the stream, with SChannel-like TLS outcomes ([`tls`]).
//!
//! - [`command`]: the commands as `Display` types (exact wire bytes).
//! - [`reply_reader`]: reply framing with smtp-proto, text kept verbatim.
//! - [`tls`]: rustls client configuration, the recording verifier, SChannel status mapping.
//! - [`machine`]: the session state machine, one file per phase (STARTTLS, mail transactions).
//! - [`report`]: what a session produced, as data (failures, per-message results, the log).
//! - [`driver`]: tokio: TCP (optional loopback source bind) or any stream, STARTTLS upgrade.

pub mod command;
pub mod driver;
pub mod machine;
pub mod reply_reader;
pub mod report;
pub mod tls;

pub use driver::{ConnectOptions, deliver_tcp, run_session};
pub use machine::{Action, SenderMachine, SessionConfig};
pub use report::{
    DeliveryOutcome, FailureKind, MessageDisposition, MessageResult, SessionFailure, SessionReport,
};
pub use tls::{RemoteChainStatus, TlsInfo, TlsRequest, TlsResult};
