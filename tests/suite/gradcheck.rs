//! Finite-difference gradient checks in f64 for every layer type and option.
//!
//! L = Σ y ⊙ r with a fixed random r; five-point central differences (h = 1e-5) against the
//! analytic BPTT gradient for every weight and every input entry. Relative error
//! `|a − n| / max(|a| + |n|, 1e-4)` must stay below 1e-6 (the floor keeps near-zero entries,
//! where only round-off is left, from dominating).

use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use rnnkit::{LayerConfig, Mask};

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.8..0.8))
}

fn loss(model: &mut Sequential<f64>, x: &ArrayD<f64>, mask: Option<&Mask>, r: &ArrayD<f64>) -> f64 {
    (model
        .forward(Inputs::new(x).mask(mask).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap()
        * r)
        .sum()
}

fn five_point(mut f: impl FnMut(f64) -> f64) -> f64 {
    let h = 1e-5;
    (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h)
}

fn rel_err(a: f64, n: f64) -> f64 {
    (a - n).abs() / (a.abs() + n.abs()).max(1e-4)
}

/// Checks every weight and input gradient of `model` on a random input of `shape`.
fn check(label: &str, mut model: Sequential<f64>, shape: &[usize], mask: Option<Mask>) {
    let mut rng = seeded_rng(42);
    let weights: Vec<_> = model
        .get_weights()
        .iter()
        .map(|w| uniform(w.shape(), &mut rng))
        .collect();
    model.set_weights(&weights).unwrap();
    let mut x = uniform(shape, &mut rng);
    if let Some(m) = &mask {
        // Padding is zeros, as a Masking layer would see it.
        for ((b, t), &keep) in m.indexed_iter() {
            if !keep {
                x.index_axis_mut(ndarray::Axis(0), b)
                    .index_axis_mut(ndarray::Axis(0), t)
                    .fill(0.0);
            }
        }
    }
    let y = model
        .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let r = uniform(y.shape(), &mut rng);
    model.zero_grad();
    let dx = model
        .backward(&[OutputGrads::new(&r)])
        .map(|mut d| d.remove(0))
        .unwrap();

    let mut grads = Vec::new();
    model.visit_params(&mut |n, p| grads.push((n.to_string(), p.grad().clone())));
    let mut checked = 0;
    for (pi, (name, g)) in grads.iter().enumerate() {
        for idx in 0..g.len() {
            let numeric = five_point(|d| {
                let mut k = 0;
                model.visit_params_mut(&mut |_, p| {
                    if k == pi {
                        p.value_mut().as_slice_mut().unwrap()[idx] += d;
                    }
                    k += 1;
                });
                let l = loss(&mut model, &x, mask.as_ref(), &r);
                let mut k = 0;
                model.visit_params_mut(&mut |_, p| {
                    if k == pi {
                        p.value_mut().as_slice_mut().unwrap()[idx] -= d;
                    }
                    k += 1;
                });
                l
            });
            let analytic = g.as_slice().unwrap()[idx];
            assert!(
                rel_err(analytic, numeric) < 1e-6,
                "{label}: d{name}[{idx}] analytic {analytic:e} vs numeric {numeric:e}"
            );
            checked += 1;
        }
    }
    for idx in 0..x.len() {
        let numeric = five_point(|d| {
            let mut xp = x.clone();
            xp.as_slice_mut().unwrap()[idx] += d;
            loss(&mut model, &xp, mask.as_ref(), &r)
        });
        let analytic = dx.as_slice().unwrap()[idx];
        assert!(
            rel_err(analytic, numeric) < 1e-6,
            "{label}: dx[{idx}] analytic {analytic:e} vs numeric {numeric:e}"
        );
    }
    assert!(checked > 0 || grads.is_empty());
}

fn model(input: &[usize], layers: Vec<Box<dyn LayerConfig<f64>>>) -> Sequential<f64> {
    let mut m = Sequential::new(input);
    for l in layers {
        m.add(l.as_ref()).unwrap();
    }
    m
}

const SEQ: [usize; 3] = [2, 4, 3]; // batch 2, steps 4, features 3

#[test]
fn simple_rnn_gradients_match_finite_differences() {
    for act in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Linear,
    ] {
        for rs in [false, true] {
            for gb in [false, true] {
                for bias in [true, false] {
                    let cfg = SimpleRnnConfig::new(3)
                        .activation(act)
                        .return_sequences(rs)
                        .go_backwards(gb)
                        .use_bias(bias);
                    check(
                        &format!("SimpleRnn {act} rs={rs} gb={gb} bias={bias}"),
                        model(&SEQ[1..], vec![Box::new(cfg)]),
                        &SEQ,
                        None,
                    );
                }
            }
        }
    }
}

#[test]
fn lstm_gradients_match_finite_differences() {
    for rs in [false, true] {
        for gb in [false, true] {
            for bias in [true, false] {
                let cfg = LstmConfig::new(3)
                    .return_sequences(rs)
                    .go_backwards(gb)
                    .use_bias(bias);
                check(
                    &format!("Lstm rs={rs} gb={gb} bias={bias}"),
                    model(&SEQ[1..], vec![Box::new(cfg)]),
                    &SEQ,
                    None,
                );
            }
        }
    }
    let cfg = LstmConfig::new(2)
        .activation(Activation::Relu)
        .recurrent_activation(Activation::Sigmoid);
    check(
        "Lstm relu",
        model(&SEQ[1..], vec![Box::new(cfg)]),
        &SEQ,
        None,
    );
}

