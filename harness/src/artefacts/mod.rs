//! Artefacts in Exchange's own formats: what the lab writes and what `diagnose` reads, from the lab
//! or from a real server (exchange-hybrid.md section 5, docs/formats.md).
//!
//! - [`protocol_log`]: SMTP send/receive protocol logs (the session events the sender records, and
//!   the CSV lines they become).
//! - [`queue`]: `Get-Queue` / `Get-Message` snapshots and the `LastError` field.

pub mod protocol_log;
pub mod queue;
