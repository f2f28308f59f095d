//! The optimised kernels against a plain step-by-step reference.
//!
//! The reference below is the textbook formula of each cell written with scalar loops
//! (one batch row, one step, one unit at a time), reading the weights in Keras layout. The
//! fast path (one input projection for all steps, fused gate products, gate-major caches,
//! vectorised activations, batch rows split over threads) must give the same outputs on
//! random shapes with odd sizes, batch 1 and a single step, in f64 (1e-12) and f32 (1e-5);
//! and its gradients must not depend on how many threads ran the loop.

use ndarray::{ArrayD, IxDyn};
use std::sync::Mutex;

/// The thread count is process-wide and the harness runs tests concurrently: every test
/// that sets it holds this lock, so each runs with the count it claims.
static THREAD_COUNT: Mutex<()> = Mutex::new(());

/// Sets the thread count and checks it took.
fn threads(n: usize) {
    rnnkit::set_num_threads(n);
    assert_eq!(
        rnnkit::num_threads(),
        n,
        "the thread count this test claims"
    );
}

/// The bit patterns of arrays, for exact comparisons.
fn bits(arrays: &[ArrayD<f64>]) -> Vec<u64> {
    arrays
        .iter()
        .flat_map(|a| a.iter().map(|v| v.to_bits()))
        .collect()
}
use ndarray_rand::rand::Rng;
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rnn,
    Lstm,
    Gru { reset_after: bool },
}

fn build<F: Float>(
    kind: Kind,
    t: usize,
    f: usize,
    u: usize,
    return_sequences: bool,
) -> Sequential<F> {
    let mut m = Sequential::<F>::new(&[t, f]).seed(1);
    m.add(&*config(kind, u, return_sequences)).unwrap();
    m
}

fn config<F: Float>(kind: Kind, units: usize, return_sequences: bool) -> Box<dyn LayerConfig<F>> {
    match kind {
        Kind::Rnn => Box::new(SimpleRnnConfig::new(units).return_sequences(return_sequences)),
        Kind::Lstm => Box::new(LstmConfig::new(units).return_sequences(return_sequences)),
        Kind::Gru { reset_after } => Box::new(
            GruConfig::new(units)
                .reset_after(reset_after)
                .return_sequences(return_sequences),
        ),
    }
}

/// `Σ_k x[k]·w[k, col]` over a row of `x` and a column of the 2-D `w`.
fn dot_col(x: &[f64], w: &ArrayD<f64>, col: usize) -> f64 {
    x.iter().enumerate().map(|(k, &v)| v * w[[k, col]]).sum()
}

/// Plain reference forward: `[B, T, F]` → every step's `h`, `[B, T, u]`.
fn reference(kind: Kind, w: &[ArrayD<f64>], x: &ArrayD<f64>, u: usize) -> ArrayD<f64> {
    let (b, t, _) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (kernel, rec, bias) = (&w[0], &w[1], &w[2]);
    let mut out = ArrayD::zeros(IxDyn(&[b, t, u]));
    for bi in 0..b {
        let mut h = vec![0.0; u];
        let mut c = vec![0.0; u];
        for ti in 0..t {
            let xt: Vec<f64> = (0..x.shape()[2]).map(|f| x[[bi, ti, f]]).collect();
            let lin = |col: usize, hv: &[f64], row: usize| {
                let b_in = if bias.ndim() == 2 {
                    bias[[0, col]]
                } else {
                    bias[[col]]
                };
                let b_rec = if bias.ndim() == 2 {
                    bias[[1, col]]
                } else {
                    0.0
                };
                let _ = row;
                (
                    dot_col(&xt, kernel, col) + b_in,
                    dot_col(hv, rec, col) + b_rec,
                )
            };
            let new_h: Vec<f64> = match kind {
                Kind::Rnn => (0..u)
                    .map(|j| {
                        let (a, r) = lin(j, &h, 0);
                        (a + r).tanh()
                    })
                    .collect(),
                Kind::Lstm => {
                    let mut hn = vec![0.0; u];
                    for j in 0..u {
                        let g = |k: usize| {
                            let (a, r) = lin(k * u + j, &h, 0);
                            a + r
                        };
                        let (i, f, gg, o) =
                            (sigmoid(g(0)), sigmoid(g(1)), g(2).tanh(), sigmoid(g(3)));
                        c[j] = f * c[j] + i * gg;
                        hn[j] = o * c[j].tanh();
                    }
                    hn
                }
                Kind::Gru { reset_after } => {
                    let z: Vec<f64> = (0..u)
                        .map(|j| {
                            let (a, r) = lin(j, &h, 0);
                            sigmoid(a + r)
                        })
                        .collect();
                    let r: Vec<f64> = (0..u)
                        .map(|j| {
                            let (a, rr) = lin(u + j, &h, 0);
                            sigmoid(a + rr)
                        })
                        .collect();
                    let hh: Vec<f64> = if reset_after {
                        (0..u)
                            .map(|j| {
                                let (a, m) = lin(2 * u + j, &h, 0);
                                (a + r[j] * m).tanh()
                            })
                            .collect()
                    } else {
                        let rh: Vec<f64> = (0..u).map(|j| r[j] * h[j]).collect();
                        (0..u)
                            .map(|j| {
                                let (a, m) = lin(2 * u + j, &rh, 0);
                                (a + m).tanh()
                            })
                            .collect()
                    };
                    (0..u).map(|j| z[j] * h[j] + (1.0 - z[j]) * hh[j]).collect()
                }
            };
            h = new_h;
            for j in 0..u {
                out[[bi, ti, j]] = h[j];
            }
        }
    }
    out
}

fn random(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0..1.0))
}

