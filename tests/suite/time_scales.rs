//! Several time scales (issue #28 item 2): `LeakyRnn`'s skip connections through time
//! (`skip_delay`) and clockwork groups (`clock_periods`), against a slow reference written
//! here from the definitions (loops over units, no shared code): outputs to round-off, and
//! every weight and input gradient of the layer's BPTT against five-point central
//! differences *of the slow reference*. Then: stateful chunks and streaming steps carry
//! the older states and the clock, files keep the skip kernel, bad options are typed
//! errors.

use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;

/// What the slow reference needs of a layer's configuration.
#[derive(Clone)]
struct Spec {
    units: usize,
    /// Fixed leak per unit (when `learned` is false).
    leak: Vec<f64>,
    learned: bool,
    delay: usize,
    periods: Vec<usize>,
}

impl Spec {
    fn config(&self) -> LeakyRnnConfig {
        let mut c = LeakyRnnConfig::new(self.units)
            .leak_per_unit(&self.leak)
            .train_leak(self.learned)
            .return_sequences(true);
        if self.delay > 1 {
            c = c.skip_delay(self.delay);
        }
        if !self.periods.is_empty() {
            c = c.clock_periods(&self.periods);
        }
        c
    }
    fn period(&self, i: usize) -> usize {
        if self.periods.is_empty() {
            1
        } else {
            self.periods[i / (self.units / self.periods.len())]
        }
    }
}

/// The layer's weights by name, in the order `get_weights` gives them.
struct Weights {
    kernel: Array2<f64>,
    rec: Array2<f64>,
    bias: Vec<f64>,
    logit: Option<Vec<f64>>,
    skip: Option<Array2<f64>>,
}

fn split(spec: &Spec, w: &[ArrayD<f64>]) -> Weights {
    let m = |a: &ArrayD<f64>| a.clone().into_dimensionality::<Ix2>().unwrap();
    let mut rest = w[3..].iter();
    let logit = spec
        .learned
        .then(|| rest.next().unwrap().iter().copied().collect());
    let skip = (spec.delay > 1).then(|| m(rest.next().unwrap()));
    Weights {
        kernel: m(&w[0]),
        rec: m(&w[1]),
        bias: w[2].iter().copied().collect(),
        logit,
        skip,
    }
}

/// The definition, step by step: `z_t = x_t·K + h_{t−1}·(R⊙C) + h_{t−d}·V + b`,
/// `h_t[j] = h_{t−1}[j] + a_j (tanh(z_t[j]) − h_{t−1}[j])` when `t mod period_j = 0`, else
/// `h_{t−1}[j]`; `C[i][j] = 1` when `period_i ≥ period_j`. Returns `[b, T, u]`.
fn reference(spec: &Spec, w: &Weights, x: &Array3<f64>) -> Array3<f64> {
    let (b, t, f) = x.dim();
    let u = spec.units;
    let a: Vec<f64> = match &w.logit {
        Some(l) => l.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
        None => spec.leak.clone(),
    };
    let mut y = Array3::zeros((b, t, u));
    for bi in 0..b {
        let mut hs: Vec<Vec<f64>> = Vec::new(); // h_0 … h_{t−1}
        let at = |hs: &Vec<Vec<f64>>, back: usize, step: usize| -> Vec<f64> {
            if back > step {
                vec![0.0; u]
            } else {
                hs[step - back].clone()
            }
        };
        for s in 0..t {
            let prev = at(&hs, 1, s);
            let old = at(&hs, spec.delay, s);
            let h: Vec<f64> = (0..u)
                .map(|j| {
                    if s % spec.period(j) != 0 {
                        return prev[j];
                    }
                    let mut z = w.bias[j];
                    for k in 0..f {
                        z += x[[bi, s, k]] * w.kernel[[k, j]];
                    }
                    for i in 0..u {
                        if spec.period(i) >= spec.period(j) {
                            z += prev[i] * w.rec[[i, j]];
                        }
                        if let Some(v) = &w.skip {
                            z += old[i] * v[[i, j]];
                        }
                    }
                    prev[j] + a[j] * (z.tanh() - prev[j])
                })
                .collect();
            for j in 0..u {
                y[[bi, s, j]] = h[j];
            }
            hs.push(h);
        }
    }
    y
}

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.8..0.8))
}

