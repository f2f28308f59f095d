//! Echo state networks (notes 002) against an LSTM trained by backpropagation through time,
//! on the Mackey–Glass series (τ = 17) and the lecture's sine: training time, one-step
//! NRMSE, and a closed-loop forecast of 500 steps (each prediction fed back as the next
//! input), plotted against the truth; then the ESN's error against the spectral radius ρ.
//!
//! ```sh
//! cargo run --release --example echo_state            # the README's numbers (about a minute)
//! cargo run --release --example echo_state -- --quick # small sizes, a few seconds
//! cargo run --release --example echo_state -- --series mg.txt  # a series of your own
//! ```
//!
//! `--series FILE` (one value per line) replaces the generated Mackey–Glass series, e.g.
//! with the one `../shared/bench/ref_esn.py` feeds reservoirpy, for a comparison on the
//! same numbers.

mod common;

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use rnnkit::prelude::*;
use std::time::Instant;

/// The Mackey–Glass series `dx/dt = 0.2·x(t−τ)/(1 + x(t−τ)^10) − 0.1·x(t)`, τ = 17,
/// integrated with RK4 (step 0.1, the delayed term linearly interpolated) from `x = 1.2`,
/// sampled every time unit after a transient of 500, and scaled to [−1, 1].
fn mackey_glass(n: usize) -> Vec<f64> {
    let (tau, dt, sub) = (17.0, 0.1, 10);
    let lag = (tau / dt) as usize;
    let f = |x: f64, xd: f64| 0.2 * xd / (1.0 + xd.powi(10)) - 0.1 * x;
    let skip = 500;
    let mut hist = vec![1.2; lag + 1];
    let mut out = Vec::with_capacity(n);
    for step in 0..(n + skip) * sub {
        let i = hist.len() - 1;
        let x = hist[i];
        let (d0, d1) = (hist[i - lag], hist[i + 1 - lag]);
        let dh = 0.5 * (d0 + d1);
        let k1 = f(x, d0);
        let k2 = f(x + 0.5 * dt * k1, dh);
        let k3 = f(x + 0.5 * dt * k2, dh);
        let k4 = f(x + dt * k3, d1);
        hist.push(x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4));
        if (step + 1) % sub == 0 && step / sub >= skip {
            out.push(*hist.last().unwrap_or(&0.0));
        }
    }
    let (lo, hi) = out
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    out.iter()
        .map(|v| 2.0 * (v - lo) / (hi - lo) - 1.0)
        .collect()
}

/// The first `n` values of a file with one number per line.
fn read_series(path: &str, n: usize) -> Result<Vec<f64>, rnnkit::Error> {
    let data = |reason: String| rnnkit::Error::Data(format!("{path}: {reason}"));
    let text = std::fs::read_to_string(path).map_err(|e| data(e.to_string()))?;
    let values = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().map_err(|e| data(format!("{v:?}: {e}"))))
        .take(n)
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() < n {
        return Err(data(format!("{} values, need {n}", values.len())));
    }
    Ok(values)
}

/// `sqrt(mean((p − y)²)) / std(y)`.
fn nrmse(p: &[f64], y: &[f64]) -> f64 {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let mse = p.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n;
    (mse / var).sqrt()
}

fn column(v: &[f64]) -> Array2<f64> {
    Array2::from_shape_fn((v.len(), 1), |(i, _)| v[i])
}

/// What one model did on one task.
struct Outcome {
    fit_s: f64,
    one_step: f64,
    closed: f64,
    forecast: Vec<f64>,
}

impl Outcome {
    /// The outcome of a forecast that starts after step `train` of `s`.
    fn new(fit_s: f64, one_step: f64, forecast: Vec<f64>, s: &[f64], train: usize) -> Self {
        let closed = nrmse(&forecast, &s[train + 1..=train + forecast.len()]);
        Outcome {
            fit_s,
            one_step,
            closed,
            forecast,
        }
    }
}

/// ESN: fit on `s[..train]` → `s[1..=train]`, one-step on the next `test` steps, then a
/// closed-loop forecast of `horizon` steps from the end of the training series.
fn esn_task(
    s: &[f64],
    train: usize,
    test: usize,
    horizon: usize,
    config: &EsnConfig,
) -> Result<Outcome, rnnkit::Error> {
    let start = Instant::now();
    let mut esn = config.build::<f64>(1)?;
    esn.fit(&column(&s[..train]), &column(&s[1..=train]))?;
    let fit_s = start.elapsed().as_secs_f64();
    let after_training = esn.reservoir_state().clone();
    let (pred, _) = esn.run_from(&column(&s[train..train + test]), &after_training)?;
    let one_step = nrmse(pred.as_slice().unwrap_or(&[]), &s[train + 1..=train + test]);
    let forecast = esn.generate(&Array1::from_elem(1, s[train]), horizon)?;
    let forecast = forecast.iter().copied().collect::<Vec<_>>();
    Ok(Outcome::new(fit_s, one_step, forecast, s, train))
}

