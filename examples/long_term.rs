//! The notes' chapter on long-term dependencies (notes 002), measured:
//!
//! ```text
//! cargo run --release --example long_term -- [--quick] [--seed S] [--out DIR]
//! ```
//!
//! 1. the toy example `h_t = tanh(w_xh x_t + w_hh h_{t−1} + b)` (w_hh = 3, w_xh = 2, b = 1):
//!    `dh_t/dh_1` as t grows, and the same with w_hh = 0.5 (lines `toy w_hh=W t=T grad=G`);
//! 2. the composition figure: a 100-unit tanh map applied 1, 2, 4, ... times along a random
//!    direction of the initial state, projected to one dimension (`composition.svg`);
//! 3. the gradient's norm `‖dL/dh_t‖` against t for SimpleRNN, LSTM, GRU and LeakyRNN at
//!    initialisation and after training with and without `clipnorm` (`gradient_flow.svg`,
//!    lines `flow cell=C when=W first=F last=L`);
//! 4. the claim: the success rate of training against the dependency length, on a task whose
//!    target depends only on the first input (its sign; then noise), SimpleRNN with plain
//!    SGD as the notes state it and every cell and remedy with Adam: gated cells, leaky
//!    units (fixed and learned), a skip connection through time, clockwork groups, a
//!    reservoir-initialised SimpleRNN and Pascanu et al.'s gradient-flow regulariser
//!    (lines `success lag=L cell=NAME rate=R`, `success.svg`; success: ≥ 95% sign accuracy
//!    on fresh data), and the same on the adding problem (lines `success task=adding ...`,
//!    `success_adding.svg`; success: test MSE below 0.01);
//! 5. the cliff: plain SGD on a SimpleRNN whose recurrent weights are large jumps away,
//!    while the same steps with `clipnorm` hold (`cliff.svg`, lines `cliff clip=C ...`).

mod common;

use ndarray::{Array1, Array2, Array3, ArrayD, Axis};
use rnnkit::init::Init;
use rnnkit::prelude::*;
use rnnkit::rand::Rng;

/// The toy: dh_t/dh_1 = Π_{k=2..t} w_hh (1 − h_k²) along the run from h_1 = 0, x_t = 0.
fn toy(w_hh: f64, steps: usize) -> Vec<(usize, f64)> {
    let (w_xh, b) = (2.0, 1.0);
    let mut h = 0.0f64;
    let mut grad = 1.0;
    let mut out = Vec::new();
    for t in 2..=steps {
        h = (w_xh * 0.0 + w_hh * h + b).tanh();
        grad *= w_hh * (1.0 - h * h);
        out.push((t, grad));
    }
    out
}

/// The composition figure: `f(h) = tanh(W h)` with W = 1.5·orthogonal, applied `k` times
/// to `h0 + α d`, projected on a fixed direction `p`.
fn composition(seed: u64) -> Vec<common::Series> {
    let n = 100;
    let mut rng = seeded_rng(seed);
    let w = Init::Orthogonal
        .sample::<f64>(&[n, n], &mut rng)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        * 1.5;
    let unit = |rng: &mut rnnkit::init::StdRng| {
        let v = Array1::from_shape_simple_fn(n, || rng.random_range(-1.0..1.0f64));
        let norm = v.dot(&v).sqrt();
        v / norm
    };
    let (h0, d, p) = (unit(&mut rng) * 0.5, unit(&mut rng), unit(&mut rng));
    [1usize, 2, 4, 8, 16]
        .iter()
        .map(|&k| {
            let pts = (-60..=60)
                .map(|i| {
                    let a = i as f64 / 20.0;
                    let mut h = &h0 + &(&d * a);
                    for _ in 0..k {
                        h = w.dot(&h).mapv(f64::tanh);
                    }
                    (a, h.dot(&p))
                })
                .collect();
            (format!("{k} step{}", if k == 1 { "" } else { "s" }), pts)
        })
        .collect()
}

/// The task: the class (±1) is the first input; then `lag − 1` steps of noise. The target
/// at the last step is the class.
fn task(n: usize, lag: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array3::<f32>::zeros((n, lag, 1));
    let mut y = Array2::<f32>::zeros((n, 1));
    for i in 0..n {
        let c = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        x[[i, 0, 0]] = c;
        for t in 1..lag {
            x[[i, t, 0]] = rng.random_range(-0.5..0.5);
        }
        y[[i, 0]] = c;
    }
    (x.into_dyn(), y.into_dyn())
}