#[test]
fn gru_gradients_match_finite_differences() {
    for reset_after in [true, false] {
        for rs in [false, true] {
            for gb in [false, true] {
                for bias in [true, false] {
                    let cfg = GruConfig::new(3)
                        .reset_after(reset_after)
                        .return_sequences(rs)
                        .go_backwards(gb)
                        .use_bias(bias);
                    check(
                        &format!("Gru reset_after={reset_after} rs={rs} gb={gb} bias={bias}"),
                        model(&SEQ[1..], vec![Box::new(cfg)]),
                        &SEQ,
                        None,
                    );
                }
            }
        }
    }
}

#[test]
fn dense_gradients_match_finite_differences() {
    for act in [
        Activation::Linear,
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Softmax,
    ] {
        for bias in [true, false] {
            let cfg = || DenseConfig::new(3).activation(act).use_bias(bias);
            check(
                &format!("Dense 2-D {act}"),
                model(&[4], vec![Box::new(cfg())]),
                &[3, 4],
                None,
            );
            check(
                &format!("Dense 3-D {act}"),
                model(&SEQ[1..], vec![Box::new(cfg())]),
                &SEQ,
                None,
            );
        }
    }
}

#[test]
fn bidirectional_gradients_match_finite_differences() {
    for mode in [
        MergeMode::Concat,
        MergeMode::Sum,
        MergeMode::Mul,
        MergeMode::Ave,
    ] {
        for rs in [false, true] {
            let layers: Vec<Box<dyn LayerConfig<f64>>> = vec![
                Box::new(
                    BidirectionalConfig::new(SimpleRnnConfig::new(2).return_sequences(rs))
                        .merge_mode(mode),
                ),
                Box::new(
                    BidirectionalConfig::new(LstmConfig::new(2).return_sequences(rs))
                        .merge_mode(mode),
                ),
                Box::new(
                    BidirectionalConfig::new(GruConfig::new(2).return_sequences(rs))
                        .merge_mode(mode),
                ),
            ];
            for l in layers {
                check(
                    &format!("Bidirectional {l:?}"),
                    model(&SEQ[1..], vec![l]),
                    &SEQ,
                    None,
                );
            }
        }
    }
}

fn ragged_mask() -> Mask {
    // lengths 4, 2 and a sample with a hole in the middle
    Array2::from_shape_vec(
        (3, 4),
        vec![
            true, true, true, true, true, true, false, false, true, false, true, false,
        ],
    )
    .unwrap()
}

#[test]
fn masked_stack_gradients_match_finite_differences() {
    let shape = [3, 4, 2];
    for zero in [false, true] {
        let layers: Vec<Box<dyn LayerConfig<f64>>> = vec![
            Box::new(
                SimpleRnnConfig::new(3)
                    .return_sequences(true)
                    .zero_output_for_mask(zero),
            ),
            Box::new(LstmConfig::new(3).return_sequences(true).go_backwards(true)),
            Box::new(GruConfig::new(2).reset_after(false).return_sequences(true)),
            Box::new(BidirectionalConfig::new(
                GruConfig::new(2).return_sequences(true),
            )),
            Box::new(DenseConfig::new(2).activation(Activation::Tanh)),
        ];
        check(
            &format!("masked stack zero_output={zero}"),
            model(&shape[1..], layers),
            &shape,
            Some(ragged_mask()),
        );
    }
    let layers: Vec<Box<dyn LayerConfig<f64>>> = vec![
        Box::new(MaskingConfig::new(0.0)),
        Box::new(BidirectionalConfig::new(LstmConfig::new(2))),
        Box::new(DenseConfig::new(1)),
    ];
    check(
        "Masking → Bidirectional(LSTM) last",
        model(&shape[1..], layers),
        &shape,
        Some(ragged_mask()),
    );
}

#[test]
fn leaky_rnn_gradients_match_finite_differences() {
    for (label, cfg) in [
        ("scalar leak", LeakyRnnConfig::new(3).leak(0.3)),
        (
            "per-unit leaks, relu, no bias",
            LeakyRnnConfig::new(3)
                .leak_per_unit(&[1.0, 0.5, 0.05])
                .activation(Activation::Relu)
                .use_bias(false),
        ),
        ("learned leak", LeakyRnnConfig::new(3).train_leak(true)),
        ("skip d=2", LeakyRnnConfig::new(3).leak(0.6).skip_delay(2)),
        (
            "clockwork 1, 2, 3, learned leak, skip d=3",
            LeakyRnnConfig::new(3)
                .clock_periods(&[1, 2, 3])
                .train_leak(true)
                .skip_delay(3),
        ),
        (
            "learned leak, sigmoid, backwards",
            LeakyRnnConfig::new(3)
                .train_leak(true)
                .activation(Activation::Sigmoid)
                .go_backwards(true),
        ),
    ] {
        for rs in [false, true] {
            let m = model(&SEQ[1..], vec![Box::new(cfg.clone().return_sequences(rs))]);
            check(&format!("leaky {label} rs={rs}"), m, &SEQ, None);
        }
        // Masked steps carry the state, learned leak included.
        let m = model(
            &SEQ[1..],
            vec![Box::new(cfg.clone().return_sequences(true))],
        );
        check(
            &format!("leaky {label} masked"),
            m,
            &[3, 4, 3],
            Some(ragged_mask()),
        );
    }
    let bi = model(
        &SEQ[1..],
        vec![Box::new(
            BidirectionalConfig::new(
                LeakyRnnConfig::new(2)
                    .train_leak(true)
                    .return_sequences(true),
            )
            .merge_mode(MergeMode::Concat),
        )],
    );
    check("bidirectional learned leak", bi, &SEQ, None);
}
