//! Placeholder bench so the package builds; replaced by the session-core benches.
use criterion::{Criterion, criterion_group, criterion_main};

fn noop(c: &mut Criterion) {
    c.bench_function("noop", |b| b.iter(|| std::hint::black_box(1 + 1)));
}

criterion_group!(benches, noop);
criterion_main!(benches);
