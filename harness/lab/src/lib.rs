//! hybridlab's lab: scenario files replayed against the embedded mock EOP, the expectation checks
//! and the reports.
//!
//! The layers below it are crates of their own: `hybridlab_model` (shared vocabulary),
//! `hybridlab_artefacts` (Exchange's formats), `hybridlab_diagnose` (findings),
//! `hybridlab_onprem` (the on-premises Exchange) and `mock_eop`.
//!
//! # Layout
//! - [`scenario`]: scenario files (model, loader with file/line/column errors and `extend`), the
//!   replay runner (paused virtual clock or real loopback sockets) and the expectation checks.
//! - [`report`]: verdict table, JSON, JUnit XML, the narrated replay, the SVG sequence diagram
//!   and the per-scenario output folder of `hybridlab run --out`.

pub mod report;
pub mod scenario;
