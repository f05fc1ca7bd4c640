//! What the lab's drivers share and the diagnosis never needs: the lab clock and the lab PKI.
//!
//! # Layout
//! - [`clock`]: [`clock::LabClock`], a wall-clock epoch advanced by tokio's (possibly paused) clock:
//!   the one way drivers read the time.
//! - [`pki`]: certificate authorities, server and client certificates generated with rcgen at run
//!   time (never checked in, so nothing expires in CI); leaves RSA-2048 by default (one key per
//!   process, generated with the `rsa` crate), authorities ECDSA P-256.

pub mod clock;
pub mod pki;
