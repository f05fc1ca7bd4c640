//! hybridlab: the on-premises Exchange side of the lab, scenario replay and diagnosis.
//!
//! # Layout
//! - [`exchange`]: Exchange's vocabulary (SChannel status names, disconnect reasons, queue states,
//!   versions, the transport's synthetic replies), shared by the lab and the diagnosis.
//! - [`artefacts`]: protocol logs, connectivity log, certificate/queue/connector listings in
//!   Exchange's formats: writers for the lab, readers (kind detected from content) for the
//!   diagnosis; docs/formats.md.

pub mod artefacts;
pub mod exchange;
