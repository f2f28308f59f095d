//! `LeakyRnn` does everything a recurrent layer does (issue #28 item 1): its numbers and
//! gradients are checked by the `layer` fixtures (`tests/fixtures/leaky/`, float64 from an
//! independent reference with autograd) and by finite differences (`gradcheck.rs`,
//! `dropout.rs`); here the rest: leak 1 is SimpleRNN, step-by-step streaming and stateful
//! chunks equal one pass, a graph model passes its state on, files keep a learned leak,
//! the summary names it, training moves the leak, and bad leaks are typed errors.

use ndarray::{Array3, ArrayD, Axis};
use rnnkit::LayerConfig;
use rnnkit::io::AnyModel;
use rnnkit::prelude::*;

fn series(b: usize, t: usize, f: usize) -> ArrayD<f64> {
    Array3::from_shape_fn((b, t, f), |(i, s, k)| {
        ((1 + 2 * i + 3 * s + 5 * k) as f64 * 0.23).sin()
    })
    .into_dyn()
}

fn out(m: &Sequential<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    m.predict(Inputs::new(x), 64).unwrap().remove(0)
}

#[test]
fn leak_one_is_simple_rnn_and_a_slow_unit_averages() {
    let x = series(2, 6, 3);
    let simple = Sequential::<f64>::new(&[6, 3])
        .seed(4)
        .push(SimpleRnnConfig::new(4).return_sequences(true))
        .unwrap();
    let leaky = Sequential::<f64>::new(&[6, 3])
        .seed(4)
        .push(LeakyRnnConfig::new(4).return_sequences(true))
        .unwrap();
    assert_eq!(leaky.get_weights(), simple.get_weights());
    // `h + 1·(s − h)` is `s` up to one rounding.
    let d = &out(&leaky, &x) - &out(&simple, &x);
    assert!(d.iter().all(|v| v.abs() < 1e-15), "{d}");
    // A slow unit: h_t = (1 − a) h_{t−1} + a s_t, checked against the formula by hand.
    let a = 0.1;
    let slow = Sequential::<f64>::new(&[6, 3])
        .seed(4)
        .push(LeakyRnnConfig::new(4).leak(a).return_sequences(true))
        .unwrap();
    let w = slow.get_weights();
    let (k, r, bias) = (&w[0], &w[1], &w[2]);
    let y = out(&slow, &x);
    for b in 0..2 {
        let mut h = vec![0.0; 4];
        for t in 0..6 {
            let next: Vec<f64> = (0..4)
                .map(|j| {
                    let z: f64 = (0..3).map(|f| x[[b, t, f]] * k[[f, j]]).sum::<f64>()
                        + (0..4).map(|i| h[i] * r[[i, j]]).sum::<f64>()
                        + bias[[j]];
                    (1.0 - a) * h[j] + a * z.tanh()
                })
                .collect();
            h = next;
            for j in 0..4 {
                assert!((y[[b, t, j]] - h[j]).abs() < 1e-14);
            }
        }
    }
}

fn stack(stateful: bool) -> Sequential<f64> {
    Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .seed(9)
        .push(
            LeakyRnnConfig::new(4)
                .leak_per_unit(&[1.0, 0.5, 0.2, 0.05])
                .return_sequences(true)
                .stateful(stateful),
        )
        .unwrap()
        .push(
            LeakyRnnConfig::new(3)
                .train_leak(true)
                .return_sequences(true)
                .stateful(stateful),
        )
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
}

#[test]
fn streaming_and_stateful_chunks_equal_one_pass() {
    let x = series(3, 10, 2);
    let whole = out(&stack(false), &x);
    // One step at a time through a stream state.
    let m = stack(false);
    let mut stream = m.stream_state(3);
    for t in 0..10 {
        let xt = x.index_axis(Axis(1), t).into_dimensionality().unwrap();
        let y = m.step(xt, &mut stream).unwrap();
        for b in 0..3 {
            assert!((y[[b, 0]] - whole[[b, t, 0]]).abs() < 1e-12, "step {t}");
        }
    }
    // A stateful model over chunks of 4, 4 and 2 steps.
    let m = stack(true);
    let mut got = Vec::new();
    for (a, b) in [(0, 4), (4, 8), (8, 10)] {
        let chunk = x.slice_axis(Axis(1), (a..b).into()).to_owned();
        got.push(out(&m, &chunk));
    }
    let views: Vec<_> = got.iter().map(|g| g.view()).collect();
    let joined = ndarray::concatenate(Axis(1), &views).unwrap();
    assert!((&joined - &whole).iter().all(|d| d.abs() < 1e-12));
}

