//! Benchmarks for hybridlab live under `benches/` (criterion, `cargo bench -p benches`);
//! the load comparison against real peers lives in `compare/`. This library is empty on purpose.
