//! The artefact formats' integration tests, one binary (ripgrep-style): each module one area,
//! sharing `tests/support/` (hand-written certificates, the classic case's sessions, listing rows,
//! the golden-file comparison against `tests/golden/`).
//!
//! - `detect`: kind detection from content, the folder entry point, skipped-line counts, the
//!   connectivity log.
//! - `fidelity`: goldens for the shapes checked against real output (expiry NDR, delay DSN,
//!   the connectivity `+` line), each citing its source.
//! - `listings`: every cmdlet listing, written (goldens) and read (round trips, real-shaped exports).
//! - `protocol_log`: send and receive protocol logs, written and read.
//! - `proptests`: the readers against arbitrary and damaged input, write→read round trips.
//! - `readers`: message trace, events, tracking log, table view, Test-NetConnection.
//! - `walk`: hostile folders (symlink loops, FIFOs, devices, unreadable entries, size cap) and
//!   per-server sub-folders.

#[path = "../support/mod.rs"]
mod support;

mod detect;
mod fidelity;
mod listings;
mod proptests;
mod protocol_log;
mod readers;
mod walk;
