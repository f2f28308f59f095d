//! The notes' encoder-decoder (002): reverse a digit string of 1 to `--max-len` digits.
//! An encoder LSTM reads the digits; its final state is the context C. The decoder, trained
//! with teacher forcing (it reads the true previous digit), gets C
//! - as its initial state (`state`),
//! - as an extra input at every step (`input`),
//! - both (`both`),
//! - or as its initial state plus Luong attention over all encoder outputs (`attention`).
//!
//! Inference decodes one digit at a time from the trained layers (greedy, and beam search
//! for the attention model), at a constant cost per digit. The plot shows sequence accuracy
//! against input length per variant: the notes' claim is that a fixed-size context fails
//! on long inputs and attention fixes it.
//!
//! ```sh
//! cargo run --release --example seq2seq -- --max-len 12 --units 64
//! ```

mod common;

use ndarray::{Array2, ArrayD, Axis};
use rnnkit::prelude::*;
use rnnkit::rand::Rng;

const PAD: usize = 0;
const START: usize = 1;
const END: usize = 2;
/// Digits are tokens 3..13.
const V: usize = 13;
const EMB: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    State,
    Input,
    Both,
    Attention,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::State => "state",
            Variant::Input => "input",
            Variant::Both => "both",
            Variant::Attention => "attention",
        }
    }
    fn init_state(self) -> bool {
        self != Variant::Input
    }
    fn per_step(self) -> bool {
        matches!(self, Variant::Input | Variant::Both)
    }
}

/// `n` digit strings of 1..=max_len digits: encoder ids `[n, max_len]`, decoder inputs
/// `[n, max_len + 1]` (START, then the reversed digits) and targets (the reversed digits,
/// then END), padded with 0.
fn data(
    n: usize,
    max_len: usize,
    rng: &mut rnnkit::init::StdRng,
    fixed: Option<usize>,
) -> [ArrayD<f32>; 3] {
    let mut src = Array2::<f32>::zeros((n, max_len));
    let mut dec = Array2::<f32>::zeros((n, max_len + 1));
    let mut tgt = Array2::<f32>::zeros((n, max_len + 1));
    for i in 0..n {
        let len = fixed.unwrap_or_else(|| rng.random_range(1..=max_len));
        let digits: Vec<usize> = (0..len).map(|_| 3 + rng.random_range(0..10)).collect();
        dec[[i, 0]] = START as f32;
        for (t, &d) in digits.iter().enumerate() {
            src[[i, t]] = d as f32;
            let r = digits[len - 1 - t];
            dec[[i, t + 1]] = r as f32;
            tgt[[i, t]] = r as f32;
        }
        tgt[[i, len]] = END as f32;
    }
    [src.into_dyn(), dec.into_dyn(), tgt.into_dyn()]
}

/// The teacher-forced training model: [source ids, decoder ids] → per-step probabilities.
fn train_model(
    v: Variant,
    max_len: usize,
    units: usize,
    seed: u64,
) -> Result<Functional<f32>, Error> {
    let mut g = Graph::<f32>::new(seed);
    let src = g.input("src", &[Some(max_len)])?;
    let dec_in = g.input("dec_in", &[Some(max_len + 1)])?;
    let se = g.apply(
        &EmbeddingConfig::new(V, EMB).mask_zero(true).name("src_emb"),
        src,
    )?;
    let enc = g
        .rnn(
            &LstmConfig::new(units).return_sequences(true).name("enc"),
            se,
        )
        .call()?;
    let te = g.apply(
        &EmbeddingConfig::new(V, EMB).mask_zero(true).name("dec_emb"),
        dec_in,
    )?;
    let dec_x = if v.per_step() {
        let c = g.apply(&RepeatVectorConfig::new(max_len + 1), enc.states[0])?;
        g.apply_list(&ConcatenateConfig::new(), &[te, c])?
    } else {
        te
    };
    let init: &[Tensor] = if v.init_state() { &enc.states } else { &[] };
    let dec = g
        .rnn(
            &LstmConfig::new(units).return_sequences(true).name("dec"),
            dec_x,
        )
        .initial_state(init)
        .mask_of(te)
        .call()?;
    let top = if v == Variant::Attention {
        let ctx = g.apply_list(&AttentionConfig::new().name("att"), &[dec.out, enc.out])?;
        g.apply_list(&ConcatenateConfig::new(), &[dec.out, ctx])?
    } else {
        dec.out
    };
    let p = g.apply(
        &DenseConfig::new(V)
            .activation(Activation::Softmax)
            .name("probs"),
        top,
    )?;
    Ok(g.build(&[src, dec_in], &[p])?.named(v.name()))
}

