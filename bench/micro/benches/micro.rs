//! The core's operations ([`portcullis_micro_bench::OPS`]) under criterion, natively: one group per
//! [`Op::group`](portcullis_micro_bench::Op), one benchmark per operation, the same calls the wasm
//! harness (`src/main.rs`) times under V8. Results in `target/criterion/<group>/<name>/new/`.
//!
//! `cargo bench -p portcullis-micro-bench` (about a minute: 0.5 s warm-up, 2 s measurement, 30 samples
//! each); `MICRO_QUICK=1` for a smoke run (10 samples in 0.1 s). Criterion's own arguments still
//! apply after `--` (a filter, `--measurement-time`, ...).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_micro_bench::{Ops, OPS};

fn config() -> Criterion {
    let quick = std::env::var("MICRO_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let c = Criterion::default().without_plots();
    if quick {
        c.warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(100))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30)
    }
}

fn ops(c: &mut Criterion) {
    let mut ops = Ops::new();
    ops.check();
    let mut groups: Vec<&str> = Vec::new();
    for op in OPS {
        if !groups.contains(&op.group) {
            groups.push(op.group);
        }
    }
    for group in groups {
        let mut g = c.benchmark_group(group);
        for op in OPS.iter().filter(|o| o.group == group) {
            g.bench_function(op.name, |b| b.iter(|| (op.run)(&mut ops)));
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = ops
}
criterion_main!(benches);