#[test]
fn files_keep_a_learned_leak_and_the_summary_names_the_layer() {
    let mut m = stack(false);
    let x = series(4, 7, 2);
    let y = series(4, 7, 1);
    // Training moves the leak.
    let before = m.get_weights()[5].clone();
    assert_eq!(before.shape(), &[3]); // leak_logit after kernel, recurrent_kernel, bias
    let mut t = Trainer::new(Adam::new(0.05), Loss::Mse).epochs(5).seed(1);
    t.fit(&mut m, (&x, &y)).unwrap();
    assert!(
        (&m.get_weights()[5] - &before)
            .iter()
            .any(|d| d.abs() > 1e-3)
    );
    let bytes = m.to_bytes().unwrap();
    let info = FileInfo::from_bytes(&bytes).unwrap();
    assert!(
        info.tensors
            .iter()
            .any(|(n, s)| n == "leaky_rnn_1/leak_logit" && s == &[3])
    );
    let back = Sequential::<f64>::from_bytes(&bytes).unwrap();
    assert_eq!(back.get_weights(), m.get_weights());
    assert_eq!(out(&back, &x), out(&m, &x));
    let any = AnyModel::<f32>::from_bytes(&bytes).unwrap();
    assert_eq!(any.param_count(), m.param_count());
    let summary = m.summary().to_string();
    assert!(summary.contains("leaky_rnn (LeakyRNN)"), "{summary}");
    assert!(summary.contains("leaky_rnn_1 (LeakyRNN)"), "{summary}");
    // 2·4 + 4·4 + 4, then 4·3 + 3·3 + 3 + 3 (the learned leak), then 3 + 1.
    assert_eq!(m.param_count(), 28 + 27 + 4);
}

#[test]
fn a_graph_passes_a_leaky_state_on_and_a_bidirectional_wraps_it() {
    let mut g = Graph::<f64>::new(3);
    let x = g.input("x", &[None, Some(2)]).unwrap();
    let enc = g.rnn(&LeakyRnnConfig::new(3).leak(0.3), x).call().unwrap();
    let dec = g
        .rnn(
            &LeakyRnnConfig::new(3)
                .train_leak(true)
                .return_sequences(true),
            x,
        )
        .initial_state(&enc.states)
        .call()
        .unwrap();
    let both = g
        .apply(
            &BidirectionalConfig::new(LeakyRnnConfig::new(2).leak(0.5)),
            dec.out,
        )
        .unwrap();
    let model = g.build(&[x], &[both]).unwrap();
    let xs = series(2, 5, 2);
    let y = model.predict(Inputs::new(&xs), 8).unwrap().remove(0);
    assert_eq!(y.shape(), &[2, 4]);
    let back = Functional::<f64>::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(back.predict(Inputs::new(&xs), 8).unwrap().remove(0), y);
}

