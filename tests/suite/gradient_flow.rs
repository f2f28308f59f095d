//! The gradient-flow regulariser of Pascanu et al. (2013) (issue #28 item 4), simplified
//! form: `Ω(R) = λ/B Σ_b Σ_t (‖g_t(1 − a) + v_t·Rᵀ‖/‖g_t‖ − 1)²` with `g_t = dL/dh_t` and
//! `v_t = g_t⊙a⊙tanh′(z_t)` held constant. Ground truth written here: a slow forward and a
//! slow BPTT give `g_t`, `v_t`; five-point central differences of `Ω` in every entry of
//! `R` give its gradient, which must equal what the regulariser adds to the layer's
//! recurrent-kernel gradient (the layer with λ minus the same layer without, over λ); every
//! other weight's gradient must be untouched.

use ndarray::{Array2, ArrayD, Ix2, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.9..0.9))
}

/// `g_t` and `v_t` for every sample and step by a slow forward and backward pass of
/// `h_t = h_{t−1} + a⊙(tanh(x_t K + h_{t−1} R + b) − h_{t−1})` (SimpleRNN: a = 1), and the
/// loss `Σ y⊙r` (`r` `[b, T, u]` for every step, or `[b, u]` for the last).
fn slow_g_v(
    w: &[ArrayD<f64>],
    a: &[f64],
    x: &ArrayD<f64>,
    r: &ArrayD<f64>,
) -> Vec<Vec<(Vec<f64>, Vec<f64>)>> {
    let k = w[0].view().into_dimensionality::<Ix2>().unwrap();
    let rk = w[1].view().into_dimensionality::<Ix2>().unwrap();
    let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let u = rk.nrows();
    let mut out = Vec::new();
    for bi in 0..b {
        let mut hs = vec![vec![0.0; u]];
        let mut ss = Vec::new();
        for s in 0..t {
            let p = hs[s].clone();
            let st: Vec<f64> = (0..u)
                .map(|j| {
                    let mut z = w[2][[j]];
                    for q in 0..f {
                        z += x[[bi, s, q]] * k[[q, j]];
                    }
                    for i in 0..u {
                        z += p[i] * rk[[i, j]];
                    }
                    z.tanh()
                })
                .collect();
            hs.push((0..u).map(|j| p[j] + a[j] * (st[j] - p[j])).collect());
            ss.push(st);
        }
        let mut gv = vec![(Vec::new(), Vec::new()); t];
        let mut carry = vec![0.0; u];
        for s in (0..t).rev() {
            let g: Vec<f64> = (0..u)
                .map(|j| {
                    let own = match r.ndim() {
                        3 => r[[bi, s, j]],
                        _ if s == t - 1 => r[[bi, j]],
                        _ => 0.0,
                    };
                    own + carry[j]
                })
                .collect();
            let v: Vec<f64> = (0..u)
                .map(|j| g[j] * a[j] * (1.0 - ss[s][j] * ss[s][j]))
                .collect();
            carry = (0..u)
                .map(|i| g[i] * (1.0 - a[i]) + (0..u).map(|j| v[j] * rk[[i, j]]).sum::<f64>())
                .collect();
            gv[s] = (g, v);
        }
        out.push(gv);
    }
    out
}

/// Ω(R) with `g`, `v` and `a` fixed.
fn omega(rk: &Array2<f64>, a: &[f64], gv: &[Vec<(Vec<f64>, Vec<f64>)>], lambda: f64) -> f64 {
    let u = rk.nrows();
    let mut sum = 0.0;
    for sample in gv {
        for (g, v) in sample {
            let w: Vec<f64> = (0..u)
                .map(|i| g[i] * (1.0 - a[i]) + (0..u).map(|j| v[j] * rk[[i, j]]).sum::<f64>())
                .collect();
            let norm = |z: &[f64]| z.iter().map(|e| e * e).sum::<f64>().sqrt();
            sum += (norm(&w) / norm(g) - 1.0).powi(2);
        }
    }
    lambda * sum / gv.len() as f64
}

fn grads(model: &mut Sequential<f64>, x: &ArrayD<f64>, r: &ArrayD<f64>) -> Vec<ArrayD<f64>> {
    model.forward(Inputs::new(x).mode(Mode::Train)).unwrap();
    model.zero_grad();
    model.backward(&[OutputGrads::new(r)]).unwrap();
    let mut out = Vec::new();
    model.visit_params(&mut |_, p| out.push(p.grad().clone()));
    out
}

