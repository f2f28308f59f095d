//! Graph models against five-point finite differences in f64: every float input and every
//! weight of small graphs using each new piece — Attention (dot, scaled, concat),
//! AdditiveAttention (with and without scale, with a key), the four merges under masks,
//! masked GlobalAveragePooling1D, RepeatVector, shared layers, states passed from an encoder
//! into a decoder and out as outputs.

use ndarray::{ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use rnnkit::{AdditiveAttentionConfig, AttentionConfig, Tensor, layers::ScoreMode};

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.9..0.9))
}

fn five_point(mut f: impl FnMut(f64) -> f64) -> f64 {
    let h = 1e-5;
    (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h)
}

/// `L = Σ_k Σ y_k ⊙ r_k` over the outputs of a training pass of a copy of `m`.
fn loss(m: &Functional<f64>, xs: &[ArrayD<f64>], rs: &[ArrayD<f64>]) -> f64 {
    let mut c = m.clone();
    let out = c.forward(Inputs::from(xs).mode(Mode::Train)).unwrap();
    out.iter().zip(rs).map(|(o, r)| (&o.output * r).sum()).sum()
}

/// Checks every gradient of `m` at `xs`; `float` marks the inputs that take gradients
/// (token ids do not).
fn check(label: &str, m: &Functional<f64>, xs: &[ArrayD<f64>], float: &[bool]) {
    let mut rng = seeded_rng(5);
    let mut probe = m.clone();
    let out = probe.forward(Inputs::from(xs).mode(Mode::Train)).unwrap();
    let rs: Vec<_> = out
        .iter()
        .map(|o| uniform(o.output.shape(), &mut rng))
        .collect();
    Module::zero_grad(&mut probe);
    let dxs = probe
        .backward(&rs.iter().map(OutputGrads::new).collect::<Vec<_>>())
        .unwrap();
    let rel = |a: f64, n: f64| (a - n).abs() / (a.abs() + n.abs()).max(1e-4);
    for (k, x) in xs.iter().enumerate().filter(|(k, _)| float[*k]) {
        for i in 0..x.len() {
            let num = five_point(|h| {
                let mut xh = xs.to_vec();
                xh[k].as_slice_mut().unwrap()[i] += h;
                loss(m, &xh, &rs)
            });
            let a = dxs[k].as_slice().unwrap()[i];
            assert!(rel(a, num) < 1e-6, "{label}: input {k}[{i}]: {a} vs {num}");
        }
    }
    let mut grads = Vec::new();
    probe.visit_params(&mut |name, p| grads.push((name.to_string(), p.grad().clone())));
    let weights = m.get_weights();
    for (wi, w) in weights.iter().enumerate() {
        for i in 0..w.len() {
            let num = five_point(|h| {
                let mut mw = m.clone();
                let mut ws = weights.clone();
                ws[wi].as_slice_mut().unwrap()[i] += h;
                mw.set_weights(&ws).unwrap();
                loss(&mw, xs, &rs)
            });
            let (name, g) = &grads[wi];
            let a = g.as_slice().unwrap()[i];
            assert!(rel(a, num) < 1e-6, "{label}: {name}[{i}]: {a} vs {num}");
        }
    }
    // Without input gradients (as the trainer asks): the same weight gradients, and
    // empty arrays for the inputs.
    let mut lean = m.clone();
    lean.forward(Inputs::from(xs).mode(Mode::Train)).unwrap();
    Module::zero_grad(&mut lean);
    let gs: Vec<_> = rs
        .iter()
        .map(|r| OutputGrads::new(r).input_grads(false))
        .collect();
    let none = lean.backward(&gs).unwrap();
    assert!(none.iter().all(|d| d.is_empty()), "{label}: input grads");
    let mut k = 0;
    lean.visit_params(&mut |name, p| {
        assert_eq!(p.grad(), &grads[k].1, "{label}: {name} without input grads");
        k += 1;
    });
    assert_eq!(k, grads.len());
}

/// Token ids with zeros (padding) to give masks: `[b, t]`.
fn ids(rows: &[&[usize]]) -> ArrayD<f64> {
    let t = rows[0].len();
    ArrayD::from_shape_fn(IxDyn(&[rows.len(), t]), |i| rows[i[0]][i[1]] as f64)
}

/// A model, its inputs, and which inputs take gradients.
type Case = (Functional<f64>, Vec<ArrayD<f64>>, Vec<bool>);