/// The encoder for inference: source ids → [outputs, h, c], from the trained layers.
fn encoder(trained: &Functional<f32>, max_len: usize) -> Result<Functional<f32>, Error> {
    let mut g = Graph::<f32>::new(0);
    let src = g.input("src", &[Some(max_len)])?;
    let emb = g.import(trained, "src_emb")?;
    let se = g.reuse(emb, src)?;
    let enc = g.import(trained, "enc")?;
    let e = g.reuse_rnn(enc, se).call()?;
    g.build(&[src], &[e.out, e.states[0], e.states[1]])
}

/// The decoder one step at a time: [token, h, c, context] → [probabilities, h, c].
fn step_decoder(
    v: Variant,
    trained: &Functional<f32>,
    max_len: usize,
    units: usize,
) -> Result<StepDecoder<f32>, Error> {
    let mut g = Graph::<f32>::new(0);
    let tok = g.input("token", &[Some(1)])?;
    let h = g.input("h", &[Some(units)])?;
    let c = g.input("c", &[Some(units)])?;
    let emb = g.import(trained, "dec_emb")?;
    let mut x = g.reuse(emb, tok)?;
    let mut inputs = vec![tok, h, c];
    let context = if v == Variant::Attention {
        g.input("enc_out", &[Some(max_len), Some(units)])?
    } else {
        g.input("enc_h", &[Some(units)])?
    };
    if v.per_step() {
        let rep = g.apply(&RepeatVectorConfig::new(1), context)?;
        x = g.apply_list(&ConcatenateConfig::new(), &[x, rep])?;
    }
    if v.per_step() || v == Variant::Attention {
        inputs.push(context);
    }
    let dec = g.import(trained, "dec")?;
    let d = g.reuse_rnn(dec, x).initial_state(&[h, c]).call()?;
    let top = if v == Variant::Attention {
        let att = g.import(trained, "att")?;
        let ctx = g.reuse_list(att, &[d.out, context])?;
        g.apply_list(&ConcatenateConfig::new(), &[d.out, ctx])?
    } else {
        d.out
    };
    let dense = g.import(trained, "probs")?;
    let p = g.reuse(dense, top)?;
    StepDecoder::new(g.build(&inputs, &[p, d.states[0], d.states[1]])?, 2)
}

/// The decoders' starting state for these source rows.
fn start_state(
    v: Variant,
    enc: &Functional<f32>,
    src: &ArrayD<f32>,
    units: usize,
) -> Result<DecodeState<f32>, Error> {
    let out = enc.infer(Inputs::from(std::slice::from_ref(src)))?;
    let n = src.shape()[0];
    let states = if v.init_state() {
        vec![out[1].output.clone(), out[2].output.clone()]
    } else {
        vec![Array2::<f32>::zeros((n, units)).into_dyn(); 2]
    };
    let mask: Mask = src
        .mapv(|t| t != PAD as f32)
        .into_dimensionality()
        .expect("2-D ids");
    Ok(match v {
        Variant::Attention => {
            DecodeState::new(states, vec![out[0].output.clone()]).with_mask(0, mask)?
        }
        Variant::Input | Variant::Both => DecodeState::new(states, vec![out[1].output.clone()]),
        Variant::State => DecodeState::new(states, vec![]),
    })
}

