//! Gradients through recurrent states (`forward_with_states` + `backward_with_states`),
//! against five-point finite differences in f64: into the initial states, from the final
//! states, through masks (leading padded steps output zero, as in Keras, whatever the
//! initial state) and `go_backwards`, for every cell.

use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use rnnkit::{Layer, LayerConfig};

fn uniform(shape: &[usize], rng: &mut rnnkit::init::StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-0.8..0.8))
}

fn five_point(mut f: impl FnMut(f64) -> f64) -> f64 {
    let h = 1e-5;
    (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h)
}

/// One case: `L = Σ y⊙r + Σ_i Σ s_i⊙q_i` with `s` the final states.
struct Case {
    layer: Box<dyn Layer<f64>>,
    x: ArrayD<f64>,
    mask: Option<Mask>,
    init: Vec<Array2<f64>>,
    r: ArrayD<f64>,
    q: Vec<Array2<f64>>,
}

impl Case {
    fn loss(&self, layer: &dyn Layer<f64>, x: &ArrayD<f64>, init: &[Array2<f64>]) -> f64 {
        let mut l = layer.box_clone();
        let mut states = init.to_vec();
        let y = l
            .forward(
                Inputs::new(x)
                    .mask(self.mask.as_ref())
                    .mode(Mode::Train)
                    .states(&states.clone()),
            )
            .map(|o| {
                states = o.states;
                o.output
            })
            .unwrap();
        (y * &self.r).sum()
            + states
                .iter()
                .zip(&self.q)
                .map(|(s, q)| (s * q).sum())
                .sum::<f64>()
    }
}

fn check(label: &str, cfg: &dyn LayerConfig<f64>, mask: Option<Vec<Vec<bool>>>) {
    let (b, t, f) = (3, 5, 2);
    let mut rng = seeded_rng(11);
    let layer = cfg.build(&[Some(t), Some(f)], &mut rng).unwrap();
    let x = uniform(&[b, t, f], &mut rng);
    let mask = mask.map(|m| Mask::from_shape_fn((b, t), |(i, j)| m[i][j]));
    let zero = layer.state().unwrap().zero_states(b).unwrap();
    let init: Vec<_> = zero
        .iter()
        .map(|s| {
            uniform(&[s.nrows(), s.ncols()], &mut rng)
                .into_dimensionality()
                .unwrap()
        })
        .collect();
    let mut probe = layer.box_clone();
    let mut states = init.clone();
    let y = probe
        .forward(
            Inputs::new(&x)
                .mask(mask.as_ref())
                .mode(Mode::Train)
                .states(&states.clone()),
        )
        .map(|o| {
            states = o.states;
            o.output
        })
        .unwrap();
    let r = uniform(y.shape(), &mut rng);
    let q: Vec<_> = states
        .iter()
        .map(|s| {
            uniform(&[s.nrows(), s.ncols()], &mut rng)
                .into_dimensionality()
                .unwrap()
        })
        .collect();
    let case = Case {
        layer,
        x,
        mask,
        init,
        r,
        q,
    };

    let mut l = case.layer.box_clone();
    let mut states = case.init.clone();
    l.forward(
        Inputs::new(&case.x)
            .mask(case.mask.as_ref())
            .mode(Mode::Train)
            .states(&states.clone()),
    )
    .map(|o| {
        states = o.states;
        o.output
    })
    .unwrap();
    l.zero_grad();
    let (dx, d_init) = l
        .backward(OutputGrads::new(&case.r).states(&case.q))
        .map(|mut g| (g.dxs.remove(0), g.states))
        .unwrap();
    let rel = |a: f64, n: f64| (a - n).abs() / (a.abs() + n.abs()).max(1e-4);
    for (si, s) in case.init.iter().enumerate() {
        for i in 0..s.len() {
            let num = five_point(|h| {
                let mut init = case.init.clone();
                init[si].as_slice_mut().unwrap()[i] += h;
                case.loss(case.layer.as_ref(), &case.x, &init)
            });
            let a = d_init[si].as_slice().unwrap()[i];
            assert!(
                rel(a, num) < 1e-7,
                "{label}: initial state {si}[{i}]: {a} vs {num}"
            );
        }
    }
    for i in 0..case.x.len() {
        let num = five_point(|h| {
            let mut x = case.x.clone();
            x.as_slice_mut().unwrap()[i] += h;
            case.loss(case.layer.as_ref(), &x, &case.init)
        });
        let a = dx.as_slice().unwrap()[i];
        assert!(rel(a, num) < 1e-7, "{label}: x[{i}]: {a} vs {num}");
    }
    let mut grads = Vec::new();
    l.visit_params(&mut |_, p| grads.push(p.grad().clone()));
    let weights = case.layer.get_weights();
    for (wi, w) in weights.iter().enumerate() {
        for i in 0..w.len() {
            let num = five_point(|h| {
                let mut lw = case.layer.box_clone();
                let mut ws = weights.clone();
                ws[wi].as_slice_mut().unwrap()[i] += h;
                lw.set_weights(&ws).unwrap();
                case.loss(lw.as_ref(), &case.x, &case.init)
            });
            let a = grads[wi].as_slice().unwrap()[i];
            assert!(
                rel(a, num) < 1e-7,
                "{label}: weight {wi}[{i}]: {a} vs {num}"
            );
        }
    }
}

