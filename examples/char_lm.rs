//! The notes' character-level language model: learn "hello" (or `--text FILE`) one
//! character at a time. One-hot input, SimpleRNN (or `--cell lstm`) with return_sequences,
//! a per-step Dense softmax, categorical cross-entropy over the sequence; then generate from
//! the first character greedily and with a temperature.
//!
//! ```sh
//! cargo run --release --example char_lm
//! cargo run --release --example char_lm -- --text README.md --cell lstm --epochs 30
//! ```

mod common;

use ndarray::{Array2, Array3, ArrayD, Axis};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;

fn one_hot(ids: &[usize], vocab: usize) -> Array2<f32> {
    let mut m = Array2::zeros((ids.len(), vocab));
    for (t, &i) in ids.iter().enumerate() {
        m[[t, i]] = 1.0;
    }
    m
}

/// The next-character distribution after `prefix`.
fn next_dist(
    model: &mut Sequential<f32>,
    prefix: &[usize],
    vocab: usize,
) -> Result<Vec<f32>, rnnkit::Error> {
    let x = one_hot(prefix, vocab).insert_axis(Axis(0)).into_dyn();
    let p = model.predict(&x, 1)?;
    Ok(p.index_axis(Axis(0), 0)
        .index_axis(Axis(0), prefix.len() - 1)
        .iter()
        .copied()
        .collect())
}

fn generate(
    model: &mut Sequential<f32>,
    start: usize,
    len: usize,
    vocab: usize,
    temperature: Option<(f32, &mut rnnkit::StdRng)>,
) -> Result<Vec<usize>, rnnkit::Error> {
    let mut out = vec![start];
    let mut temp = temperature;
    // Keep the context bounded for long generations.
    while out.len() < len {
        let ctx = &out[out.len().saturating_sub(64)..];
        let p = next_dist(model, ctx, vocab)?;
        let next = match &mut temp {
            None => (0..vocab)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or(0),
            Some((t, rng)) => {
                let w: Vec<f32> = p.iter().map(|&q| q.max(1e-12).powf(1.0 / *t)).collect();
                let mut r = rng.random_range(0.0..w.iter().sum::<f32>());
                w.iter()
                    .position(|&wi| {
                        r -= wi;
                        r <= 0.0
                    })
                    .unwrap_or(vocab - 1)
            }
        };
        out.push(next);
    }
    Ok(out)
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("char_lm", 200);
    let text = match args.get("text") {
        Some(path) => std::fs::read_to_string(path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1)
        }),
        None => "hello".to_string(),
    };
    let chars: Vec<char> = text.chars().collect();
    let mut vocab_chars: Vec<char> = chars.clone();
    vocab_chars.sort_unstable();
    vocab_chars.dedup();
    let vocab = vocab_chars.len();
    let ids: Vec<usize> = chars
        .iter()
        .map(|c| vocab_chars.binary_search(c).expect("in vocab"))
        .collect();
    if ids.len() < 2 {
        eprintln!("the text needs at least two characters");
        std::process::exit(1);
    }

    // Training pairs: windows of `seq` characters, targets shifted by one ("hell" → "ello").
    let seq = args.num("seq", 25).min(ids.len() - 1);
    let starts: Vec<usize> = (0..ids.len() - seq).step_by((seq / 2).max(1)).collect();
    let mut x = Array3::<f32>::zeros((starts.len(), seq, vocab));
    let mut y = Array3::<f32>::zeros((starts.len(), seq, vocab));
    for (n, &s) in starts.iter().enumerate() {
        x.index_axis_mut(Axis(0), n)
            .assign(&one_hot(&ids[s..s + seq], vocab));
        y.index_axis_mut(Axis(0), n)
            .assign(&one_hot(&ids[s + 1..s + seq + 1], vocab));
    }
    let (x, y): (ArrayD<f32>, ArrayD<f32>) = (x.into_dyn(), y.into_dyn());

    let units = args.num("units", 32);
    let model = Sequential::<f32>::with_input_shape(vec![None, Some(vocab)]).seed(args.seed);
    let mut model = match args.get("cell").unwrap_or("rnn") {
        "lstm" => model.push(LstmConfig::new(units).return_sequences(true))?,
        "gru" => model.push(GruConfig::new(units).return_sequences(true))?,
        _ => model.push(SimpleRnnConfig::new(units).return_sequences(true))?,
    }
    .push(DenseConfig::new(vocab).activation(Activation::Softmax))?;
    println!("{}", model.summary());
    println!(
        "text: {} characters, vocabulary {vocab}, {} training windows of {seq}",
        chars.len(),
        starts.len()
    );

    let mut trainer = Trainer::new(Adam::new(0.01), Loss::categorical_crossentropy())
        .epochs(args.epochs)
        .seed(args.seed)
        .metrics(&[Metric::CategoricalAccuracy]);
    let (h, secs) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
    println!(
        "final loss {:.4}, accuracy {:.3}, fit took {secs:.2} s",
        h.loss().last().unwrap_or(&f64::NAN),
        h.get("accuracy")
            .and_then(|a| a.last())
            .unwrap_or(&f64::NAN)
    );

    let to_text = |v: &[usize]| v.iter().map(|&i| vocab_chars[i]).collect::<String>();
    let len = chars.len().min(200);
    let greedy = generate(&mut model, ids[0], len, vocab, None)?;
    println!("greedy from {:?}: {}", chars[0], to_text(&greedy));
    let mut rng = seeded_rng(args.seed);
    let sampled = generate(&mut model, ids[0], len, vocab, Some((0.8, &mut rng)))?;
    println!("sampled (temperature 0.8): {}", to_text(&sampled));

    common::line_plot(
        &args.path("loss.svg"),
        "Character language model: training loss",
        "epoch",
        "cross-entropy",
        &[("loss".into(), common::curve(h.loss()))],
        true,
    );
    Ok(())
}
