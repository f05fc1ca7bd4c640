//! `mock-eop`: the mock EOP endpoint as a standalone server (not implemented yet).

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("mock-eop: `serve` is not implemented yet");
    ExitCode::from(2)
}
