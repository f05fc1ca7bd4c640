//! Artefacts in Exchange's own formats: what the lab writes and what `diagnose` reads, from the lab
//! or from a real server (exchange-hybrid.md section 5, docs/formats.md).
//!
//! - [`protocol_log`]: SMTP send/receive protocol logs (the session events the sender records, and
//!   the CSV lines they become).
//! - [`queue`]: `Get-Queue` / `Get-Message` snapshots and the `LastError` field.
//! - [`text`]: bytes to lines (BOM, UTF-16, CRLF) and evidence.
//! - [`csv`]: the CSV dialect of the transport logs.
//! - [`ps`], [`format_list`], [`ps_json`]: PowerShell objects, `Format-List` text and
//!   `ConvertTo-Json`, shared by every listing.

pub mod csv;
pub mod format_list;
pub mod protocol_log;
pub mod ps;
pub mod ps_json;
pub mod queue;
pub mod text;