/// LSTM(32) + Dense(1) on windows of `window` steps, trained by the crate's Trainer.
fn lstm_task(
    s: &[f64],
    train: usize,
    test: usize,
    horizon: usize,
    window: usize,
    epochs: usize,
    seed: u64,
) -> Result<Outcome, rnnkit::Error> {
    let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
    let (x, y) = common::windows(&s32[..=train], window);
    let mut model = common::cell_model("LSTM", 32, Some(window), 1, seed)?;
    let mut trainer = Trainer::new(Adam::new(0.005), Loss::Mse)
        .epochs(epochs)
        .batch_size(32)
        .seed(seed);
    let (_, fit_s) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
    // One step: windows ending at train .. train + test − 1.
    let (tx, _) = common::windows(&s32[train + 1 - window..=train + test], window);
    let pred = model
        .predict(Inputs::new(&tx), 256)
        .map(|mut p| p.remove(0))?;
    let pred: Vec<f64> = pred.iter().map(|&v| f64::from(v)).collect();
    let one_step = nrmse(&pred, &s[train + 1..=train + test]);
    // Closed loop: the window slides over the model's own outputs.
    let mut win: Vec<f32> = s32[train + 1 - window..=train].to_vec();
    let mut forecast = Vec::with_capacity(horizon);
    for _ in 0..horizon {
        let xw = ArrayD::from_shape_vec(IxDyn(&[1, window, 1]), win.clone())
            .map_err(|e| rnnkit::Error::Data(e.to_string()))?;
        let next = model
            .predict(Inputs::new(&xw), 1)
            .map(|mut p| p.remove(0))?[[0, 0]];
        forecast.push(f64::from(next));
        win.remove(0);
        win.push(next);
    }
    Ok(Outcome::new(fit_s, one_step, forecast, s, train))
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("echo_state", 10);
    let quick = args.quick;
    let units = args.num("units", if quick { 200 } else { 1000 });
    let train = args.num("train", if quick { 2000 } else { 10_000 });
    let (test, horizon, window) = (1000, 500, 20);
    let seed = args.seed;

    let mg = match args.get("series") {
        Some(path) => read_series(path, train + test + 1)?,
        None => mackey_glass(train + test + 1),
    };
    let sine: Vec<f64> = (0..train + test + 1)
        .map(|t| (0.1 * t as f64).sin())
        .collect();
    // reservoirpy's benchmark setting (../shared/bench/ref_esn.py).
    let esn_config = EsnConfig::new(units)
        .leak_rate(0.3)
        .spectral_radius(1.25)
        .density(0.1)
        .input_scaling(1.0)
        .ridge(1e-6)
        .washout(100)
        .seed(seed);

    println!("| task | model | fit time | one-step NRMSE | closed-loop NRMSE ({horizon} steps) |");
    println!("|---|---|---|---|---|");
    let mut results = Vec::new();
    for (task, series) in [("Mackey-Glass", &mg), ("sine", &sine)] {
        let esn = esn_task(series, train, test, horizon, &esn_config)?;
        let lstm = lstm_task(series, train, test, horizon, window, args.epochs, seed)?;
        for (name, o) in [(format!("ESN({units})"), &esn), ("LSTM(32)".into(), &lstm)] {
            println!(
                "| {task} | {name} | {:.2} s | {:.3e} | {:.3e} |",
                o.fit_s, o.one_step, o.closed
            );
        }
        // one-step and closed-loop NRMSE of the ESN, then of the LSTM
        results.push(format!(
            "{}={:e}/{:e}/{:e}/{:e}",
            task.replace('-', "_"),
            esn.one_step,
            esn.closed,
            lstm.one_step,
            lstm.closed
        ));
        let at = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(i, &y)| ((train + 1 + i) as f64, y))
                .collect()
        };
        common::line_plot(
            &args.path(&format!(
                "{}_forecast.svg",
                task.to_lowercase().replace('-', "_")
            )),
            &format!("{task}: closed-loop forecast of {horizon} steps"),
            "t",
            "value",
            &[
                ("truth".into(), at(&series[train + 1..=train + horizon])),
                (format!("ESN({units})"), at(&esn.forecast)),
                ("LSTM(32)".into(), at(&lstm.forecast)),
            ],
            false,
        );
    }
    println!("result: {}", results.join(" "));

    // The edge of stability: one-step and closed-loop error against ρ (smaller reservoir).
    let (units_rho, train_rho) = if quick { (100, 1000) } else { (300, 3000) };
    let rhos: Vec<f64> = (1..=16).map(|k| 0.125 * k as f64).collect();
    let mut one = Vec::new();
    let mut closed = Vec::new();
    println!(
        "\n| ρ | one-step NRMSE | closed-loop NRMSE ({}) |",
        horizon / 5
    );
    println!("|---|---|---|");
    for &rho in &rhos {
        let c = esn_config.clone().units(units_rho).spectral_radius(rho);
        let o = esn_task(&mg, train_rho, test, horizon / 5, &c)?;
        println!("| {rho:.3} | {:.3e} | {:.3e} |", o.one_step, o.closed);
        one.push((rho, o.one_step));
        closed.push((rho, o.closed.min(10.0)));
    }
    common::line_plot(
        &args.path("rho.svg"),
        &format!("Mackey-Glass, ESN({units_rho}): error against the spectral radius"),
        "spectral radius ρ",
        "NRMSE",
        &[
            ("one-step".into(), one),
            (format!("closed loop, {} steps", horizon / 5), closed),
        ],
        true,
    );
    Ok(())
}
