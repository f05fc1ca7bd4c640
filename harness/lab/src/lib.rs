//! hybridlab's lab: scenario files replayed against the embedded mock EOP, the expectation checks
//! and the reports.
//!
//! The layers below it are crates of their own: `hybridlab_model` (shared vocabulary),
//! `hybridlab_artefacts` (Exchange's formats), `hybridlab_diagnose` (findings),
//! `hybridlab_onprem` (the on-premises Exchange), `hybridlab_receive` (the on-premises receive side
//! Exchange Online delivers to) and `mock_eop` (EOP, and Exchange Online as a sender).
//!
//! # Layout
//! - [`scenario`]: scenario files (model, loader with file/line/column errors and `extend`), the
//!   replay runner (paused virtual clock or real loopback sockets) and the expectation checks;
//!   `scenario::exo` is the Exchange Online -> on-premises direction.
//! - [`fuzz`]: the generated scenario matrix (proptest cases with their ground truth, the oracle,
//!   shrinking, shards) behind `hybridlab fuzz`.
//! - [`report`]: verdict table, JSON, JUnit XML, the narrated replay, the SVG sequence diagram
//!   and the per-scenario output folder of `hybridlab run --out` (`report::exo` for the other
//!   direction).

pub mod fuzz;
pub mod report;
pub mod scenario;