fn cases() -> Vec<(&'static str, Spec)> {
    vec![
        (
            "skip d=3, leak 0.6",
            Spec {
                units: 3,
                leak: vec![0.6; 3],
                learned: false,
                delay: 3,
                periods: vec![],
            },
        ),
        (
            "clockwork periods 1, 2, 4",
            Spec {
                units: 6,
                leak: vec![1.0; 6],
                learned: false,
                delay: 1,
                periods: vec![1, 2, 4],
            },
        ),
        (
            "clockwork 1, 3 with skip d=2 and learned leaks",
            Spec {
                units: 4,
                leak: vec![0.7, 0.4, 0.9, 0.2],
                learned: true,
                delay: 2,
                periods: vec![1, 3],
            },
        ),
    ]
}

#[test]
fn skip_and_clockwork_match_a_slow_reference_and_its_finite_differences() {
    let (b, t, f) = (2, 9, 2);
    for (label, spec) in cases() {
        let mut model = Sequential::<f64>::new(&[t, f])
            .seed(3)
            .push(spec.config())
            .unwrap();
        let mut rng = seeded_rng(11);
        let mut w: Vec<ArrayD<f64>> = model
            .get_weights()
            .iter()
            .map(|w| uniform(w.shape(), &mut rng))
            .collect();
        model.set_weights(&w).unwrap();
        let x = uniform(&[b, t, f], &mut rng)
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap();
        let xd = x.clone().into_dyn();
        let want = reference(&spec, &split(&spec, &w), &x);
        let got = model
            .predict(Inputs::new(&xd), 8)
            .unwrap()
            .remove(0)
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap();
        let worst = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(worst < 1e-13, "{label}: output off by {worst}");
        // A clock that holds a unit: that unit's output repeats at odd steps.
        if spec.periods.first() == Some(&1) && spec.periods.len() > 1 {
            let slow = spec.units - 1;
            assert_eq!(got[[0, 1, slow]], got[[0, 0, slow]], "{label}");
        }

        // The layer's gradients of L = Σ y⊙r …
        let r = uniform(&[b, t, spec.units], &mut rng);
        model.forward(Inputs::new(&xd).mode(Mode::Train)).unwrap();
        model.zero_grad();
        let dx = model.backward(&[OutputGrads::new(&r)]).unwrap().remove(0);
        let mut grads = Vec::new();
        model.visit_params(&mut |_, p| grads.push(p.grad().clone()));
        // … against central differences of the slow reference.
        let r3 = r.clone().into_dimensionality::<ndarray::Ix3>().unwrap();
        let loss = |w: &[ArrayD<f64>], x: &Array3<f64>| {
            (reference(&spec, &split(&spec, w), x) * &r3).sum()
        };
        let fd = |mut f: Box<dyn FnMut(f64) -> f64 + '_>| {
            let h = 1e-5;
            (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h)
        };
        let rel = |a: f64, n: f64| (a - n).abs() / (a.abs() + n.abs()).max(1e-4);
        let mut worst = (0.0, String::new());
        for (pi, g) in grads.iter().enumerate() {
            for idx in 0..g.len() {
                let n = fd(Box::new(|d| {
                    let base = w[pi].as_slice().unwrap()[idx];
                    w[pi].as_slice_mut().unwrap()[idx] = base + d;
                    let l = loss(&w, &x);
                    w[pi].as_slice_mut().unwrap()[idx] = base;
                    l
                }));
                let e = rel(g.as_slice().unwrap()[idx], n);
                if e > worst.0 {
                    worst = (e, format!("weight {pi}[{idx}]"));
                }
            }
        }
        let mut xp = x.clone();
        for idx in 0..x.len() {
            let n = fd(Box::new(|d| {
                let base = xp.as_slice().unwrap()[idx];
                xp.as_slice_mut().unwrap()[idx] = base + d;
                let l = loss(&w, &xp);
                xp.as_slice_mut().unwrap()[idx] = base;
                l
            }));
            let e = rel(dx.as_slice().unwrap()[idx], n);
            if e > worst.0 {
                worst = (e, format!("input [{idx}]"));
            }
        }
        assert!(worst.0 < 1e-6, "{label}: {} off by {:e}", worst.1, worst.0);
    }
}

