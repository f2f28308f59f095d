//! The notes' deep RNN with skip connections: stacked LSTMs whose outputs are added to
//! their inputs (`Add`), against the same stack without them. Task: the value the input
//! sequence held `lag` steps ago, at every step (a memory task that deep plain stacks
//! find slow to learn: each extra layer lengthens the gradient's path).
//!
//! ```sh
//! cargo run --release --example residual_rnn -- --depth 4 [--cell simple_rnn]
//! ```

mod common;

use ndarray::{Array3, ArrayD};
use rnnkit::prelude::*;
use rnnkit::rand::Rng;

const STEPS: usize = 20;
const LAG: usize = 8;
const UNITS: usize = 16;

/// `n` random sequences `[n, STEPS, 1]` and the delayed copy `[n, STEPS, 1]`.
fn data(n: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let x = Array3::<f32>::from_shape_simple_fn((n, STEPS, 1), || rng.random_range(-1.0..1.0));
    let y = Array3::from_shape_fn((n, STEPS, 1), |(i, t, _)| {
        if t >= LAG { x[[i, t - LAG, 0]] } else { 0.0 }
    });
    (x.into_dyn(), y.into_dyn())
}

/// A recurrent layer of `UNITS` returning sequences: LSTM, or SimpleRNN with `simple`.
fn cell(simple: bool) -> Box<dyn LayerConfig<f32>> {
    if simple {
        Box::new(SimpleRnnConfig::new(UNITS).return_sequences(true))
    } else {
        Box::new(LstmConfig::new(UNITS).return_sequences(true))
    }
}

/// `depth` recurrent layers of `UNITS` (sequences out) then Dense(1) per step; with `skip`,
/// each layer after the first adds its input to its output.
fn model(depth: usize, skip: bool, simple: bool, seed: u64) -> Result<Functional<f32>, Error> {
    let mut g = Graph::<f32>::new(seed);
    let x = g.input("x", &[Some(STEPS), Some(1)])?;
    let mut h = g.apply(cell(simple).as_ref(), x)?;
    for _ in 1..depth {
        let next = g.apply(cell(simple).as_ref(), h)?;
        h = if skip {
            g.apply_list(&AddConfig::new(), &[h, next])?
        } else {
            next
        };
    }
    let y = g.apply(&DenseConfig::new(1), h)?;
    let name = if skip { "residual" } else { "plain" };
    Ok(g.build(&[x], &[y])?.named(name))
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("residual_rnn", 40);
    let depth = args.num("depth", 4);
    let simple = args.get("cell") == Some("simple_rnn");
    let kind = if simple { "SimpleRNN" } else { "LSTM" };
    let n = if args.quick { 128 } else { 1024 };
    let (x, y) = data(n, args.seed);
    let mut curves = Vec::new();
    let mut result: Vec<(String, String)> = Vec::new();
    for skip in [false, true] {
        let mut m = model(depth, skip, simple, args.seed)?;
        if skip {
            println!("{}", m.summary());
        }
        let mut trainer = Trainer::new(Adam::new(0.005), Loss::Mse)
            .epochs(args.epochs)
            .batch_size(32)
            .seed(args.seed);
        let start = std::time::Instant::now();
        let h = trainer.fit(&mut m, (&x, &y))?;
        let losses = h.loss();
        let marks: Vec<String> = [1, 5, 10]
            .into_iter()
            .filter(|&e| e < losses.len())
            .chain([losses.len()])
            .map(|e| format!("{e} {:.5}", losses[e - 1]))
            .collect();
        println!(
            "{:<8} {depth} × {kind}({UNITS}): loss after epoch {} ({:.1} s, {} params)",
            m.name(),
            marks.join(", "),
            start.elapsed().as_secs_f64(),
            m.param_count()
        );
        result.push((
            m.name().to_string(),
            format!(
                "{}/{:e}/{:e}",
                m.param_count(),
                losses.first().unwrap_or(&f64::NAN),
                losses.last().unwrap_or(&f64::NAN)
            ),
        ));
        curves.push((
            format!("{} ({depth} × {kind})", m.name()),
            common::curve(h.loss()),
        ));
    }
    // model=params/first loss/final loss
    let pairs: Vec<(&str, String)> = result
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    common::result(&pairs);
    common::line_plot(
        &args.path("loss.svg"),
        &format!(
            "Recall the input {LAG} steps back: stacked {kind}s with and without skip connections"
        ),
        "epoch",
        "MSE loss",
        &curves,
        true,
    );
    Ok(())
}
