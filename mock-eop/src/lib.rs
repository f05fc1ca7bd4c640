//! A mock Exchange Online Protection (EOP) endpoint for the hybridlab.
//!
//! # Layout
//! - [`clock`]: the lab clock (wall-clock epoch + tokio's possibly paused clock).
//! - [`reply`]: SMTP replies as data and the canned texts EOP sends.
//! - [`x509`]: certificate facts the Windows way (thumbprint, .NET DN rendering, wildcard rules).
//! - [`pki`]: the lab PKI built with rcgen at run time.

pub mod clock;
pub mod pki;
pub mod reply;
pub mod x509;
