//! The on-premises side end to end, one test binary (ripgrep style): the sender against a real
//! rustls server, the sender and transport against the mock EOP (in memory under paused time and
//! over loopback TCP), queue timelines on the virtual clock, and the delivery loop's hooks.
//!
//! Shared helpers live in `tests/support/`: an odd in-process SMTP receiver (`tls_server`) and
//! the mock EOP with an on-premises store that trust each other (`mocklab`).

#[path = "../support/mod.rs"]
mod support;

mod drive;
mod sender_mock;
mod sender_tls;
mod transport_timeline;
