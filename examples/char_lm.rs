//! The notes' character-level language model, trained on a whole text with truncated
//! backpropagation through time and generating through the streaming API.
//!
//! The text (`--text FILE`, default a paragraph of the notes) is cut into `--streams`
//! contiguous parts read side by side (one batch row each, as a stateful Keras model reads
//! them); character ids → Embedding(16) → LSTM (or `--cell rnn|gru`) with return_sequences
//! → Dense softmax, categorical cross-entropy on the next character at every step. Training runs in
//! windows of `--window` steps that carry the state forward ([`TruncatedBptt`]), so memory
//! grows with the window, not with the text. Generation feeds one character at a time
//! through [`Sequential::step`]: the cost per character is flat in the length generated
//! (measured and printed). `hidden_unit.svg` colours the text by one hidden unit's
//! activation (notes 002's "what one cell learned").
//!
//! ```sh
//! cargo run --release --example char_lm
//! cargo run --release --example char_lm -- --text README.md --epochs 20 --units 128
//! ```

mod common;

use ndarray::{Array2, Array3, ArrayD};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use std::time::Instant;

/// A paragraph of the notes (001), the default text.
const NOTES: &str = "A recurrent neural network reads a sequence one step at a time and keeps \
a hidden state that summarises what it has seen so far. The same weights are used at every \
step, so the network can read sequences of any length. It is trained by backpropagation \
through time: the network is unrolled over the sequence and the gradient flows back through \
every step. Long sequences make this slow and the gradients vanish or explode, which is why \
gated cells such as the LSTM and the GRU were invented, and why long sequences are cut into \
windows whose state is carried forward.";

/// Samples an index from `p` sharpened or flattened by `temperature`.
fn sample(p: &[f32], temperature: f32, rng: &mut rnnkit::init::StdRng) -> usize {
    let w: Vec<f32> = p
        .iter()
        .map(|&q| q.max(1e-12).powf(1.0 / temperature))
        .collect();
    let mut r = rng.random_range(0.0..w.iter().sum::<f32>());
    w.iter()
        .position(|&wi| {
            r -= wi;
            r <= 0.0
        })
        .unwrap_or(p.len() - 1)
}