const CELLS: [&str; 10] = [
    "SimpleRNN(SGD)",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "LeakyRNN(a=0.1)",
    "LeakyRNN(learned)",
    "SkipRNN(d=5)",
    "Clockwork(1,2,4,8)",
    "SimpleRNN(reservoir)",
    "SimpleRNN(flow-reg)",
];

fn recurrent(cell: &str, units: usize) -> Box<dyn LayerConfig<f32>> {
    match cell {
        "SimpleRNN" | "SimpleRNN(SGD)" => Box::new(SimpleRnnConfig::new(units)),
        "LSTM" => Box::new(LstmConfig::new(units)),
        "GRU" => Box::new(GruConfig::new(units)),
        "LeakyRNN(a=0.1)" => Box::new(LeakyRnnConfig::new(units).leak(0.1)),
        "LeakyRNN(learned)" => Box::new(LeakyRnnConfig::new(units).leak(0.2).train_leak(true)),
        // Several time scales: a skip connection through time (a path 5 times shorter),
        // and four clockwork groups updated every 1, 2, 4 and 8 steps.
        "SkipRNN(d=5)" => Box::new(LeakyRnnConfig::new(units).skip_delay(5)),
        "Clockwork(1,2,4,8)" => Box::new(LeakyRnnConfig::new(units).clock_periods(&[1, 2, 4, 8])),
        // Pascanu et al.'s regulariser at strength 1 (their Ω, not tuned here).
        "SimpleRNN(flow-reg)" => {
            Box::new(SimpleRnnConfig::new(units).gradient_flow_regularizer(1.0))
        }
        _ => Box::new(
            SimpleRnnConfig::new(units).recurrent_initializer(Init::Reservoir {
                spectral_radius: 0.95,
                density: 0.3,
            }),
        ),
    }
}

/// The two tasks of the success rates.
#[derive(Clone, Copy)]
enum Task {
    /// The sign of the first input, then noise (a latch: the gentlest dependency).
    Latch,
    /// The adding problem (Hochreiter and Schmidhuber 1997; Pascanu et al. 2013): values
    /// in [0, 1) with two marked steps, the first within the first tenth of the sequence
    /// and the second before its middle; the target is the sum of the two marked values.
    Adding,
}

impl Task {
    fn data(self, n: usize, lag: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
        match self {
            Task::Latch => task(n, lag, seed),
            Task::Adding => adding(n, lag, seed),
        }
    }

    /// Latch: ≥ 95% sign accuracy; adding: MSE below 0.01 (predicting the mean sum, 1,
    /// scores about 0.17).
    fn solved(self, m: &Sequential<f32>, x: &ArrayD<f32>, y: &ArrayD<f32>) -> bool {
        match self {
            Task::Latch => accuracy(m, x, y) >= 0.95,
            Task::Adding => {
                let Ok(p) = m.predict(Inputs::new(x), 256).map(|mut p| p.remove(0)) else {
                    return false;
                };
                let mse = p
                    .iter()
                    .zip(y.iter())
                    .map(|(&p, &y)| ((p - y) as f64).powi(2))
                    .sum::<f64>()
                    / y.len() as f64;
                mse < 0.01
            }
        }
    }
}

fn adding(n: usize, lag: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array3::<f32>::zeros((n, lag, 2));
    let mut y = Array2::<f32>::zeros((n, 1));
    let tenth = (lag / 10).max(1);
    for i in 0..n {
        for t in 0..lag {
            x[[i, t, 0]] = rng.random_range(0.0..1.0);
        }
        let a = rng.random_range(0..tenth);
        let b = rng.random_range(tenth..(lag / 2).max(tenth + 1));
        for m in [a, b] {
            x[[i, m, 1]] = 1.0;
            y[[i, 0]] += x[[i, m, 0]];
        }
    }
    (x.into_dyn(), y.into_dyn())
}

fn model(
    cell: &str,
    units: usize,
    seed: u64,
    task: Task,
) -> Result<Sequential<f32>, rnnkit::Error> {
    let (features, out) = match task {
        Task::Latch => (1, Activation::Tanh),
        Task::Adding => (2, Activation::Linear),
    };
    let mut m = Sequential::<f32>::with_input_shape(vec![None, Some(features)]).seed(seed);
    m.add(recurrent(cell, units).as_ref())?;
    m.add(&DenseConfig::new(1).activation(out))?;
    Ok(m)
}

