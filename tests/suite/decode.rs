//! Step-by-step decoding: a step decoder built from a seq2seq model's layers (encoder
//! states into the decoder, Luong attention over the masked encoder outputs) gives, step by
//! step, exactly the probabilities of the teacher-forced whole pass; beam search of width 1
//! is greedy, and a wide beam finds the brute-force best sequences; sampling is seeded.

use ndarray::{ArrayD, Axis, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{AttentionConfig, model::DecodeState, model::StepDecoder};

const V: usize = 5; // 0 pad, 1 start, 2 end, 3..4 symbols
const START: usize = 1;
const END: usize = 2;

/// The training graph: encoder ids, decoder ids → per-step probabilities; and the
/// encoder graph (ids → outputs, h, c).
fn models() -> Result<(Functional<f64>, Functional<f64>), Error> {
    let mut g = Graph::<f64>::new(11);
    let src = g.input("src", &[None])?;
    let tgt = g.input("tgt", &[None])?;
    let se = g.apply(
        &EmbeddingConfig::new(V, 4).mask_zero(true).name("src_emb"),
        src,
    )?;
    let enc = g
        .rnn(&LstmConfig::new(5).return_sequences(true).name("enc"), se)
        .call()?;
    let te = g.apply(&EmbeddingConfig::new(V, 4).name("tgt_emb"), tgt)?;
    let dec = g
        .rnn(&LstmConfig::new(5).return_sequences(true).name("dec"), te)
        .initial_state(&enc.states)
        .call()?;
    let ctx = g.apply_list(&AttentionConfig::new().name("att"), &[dec.out, enc.out])?;
    let both = g.apply_list(&ConcatenateConfig::new(), &[dec.out, ctx])?;
    let p = g.apply(
        &DenseConfig::new(V)
            .activation(Activation::Softmax)
            .name("probs"),
        both,
    )?;
    let train = g.build(&[src, tgt], &[p])?;

    let mut e = Graph::<f64>::new(0);
    let src = e.input("src", &[None])?;
    let emb = e.import(&train, "src_emb")?;
    let se = e.reuse(emb, src)?;
    let enc = e.import(&train, "enc")?;
    let out = e.reuse_rnn(enc, se).call()?;
    let encoder = e.build(&[src], &[out.out, out.states[0], out.states[1]])?;
    Ok((train, encoder))
}

/// The step decoder: [token, h, c, encoder outputs] → [probabilities, h, c].
fn step_decoder(train: &Functional<f64>) -> Result<StepDecoder<f64>, Error> {
    let mut g = Graph::<f64>::new(0);
    let tok = g.input("token", &[Some(1)])?;
    let h = g.input("h", &[Some(5)])?;
    let c = g.input("c", &[Some(5)])?;
    let enc_out = g.input("enc_out", &[None, Some(5)])?;
    let emb = g.import(train, "tgt_emb")?;
    let te = g.reuse(emb, tok)?;
    let dec = g.import(train, "dec")?;
    let d = g.reuse_rnn(dec, te).initial_state(&[h, c]).call()?;
    let att = g.import(train, "att")?;
    let ctx = g.reuse_list(att, &[d.out, enc_out])?;
    let both = g.apply_list(&ConcatenateConfig::new(), &[d.out, ctx])?;
    let dense = g.import(train, "probs")?;
    let p = g.reuse(dense, both)?;
    StepDecoder::new(
        g.build(&[tok, h, c, enc_out], &[p, d.states[0], d.states[1]])?,
        2,
    )
}

fn ids(rows: &[&[usize]]) -> ArrayD<f64> {
    let t = rows.iter().map(|r| r.len()).max().unwrap();
    ArrayD::from_shape_fn(IxDyn(&[rows.len(), t]), |i| {
        rows[i[0]].get(i[1]).copied().unwrap_or(0) as f64
    })
}

/// The decoder's starting state for source rows (padded with 0).
fn start(encoder: &Functional<f64>, src: &ArrayD<f64>) -> Result<DecodeState<f64>, Error> {
    let out = encoder.infer(Inputs::from(std::slice::from_ref(src)))?;
    let mask = src
        .mapv(|v| v != 0.0)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    DecodeState::new(
        vec![out[1].output.clone(), out[2].output.clone()],
        vec![out[0].output.clone()],
    )
    .with_mask(0, mask)
}

#[test]
fn each_step_equals_the_teacher_forced_whole_pass() -> Result<(), Error> {
    let (train, encoder) = models()?;
    let decoder = step_decoder(&train)?;
    let src = ids(&[&[3, 4, 4, 3], &[4, 3, 0, 0]]); // the second padded: attention masks it
    let mut state = start(&encoder, &src)?;
    let mut tokens = vec![START; 2];
    let mut fed = [vec![START], vec![START]];
    for t in 0..5 {
        let p = decoder.step(&tokens, &mut state)?;
        // The same prefix through the whole training graph.
        let tgt = ids(&[&fed[0], &fed[1]]);
        let whole = train.infer(Inputs::from(&[src.clone(), tgt]))?;
        let last = whole[0].output.index_axis(Axis(1), t).to_owned();
        for (a, b) in p.iter().zip(last.iter()) {
            assert!((a - b).abs() < 1e-12, "step {t}: {a} vs {b}");
        }
        // Feed the less likely symbol, to walk a path greedy would not.
        for (r, row) in p.rows().into_iter().enumerate() {
            tokens[r] = if row[3] < row[4] { 3 } else { 4 };
            fed[r].push(tokens[r]);
        }
    }
    Ok(())
}

/// Every sequence of up to `len` tokens then END, with its exact log-probability.
fn brute_force(
    decoder: &StepDecoder<f64>,
    state: &DecodeState<f64>,
    len: usize,
) -> Vec<(Vec<usize>, f64)> {
    let mut out = Vec::new();
    let mut frontier = vec![(Vec::<usize>::new(), 0.0, state.clone())];
    for depth in 0..=len {
        let mut next = Vec::new();
        for (seq, lp, st) in frontier {
            let mut st2 = st.clone();
            let last = seq.last().copied().unwrap_or(START);
            let p = decoder.step(&[last], &mut st2).unwrap();
            out.push((seq.clone(), lp + p[[0, END]].ln()));
            if depth < len {
                for k in (0..V).filter(|&k| k != END) {
                    let mut s = seq.clone();
                    s.push(k);
                    next.push((s, lp + p[[0, k]].ln(), st2.clone()));
                }
            }
        }
        frontier = next;
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

#[test]
fn beam_search_is_greedy_at_width_1_and_exact_when_wide() -> Result<(), Error> {
    let (train, encoder) = models()?;
    let decoder = step_decoder(&train)?;
    let src = ids(&[&[4, 3, 3]]);
    let st = start(&encoder, &src)?;
    let greedy = decoder.greedy(st.clone(), START, END, 6)?;
    let beam1 = decoder.beam_search(st.clone(), START, END, 6, 1)?;
    assert_eq!(beam1[0].0, greedy[0]);
    // With a beam wider than every set of candidates (4 continuations and END per prefix,
    // 4^4 prefixes at the fifth step) the search is exhaustive over sequences of up to 4
    // tokens, and its best ones are the brute-force best.
    let exact = brute_force(&decoder, &st, 4);
    let wide = decoder.beam_search(st.clone(), START, END, 5, 2000)?;
    let finished: Vec<_> = wide.iter().filter(|(s, _)| s.len() <= 4).take(5).collect();
    assert_eq!(
        finished.len(),
        5,
        "the wide beam's five best of up to 4 tokens"
    );
    assert!(exact.len() >= 5, "{} brute-force sequences", exact.len());
    for ((s, lp), (es, elp)) in finished.iter().zip(&exact) {
        assert_eq!(s, es);
        assert!((lp - elp).abs() < 1e-9, "{lp} vs {elp}");
    }
    // Sampling: seeded, and near-greedy at a low temperature.
    let a = decoder.sample(st.clone(), START, END, 6, 1.0, &mut seeded_rng(3))?;
    let b = decoder.sample(st.clone(), START, END, 6, 1.0, &mut seeded_rng(3))?;
    assert_eq!(a, b);
    let cold = decoder.sample(st.clone(), START, END, 6, 1e-3, &mut seeded_rng(3))?;
    assert_eq!(cold, greedy);
    assert!(
        decoder
            .sample(st, START, END, 6, 0.0, &mut seeded_rng(3))
            .is_err()
    );
    Ok(())
}

#[test]
fn zero_tokens_and_bad_masks_are_answered_not_ignored() -> Result<(), Error> {
    let (train, encoder) = models()?;
    let decoder = step_decoder(&train)?;
    let st = start(&encoder, &ids(&[&[4, 3, 3]]))?;
    // max_len 0: the one hypothesis is the empty sequence (was an empty list).
    assert_eq!(
        decoder.beam_search(st.clone(), START, END, 0, 3)?,
        vec![(Vec::new(), 0.0)]
    );
    assert_eq!(
        decoder.greedy(st.clone(), START, END, 0)?,
        vec![Vec::<usize>::new()]
    );
    // A mask for a context input that does not exist, or of the wrong shape.
    let mask = ndarray::Array2::from_elem((1, 3), true);
    let e = st.clone().with_mask(1, mask.clone()).unwrap_err();
    assert!(e.to_string().contains("context input 1"), "{e}");
    let e = st
        .clone()
        .with_mask(0, ndarray::Array2::from_elem((1, 4), true))
        .unwrap_err();
    assert!(e.to_string().contains("[batch, steps]"), "{e}");
    assert!(st.with_mask(0, mask).is_ok());
    // A state count that overflows `1 + states`.
    let mut g = Graph::<f64>::new(0);
    let x = g.input("x", &[Some(1)])?;
    let y = g.apply(&DenseConfig::new(2), x)?;
    let e = StepDecoder::new(g.build(&[x], &[y])?, usize::MAX).unwrap_err();
    assert!(e.to_string().contains("states"), "{e}");
    Ok(())
}

#[test]
fn a_model_that_is_not_a_step_decoder_is_refused() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let x = g.input("x", &[Some(3)])?;
    let y = g.apply(&DenseConfig::new(2), x)?;
    let e = StepDecoder::new(g.build(&[x], &[y])?, 1).unwrap_err();
    assert!(e.to_string().contains("step decoder"), "{e}");
    let (train, encoder) = models()?;
    let decoder = step_decoder(&train)?;
    let mut st = start(&encoder, &ids(&[&[3]]))?;
    let e = decoder.step(&[START, START], &mut st).unwrap_err();
    assert!(e.to_string().contains("tokens"), "{e}");
    Ok(())
}

/// An inference graph reuses the trained layers through the handles their graph gave them
/// at training time: no layer was named (issue #26 item 7), and the encoder built from the
/// handles gives the training graph's encoder numbers bit for bit.
#[test]
fn an_inference_graph_reuses_unnamed_layers_by_handle() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(5);
    let src = g.input("src", &[None])?;
    let tgt = g.input("tgt", &[None])?;
    let se = g.apply(&EmbeddingConfig::new(V, 4), src)?;
    let emb = g.layer_of(se)?;
    let enc = g.rnn(&GruConfig::new(5), se).call()?;
    let te = g.apply(&EmbeddingConfig::new(V, 4), tgt)?;
    let dec = g
        .rnn(&GruConfig::new(5).return_sequences(true), te)
        .initial_state(&enc.states)
        .call()?;
    let p = g.apply(
        &DenseConfig::new(V).activation(Activation::Softmax),
        dec.out,
    )?;
    let dense = g.layer_of(p)?;
    let train = g.build(&[src, tgt], &[p])?;
    // Keras's automatic names; the handles find the same layers.
    assert_eq!(train.layer(enc.layer).map(|l| l.name()), Some("gru"));
    assert_eq!(train.layer(dec.layer).map(|l| l.name()), Some("gru_1"));
    assert_eq!(train.clone().layer(dense).map(|l| l.name()), Some("dense"));

    // The encoder alone, from the handles.
    let mut e = Graph::<f64>::new(0);
    let s = e.input("src", &[None])?;
    let emb = e.import(&train, emb)?;
    let x = e.reuse(emb, s)?;
    let gru = e.import(&train, enc.layer)?;
    let h = e.reuse_rnn(gru, x).call()?;
    let encoder = e.build(&[s], &[h.out])?;
    let ids = ids(&[&[3, 4, 4], &[4, 3, 3]]);
    let got = encoder.infer(Inputs::from(std::slice::from_ref(&ids)))?;
    let mut by_hand = Graph::<f64>::new(0);
    let s2 = by_hand.input("src", &[None])?;
    let emb2 = by_hand.import(&train, "embedding")?;
    let x2 = by_hand.reuse(emb2, s2)?;
    let gru2 = by_hand.import(&train, "gru")?;
    let h2 = by_hand.reuse_rnn(gru2, x2).call()?;
    let named = by_hand.build(&[s2], &[h2.out])?;
    assert_eq!(got, named.infer(Inputs::from(std::slice::from_ref(&ids)))?);

    // A handle finds layers only in the model its own graph built.
    assert!(encoder.layer(enc.layer).is_none());
    let mut other = Graph::<f64>::new(0);
    let e = other.import(&encoder, dense).unwrap_err().to_string();
    assert!(e.contains("no such layer"), "{e}");
    Ok(())
}
