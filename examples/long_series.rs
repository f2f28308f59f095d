//! A long noisy series (100,000 steps by default) learnt with truncated backpropagation
//! through time, then forecast by streaming.
//!
//! The series `sin(2πt/50) + 0.5·sin(2πt/333) + noise` is cut into `--streams` contiguous
//! parts read side by side; an LSTM(32) → Dense(1) learns the next value with
//! [`TruncatedBptt`] windows of `--window` steps (`--bptt full` backpropagates through each
//! whole stream instead). The trained model then reads the series up to the forecast
//! origin one step at a time ([`Sequential::step`]) and forecasts 500 steps closed-loop, each
//! output fed back as the next input. Prints the time per epoch and the process's peak
//! memory (Linux `VmHWM`), which grows with the window for truncated BPTT and with the
//! series for full BPTT.
//!
//! ```sh
//! cargo run --release --example long_series
//! cargo run --release --example long_series -- --steps 10000 --bptt full
//! ```

mod common;

use ndarray::{Array2, Array3, ArrayD};
use ndarray_rand::rand_distr::{Distribution, Normal};
use rnnkit::prelude::*;
use std::time::Instant;

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("long_series", 30);
    let steps = args.num("steps", if args.quick { 5_000 } else { 100_000 });
    let horizon = 500;
    let window = args.num("window", 100).max(1);
    let full = args.get("bptt") == Some("full");
    let streams = args.num("streams", 16).clamp(1, steps / 2);

    // The series, one value per step, and a continuation for the forecast.
    let noise = Normal::new(0.0, 0.1).expect("valid normal");
    let mut rng = seeded_rng(args.seed);
    let tau = std::f64::consts::TAU;
    let clean = |t: usize| (tau * t as f64 / 50.0).sin() + 0.5 * (tau * t as f64 / 333.0).sin();
    let s: Vec<f32> = (0..steps + horizon + 1)
        .map(|t| (clean(t) + noise.sample(&mut rng)) as f32)
        .collect();

    // `streams` contiguous parts side by side; y is the next value.
    let len = steps / streams;
    let x = Array3::from_shape_fn((streams, len, 1), |(b, t, _)| s[b * len + t]).into_dyn();
    let y = Array3::from_shape_fn((streams, len, 1), |(b, t, _)| s[b * len + t + 1]).into_dyn();
    let (x, y): (ArrayD<f32>, ArrayD<f32>) = (x, y);

    let mut model = Sequential::<f32>::with_input_shape(vec![None, Some(1)])
        .seed(args.seed)
        .push(LstmConfig::new(32).return_sequences(true))?
        .push(DenseConfig::new(1))?;
    let mut trainer = Trainer::new(Adam::new(0.005), Loss::Mse)
        .epochs(args.epochs)
        .batch_size(streams)
        .shuffle(false);
    if !full {
        trainer = trainer.truncated_bptt(TruncatedBptt::new(window));
    }
    let start = Instant::now();
    let h = trainer.fit(&mut model, (&x, &y))?;
    let per_epoch = start.elapsed().as_secs_f64() / args.epochs.max(1) as f64;
    let how = if full {
        "full BPTT".to_string()
    } else {
        format!("truncated BPTT, windows of {window}")
    };
    println!(
        "{steps} steps as {streams} streams of {len}, {how}: {per_epoch:.2} s per epoch, \
         loss {:.4} → {:.4}",
        h.loss().first().unwrap_or(&f64::NAN),
        h.loss().last().unwrap_or(&f64::NAN)
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak memory (VmHWM): {mib:.0} MiB"),
        None => println!("peak memory: not available on this system"),
    }
    println!(
        "result: first_loss={:e} final_loss={:e} peak_mib={}",
        h.loss().first().unwrap_or(&f64::NAN),
        h.loss().last().unwrap_or(&f64::NAN),
        peak_rss_mib().map_or("NaN".to_string(), |m| m.to_string())
    );

    // Read the series up to the forecast origin (the last stream's end), then forecast.
    let origin = streams * len;
    let mut state = model.stream_state(1);
    let mut xt = Array2::<f32>::zeros((1, 1));
    let mut last = 0.0;
    for &v in &s[origin - 10 * window.min(len)..origin] {
        xt[[0, 0]] = v;
        last = model.step(xt.view(), &mut state)?[[0, 0]];
    }
    let mut forecast = Vec::with_capacity(horizon);
    for _ in 0..horizon {
        forecast.push(last);
        xt[[0, 0]] = last;
        last = model.step(xt.view(), &mut state)?[[0, 0]];
    }
    let truth: Vec<f32> = (origin..origin + horizon)
        .map(|t| clean(t) as f32)
        .collect();
    let mse = truth
        .iter()
        .zip(&forecast)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / horizon as f64;
    let var = {
        let m = truth.iter().map(|&v| v as f64).sum::<f64>() / horizon as f64;
        truth.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / horizon as f64
    };
    println!(
        "closed-loop forecast of {horizon} steps: NRMSE {:.3} against the noise-free signal",
        (mse / var).sqrt()
    );

    let at = |v: &[f32]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &y)| ((origin + i) as f64, y as f64))
            .collect()
    };
    common::line_plot(
        &args.path("forecast.svg"),
        &format!("Closed-loop forecast after {steps} steps ({how})"),
        "t",
        "value",
        &[
            ("noise-free signal".into(), at(&truth)),
            ("observed".into(), at(&s[origin..origin + horizon])),
            ("forecast".into(), at(&forecast)),
        ],
        false,
    );
    Ok(())
}
