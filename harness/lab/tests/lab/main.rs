//! The lab's integration tests in one binary (scenario files are the `scenarios` target):
//!
//! - [`changes`]: the `[[changes]]` schema and its errors, the transport's certificate cache
//!   (FM-34) against the mock, and the rules that read a change's traces;
//! - [`server_files`]: the transport's artefacts written as a real server's files and read back
//!   through the readers.
//!
//! `support` (in `tests/support/`) starts the mock EOP and the on-premises store on one lab clock.

#[path = "../support/mod.rs"]
mod support;

mod changes;
mod server_files;
