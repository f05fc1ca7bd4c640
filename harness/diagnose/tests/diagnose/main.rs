//! The diagnosis' integration tests, one binary (ripgrep-style), one module per area. The sample
//! bundles' expectations are checked by the `bundles` target (one named test per bundle folder).
//!
//! - `rules`: rules no sample bundle exercises, on artefacts the lab's writers produce.
//! - `artefacts_samples`: the readers over the sample bundles (kinds, skipped lines, the classic
//!   bundle's key-less twin).
//! - `proptests`: the engine on damaged bundles never panics and ranks errors first.

mod artefacts_samples;
mod proptests;
mod rules;