#[test]
fn bad_leaks_are_typed_errors() {
    for (cfg, what) in [
        (LeakyRnnConfig::new(3).leak(0.0), "(0, 1]"),
        (LeakyRnnConfig::new(3).leak(1.5), "(0, 1]"),
        (LeakyRnnConfig::new(3).leak(f64::NAN), "(0, 1]"),
        (
            LeakyRnnConfig::new(3).leak_per_unit(&[0.5, 0.5]),
            "2 leaks for 3 units",
        ),
    ] {
        let e = Sequential::<f64>::new(&[4, 2])
            .push(cfg.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("leak") && e.contains(what), "{cfg:?}: {e}");
    }
    assert!(serde_json::from_str::<LeakyRnnConfig>(r#"{"units": 2, "leak": "slow"}"#).is_err());
    // A learned leak may start at 1 (just below it: a sigmoid never reaches 1).
    let m = Sequential::<f64>::new(&[4, 2])
        .push(LeakyRnnConfig::new(3).leak(1.0).train_leak(true))
        .unwrap();
    let logit = &m.get_weights()[3];
    assert!(logit.iter().all(|&l| l > 15.0 && l.is_finite()), "{logit}");
}

/// `‖W^k‖^(1/k)` for k = 600 (Gelfand's formula): the spectral radius, independently of the
/// eigenvalue code the initialiser uses, to about a percent.
fn gelfand_radius(w: &ndarray::ArrayView2<'_, f64>) -> f64 {
    let n = w.nrows();
    let mut m = ndarray::Array2::<f64>::eye(n);
    let mut log = 0.0;
    let k = 600;
    for _ in 0..k {
        m = w.dot(&m);
        let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        log += norm.ln();
        m /= norm;
    }
    (log / k as f64).exp()
}

/// Reservoir-style initialisation for trainable layers (issue #28 item 3): every gate's
/// `[u, u]` block of the recurrent kernel is sparse and has the chosen spectral radius; the
/// option is on every recurrent layer, refuses impossible parameters, and files keep it.
#[test]
fn a_reservoir_initialised_recurrent_kernel_has_the_chosen_radius() {
    use rnnkit::init::Init;
    let init = Init::Reservoir {
        spectral_radius: 0.9,
        density: 0.25,
    };
    let u = 30;
    let layers: Vec<(&str, Box<dyn LayerConfig<f64>>, usize)> = vec![
        (
            "SimpleRNN",
            Box::new(SimpleRnnConfig::new(u).recurrent_initializer(init)),
            1,
        ),
        (
            "LSTM",
            Box::new(LstmConfig::new(u).recurrent_initializer(init)),
            4,
        ),
        (
            "GRU",
            Box::new(GruConfig::new(u).recurrent_initializer(init)),
            3,
        ),
        (
            "LeakyRNN",
            Box::new(LeakyRnnConfig::new(u).leak(0.5).recurrent_initializer(init)),
            1,
        ),
    ];
    for (name, cfg, gates) in layers {
        let mut m = Sequential::<f64>::new(&[5, 2]).seed(3);
        m.add(cfg.as_ref()).unwrap();
        let w = m.get_weights()[1]
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        assert_eq!(w.dim(), (u, gates * u));
        let zeros = w.iter().filter(|&&v| v == 0.0).count() as f64 / w.len() as f64;
        assert!((zeros - 0.75).abs() < 0.06, "{name}: {zeros} zeros");
        for g in 0..gates {
            let block = w.slice(ndarray::s![.., g * u..(g + 1) * u]);
            let r = gelfand_radius(&block);
            assert!((r - 0.9).abs() < 0.03, "{name} gate {g}: radius {r}");
        }
        // Seeded: the same model twice is the same.
        let mut again = Sequential::<f64>::new(&[5, 2]).seed(3);
        again.add(cfg.as_ref()).unwrap();
        assert_eq!(again.get_weights(), m.get_weights());
        // The option is in the file; a default layer's JSON has no such key.
        let back = Sequential::<f64>::from_bytes(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(back.architecture().unwrap(), m.architecture().unwrap());
    }
    let json = serde_json::to_string(&LstmConfig::new(2).recurrent_initializer(init)).unwrap();
    assert!(
        json.contains(r#""recurrent_initializer":{"class_name":"Reservoir","config":{"spectral_radius":0.9,"density":0.25}}"#),
        "{json}"
    );
    assert!(
        !serde_json::to_string(&LstmConfig::new(2))
            .unwrap()
            .contains("initializer")
    );
    for bad in [
        Init::Reservoir {
            spectral_radius: 0.0,
            density: 0.5,
        },
        Init::Reservoir {
            spectral_radius: 0.9,
            density: 0.0,
        },
        Init::Reservoir {
            spectral_radius: f64::NAN,
            density: 0.5,
        },
    ] {
        let e = Sequential::<f64>::new(&[5, 2])
            .push(GruConfig::new(4).recurrent_initializer(bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("recurrent_initializer"), "{e}");
    }
}
