//! Dropout and recurrent dropout in the recurrent layers: gradients against finite
//! differences with the masks held fixed, the expectation over masks, reproducibility,
//! identity at inference, and bad rates.
//!
//! The masks come from the layer's own seeded stream; a copy of a layer made before a
//! training pass draws the same masks in its next training pass, which is how the finite
//! differences below hold them fixed.

use ndarray::{Array3, ArrayD, Axis, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.8..0.8))
}

fn model(layer: &dyn LayerConfig<f64>, steps: usize) -> Sequential<f64> {
    let mut m = Sequential::<f64>::new(&[steps, 3]);
    m.add(layer).unwrap();
    m
}

/// `L = Σ y ⊙ r` of a training pass of a copy of `m` (so with `m`'s next masks).
fn loss(m: &Sequential<f64>, x: &ArrayD<f64>, r: &ArrayD<f64>) -> f64 {
    let mut c = m.clone();
    (c.forward(Inputs::new(x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap()
        * r)
        .sum()
}

fn five_point(mut f: impl FnMut(f64) -> f64) -> f64 {
    let h = 1e-5;
    (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h)
}

fn check_gradients(label: &str, layer: &dyn LayerConfig<f64>, plain: &dyn LayerConfig<f64>) {
    let (b, t) = (4, 5);
    let mut rng = seeded_rng(7);
    let m0 = model(layer, t);
    let x = uniform(&[b, t, 3], &mut rng);
    let mut m = m0.clone();
    let y = m
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let r = uniform(y.shape(), &mut rng);
    m.zero_grad();
    let dx = m
        .backward(&[OutputGrads::new(&r)])
        .map(|mut d| d.remove(0))
        .unwrap();
    // The masks really drop something (else this checks nothing new).
    let plain = model(plain, t);
    let mut p = plain.clone();
    p.set_weights(&m0.get_weights()).unwrap();
    let y_plain = p
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    assert!(
        (&y - &y_plain).iter().any(|d| d.abs() > 1e-3),
        "{label}: nothing dropped"
    );

    let mut grads = Vec::new();
    m.visit_params(&mut |_, p| grads.push(p.grad().clone()));
    let weights = m0.get_weights();
    let rel = |a: f64, n: f64| (a - n).abs() / (a.abs() + n.abs()).max(1e-4);
    for (wi, w) in weights.iter().enumerate() {
        for i in 0..w.len() {
            let num = five_point(|h| {
                let mut mw = m0.clone();
                let mut ws = weights.clone();
                ws[wi].as_slice_mut().unwrap()[i] += h;
                mw.set_weights(&ws).unwrap();
                loss(&mw, &x, &r)
            });
            let a = grads[wi].as_slice().unwrap()[i];
            assert!(
                rel(a, num) < 1e-6,
                "{label}: weight {wi}[{i}]: {a} vs {num}"
            );
        }
    }
    for i in 0..x.len() {
        let num = five_point(|h| {
            let mut xh = x.clone();
            xh.as_slice_mut().unwrap()[i] += h;
            loss(&m0, &xh, &r)
        });
        let a = dx.as_slice().unwrap()[i];
        assert!(rel(a, num) < 1e-6, "{label}: x[{i}]: {a} vs {num}");
    }
}

/// A boxed layer configuration.
type Config = Box<dyn LayerConfig<f64>>;

#[test]
fn gradients_with_the_masks_held_fixed() {
    let rnn = || SimpleRnnConfig::new(4).return_sequences(true);
    let lstm = || LstmConfig::new(4).return_sequences(true);
    let gru = || GruConfig::new(4).return_sequences(true);
    let gru_before = || GruConfig::new(4).return_sequences(true).reset_after(false);
    let leaky = || {
        LeakyRnnConfig::new(4)
            .leak_per_unit(&[0.9, 0.5, 0.3, 0.1])
            .train_leak(true)
            .return_sequences(true)
    };
    let cases: Vec<(&str, Config, Config)> = vec![
        (
            "SimpleRnn dropout + recurrent_dropout",
            Box::new(rnn().dropout(0.3).recurrent_dropout(0.4).seed(1)),
            Box::new(rnn()),
        ),
        (
            "Lstm dropout + recurrent_dropout",
            Box::new(lstm().dropout(0.4).recurrent_dropout(0.3).seed(2)),
            Box::new(lstm()),
        ),
        (
            "Lstm recurrent_dropout",
            Box::new(lstm().recurrent_dropout(0.5).seed(5)),
            Box::new(lstm()),
        ),
        (
            "Gru dropout",
            Box::new(gru().dropout(0.5).seed(3)),
            Box::new(gru()),
        ),
        (
            "Gru dropout + recurrent_dropout",
            Box::new(gru().dropout(0.3).recurrent_dropout(0.5).seed(6)),
            Box::new(gru()),
        ),
        (
            "Gru reset_before recurrent_dropout",
            Box::new(gru_before().recurrent_dropout(0.4).seed(8)),
            Box::new(gru_before()),
        ),
        (
            "Gru reset_before dropout + recurrent_dropout",
            Box::new(gru_before().dropout(0.5).recurrent_dropout(0.3).seed(10)),
            Box::new(gru_before()),
        ),
        (
            "Lstm dropout",
            Box::new(lstm().dropout(0.5).seed(11)),
            Box::new(lstm()),
        ),
        (
            "Gru reset_before dropout",
            Box::new(gru_before().dropout(0.3).seed(4)),
            Box::new(gru_before()),
        ),
        (
            "LeakyRnn learned leak, dropout + recurrent_dropout",
            Box::new(leaky().dropout(0.3).recurrent_dropout(0.4).seed(12)),
            Box::new(leaky()),
        ),
    ];
    for (label, layer, plain) in &cases {
        check_gradients(label, layer.as_ref(), plain.as_ref());
    }
}

#[test]
fn the_mean_over_masks_is_the_undropped_output() {
    // A linear SimpleRNN is linear in each mask, and the masks have mean 1: averaged over
    // many samples (one mask each), the output equals the undropped one. Input dropout over
    // 6 steps; recurrent dropout over 2 steps (from the third on, h_{t−1} carries the same
    // mask, and E[m²] ≠ 1).
    let n = 40_000;
    let x1 = Array3::from_shape_fn((1, 6, 3), |(_, t, f)| ((t + 2 * f) as f64 * 0.7).sin());
    let x = x1.broadcast((n, 6, 3)).unwrap().to_owned().into_dyn();
    for (cfg, steps) in [
        (
            SimpleRnnConfig::new(3)
                .activation(Activation::Linear)
                .dropout(0.4)
                .seed(11),
            6,
        ),
        (
            SimpleRnnConfig::new(3)
                .activation(Activation::Linear)
                .recurrent_dropout(0.5)
                .seed(12),
            2,
        ),
    ] {
        let mut m = Sequential::<f64>::new(&[steps, 3]).push(cfg).unwrap();
        let xs = x.slice_axis(Axis(1), (0..steps).into()).to_owned();
        let dropped = m
            .forward(Inputs::new(&xs).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .unwrap();
        let plain = m
            .forward(
                Inputs::new(&xs.slice_axis(Axis(0), (0..1).into()).to_owned()).mode(Mode::Infer),
            )
            .map(|mut o| o.remove(0).output)
            .unwrap();
        let mean = dropped.mean_axis(Axis(0)).unwrap();
        let sd = dropped.std_axis(Axis(0), 1.0);
        for j in 0..3 {
            let se = sd[j] / (n as f64).sqrt();
            let z = (mean[j] - plain[[0, j]]).abs() / se;
            assert!(
                z < 5.0,
                "unit {j}: mean {} vs {} ({z:.1} standard errors)",
                mean[j],
                plain[[0, j]]
            );
            assert!(sd[j] > 1e-3, "unit {j}: no spread, nothing dropped");
        }
    }
}

#[test]
fn masks_are_seeded_fixed_in_time_and_absent_at_inference() {
    let cfg = LstmConfig::new(3)
        .return_sequences(true)
        .dropout(0.5)
        .recurrent_dropout(0.5)
        .seed(9);
    let x = Array3::from_shape_fn((2, 4, 3), |(b, t, f)| (b + t + f) as f64 * 0.1 + 0.2).into_dyn();
    let mut a = Sequential::<f64>::new(&[4, 3]).push(cfg.clone()).unwrap();
    let mut b = Sequential::<f64>::new(&[4, 3]).push(cfg).unwrap();
    let (ya, yb) = (
        a.forward(Inputs::new(&x).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        b.forward(Inputs::new(&x).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
    );
    assert_eq!(ya, yb, "same seed, same masks");
    let ya2 = a
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    assert_ne!(ya, ya2, "a new mask per call");
    // Inference drops nothing: the same as the layer built without dropout.
    let mut plain = Sequential::<f64>::new(&[4, 3])
        .push(LstmConfig::new(3).return_sequences(true))
        .unwrap();
    plain.set_weights(&a.get_weights()).unwrap();
    assert_eq!(
        a.forward(Inputs::new(&x).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        plain
            .forward(Inputs::new(&x).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .unwrap()
    );
    assert_eq!(
        a.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        plain
            .infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .unwrap()
    );
    // The input mask is one per sample, fixed in time: with a zero input except at one
    // feature, a dropped feature stays dropped at every step. A linear SimpleRNN with an
    // identity-like kernel shows it: y_t = Σ_{s≤t} (x_s ⊙ m)·K when R = 0.
    let mut s = Sequential::<f64>::new(&[5, 3])
        .push(
            SimpleRnnConfig::new(3)
                .activation(Activation::Linear)
                .use_bias(false)
                .dropout(0.5)
                .seed(3)
                .return_sequences(true),
        )
        .unwrap();
    let eye = ndarray::Array2::<f64>::eye(3).into_dyn();
    s.set_weights(&[
        eye.clone(),
        ndarray::Array2::<f64>::zeros((3, 3)).into_dyn(),
    ])
    .unwrap();
    let ones = ArrayD::<f64>::ones(IxDyn(&[64, 5, 3]));
    let y = s
        .forward(Inputs::new(&ones).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    for row in y.axis_iter(Axis(0)) {
        let first = row.index_axis(Axis(0), 0).to_owned();
        for t in 1..5 {
            assert_eq!(
                row.index_axis(Axis(0), t),
                first,
                "the mask changed over time"
            );
        }
        assert!(first.iter().all(|&v| v == 0.0 || v == 2.0), "{first}");
    }
    let dropped = y
        .index_axis(Axis(1), 0)
        .iter()
        .filter(|&&v| v == 0.0)
        .count();
    assert!(
        (40..=152).contains(&dropped),
        "{dropped} of 192 dropped at rate 0.5"
    );
}

#[test]
fn bad_rates_are_typed_errors_and_round_trip_in_files() {
    for (cfg, field) in [
        (LstmConfig::new(2).dropout(1.0), "dropout"),
        (LstmConfig::new(2).dropout(-0.1), "dropout"),
        (
            LstmConfig::new(2).recurrent_dropout(f64::NAN),
            "recurrent_dropout",
        ),
    ] {
        let err = Sequential::<f64>::new(&[3, 2]).push(cfg).unwrap_err();
        assert!(
            matches!(&err, rnnkit::Error::Config { field: f, .. } if *f == field),
            "{err}"
        );
    }
    let m = Sequential::<f64>::new(&[3, 2])
        .push(
            LstmConfig::new(2)
                .dropout(0.25)
                .recurrent_dropout(0.5)
                .seed(4),
        )
        .unwrap();
    let json = serde_json::to_string(&m.spec().unwrap()).unwrap();
    assert!(
        json.contains("\"dropout\":0.25") && json.contains("\"seed\":4"),
        "{json}"
    );
    let loaded = Sequential::<f64>::from_bytes(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(
        serde_json::to_string(&loaded.spec().unwrap()).unwrap(),
        json
    );
}

#[test]
fn gru_recurrent_dropout_masks_the_products_not_the_state() {
    // z ≈ 1 (a large update-gate bias, no other weight): h_t ≈ h_{t−1}. The state must
    // pass through whole, though half its units are dropped from the products.
    let mut m = Sequential::<f64>::new(&[3, 2])
        .push(GruConfig::new(4).recurrent_dropout(0.5).seed(1))
        .unwrap();
    let mut w: Vec<ArrayD<f64>> = m.get_weights().iter().map(|w| w.mapv(|_| 0.0)).collect();
    w[2].slice_mut(ndarray::s![0, 0..4]).fill(30.0);
    m.set_weights(&w).unwrap();
    let x = ArrayD::<f64>::ones(IxDyn(&[8, 3, 2]));
    let mut states = vec![vec![ndarray::Array2::<f64>::ones((8, 4))]];
    let y = m
        .state_mut()
        .unwrap()
        .forward_from(Inputs::new(&x).mode(Mode::Train), &mut states)
        .unwrap()
        .remove(0)
        .output;
    assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-9), "{y}");
}

#[test]
fn the_dropout_layer_scales_kept_values_and_routes_the_gradient_through_its_mask() {
    let mut m = Sequential::<f64>::new(&[4, 3])
        .push(rnnkit::DropoutConfig::new(0.25).seed(2))
        .unwrap();
    let x = ArrayD::<f64>::from_shape_fn(IxDyn(&[50, 4, 3]), |i| 1.0 + (i[0] + i[1] + i[2]) as f64);
    let y = m
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let keep = 1.0 / 0.75;
    for (a, b) in y.iter().zip(x.iter()) {
        assert!(*a == 0.0 || (a - b * keep).abs() < 1e-12);
    }
    let dy = ArrayD::<f64>::ones(IxDyn(&[50, 4, 3]));
    let dx = m
        .backward(&[OutputGrads::new(&dy)])
        .map(|mut d| d.remove(0))
        .unwrap();
    for ((g, a), b) in dx.iter().zip(y.iter()).zip(x.iter()) {
        assert!((g * b - a).abs() < 1e-12, "the gradient is the mask");
    }
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((dropped - 0.25).abs() < 0.05, "{dropped}");
    assert_eq!(
        m.forward(Inputs::new(&x).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        x
    );
    assert!(
        Sequential::<f64>::new(&[4, 3])
            .push(rnnkit::DropoutConfig::new(1.0))
            .is_err()
    );
}

/// The outputs of a one-unit, one-feature layer's training pass over `rows` copies of the
/// sequence `xs` (weights `[kernel, recurrent_kernel]`, no bias), one value per row.
fn outputs(cfg: &dyn LayerConfig<f64>, k: &[f64], r: &[f64], xs: &[f64], rows: usize) -> Vec<f64> {
    let t = xs.len();
    let mut m = model_1(cfg, t);
    let g = k.len();
    m.set_weights(&[
        ArrayD::from_shape_vec(IxDyn(&[1, g]), k.to_vec()).unwrap(),
        ArrayD::from_shape_vec(IxDyn(&[1, g]), r.to_vec()).unwrap(),
    ])
    .unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[rows, t, 1]), |i| xs[i[1]]);
    m.forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn model_1(layer: &dyn LayerConfig<f64>, steps: usize) -> Sequential<f64> {
    let mut m = Sequential::<f64>::new(&[steps, 1]);
    m.add(layer).unwrap();
    m
}

/// Every output is one of `expected` (a value per combination of the gates' masks), and
/// every combination occurs: the gates draw their masks independently.
fn assert_combinations(label: &str, ys: &[f64], expected: &[(String, f64)]) {
    let mut seen = vec![0usize; expected.len()];
    for &y in ys {
        // Combinations that give the same output (a gate that cannot matter) count together.
        let mut hit = false;
        for (n, (_, e)) in seen.iter_mut().zip(expected) {
            if (y - e).abs() < 1e-12 {
                *n += 1;
                hit = true;
            }
        }
        assert!(hit, "{label}: output {y} matches no combination of masks");
    }
    for ((combo, _), n) in expected.iter().zip(&seen) {
        assert!(
            *n > 0,
            "{label}: masks {combo} never drawn in {} rows",
            ys.len()
        );
    }
}

fn sig(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

/// The 2^n combinations of n gate masks of rate 0.5 (kept values scaled by 2).
fn combos(n: usize) -> impl Iterator<Item = Vec<f64>> {
    (0..1usize << n).map(move |c| (0..n).map(|k| 2.0 * ((c >> k) & 1) as f64).collect())
}

#[test]
fn with_recurrent_dropout_each_gate_draws_its_own_masks_as_keras_implementation_1() {
    // Keras 3 switches LSTM and GRU to implementation 1 when recurrent_dropout > 0 and
    // then draws one mask per gate, for the inputs and for h_{t−1}. One unit and one
    // feature make every combination of the gates' masks give its own output; an
    // independent formula per combination is the reference.
    let (ki, kf, kg, ko) = (1.0, -0.3, 0.7_f64, -0.4);
    let k = [ki, kf, kg, ko];
    let zero = [0.0; 4];
    let rows = 3000;
    // LSTM, input masks, one step (h_0 = 0, so only the input masks matter).
    let lstm = LstmConfig::new(1).use_bias(false).seed(21);
    let expected: Vec<_> = combos(4)
        .map(|d| {
            let c = sig(d[0] * ki) * (d[2] * kg).tanh();
            (format!("{d:?}"), sig(d[3] * ko) * c.tanh())
        })
        .collect();
    let ys = outputs(
        &lstm.clone().dropout(0.5).recurrent_dropout(0.5),
        &k,
        &zero,
        &[1.0],
        rows,
    );
    assert_combinations("LSTM input masks", &ys, &expected);
    // Without recurrent dropout (Keras's implementation 2) one input mask serves all gates.
    let ys = outputs(&lstm.clone().dropout(0.5), &k, &zero, &[1.0], rows);
    assert_combinations(
        "LSTM shared input mask",
        &ys,
        &[expected[0].clone(), expected[15].clone()],
    );

    // LSTM, recurrent masks: step 1 from x = 1 without dropout of h_0 = 0, step 2 from
    // x = 0 through each gate's masked h_1.
    let r = [0.9, -1.1, 1.3, 0.6];
    let c1 = sig(ki) * kg.tanh();
    let h1 = sig(ko) * c1.tanh();
    let expected: Vec<_> = combos(4)
        .map(|m| {
            let a: Vec<f64> = (0..4).map(|g| m[g] * h1 * r[g]).collect();
            let c2 = sig(a[1]) * c1 + sig(a[0]) * a[2].tanh();
            (format!("{m:?}"), sig(a[3]) * c2.tanh())
        })
        .collect();
    let ys = outputs(&lstm.recurrent_dropout(0.5), &k, &r, &[1.0, 0.0], rows);
    assert_combinations("LSTM recurrent masks", &ys, &expected);

    // GRU (reset_after, Keras's default), recurrent masks: z, r and the candidate's
    // product see h_1 under three masks; the update keeps h_1 whole.
    let (kz, kr, kh) = (0.8, -0.5, 1.2_f64);
    let (rz, rr, rh) = (0.7, -0.9, 1.1);
    let h1 = (1.0 - sig(kz)) * kh.tanh();
    let expected: Vec<_> = combos(3)
        .map(|m| {
            let (mz, mr, mh) = (m[0] * h1 * rz, m[1] * h1 * rr, m[2] * h1 * rh);
            let (z, rg) = (sig(mz), sig(mr));
            let hh = (rg * mh).tanh();
            (format!("{m:?}"), z * h1 + (1.0 - z) * hh)
        })
        .collect();
    let gru = GruConfig::new(1)
        .use_bias(false)
        .recurrent_dropout(0.5)
        .seed(22);
    let ys = outputs(&gru, &[kz, kr, kh], &[rz, rr, rh], &[1.0, 0.0], rows);
    assert_combinations("GRU recurrent masks", &ys, &expected);
    // GRU reset_before: ĥ = tanh((r ⊙ h_1⊙m_h)·R_h).
    let expected: Vec<_> = combos(3)
        .map(|m| {
            let (z, rg) = (sig(m[0] * h1 * rz), sig(m[1] * h1 * rr));
            let hh = (rg * m[2] * h1 * rh).tanh();
            (format!("{m:?}"), z * h1 + (1.0 - z) * hh)
        })
        .collect();
    let gru = GruConfig::new(1)
        .use_bias(false)
        .reset_after(false)
        .recurrent_dropout(0.5)
        .seed(23);
    let ys = outputs(&gru, &[kz, kr, kh], &[rz, rr, rh], &[1.0, 0.0], rows);
    assert_combinations("GRU reset_before recurrent masks", &ys, &expected);
}