type Config = Box<dyn LayerConfig<f64>>;

#[test]
fn gradients_flow_into_initial_states_and_from_final_states() {
    // Sample 0 pre-padded (two leading masked steps), sample 1 post-padded, sample 2 all
    // masked: its output is zero and its final states are the initial ones.
    let mask = vec![
        vec![false, false, true, true, true],
        vec![true, true, true, false, false],
        vec![false; 5],
    ];
    let cases: Vec<(&str, Config)> = vec![
        ("SimpleRnn", Box::new(SimpleRnnConfig::new(3))),
        (
            "Lstm sequences",
            Box::new(LstmConfig::new(3).return_sequences(true)),
        ),
        (
            "Lstm go_backwards",
            Box::new(LstmConfig::new(3).go_backwards(true)),
        ),
        ("Gru", Box::new(GruConfig::new(3).return_sequences(true))),
        (
            "Gru reset_before",
            Box::new(GruConfig::new(3).reset_after(false)),
        ),
    ];
    for (label, cfg) in &cases {
        check(label, cfg.as_ref(), None);
        check(&format!("{label} masked"), cfg.as_ref(), Some(mask.clone()));
    }
}

#[test]
fn leading_masked_steps_output_zero_not_the_initial_state() {
    // Keras: the "previous output" before the first real step is zero; the state waits at
    // the initial state. An all-masked sample outputs zero and returns its initial state.
    let mut rng = seeded_rng(3);
    let mut lstm = LstmConfig::new(2)
        .return_sequences(true)
        .build::<f64>(1, &mut rng)
        .unwrap();
    let x = uniform(&[2, 3, 1], &mut rng);
    let mask = Mask::from_shape_vec((2, 3), vec![false, true, true, false, false, false]).unwrap();
    let init = vec![
        Array2::from_elem((2, 2), 0.5),
        Array2::from_elem((2, 2), -0.25),
    ];
    let mut states = init.clone();
    let y = lstm
        .forward(
            Inputs::new(&x)
                .mask(Some(&mask))
                .mode(Mode::Infer)
                .states(&states.clone()),
        )
        .map(|o| {
            states = o.states;
            o.output
        })
        .unwrap();
    for (b, t) in [(0, 0), (1, 0), (1, 1), (1, 2)] {
        assert!(
            y.slice(ndarray::s![b, t, ..]).iter().all(|&v| v == 0.0),
            "{b},{t}"
        );
    }
    assert!(y.slice(ndarray::s![0, 1, ..]).iter().all(|&v| v != 0.0));
    assert_eq!(states[0].row(1), init[0].row(1));
    assert_eq!(states[1].row(1), init[1].row(1));
}
