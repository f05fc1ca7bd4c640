//! The `hybridlab` binary as a user runs it, in one test binary:
//!
//! - [`anywhere`]: `list`, `run`, `explain` outside a checkout (the embedded catalogue) and
//!   "did you mean" for unknown ids;
//! - [`errors`]: errors state their cause once, `explain --svg` checks its path first, no Rust
//!   `Debug` output in the narrations;
//! - [`exo_interop`]: `mock-eop deliver` (Exchange Online's sender) against `hybridlab receive`;
//! - [`diagnose`]: `hybridlab diagnose` on the sample bundles (text, JSON, `--now`, exit codes);
//! - [`send`]: `hybridlab send --out DIR` against the mock EOP on 127.0.0.1:0;
//! - [`interop_postfix`]: `hybridlab send` against a private Postfix instance (needs Postfix and
//!   root; without them it passes with a notice, except under `CI`).

mod anywhere;
mod completions;
mod diagnose;
mod errors;
mod exo_interop;
mod interop_postfix;
mod send;
mod shard;
