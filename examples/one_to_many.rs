//! One vector in, a sequence out: the shape of the notes' image-captioning example
//! (notes 002), where one image's features start a sentence.
//!
//! ```text
//! cargo run --release --example one_to_many -- [--quick] [--seed S] [--out DIR] [--epochs N]
//! ```
//!
//! Each input is a vector `[phase, frequency]`; the target is the sequence
//! `sin(phase + frequency·t)`, t = 0..15. The model repeats the vector at every step
//! (`RepeatVector`, Keras's way of feeding one input to a sequence), reads it with an LSTM
//! that returns every step, and a Dense maps each step to a value. Prints the test error
//! and writes `sequences.svg` (three test inputs: target and prediction).

mod common;

use ndarray::{Array2, Array3, ArrayD};
use rnnkit::prelude::*;
use rnnkit::rand::Rng;

const STEPS: usize = 16;

fn data(n: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array2::<f32>::zeros((n, 2));
    let mut y = Array3::<f32>::zeros((n, STEPS, 1));
    for i in 0..n {
        let (phase, freq) = (
            rng.random_range(0.0..std::f32::consts::TAU),
            rng.random_range(0.2..0.8f32),
        );
        x[[i, 0]] = phase;
        x[[i, 1]] = freq;
        for t in 0..STEPS {
            y[[i, t, 0]] = (phase + freq * t as f32).sin();
        }
    }
    (x.into_dyn(), y.into_dyn())
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("one_to_many", 60);
    let n = if args.quick { 256 } else { 2048 };
    let (x, y) = data(n, args.seed);
    let (xt, yt) = data(256, args.seed + 1);
    let mut model = Sequential::<f32>::new(&[2])
        .seed(args.seed)
        .push(RepeatVectorConfig::new(STEPS))?
        .push(LstmConfig::new(32).return_sequences(true))?
        .push(DenseConfig::new(1))?;
    println!("{}", model.summary());
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(args.epochs)
        .batch_size(32)
        .seed(args.seed);
    let h = t.fit(&mut model, (&x, &y))?;
    let p = model.predict(Inputs::new(&xt), 256)?.remove(0);
    let mse = (&p - &yt)
        .mapv(|d| f64::from(d * d))
        .mean()
        .unwrap_or(f64::NAN);
    println!(
        "{} epochs: final training loss {:.4}, test MSE {mse:.4} (a constant 0 scores {:.4})",
        h.loss().len(),
        h.loss().last().unwrap_or(&f64::NAN),
        yt.mapv(|v| f64::from(v * v)).mean().unwrap_or(f64::NAN)
    );
    common::result(&[("test_mse", format!("{mse}"))]);
    let mut series = Vec::new();
    for i in 0..3 {
        let target: Vec<f64> = (0..STEPS).map(|s| f64::from(yt[[i, s, 0]])).collect();
        let pred: Vec<f64> = (0..STEPS).map(|s| f64::from(p[[i, s, 0]])).collect();
        series.push((format!("target {i}"), common::curve(&target)));
        series.push((format!("predicted {i}"), common::curve(&pred)));
    }
    common::line_plot(
        &args.path("sequences.svg"),
        "One vector [phase, frequency] in, 16 steps out: sin(phase + frequency·t)",
        "step",
        "value",
        &series,
        false,
    );
    Ok(())
}