/// Sign accuracy on fresh data.
fn accuracy(m: &Sequential<f32>, x: &ArrayD<f32>, y: &ArrayD<f32>) -> f64 {
    let p = m.predict(Inputs::new(x), 256).map(|mut p| p.remove(0));
    let Ok(p) = p else { return 0.0 };
    let right = p
        .iter()
        .zip(y.iter())
        .filter(|(a, b)| (**a > 0.0) == (**b > 0.0))
        .count();
    right as f64 / y.len() as f64
}

/// ‖dL/dh_t‖ for t = 0..T−1 (L = Σ h_T ⊙ r): the suffix from step t runs from the state
/// the prefix left, and its backward gives the state's gradient.
fn gradient_flow(layer: &dyn Layer<f32>, x: &ArrayD<f32>, r: &ArrayD<f32>) -> Vec<f64> {
    let t_len = x.shape()[1];
    let mut out = Vec::new();
    let Some(zero) = layer.state().and_then(|s| s.zero_states(x.shape()[0]).ok()) else {
        return out;
    };
    for t in 0..t_len {
        let prefix = x.slice_axis(Axis(1), (0..t.max(1)).into()).to_owned();
        let states = if t == 0 {
            zero.clone()
        } else {
            match layer.infer(Inputs::new(&prefix).states(&zero)) {
                Ok(o) => o.states,
                Err(_) => return out,
            }
        };
        let suffix = x.slice_axis(Axis(1), (t..t_len).into()).to_owned();
        let mut l = layer.box_clone();
        let ok = l
            .forward(Inputs::new(&suffix).states(&states).mode(Mode::Train))
            .and_then(|_| l.backward(OutputGrads::new(r)));
        match ok {
            Ok(g) if !g.states.is_empty() => out.push(
                g.states[0]
                    .iter()
                    .map(|v| f64::from(*v).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            ),
            _ => return out,
        }
    }
    out
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("long_term", 40);
    let quick = args.quick;

    // 1. The toy example.
    for w_hh in [3.0, 0.5] {
        for (t, g) in toy(w_hh, 50) {
            if [2, 5, 10, 20, 50].contains(&t) {
                println!("toy w_hh={w_hh} t={t} grad={g:.3e}");
            }
        }
    }

    // 2. The composition figure.
    common::line_plot(
        &args.path("composition.svg"),
        "tanh(W·h) composed k times along one direction of h0 (W = 1.5·orthogonal, 100 units)",
        "α (h0 + α·d)",
        "projection of f^k(h0 + α·d)",
        &composition(args.seed),
        false,
    );

    // 3. Gradient flow at initialisation and after training.
    let lag = if quick { 20 } else { 50 };
    let (x, y) = task(256, lag, args.seed);
    let probe = x.slice_axis(Axis(0), (0..8).into()).to_owned();
    let mut flows = Vec::new();
    for cell in ["SimpleRNN", "LSTM", "GRU", "LeakyRNN(a=0.1)"] {
        let r = ArrayD::from_elem(vec![8, 16], 1.0f32 / 16.0);
        for when in ["init", "trained", "trained-clipnorm"] {
            let mut m = model(cell, 16, args.seed, Task::Latch)?;
            let epochs = args.epochs.min(if quick { 3 } else { 20 });
            match when {
                "trained" => {
                    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
                        .epochs(epochs)
                        .batch_size(32)
                        .seed(args.seed);
                    let _ = t.fit(&mut m, (&x, &y));
                }
                "trained-clipnorm" => {
                    let mut t = Trainer::new(Adam::new(0.01).clipnorm(1.0), Loss::Mse)
                        .epochs(epochs)
                        .batch_size(32)
                        .seed(args.seed);
                    let _ = t.fit(&mut m, (&x, &y));
                }
                _ => {}
            }
            let flow = gradient_flow(m.layers()[0].as_ref(), &probe, &r);
            if let (Some(first), Some(last)) = (flow.first(), flow.last()) {
                println!("flow cell={cell} when={when} first={first:.3e} last={last:.3e}");
            }
            flows.push((format!("{cell} {when}"), common::curve(&flow)));
        }
    }
    common::line_plot(
        &args.path("gradient_flow.svg"),
        &format!("‖dL/dh_t‖ against t (loss at the last of {lag} steps)"),
        "t",
        "‖dL/dh_t‖",
        &flows,
        true,
    );

    // 4. Success rate against the dependency length, on the latch and on the adding
    // problem.
    let (lags, seeds, n): (Vec<usize>, u64, usize) = if quick {
        (vec![5, 20], 2, 128)
    } else {
        (vec![5, 10, 20, 50, 100], 5, 512)
    };
    for task in [Task::Latch, Task::Adding] {
        let mut rates: Vec<common::Series> =
            CELLS.iter().map(|c| (c.to_string(), Vec::new())).collect();
        for &lag in &lags {
            for (ci, cell) in CELLS.iter().enumerate() {
                let mut wins = 0;
                for seed in 0..seeds {
                    let s = args.seed * 1000 + seed;
                    let (x, y) = task.data(n, lag, s);
                    let (xt, yt) = task.data(256, lag, s + 500);
                    let mut m = model(cell, 16, s, task)?;
                    // The notes' claim is about plain SGD (as in Bengio et al. 1994); the
                    // other rows train with Adam. A diverged run is a failure, not an error
                    // of the example.
                    let _ = if *cell == "SimpleRNN(SGD)" {
                        Trainer::new(Sgd::new(0.1), Loss::Mse)
                            .epochs(args.epochs)
                            .batch_size(32)
                            .seed(s)
                            .fit(&mut m, (&x, &y))
                    } else {
                        Trainer::new(Adam::new(0.01), Loss::Mse)
                            .epochs(args.epochs)
                            .batch_size(32)
                            .seed(s)
                            .fit(&mut m, (&x, &y))
                    };
                    if task.solved(&m, &xt, &yt) {
                        wins += 1;
                    }
                }
                let rate = wins as f64 / seeds as f64;
                match task {
                    Task::Latch => println!("success lag={lag} cell={cell} rate={rate:.2}"),
                    Task::Adding => {
                        println!("success task=adding lag={lag} cell={cell} rate={rate:.2}")
                    }
                }
                rates[ci].1.push((lag as f64, rate));
            }
        }
        let (file, title) = match task {
            Task::Latch => (
                "success.svg",
                "Trained to ≥ 95% on the first input's class, against the lag",
            ),
            Task::Adding => (
                "success_adding.svg",
                "Adding problem solved (MSE < 0.01), against the lag",
            ),
        };
        common::line_plot(
            &args.path(file),
            title,
            "dependency length (steps)",
            "success rate over seeds",
            &rates,
            false,
        );
    }

    // 5. The cliff: large recurrent weights, plain SGD, with and without clipping.
    let (x, y) = task(64, 30, args.seed + 7);
    let mut cliffs = Vec::new();
    for clip in [None, Some(1.0)] {
        let mut m = Sequential::<f32>::with_input_shape(vec![None, Some(1)])
            .seed(args.seed)
            .push(SimpleRnnConfig::new(16))?
            .push(DenseConfig::new(1))?;
        let mut w = m.get_weights();
        w[1].mapv_inplace(|v| v * 3.0); // an exploding regime
        m.set_weights(&w)?;
        let sgd = match clip {
            Some(c) => Sgd::new(0.5).clipnorm(c),
            None => Sgd::new(0.5),
        };
        let mut t = Trainer::new(sgd, Loss::Mse)
            .epochs(1)
            .batch_size(16)
            .seed(args.seed);
        let mut losses = Vec::new();
        let mut diverged = None;
        for epoch in 1..=(if quick { 8 } else { 30 }) {
            match t.fit(&mut m, (&x, &y)) {
                Ok(h) => losses.extend_from_slice(h.loss()),
                Err(e) => {
                    diverged = Some((epoch, e.to_string()));
                    break;
                }
            }
        }
        if let Some((epoch, e)) = &diverged {
            println!("cliff clip={clip:?} diverged in epoch {epoch}: {e}");
        }
        let max = losses.iter().copied().fold(0.0f64, f64::max);
        let last = losses.last().copied().unwrap_or(f64::NAN);
        let label = clip.map_or("none".to_string(), |c| format!("{c}"));
        println!(
            "cliff clip={label} epochs={} diverged={} max_loss={max:.3e} last_loss={last:.3e}",
            losses.len(),
            diverged.is_some()
        );
        cliffs.push((format!("clipnorm {label}"), common::curve(&losses)));
    }
    common::line_plot(
        &args.path("cliff.svg"),
        "SGD on a SimpleRNN with recurrent weights ×3: without and with clipnorm",
        "epoch",
        "training loss",
        &cliffs,
        true,
    );
    Ok(())
}
