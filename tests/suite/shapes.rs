//! Output shapes, parameter counts and `summary()` against Keras.

use crate::common;

use common::*;
use ndarray::{Array3, ArrayD};
use rnnkit::prelude::*;

#[test]
fn parameter_counts_match_keras_formulas() {
    let rng = &mut seeded_rng(0);
    assert_eq!(
        SimpleRnnConfig::new(20)
            .build::<f32>(1, rng)
            .unwrap()
            .param_count(),
        440
    );
    assert_eq!(
        LstmConfig::new(10)
            .build::<f32>(1, rng)
            .unwrap()
            .param_count(),
        480
    );
    assert_eq!(
        GruConfig::new(10)
            .build::<f32>(1, rng)
            .unwrap()
            .param_count(),
        390
    );
    assert_eq!(
        GruConfig::new(10)
            .reset_after(false)
            .build::<f32>(1, rng)
            .unwrap()
            .param_count(),
        360
    );
    // 2 inputs, 3 units: Keras has one bias (72), PyTorch two (84).
    assert_eq!(
        LstmConfig::new(3)
            .build::<f32>(2, rng)
            .unwrap()
            .param_count(),
        72
    );
    assert_eq!(
        DenseConfig::new(1)
            .build::<f32>(20, rng)
            .unwrap()
            .param_count(),
        21
    );
    assert_eq!(
        BidirectionalConfig::new(LstmConfig::new(10))
            .build::<f32>(1, rng)
            .unwrap()
            .param_count(),
        960
    );
}

#[test]
fn every_param_counts_model_matches_keras_summary() {
    let case = load("param_counts");
    let models = case["models"].as_array().unwrap();
    assert_eq!(
        models.len(),
        7,
        "tests/fixtures/param_counts.json holds seven models"
    );
    for m in models {
        let input: Vec<usize> = m["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let mut model = Sequential::<f32>::new(&input);
        for spec in m["layers"].as_array().unwrap() {
            model.add(layer_config::<f32>(spec).as_ref()).unwrap();
        }
        let summary = model.summary();
        let name = m["name"].as_str().unwrap();
        assert_eq!(
            summary.rows.len(),
            m["layers"].as_array().unwrap().len(),
            "{name}"
        );
        for (row, spec) in summary.rows.iter().zip(m["layers"].as_array().unwrap()) {
            assert_eq!(
                row.params as u64,
                spec["params"].as_u64().unwrap(),
                "{name}: {}",
                row.name
            );
            let shape: Vec<String> = spec["output_shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().map_or("None".to_string(), |v| v.to_string()))
                .collect();
            assert_eq!(
                row.output_shape,
                format!("({})", shape.join(", ")),
                "{name}: {}",
                row.name
            );
        }
        assert_eq!(
            summary.total_params() as u64,
            m["total_params"].as_u64().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn summary_prints_in_keras_layout() {
    let model = Sequential::<f32>::new(&[3, 1])
        .push(SimpleRnnConfig::new(20))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let expected = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ simple_rnn (SimpleRNN)          │ (None, 20)             │           440 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 1)              │            21 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 461 (1.80 KB)
 Trainable params: 461 (1.80 KB)
 Non-trainable params: 0 (0.00 B)";
    assert_eq!(model.summary().to_string(), expected);
}

#[test]
fn summary_uses_thousands_separators_and_unique_names() {
    let model = Sequential::<f32>::new(&[3, 1])
        .push(SimpleRnnConfig::new(256).return_sequences(true))
        .unwrap()
        .push(SimpleRnnConfig::new(4))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let s = model.summary().to_string();
    assert!(
        s.contains("│ simple_rnn (SimpleRNN)          │ (None, 3, 256)         │        66,048 │"),
        "{s}"
    );
    assert!(s.contains("simple_rnn_1 (SimpleRNN)"), "{s}");
}

#[test]
fn output_shapes_follow_return_sequences_and_merge_mode() {
    let rng = &mut seeded_rng(1);
    let x = Array3::<f64>::zeros((2, 5, 3)).into_dyn();
    let shape = |l: &mut dyn Layer<f64>| {
        l.forward(Inputs::new(&x).mode(Mode::Infer))
            .map(|o| o.output)
            .unwrap()
            .shape()
            .to_vec()
    };
    assert_eq!(
        shape(&mut SimpleRnnConfig::new(4).build(3, rng).unwrap()),
        [2, 4]
    );
    assert_eq!(
        shape(
            &mut SimpleRnnConfig::new(4)
                .return_sequences(true)
                .build(3, rng)
                .unwrap()
        ),
        [2, 5, 4]
    );
    assert_eq!(
        shape(
            &mut LstmConfig::new(4)
                .return_sequences(true)
                .go_backwards(true)
                .build(3, rng)
                .unwrap()
        ),
        [2, 5, 4]
    );
    // GRU and LSTM give the same output shape (candle#1723 was a bug here).
    assert_eq!(
        shape(&mut GruConfig::new(4).build(3, rng).unwrap()),
        shape(&mut LstmConfig::new(4).build(3, rng).unwrap())
    );
    assert_eq!(
        shape(
            &mut BidirectionalConfig::new(GruConfig::new(4))
                .build(3, rng)
                .unwrap()
        ),
        [2, 8]
    );
    assert_eq!(
        shape(
            &mut BidirectionalConfig::new(GruConfig::new(4).return_sequences(true))
                .merge_mode(MergeMode::Ave)
                .build(3, rng)
                .unwrap()
        ),
        [2, 5, 4]
    );
    assert_eq!(
        shape(&mut DenseConfig::new(7).build(3, rng).unwrap()),
        [2, 5, 7]
    );
}

#[test]
fn variable_length_model_accepts_any_steps() {
    let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(LstmConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    assert!(model.summary().to_string().contains("(None, 3)"));
    for steps in [1, 4, 9] {
        let y = model
            .predict(
                Inputs::new(&ArrayD::zeros(ndarray::IxDyn(&[2, steps, 2]))),
                32,
            )
            .map(|mut p| p.remove(0))
            .unwrap();
        assert_eq!(y.shape(), &[2, 1]);
    }
}

#[test]
fn seeded_initialisation_is_reproducible_and_keras_shaped() {
    let build = |seed| {
        Sequential::<f64>::new(&[3, 2])
            .seed(seed)
            .push(LstmConfig::new(5))
            .unwrap()
            .get_weights()
    };
    assert_eq!(build(3), build(3));
    assert_ne!(build(3), build(4));
    let w = build(3);
    assert_eq!(w[0].shape(), &[2, 20]);
    assert_eq!(w[1].shape(), &[5, 20]);
    // orthogonal over the whole [5, 20] recurrent kernel: R·Rᵀ = I
    let r = w[1].view().into_dimensionality::<ndarray::Ix2>().unwrap();
    let g = r.dot(&r.t());
    for i in 0..5 {
        for j in 0..5 {
            assert!((g[[i, j]] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
    // glorot limit over the whole [2, 20] kernel
    let limit = (6.0f64 / 22.0).sqrt();
    assert!(w[0].iter().all(|v| v.abs() <= limit));
    // bias: zeros with the forget block at exactly 1
    let b = &w[2];
    assert!(
        b.iter()
            .enumerate()
            .all(|(i, &v)| v == if (5..10).contains(&i) { 1.0 } else { 0.0 })
    );
}
