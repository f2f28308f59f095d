//! A text classifier over token ids, the Functional way: ids padded with 0 →
//! `Embedding(mask_zero)` → `Bidirectional(LSTM)` → `Dense(sigmoid)`, binary
//! cross-entropy. The synthetic task depends on order: a sequence of 5–15 tokens from a
//! vocabulary of 20 holds token 1 and token 2 once each; the label is 1 when 1 comes
//! first. A bag of words cannot beat chance (both tokens are always there); the
//! recurrent model must read the order. Padding is masked, so the lengths do not matter.
//!
//! ```sh
//! cargo run --release --example text_classifier
//! ```

mod common;

use ndarray::{Array2, ArrayD};
use rnnkit::prelude::*;
use rnnkit::rand::Rng;

const VOCAB: usize = 20;
const MAX_LEN: usize = 15;

/// `n` padded token-id sequences `[n, MAX_LEN]` (integers, as `pad_sequences` gives them:
/// the model takes them as they are) and their labels `[n, 1]`.
fn data(n: usize, seed: u64) -> (Array2<usize>, ArrayD<f32>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array2::<usize>::zeros((n, MAX_LEN));
    let mut y = Array2::<f32>::zeros((n, 1));
    for i in 0..n {
        let len = rng.random_range(5..=MAX_LEN);
        for t in 0..len {
            x[[i, t]] = rng.random_range(3..VOCAB);
        }
        let a = rng.random_range(0..len);
        let mut b = rng.random_range(0..len - 1);
        if b >= a {
            b += 1;
        }
        x[[i, a]] = 1;
        x[[i, b]] = 2;
        y[[i, 0]] = f32::from(u8::from(a < b));
    }
    (x, y.into_dyn())
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("text_classifier", 30);
    let n = if args.quick { 256 } else { 2048 };
    let (x, y) = data(n, args.seed);
    let (x_test, y_test) = data(512, args.seed + 1);

    let mut g = Graph::<f32>::new(args.seed);
    let ids = g.input("ids", &[Some(MAX_LEN)])?;
    let emb = g.apply(&EmbeddingConfig::new(VOCAB, 16).mask_zero(true), ids)?;
    let h = g.apply(&BidirectionalConfig::new(LstmConfig::new(16)), emb)?;
    let p = g.apply(&DenseConfig::new(1).activation(Activation::Sigmoid), h)?;
    let mut model = g.build(&[ids], &[p])?.named("text_classifier");
    println!("{}", model.summary());

    let mut trainer = Trainer::new(
        Adam::new(0.01),
        Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    )
    .epochs(args.epochs)
    .batch_size(64)
    .metrics(&[Metric::BinaryAccuracy])
    .seed(args.seed);
    let start = std::time::Instant::now();
    let history = trainer.fit(&mut model, (&x, &y))?;
    let secs = start.elapsed().as_secs_f64();
    let logs = trainer.evaluate(&model, (&x_test, &y_test))?;
    let acc = history.get("accuracy").unwrap_or(&[]);
    println!(
        "{} epochs in {secs:.2} s: train loss {:.4}, accuracy {:.3}; test accuracy {:.3} on 512 new sequences",
        history.loss().len(),
        history.loss().last().unwrap_or(&f64::NAN),
        acc.last().unwrap_or(&f64::NAN),
        logs["accuracy"]
    );
    common::result(&[
        ("params", model.param_count().to_string()),
        ("test_accuracy", format!("{}", logs["accuracy"])),
    ]);
    common::line_plot(
        &args.path("accuracy.svg"),
        "Embedding(mask_zero) → Bidirectional(LSTM) → Dense(sigmoid): does 1 come before 2?",
        "epoch",
        "training accuracy",
        &[
            ("accuracy".into(), common::curve(acc)),
            (
                "chance".into(),
                vec![(1.0, 0.5), (acc.len().max(1) as f64, 0.5)],
            ),
        ],
        false,
    );
    Ok(())
}
