//! Criterion benchmarks: SimpleRnn, Lstm and Gru side by side, one group per workload of
//! the speed issue (so each report compares the cells at one size), the lecture's model-1
//! epoch, and the machine's matrix-multiply rate for the products the cells run.
//!
//! ```text
//! cargo bench --bench cells            # everything (a few minutes)
//! cargo bench --bench cells -- W3      # one group
//! ```
//! Each cell has a `forward` (inference) and a `train` (forward, backward, Adam step)
//! benchmark on one fixed random batch, f32, with the default thread count.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayD, IxDyn};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::StandardNormal;
use rnnkit::prelude::*;
use std::hint::black_box;
use std::time::Duration;

/// (group name, batch, steps, features, units)
const WORKLOADS: [(&str, usize, usize, usize, usize); 4] = [
    ("W1 lecture B32 T3 F1 H20", 32, 3, 1, 20),
    ("W2 lecture-256 B32 T3 F1 H256", 32, 3, 1, 256),
    ("W3 compare B32 T16 F1 H10", 32, 16, 1, 10),
    ("W4 medium B64 T50 F32 H128", 64, 50, 32, 128),
];

const CELLS: [&str; 3] = ["SimpleRnn", "Lstm", "Gru"];

/// One recurrent layer (last output) + Dense(1), as the throughput example builds it.
fn model(cell: &str, t: usize, f: usize, h: usize) -> Sequential<f32> {
    let m = Sequential::<f32>::new(&[t, f]);
    let m = match cell {
        "SimpleRnn" => m.push(SimpleRnnConfig::new(h)),
        "Lstm" => m.push(LstmConfig::new(h)),
        _ => m.push(GruConfig::new(h)),
    };
    m.and_then(|m| m.push(DenseConfig::new(1)))
        .expect("valid model")
}

fn cells(c: &mut Criterion) {
    for &(group, b, t, f, h) in &WORKLOADS {
        let mut g = c.benchmark_group(group);
        if b * t * h * h > 1_000_000 {
            g.sample_size(20).measurement_time(Duration::from_secs(4));
        }
        let mut rng = seeded_rng(0);
        let x = ArrayD::<f32>::random_using(IxDyn(&[b, t, f]), StandardNormal, &mut rng);
        let y = ArrayD::<f32>::random_using(IxDyn(&[b, 1]), StandardNormal, &mut rng);
        for cell in CELLS {
            let mut m = model(cell, t, f, h);
            g.bench_function(BenchmarkId::new("forward", cell), |bench| {
                bench.iter(|| {
                    black_box(
                        m.forward(Inputs::new(&x).mode(Mode::Infer))
                            .map(|mut o| o.remove(0).output)
                            .expect("forward"),
                    )
                })
            });
            let mut trainer = Trainer::new(Adam::default(), Loss::Mse);
            g.bench_function(BenchmarkId::new("train", cell), |bench| {
                bench.iter(|| trainer.train_on_batch(&mut m, (&x, &y)).expect("step"))
            });
        }
        g.finish();
    }
}

/// One streamed step at batch 1 (32 inputs, 128 units, + Dense(1)), the state carried:
/// `ref_rnn.py --mode stream`'s measure.
fn stream_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream B1 F32 H128");
    let x = ndarray::Array2::<f32>::from_shape_fn((1, 32), |(_, j)| (j as f32 * 0.1).sin());
    for cell in CELLS {
        let m = Sequential::<f32>::with_input_shape(vec![None, Some(32)]);
        let m = match cell {
            "SimpleRnn" => m.push(SimpleRnnConfig::new(128)),
            "Lstm" => m.push(LstmConfig::new(128)),
            _ => m.push(GruConfig::new(128)),
        }
        .and_then(|m| m.push(DenseConfig::new(1)))
        .expect("valid model");
        let mut state = m.stream_state(1);
        g.bench_function(BenchmarkId::new("step", cell), |bench| {
            bench.iter(|| {
                black_box(m.step(x.view(), &mut state).expect("step")[[0, 0]]);
            })
        });
    }
    g.finish();
}

/// The lecture's model 1: SimpleRNN(20) + Dense(1), one epoch of 100 samples, batch 32.
fn lecture_epoch(c: &mut Criterion) {
    let x = Array3::from_shape_fn((100, 3, 1), |(i, t, _)| 0.1 * i as f32 + 0.1 * t as f32);
    let y = Array2::from_shape_fn((100, 1), |(i, _)| 0.1 * i as f32 + 0.3);
    let (x, y) = (x.into_dyn(), y.into_dyn());
    let mut m = model("SimpleRnn", 3, 1, 20);
    let mut trainer = Trainer::new(Adam::default(), Loss::Mse).epochs(1);
    c.bench_function("model-1 epoch (100 samples, batch 32)", |bench| {
        bench.iter(|| trainer.fit(&mut m, (&x, &y)).expect("fit"))
    });
}

/// The backend's matrix-multiply rate (reported as elements = FLOP, so criterion's
/// "Gelem/s" reads as GFLOP/s) on one core, for the products of the W4/W5 steps and a
/// large square one: the ceiling the recurrent kernels are measured against.
fn gemm_rate(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm f32 one thread");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for &(m, k, n) in &[
        (64, 128, 512),
        (32, 256, 1024),
        (64, 256, 1024),
        (1024, 1024, 1024),
    ] {
        let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i + j) % 7) as f32);
        let bm = Array2::<f32>::from_shape_fn((k, n), |(i, j)| ((i * j) % 5) as f32);
        let mut out = Array2::<f32>::zeros((m, n));
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        g.bench_function(format!("[{m}x{k}]x[{k}x{n}]"), |bench| {
            bench.iter(|| general_mat_mul(1.0, &a, &bm, 0.0, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, cells, stream_step, lecture_epoch, gemm_rate);
criterion_main!(benches);