/// Query and value sequences, the value masked through an Embedding with `mask_zero`.
fn attention_graph(layer: &dyn LayerConfig<f64>, with_key: bool) -> Result<Case, Error> {
    let mut rng = seeded_rng(9);
    let mut g = Graph::<f64>::new(3);
    let q = g.input("q", &[Some(3), Some(4)])?;
    let v_ids = g.input("v_ids", &[Some(5)])?;
    let v = g.apply(&EmbeddingConfig::new(6, 4).mask_zero(true), v_ids)?;
    let mut list: Vec<Tensor> = vec![q, v];
    let mut xs = vec![
        uniform(&[2, 3, 4], &mut rng),
        ids(&[&[1, 2, 3, 0, 0], &[4, 5, 1, 2, 0]]),
    ];
    let mut float = vec![true, false];
    if with_key {
        let k = g.input("k", &[Some(5), Some(4)])?;
        list.push(k);
        xs.push(uniform(&[2, 5, 4], &mut rng));
        float.push(true);
    }
    let ctx = g.apply_list(layer, &list)?;
    let inputs: Vec<Tensor> = [q, v_ids]
        .into_iter()
        .chain(with_key.then(|| list[2]))
        .collect();
    let m = g.build(&inputs, &[ctx])?;
    Ok((m, xs, float))
}

#[test]
fn attention_layers_match_finite_differences() -> Result<(), Error> {
    let cases: Vec<(&str, Box<dyn LayerConfig<f64>>, bool)> = vec![
        ("dot", Box::new(AttentionConfig::new()), false),
        (
            "dot scaled",
            Box::new(AttentionConfig::new().use_scale(true)),
            true,
        ),
        (
            "concat",
            Box::new(AttentionConfig::new().score_mode(ScoreMode::Concat)),
            false,
        ),
        (
            "concat scaled",
            Box::new(
                AttentionConfig::new()
                    .score_mode(ScoreMode::Concat)
                    .use_scale(true),
            ),
            true,
        ),
        ("additive", Box::new(AdditiveAttentionConfig::new()), true),
        (
            "additive unscaled",
            Box::new(AdditiveAttentionConfig::new().use_scale(false)),
            false,
        ),
    ];
    for (label, layer, with_key) in &cases {
        let (mut m, xs, float) = attention_graph(layer.as_ref(), *with_key)?;
        // Move the scalars off 1 so that their gradients are not special.
        let mut ws = m.get_weights();
        for w in ws.iter_mut().filter(|w| w.ndim() == 0) {
            w.fill(1.3);
        }
        m.set_weights(&ws)?;
        check(label, &m, &xs, &float);
    }
    Ok(())
}

#[test]
fn merges_masks_shared_layers_and_states_match_finite_differences() -> Result<(), Error> {
    let mut rng = seeded_rng(4);
    let mut g = Graph::<f64>::new(8);
    let a_ids = g.input("a_ids", &[Some(4)])?;
    let b = g.input("b", &[Some(4), Some(3)])?;
    let a = g.apply(&EmbeddingConfig::new(5, 3).mask_zero(true), a_ids)?;
    // A shared Dense on both branches.
    let pa = g.apply(&DenseConfig::new(3).activation(Activation::Tanh), a)?;
    let dense = g.layer_of(pa)?;
    let pb = g.reuse(dense, b)?;
    let add = g.apply_list(&AddConfig::new(), &[pa, pb])?;
    let mul = g.apply_list(&MultiplyConfig::new(), &[pa, pb])?; // only `pa` masked: masked entries as 1
    let ave = g.apply_list(&AverageConfig::new(), &[pa, pa])?; // both masked: zero where masked
    let cat = g.apply_list(&ConcatenateConfig::new(), &[add, mul, ave])?;
    let time = g.apply_list(&ConcatenateConfig::new().axis(1), &[pa, pb])?;
    // An encoder whose states start a decoder; the decoder's states are outputs too.
    let enc = g.rnn(&LstmConfig::new(3), cat).call()?;
    let dec = g
        .rnn(&LstmConfig::new(3).return_sequences(true), time)
        .initial_state(&enc.states)
        .call()?;
    let y = g.apply(&DenseConfig::new(2), dec.out)?;
    // Mask-aware mean over time of a masked sequence (the mask of both Average inputs).
    let pooled = g.apply(&GlobalAveragePooling1DConfig::new(), ave)?;
    let m = g.build(&[a_ids, b], &[y, dec.states[1], pooled])?;
    let xs = vec![
        ids(&[&[1, 2, 0, 0], &[0, 3, 4, 1]]),
        uniform(&[2, 4, 3], &mut rng),
    ];
    check("merges", &m, &xs, &[false, true]);

    // GRU and SimpleRNN states, Bidirectional states out.
    let mut g = Graph::<f64>::new(2);
    let x = g.input("x", &[Some(3), Some(2)])?;
    let bi = g
        .rnn(&BidirectionalConfig::new(GruConfig::new(2)), x)
        .call()?;
    let h = g.apply_list(&ConcatenateConfig::new(), &bi.states)?;
    let rep = g.apply(&RepeatVectorConfig::new(3), h)?;
    let s = g.rnn(&SimpleRnnConfig::new(4), rep).call()?;
    let m = g.build(&[x], &[bi.out, s.states[0]])?;
    check("states", &m, &[uniform(&[2, 3, 2], &mut rng)], &[true]);
    Ok(())
}
