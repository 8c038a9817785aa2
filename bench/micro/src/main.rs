//! Times the core's operations ([`portcullis_micro_bench::OPS`]: session seal and open, session-cache
//! hit, PKCE, JWKS parse, bearer-token verification per algorithm and jwt-simple's RS256 for
//! comparison, rule match, header strip, a browser request end to end), the same code the criterion
//! benches time natively.
//!
//! Built for wasm32-wasip1 and run under node (V8, with Envoy's settings: no Liftoff, eager compile) by
//! `bench/micro/collect.mjs` (`just bench`); it also runs natively. Prints one JSON object: per
//! operation `<group>_<name>_us`, the median of the rounds' microseconds per call (each round as many
//! calls as take about 20 ms), and `first_RS256_us`: the first RS256 verification of this instance,
//! right after the JWKS was parsed (cold). `--quick`: shorter rounds, fewer of them. `--first-only`:
//! only `first_RS256_us` (for timing several fresh instances).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};

use portcullis_core::oidc::Alg;
use portcullis_micro_bench::{Ops, OPS};
use serde_json::{json, Map, Value};

/// Median microseconds per call of `f`: calls are batched until a batch takes `target`, then `rounds`
/// batches are timed. Returns the median and the batch size.
fn time(rounds: usize, target: Duration, mut f: impl FnMut()) -> (f64, u64) {
    let batch = |n: u64, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed()
    };
    let mut iters = 1u64;
    while batch(iters, &mut f) < target && iters < 1 << 24 {
        iters *= 2;
    }
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| batch(iters, &mut f).as_secs_f64() * 1e6 / iters as f64)
        .collect();
    per_call.sort_by(|a, b| a.total_cmp(b));
    (per_call[per_call.len() / 2], iters)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let first_only = std::env::args().any(|a| a == "--first-only");
    let (rounds, target) = if quick {
        (3, Duration::from_millis(2))
    } else {
        (11, Duration::from_millis(20))
    };
    let mut ops = Ops::new();
    let t = Instant::now();
    let ok = ops.verify(Alg::RS256);
    let first = t.elapsed().as_secs_f64() * 1e6;
    assert!(ok, "RS256 does not verify");
    let mut out = Map::new();
    out.insert("first_RS256_us".into(), json!(first));
    if first_only {
        println!("{}", Value::Object(out));
        return;
    }
    ops.check();
    let mut iterations = Map::new();
    for op in OPS {
        let (us, iters) = time(rounds, target, || (op.run)(&mut ops));
        out.insert(format!("{}_us", op.key()), json!(us));
        iterations.insert(op.key(), json!(iters));
    }
    out.insert("rounds".into(), json!(rounds));
    out.insert("iterations".into(), Value::Object(iterations));
    println!("{}", Value::Object(out));
}
