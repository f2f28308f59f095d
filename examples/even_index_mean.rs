//! LAB 10-2: each step of a sine window carries a random index; the target is the mean of
//! the values whose index is even. The network must remember which values count, so memory
//! matters. SimpleRNN, LSTM and GRU compared on validation MSE over three seeds.
//!
//! ```sh
//! cargo run --release --example even_index_mean
//! ```

mod common;

use ndarray::{Array2, Array3, ArrayD};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;

/// `n` samples of `steps` steps with features [sin value, random index in 0..10].
fn data(n: usize, steps: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array3::<f32>::zeros((n, steps, 2));
    let mut y = Array2::<f32>::zeros((n, 1));
    for i in 0..n {
        let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let (mut sum, mut count) = (0.0, 0.0);
        for t in 0..steps {
            let v = (phase + 0.3 * t as f32).sin();
            let idx = rng.random_range(0..10u32);
            x[[i, t, 0]] = v;
            x[[i, t, 1]] = idx as f32 / 10.0;
            if idx % 2 == 0 {
                sum += v;
                count += 1.0;
            }
        }
        y[[i, 0]] = if count > 0.0 { sum / count } else { 0.0 };
    }
    (x.into_dyn(), y.into_dyn())
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("even_index_mean", 60);
    let steps = args.num("steps", 10);
    let n = if args.quick { 200 } else { 2000 };
    let seeds = [args.seed, args.seed + 1, args.seed + 2];
    let mut curves = Vec::new();
    println!(
        "| cell | val MSE (seed {}, {}, {}) | mean |",
        seeds[0], seeds[1], seeds[2]
    );
    println!("|---|---|---|");
    let mut result = Vec::new();
    for cell in common::CELLS {
        let mut vals = Vec::new();
        for &seed in &seeds {
            let (x, y) = data(n, steps, 100 + seed);
            let (vx, vy) = data(n / 4, steps, 900 + seed);
            let mut model = common::cell_model(cell, 32, Some(steps), 2, seed)?;
            let mut trainer = Trainer::new(Adam::new(0.003), Loss::Mse)
                .epochs(args.epochs)
                .seed(seed)
                .validation_data((&vx, &vy));
            let (h, _) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
            let val = h.val_loss().unwrap_or(&[]).to_vec();
            vals.push(*val.last().unwrap_or(&f64::NAN));
            if seed == seeds[0] {
                curves.push((format!("{cell} val"), common::curve(&val)));
            }
        }
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        println!(
            "| {cell}(32) | {:.4} / {:.4} / {:.4} | {mean:.4} |",
            vals[0], vals[1], vals[2]
        );
        result.push((cell, format!("{mean:e}")));
    }
    // cell=mean validation MSE over the seeds
    common::result(&result);
    common::line_plot(
        &args.path("val_loss.svg"),
        "Mean of even-indexed values: validation loss",
        "epoch",
        "validation MSE",
        &curves,
        true,
    );
    Ok(())
}