#[test]
fn stateful_chunks_and_stream_steps_carry_the_older_states_and_the_clock() {
    let spec = &cases()[2].1;
    let build = |stateful: bool| {
        Sequential::<f64>::with_input_shape(vec![None, Some(2)])
            .seed(5)
            .push(spec.config().stateful(stateful))
            .unwrap()
    };
    let x = Array3::from_shape_fn((2, 11, 2), |(i, s, k)| {
        ((1 + 2 * i + 3 * s + 5 * k) as f64 * 0.31).sin()
    })
    .into_dyn();
    let whole = build(false).predict(Inputs::new(&x), 8).unwrap().remove(0);
    let m = build(true);
    // Three carried states: h_t, h_{t−1} (the skip's history) and the clock.
    let mut got = Vec::new();
    for (a, b) in [(0, 4), (4, 5), (5, 11)] {
        let chunk = x.slice_axis(Axis(1), (a..b).into()).to_owned();
        got.push(m.predict(Inputs::new(&chunk), 8).unwrap().remove(0));
    }
    let views: Vec<_> = got.iter().map(|g| g.view()).collect();
    let joined = ndarray::concatenate(Axis(1), &views).unwrap();
    assert!((&joined - &whole).iter().all(|d| d.abs() < 1e-13));
    let m = build(false);
    let mut stream = m.stream_state(2);
    for s in 0..11 {
        let xt = x.index_axis(Axis(1), s).into_dimensionality().unwrap();
        let y = m.step(xt, &mut stream).unwrap();
        for b in 0..2 {
            for j in 0..spec.units {
                assert!((y[[b, j]] - whole[[b, s, j]]).abs() < 1e-13, "step {s}");
            }
        }
    }
}

#[test]
fn files_keep_the_skip_kernel_and_the_clockwork_connectivity_holds() {
    let spec = &cases()[2].1;
    let mut m = Sequential::<f64>::new(&[6, 2])
        .seed(2)
        .push(spec.config().return_sequences(false))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let x =
        Array3::from_shape_fn((8, 6, 2), |(i, s, k)| ((i + s + k) as f64 * 0.4).cos()).into_dyn();
    let y = Array2::from_shape_fn((8, 1), |(i, _)| (i as f64 * 0.3).sin()).into_dyn();
    let mut t = Trainer::new(Adam::new(0.05), Loss::Mse).epochs(3).seed(1);
    t.fit(&mut m, (&x, &y)).unwrap();
    // Units 0, 1 tick every step, 2, 3 every third: the slow ones take nothing from the
    // fast ones, before and after training.
    let rec = &m.get_weights()[1];
    for i in 0..2 {
        for j in 2..4 {
            assert_eq!(rec[[i, j]], 0.0);
        }
    }
    assert!(rec[[2, 0]] != 0.0 && rec[[0, 1]] != 0.0);
    let bytes = m.to_bytes().unwrap();
    let info = FileInfo::from_bytes(&bytes).unwrap();
    assert!(
        info.tensors
            .iter()
            .any(|(n, s)| n == "leaky_rnn/skip_kernel" && s == &[4, 4]),
        "{:?}",
        info.tensors
    );
    let back = Sequential::<f64>::from_bytes(&bytes).unwrap();
    assert_eq!(back.get_weights(), m.get_weights());
    assert_eq!(
        back.predict(Inputs::new(&x), 8).unwrap(),
        m.predict(Inputs::new(&x), 8).unwrap()
    );
    let summary = m.summary().to_string();
    assert!(summary.contains("leaky_rnn (LeakyRNN)"), "{summary}");
    // 2·4 + 4·4 + 4 + 4 (leak logits) + 4·4 (skip kernel), then 4 + 1.
    assert_eq!(m.param_count(), 48 + 5);
}

#[test]
fn bad_time_scale_options_are_typed_errors() {
    for (cfg, field, what) in [
        (
            LeakyRnnConfig::new(4).skip_delay(1),
            "skip_delay",
            "at least 2",
        ),
        (
            LeakyRnnConfig::new(4).skip_delay(3).recurrent_dropout(0.2),
            "skip_delay",
            "recurrent_dropout",
        ),
        (
            LeakyRnnConfig::new(4).clock_periods(&[1, 2, 4]),
            "clock_periods",
            "dividing units=4",
        ),
        (
            LeakyRnnConfig::new(4).clock_periods(&[]),
            "clock_periods",
            "got 0",
        ),
        (
            LeakyRnnConfig::new(4).clock_periods(&[1, 0]),
            "clock_periods",
            "≥ 1",
        ),
    ] {
        let e = Sequential::<f64>::new(&[5, 2])
            .push(cfg.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains(what), "{cfg:?}: {e}");
    }
}