/// Greedy decodes of every row, compared with the reversed source.
fn accuracy(
    dec: &StepDecoder<f32>,
    state: DecodeState<f32>,
    src: &ArrayD<f32>,
    max_len: usize,
) -> Result<f64, Error> {
    let out = dec.greedy(state, START, END, max_len + 1)?;
    let right = src
        .axis_iter(Axis(0))
        .zip(&out)
        .filter(|(s, o)| {
            let mut want: Vec<usize> = s
                .iter()
                .map(|&t| t as usize)
                .filter(|&t| t != PAD)
                .collect();
            want.reverse();
            &want == *o
        })
        .count();
    Ok(right as f64 / out.len() as f64)
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("seq2seq", 25);
    let max_len = args.num("max-len", if args.quick { 5 } else { 12 });
    let units = args.num("units", if args.quick { 16 } else { 64 });
    let n = args.num("samples", if args.quick { 400 } else { 8000 });
    let per_len = if args.quick { 20 } else { 200 };
    let mut rng = seeded_rng(args.seed);
    let [src, dec_in, tgt] = data(n, max_len, &mut rng, None);
    let tests: Vec<[ArrayD<f32>; 3]> = (1..=max_len)
        .map(|len| data(per_len, max_len, &mut rng, Some(len)))
        .collect();

    let mut series = Vec::new();
    let mut result: Vec<(&str, String)> = Vec::new();
    println!("| variant | params | train s | loss | sequence accuracy by length 1..{max_len} |");
    println!("|---|---|---|---|---|");
    for v in [
        Variant::State,
        Variant::Input,
        Variant::Both,
        Variant::Attention,
    ] {
        let mut model = train_model(v, max_len, units, args.seed)?;
        if v == Variant::Attention {
            println!("{}", model.summary());
        }
        let mut trainer = Trainer::new(
            Adam::new(0.005),
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        )
        .epochs(args.epochs)
        .batch_size(64)
        .seed(args.seed);
        let t0 = std::time::Instant::now();
        let h = trainer.fit(
            &mut model,
            Data::list(&[src.clone(), dec_in.clone()], std::slice::from_ref(&tgt)),
        )?;
        let secs = t0.elapsed().as_secs_f64();
        let enc = encoder(&model, max_len)?;
        let dec = step_decoder(v, &model, max_len, units)?;
        let mut accs = Vec::new();
        for [s, _, _] in &tests {
            accs.push(accuracy(&dec, start_state(v, &enc, s, units)?, s, max_len)?);
        }
        println!(
            "| {} | {} | {secs:.1} | {:.4} | {} |",
            v.name(),
            model.param_count(),
            h.loss().last().unwrap_or(&f64::NAN),
            accs.iter()
                .map(|a| format!("{a:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        // variant=params/first loss/final loss/accuracy at length 1/accuracy at max_len
        result.push((
            v.name(),
            format!(
                "{}/{:e}/{:e}/{}/{}",
                model.param_count(),
                h.loss().first().unwrap_or(&f64::NAN),
                h.loss().last().unwrap_or(&f64::NAN),
                accs[0],
                accs[max_len - 1]
            ),
        ));
        if v == Variant::Attention {
            // Beam search on the longest inputs: the best of 3 hypotheses.
            let s = &tests[max_len - 1][0];
            let rows = s.shape()[0].min(50);
            let mut right = 0;
            for r in 0..rows {
                let one = s.slice_axis(Axis(0), (r..r + 1).into()).to_owned();
                let st = start_state(v, &enc, &one, units)?;
                let best = dec.beam_search(st, START, END, max_len + 1, 3)?;
                let mut want: Vec<usize> = one
                    .iter()
                    .map(|&t| t as usize)
                    .filter(|&t| t != PAD)
                    .collect();
                want.reverse();
                right += usize::from(best.first().is_some_and(|b| b.0 == want));
            }
            println!("attention, beam search (width 3) on length {max_len}: {right}/{rows} right");
        }
        series.push((
            v.name().to_string(),
            accs.iter()
                .enumerate()
                .map(|(i, &a)| ((i + 1) as f64, a))
                .collect(),
        ));
    }
    common::result(&result);
    common::line_plot(
        &args.path("accuracy_by_length.svg"),
        "Reversing digit strings: sequence accuracy by input length",
        "input length (digits)",
        "sequence accuracy (greedy decoding)",
        &series,
        false,
    );
    Ok(())
}