const KINDS: [Kind; 4] = [
    Kind::Rnn,
    Kind::Lstm,
    Kind::Gru { reset_after: true },
    Kind::Gru { reset_after: false },
];

/// (batch, steps, features, units): odd sizes, batch 1, one step, and shapes large enough
/// that the loop is split over threads.
const SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 1, 1, 1),
    (1, 7, 3, 5),
    (3, 1, 2, 9),
    (5, 4, 7, 13),
    (33, 5, 3, 81),
    (40, 3, 11, 130),
    (48, 4, 5, 200),
];

#[test]
fn fast_path_equals_the_plain_reference() {
    let _serial = THREAD_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    for kind in KINDS {
        for (si, &(b, t, f, u)) in SHAPES.iter().enumerate() {
            let mut rng = seeded_rng(si as u64 + 7);
            let mut model = build::<f64>(kind, t, f, u, true);
            let weights: Vec<_> = model
                .get_weights()
                .iter()
                .map(|w| random(w.shape(), &mut rng) * 0.5)
                .collect();
            model.set_weights(&weights).unwrap();
            let x = random(&[b, t, f], &mut rng);
            let want = reference(kind, &weights, &x, u);
            for n in [1, 2] {
                threads(n);
                let got = model
                    .predict(Inputs::new(&x), b)
                    .map(|mut p| p.remove(0))
                    .unwrap();
                let err = (&got - &want)
                    .mapv(f64::abs)
                    .fold(0.0, |m: f64, &v| m.max(v));
                assert!(
                    err < 1e-12,
                    "{kind:?} {:?} threads={n}: max error {err}",
                    (b, t, f, u)
                );
            }

            // f32 (fast rational activations) stays within f32 accuracy of the reference.
            let mut m32 = build::<f32>(kind, t, f, u, true);
            m32.set_weights(
                &weights
                    .iter()
                    .map(|w| w.mapv(|v| v as f32))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let got = m32
                .predict(Inputs::new(&x.mapv(|v| v as f32)), b)
                .map(|mut p| p.remove(0))
                .unwrap();
            let err = (&got.mapv(f64::from) - &want)
                .mapv(f64::abs)
                .fold(0.0, |m: f64, &v| m.max(v));
            assert!(
                err < 1e-5,
                "{kind:?} {:?} f32: max error {err}",
                (b, t, f, u)
            );
        }
    }
    rnnkit::set_num_threads(0);
}

#[test]
fn outputs_and_gradients_do_not_depend_on_the_thread_count() {
    let _serial = THREAD_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    // Split over threads for every cell; with 8 steps LSTM's and SimpleRNN's weight
    // gradients take the packed kernel split by columns, with 4 matrixmultiply's.
    for ((b, t, f, u), kind) in [(48, 4, 5, 200), (48, 8, 5, 200)]
        .into_iter()
        .flat_map(|shape| KINDS.into_iter().map(move |k| (shape, k)))
    {
        let mut rng = seeded_rng(3);
        let x = random(&[b, t, f], &mut rng);
        let mut results = Vec::new();
        for n in [1, 2] {
            threads(n);
            let mut model = build::<f64>(kind, t, f, u, true);
            let before = rnnkit::parallel::time_loop_splits();
            let y = model
                .forward(Inputs::new(&x).mode(Mode::Train))
                .map(|mut o| o.remove(0).output)
                .unwrap();
            let dy = y.mapv(|v| v * 0.3 + 0.1);
            let dx = model
                .backward(&[OutputGrads::new(&dy)])
                .map(|mut d| d.remove(0))
                .unwrap();
            let split = rnnkit::parallel::time_loop_splits() - before;
            // One thread never splits; two split both the forward and the backward loop.
            assert_eq!(split, if n == 1 { 0 } else { 2 }, "{kind:?}: threads={n}");
            let mut out = vec![y, dx];
            model.visit_params(&mut |_, p| out.push(p.grad().clone()));
            results.push(out);
        }
        assert_eq!(results[0].len(), results[1].len());
        assert!(
            bits(&results[0]) == bits(&results[1]),
            "{kind:?}: outputs or gradients differ between 1 and 2 threads"
        );
    }
    rnnkit::set_num_threads(0);
}

/// Predictions from several threads at once (the helper team busy with one of them, the
/// others falling back to rayon, each call in its own buffers when the layer's are taken)
/// give the numbers one thread alone gives, bit for bit (inference reads its inputs
/// straight from `x` and splits each call over the helper team or rayon).
#[test]
fn concurrent_predictions_equal_a_lone_one() {
    let _serial = THREAD_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    threads(2);
    for kind in KINDS {
        let (b, t, f, u) = (48, 4, 5, 200); // each call splits over two threads
        let model = build::<f64>(kind, t, f, u, true);
        let mut rng = seeded_rng(5);
        let xs: Vec<ArrayD<f64>> = (0..4).map(|_| random(&[b, t, f], &mut rng)).collect();
        let predict = |x: &ArrayD<f64>| {
            model
                .predict(Inputs::new(x), b)
                .map(|mut p| p.remove(0))
                .unwrap()
        };
        let alone: Vec<_> = xs.iter().map(predict).collect();
        let together: Vec<Vec<ArrayD<f64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = xs
                .iter()
                .map(|x| s.spawn(move || (0..20).map(|_| predict(x)).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, runs) in together.iter().enumerate() {
            for y in runs {
                assert!(
                    bits(std::slice::from_ref(y)) == bits(std::slice::from_ref(&alone[i])),
                    "{kind:?}: input {i} predicted differently beside other threads"
                );
            }
        }
    }
    rnnkit::set_num_threads(0);
}