/// Generates `len` characters after priming with `prime` (ids), one streamed step each;
/// `temperature` None is greedy. Returns the ids and the seconds per generated character.
fn generate(
    model: &Sequential<f32>,
    prime: &[usize],
    len: usize,
    vocab: usize,
    mut temperature: Option<(f32, &mut rnnkit::init::StdRng)>,
) -> Result<(Vec<usize>, f64, usize), rnnkit::Error> {
    let mut state = model.stream_state(1);
    let mut x = Array2::<f32>::zeros((1, 1));
    // Time steps the model is run over: one per character fed, however long the text.
    let mut fed = 0;
    let mut feed = |id: usize, state: &mut StreamState<f32>| {
        x[[0, 0]] = id as f32;
        fed += x.nrows() * x.ncols();
        model.step(x.view(), state).map(|p| p.row(0).to_vec())
    };
    let mut p = Vec::new();
    for &id in prime {
        p = feed(id, &mut state)?;
    }
    let start = Instant::now();
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let next = match &mut temperature {
            None => (0..vocab)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or(0),
            Some((t, rng)) => sample(&p, *t, rng),
        };
        out.push(next);
        p = feed(next, &mut state)?;
    }
    let secs = start.elapsed().as_secs_f64() / len.max(1) as f64;
    Ok((out, secs, fed))
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("char_lm", 60);
    let text = match args.get("text") {
        Some(path) => std::fs::read_to_string(path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1)
        }),
        None => NOTES.to_string(),
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

    // `streams` contiguous parts of the text side by side (each at least a window long):
    // row b reads characters b·len .. (b+1)·len, and predicts each next one.
    let window = args.num("window", 25).max(1);
    let streams = args.num("streams", 8).min((ids.len() - 1) / window).max(1);
    let len = (ids.len() - 1) / streams;
    let mut x = Array2::<f32>::zeros((streams, len));
    let mut y = Array3::<f32>::zeros((streams, len, vocab));
    for b in 0..streams {
        for t in 0..len {
            x[[b, t]] = ids[b * len + t] as f32;
            y[[b, t, ids[b * len + t + 1]]] = 1.0;
        }
    }
    let (x, y): (ArrayD<f32>, ArrayD<f32>) = (x.into_dyn(), y.into_dyn());

    let units = args.num("units", if args.quick { 16 } else { 64 });
    let model = Sequential::<f32>::with_input_shape(vec![None])
        .seed(args.seed)
        .push(EmbeddingConfig::new(vocab, 16))?;
    let mut model = match args.get("cell").unwrap_or("lstm") {
        "rnn" => model.push(SimpleRnnConfig::new(units).return_sequences(true))?,
        "gru" => model.push(GruConfig::new(units).return_sequences(true))?,
        _ => model.push(LstmConfig::new(units).return_sequences(true))?,
    }
    .push(DenseConfig::new(vocab).activation(Activation::Softmax))?;
    println!("{}", model.summary());
    println!(
        "text: {} characters, vocabulary {vocab}; {streams} streams of {len} steps, \
         truncated BPTT in windows of {window}",
        chars.len()
    );

    let mut trainer = Trainer::new(Adam::new(0.01), Loss::categorical_crossentropy())
        .epochs(args.epochs)
        .batch_size(streams)
        .shuffle(false)
        .truncated_bptt(TruncatedBptt::new(window))
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
    let shown = (chars.len() - 1).min(200);
    let (greedy, _, _) = generate(&model, &ids[..1], shown, vocab, None)?;
    println!(
        "greedy from {:?}: {}{}",
        chars[0],
        chars[0],
        to_text(&greedy)
    );
    let mut rng = seeded_rng(args.seed);
    let (sampled, _, _) = generate(&model, &ids[..1], shown, vocab, Some((0.8, &mut rng)))?;
    println!(
        "sampled (temperature 0.8): {}{}",
        chars[0],
        to_text(&sampled)
    );
    // The streamed step costs the same however much has been generated.
    let mut result = vec![(
        "greedy",
        format!("{}{}", chars[0], to_text(&greedy)).replace(' ', "_"),
    )];
    let mut steps = Vec::new();
    for n in [100, 1000, 10_000] {
        let (_, per_char, fed) = generate(&model, &ids[..1], n, vocab, Some((1.0, &mut rng)))?;
        println!(
            "generating {n:>6} characters: {:.1} µs per character",
            per_char * 1e6
        );
        // Steps run per generated character (the priming character aside): 1 when each
        // character is one streamed step, growing with n if the prefix were re-read.
        steps.push(format!("{}", (fed - 1) as f64 / n as f64));
    }
    result.push(("steps_per_char", steps.join("/")));
    common::result(&result);

    // What one hidden unit does over the text: the unit whose activation varies most over
    // the first characters, each character coloured by it (notes 002's figure).
    let shown = chars.len().min(360);
    let head = Array2::from_shape_fn((1, shown), |(_, t)| ids[t] as f32).into_dyn();
    let emb = model.layers()[0].infer(Inputs::new(&head))?.output;
    let hs = model.layers()[1].infer(Inputs::new(&emb))?.output;
    let unit = (0..units)
        .max_by(|&a, &b| {
            let var = |j: usize| {
                let v: Vec<f64> = (0..shown).map(|t| f64::from(hs[[0, t, j]])).collect();
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                v.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
            };
            var(a).total_cmp(&var(b))
        })
        .unwrap_or(0);
    let activation: Vec<f64> = (0..shown).map(|t| f64::from(hs[[0, t, unit]])).collect();
    common::text_heatmap(
        &args.path("hidden_unit.svg"),
        &format!("Hidden unit {unit} over the text (red: positive, blue: negative)"),
        &chars[..shown],
        &activation,
        60,
    );

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