#[test]
fn the_regulariser_adds_the_gradient_of_its_simplified_term() {
    let (b, t, f, u, lambda) = (3, 7, 2, 4, 0.7);
    let leaks = [0.9, 0.5, 0.3, 1.0];
    type Build = fn(Option<f64>, bool) -> Box<dyn LayerConfig<f64>>;
    let cases: [(&str, Build); 3] = [
        ("SimpleRNN", |l, rs| {
            let c = SimpleRnnConfig::new(4).return_sequences(rs);
            Box::new(match l {
                Some(l) => c.gradient_flow_regularizer(l),
                None => c,
            })
        }),
        ("LeakyRNN per-unit leaks", |l, rs| {
            let c = LeakyRnnConfig::new(4)
                .leak_per_unit(&[0.9, 0.5, 0.3, 1.0])
                .return_sequences(rs);
            Box::new(match l {
                Some(l) => c.gradient_flow_regularizer(l),
                None => c,
            })
        }),
        ("LeakyRNN learned leaks", |l, rs| {
            let c = LeakyRnnConfig::new(4).train_leak(true).return_sequences(rs);
            Box::new(match l {
                Some(l) => c.gradient_flow_regularizer(l),
                None => c,
            })
        }),
    ];
    for (label, build) in cases {
        for rs in [true, false] {
            let mut with = Sequential::<f64>::new(&[t, f]);
            with.add(build(Some(lambda), rs).as_ref()).unwrap();
            let mut without = Sequential::<f64>::new(&[t, f]);
            without.add(build(None, rs).as_ref()).unwrap();
            let mut rng = seeded_rng(5);
            let w: Vec<_> = with
                .get_weights()
                .iter()
                .map(|w| uniform(w.shape(), &mut rng))
                .collect();
            with.set_weights(&w).unwrap();
            without.set_weights(&w).unwrap();
            let x = uniform(&[b, t, f], &mut rng);
            let shape = if rs { vec![b, t, u] } else { vec![b, u] };
            let r = uniform(&shape, &mut rng);
            let (gw, g0) = (grads(&mut with, &x, &r), grads(&mut without, &x, &r));
            for (i, (a, z)) in gw.iter().zip(&g0).enumerate() {
                if i != 1 {
                    assert_eq!(a, z, "{label}: weight {i} took part of the regulariser");
                }
            }
            let a: Vec<f64> = match label {
                "SimpleRNN" => vec![1.0; u],
                "LeakyRNN per-unit leaks" => leaks.to_vec(),
                _ => w[3].iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
            };
            let gv = slow_g_v(&w, &a, &x, &r);
            let rk = w[1].clone().into_dimensionality::<Ix2>().unwrap();
            let added = &gw[1] - &g0[1];
            assert!(added.iter().any(|d| d.abs() > 1e-3), "{label}: no term");
            let mut worst = 0.0f64;
            for i in 0..u {
                for j in 0..u {
                    let h = 1e-5;
                    let at = |d: f64| {
                        let mut p = rk.clone();
                        p[[i, j]] += d;
                        omega(&p, &a, &gv, lambda)
                    };
                    let n = (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h);
                    let e = (added[[i, j]] - n).abs() / (added[[i, j]].abs() + n.abs()).max(1e-4);
                    worst = worst.max(e);
                }
            }
            assert!(worst < 1e-6, "{label} rs={rs}: off by {worst:e}");
        }
    }
}

#[test]
fn the_regulariser_trains_saves_and_refuses_bad_strengths() {
    let x = ArrayD::from_shape_fn(IxDyn(&[16, 20, 1]), |i| {
        ((i[0] * 7 + i[1] * 3) as f64 * 0.37).sin()
    });
    let y = ArrayD::from_shape_fn(IxDyn(&[16, 1]), |i| ((i[0] * 5) as f64 * 0.21).cos());
    let fit = |lambda: Option<f64>| {
        let c = SimpleRnnConfig::new(8);
        let c = match lambda {
            Some(l) => c.gradient_flow_regularizer(l),
            None => c,
        };
        let mut m = Sequential::<f64>::new(&[20, 1])
            .seed(1)
            .push(c)
            .unwrap()
            .push(DenseConfig::new(1))
            .unwrap();
        Trainer::new(Adam::new(0.01), Loss::Mse)
            .epochs(3)
            .seed(2)
            .fit(&mut m, (&x, &y))
            .unwrap();
        m
    };
    let (plain, zero, on) = (fit(None), fit(Some(0.0)), fit(Some(5.0)));
    assert_eq!(plain.get_weights(), zero.get_weights());
    assert_ne!(plain.get_weights()[1], on.get_weights()[1]);
    // The option is part of the architecture: a file brings it back.
    let back = Sequential::<f64>::from_bytes(&on.to_bytes().unwrap()).unwrap();
    let spec = serde_json::to_string(&back.spec().unwrap()).unwrap();
    assert!(spec.contains("\"gradient_flow_regularizer\":5.0"), "{spec}");
    for (c, what) in [
        (
            SimpleRnnConfig::new(2).gradient_flow_regularizer(-1.0),
            "≥ 0",
        ),
        (
            SimpleRnnConfig::new(2).gradient_flow_regularizer(f64::NAN),
            "≥ 0",
        ),
        (
            SimpleRnnConfig::new(2)
                .gradient_flow_regularizer(1.0)
                .recurrent_dropout(0.1),
            "recurrent_dropout",
        ),
    ] {
        let e = Sequential::<f64>::new(&[3, 1])
            .push(c)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gradient_flow_regularizer") && e.contains(what),
            "{e}"
        );
    }
    let e = Sequential::<f64>::new(&[3, 1])
        .push(LeakyRnnConfig::new(2).gradient_flow_regularizer(-2.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gradient_flow_regularizer"), "{e}");
}
