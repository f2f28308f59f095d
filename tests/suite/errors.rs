//! Every error path returns its typed variant, and no bad input panics.

use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use rnnkit::{Error, LayerConfig};

fn zeros(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::zeros(IxDyn(shape))
}

fn lstm() -> rnnkit::layers::Lstm<f64> {
    LstmConfig::new(3)
        .name("enc")
        .build(2, &mut seeded_rng(0))
        .unwrap()
}

#[test]
fn wrong_rank_names_layer_expected_and_received() {
    let e = lstm()
        .forward(Inputs::new(&zeros(&[4, 2])).mode(Mode::Infer))
        .map(|o| o.output)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Rank { layer, got: 2, .. } if layer == "enc"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "enc: expected input of rank 3 ([batch, steps, features]), got rank 2 with shape [4, 2]"
    );
    let mut d = DenseConfig::new(2)
        .build::<f64>(3, &mut seeded_rng(0))
        .unwrap();
    assert!(matches!(
        d.forward(Inputs::new(&zeros(&[1, 2, 3, 3])).mode(Mode::Infer))
            .map(|o| o.output),
        Err(Error::Rank { .. })
    ));
}

#[test]
fn wrong_feature_count() {
    let e = lstm()
        .forward(Inputs::new(&zeros(&[4, 5, 7])).mode(Mode::Infer))
        .map(|o| o.output)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Features {
                expected: 2,
                got: 7,
                ..
            }
        ),
        "{e:?}"
    );
    let mut d = DenseConfig::new(2)
        .build::<f64>(3, &mut seeded_rng(0))
        .unwrap();
    assert!(matches!(
        d.forward(Inputs::new(&zeros(&[4, 5])).mode(Mode::Infer))
            .map(|o| o.output),
        Err(Error::Features {
            expected: 3,
            got: 5,
            ..
        })
    ));
}

#[test]
fn empty_batch_and_empty_sequence() {
    assert!(matches!(
        lstm()
            .forward(Inputs::new(&zeros(&[0, 5, 2])).mode(Mode::Infer))
            .map(|o| o.output),
        Err(Error::Empty { what: "batch", .. })
    ));
    assert!(matches!(
        lstm()
            .forward(Inputs::new(&zeros(&[3, 0, 2])).mode(Mode::Infer))
            .map(|o| o.output),
        Err(Error::Empty { what: "steps", .. })
    ));
    let mut d = DenseConfig::new(2)
        .build::<f64>(3, &mut seeded_rng(0))
        .unwrap();
    assert!(matches!(
        d.forward(Inputs::new(&zeros(&[0, 3])).mode(Mode::Infer))
            .map(|o| o.output),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn zero_units_and_invalid_activation() {
    let rng = &mut seeded_rng(0);
    assert!(matches!(
        SimpleRnnConfig::new(0).build::<f32>(1, rng),
        Err(Error::Config { field: "units", .. })
    ));
    assert!(matches!(
        GruConfig::new(0).build::<f32>(1, rng),
        Err(Error::Config { field: "units", .. })
    ));
    assert!(matches!(
        DenseConfig::new(0).build::<f32>(1, rng),
        Err(Error::Config { field: "units", .. })
    ));
    assert!(matches!(
        LstmConfig::new(2).build::<f32>(0, rng),
        Err(Error::Config {
            field: "input_dim",
            ..
        })
    ));
    let e = SimpleRnnConfig::new(2)
        .activation(Activation::Softmax)
        .build::<f32>(1, rng)
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Config {
                field: "activation",
                ..
            }
        ),
        "{e:?}"
    );
    assert!("gelu".parse::<Activation>().is_err());
    assert!("avg".parse::<MergeMode>().is_err());
}

#[test]
fn weights_of_the_wrong_shape_or_count_change_nothing() {
    let mut l = lstm();
    let before = l.get_weights();
    let mut w = before.clone();
    w[1] = zeros(&[12, 3]); // transposed recurrent kernel
    let e = l.set_weights(&w).unwrap_err();
    assert!(
        matches!(&e, Error::WeightShape { name, expected, got, .. } if name == "recurrent_kernel" && expected == &[3, 12] && got == &[12, 3]),
        "{e:?}"
    );
    assert!(matches!(
        l.set_weights(&w[..2]),
        Err(Error::WeightCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
    assert_eq!(l.get_weights(), before);

    let mut m = Sequential::<f64>::new(&[4, 2])
        .push(LstmConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let before = m.get_weights();
    let mut w: Vec<_> = before.iter().map(|a| a.mapv(|_| 0.5)).collect();
    w[4] = zeros(&[2]); // Dense bias should be [1]
    assert!(matches!(m.set_weights(&w), Err(Error::WeightShape { .. })));
    assert_eq!(
        m.get_weights(),
        before,
        "a failed set_weights must leave the model unchanged"
    );
}

#[test]
fn backward_needs_a_training_forward_and_the_right_gradient_shape() {
    let mut l = lstm();
    assert!(matches!(
        l.backward(OutputGrads::new(&zeros(&[2, 3])))
            .map(|g| g.dx()),
        Err(Error::NoCache { .. })
    ));
    l.forward(Inputs::new(&zeros(&[2, 5, 2])).mode(Mode::Train))
        .map(|o| o.output)
        .unwrap();
    assert!(matches!(
        l.backward(OutputGrads::new(&zeros(&[2, 4])))
            .map(|g| g.dx()),
        Err(Error::Shape { what: "dL/dy", .. })
    ));
    l.forward(Inputs::new(&zeros(&[2, 5, 2])).mode(Mode::Infer))
        .map(|o| o.output)
        .unwrap();
    assert!(
        matches!(
            l.backward(OutputGrads::new(&zeros(&[2, 3])))
                .map(|g| g.dx()),
            Err(Error::NoCache { .. })
        ),
        "Infer invalidates the cache"
    );
    let mut d = DenseConfig::new(2)
        .build::<f64>(3, &mut seeded_rng(0))
        .unwrap();
    assert!(matches!(
        d.backward(OutputGrads::new(&zeros(&[1, 2])))
            .map(|g| g.dx()),
        Err(Error::NoCache { .. })
    ));
}

#[test]
fn masks_that_do_not_fit() {
    let mut l = lstm();
    let bad = Array2::from_elem((2, 4), true);
    let e = l
        .forward(
            Inputs::new(&zeros(&[2, 5, 2]))
                .mask(Some(&bad))
                .mode(Mode::Infer),
        )
        .map(|o| o.output)
        .unwrap_err();
    assert!(matches!(&e, Error::Shape { what: "mask", .. }), "{e:?}");
    let mut d = DenseConfig::new(2)
        .build::<f64>(3, &mut seeded_rng(0))
        .unwrap();
    assert!(matches!(
        d.forward(
            Inputs::new(&zeros(&[2, 3]))
                .mask(Some(&bad))
                .mode(Mode::Infer)
        )
        .map(|o| o.output),
        Err(Error::Mask { .. })
    ));
    let mut m = Sequential::<f64>::new(&[3])
        .push(DenseConfig::new(1))
        .unwrap();
    assert!(matches!(
        m.forward(
            Inputs::new(&zeros(&[2, 3]))
                .mask(Some(&bad))
                .mode(Mode::Infer)
        )
        .map(|mut o| o.remove(0).output),
        Err(Error::Mask { .. })
    ));
}

#[test]
fn incompatible_stacks_name_both_layers() {
    let e = Sequential::<f32>::new(&[5, 2])
        .push(LstmConfig::new(3))
        .unwrap()
        .push(GruConfig::new(2))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Incompatible { layer, previous, .. } if layer == "gru" && previous.contains("lstm (LSTM)")),
        "{e}"
    );
    assert!(e.to_string().contains("(None, 3)"), "{e}");
    let e = Sequential::<f32>::new(&[4])
        .push(LstmConfig::new(3))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Incompatible { previous, .. } if previous.contains("input")),
        "{e}"
    );
    let e = Sequential::<f32>::new(&[4, 2])
        .push(BidirectionalConfig::new(LstmConfig::new(3)).merge_mode(MergeMode::None))
        .unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }));
}

#[test]
fn model_input_and_batch_size_errors() {
    let mut m = Sequential::<f64>::new(&[3, 1])
        .push(SimpleRnnConfig::new(2))
        .unwrap();
    assert!(matches!(
        m.forward(Inputs::new(&zeros(&[4, 5, 1])).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output),
        Err(Error::Shape { what: "input", .. })
    ));
    assert!(matches!(
        m.forward(Inputs::new(&zeros(&[0, 3, 1])).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        m.predict(Inputs::new(&zeros(&[4, 3, 1])), 0)
            .map(|mut p| p.remove(0)),
        Err(Error::Config {
            field: "batch_size",
            ..
        })
    ));
}

/// Random shapes, masks and gradients thrown at every layer type: Ok or Err, never a panic.
#[test]
fn no_input_panics() {
    let mut rng = seeded_rng(5);
    let configs: Vec<Box<dyn LayerConfig<f64>>> = vec![
        Box::new(SimpleRnnConfig::new(2)),
        Box::new(LstmConfig::new(2).return_sequences(true)),
        Box::new(GruConfig::new(2).reset_after(false).go_backwards(true)),
        Box::new(DenseConfig::new(2).activation(Activation::Softmax)),
        Box::new(MaskingConfig::new(0.0)),
        Box::new(
            BidirectionalConfig::new(GruConfig::new(2).return_sequences(true))
                .merge_mode(MergeMode::Mul),
        ),
    ];
    for cfg in &configs {
        let mut layer = cfg.build(&[Some(3), Some(2)], &mut seeded_rng(0)).unwrap();
        for _ in 0..300 {
            let rank = rng.random_range(0..5);
            let shape: Vec<usize> = (0..rank).map(|_| rng.random_range(0..4)).collect();
            let x = ArrayD::from_elem(IxDyn(&shape), 0.5);
            let mask = rng.random_bool(0.3).then(|| {
                Array2::from_shape_simple_fn(
                    (rng.random_range(0..4), rng.random_range(0..4)),
                    || rng.random_bool(0.5),
                )
            });
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = layer
                    .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train))
                    .map(|o| o.output);
                let dshape: Vec<usize> = (0..rng.random_range(0..4))
                    .map(|_| rng.random_range(0..4))
                    .collect();
                let _ = layer
                    .backward(OutputGrads::new(&ArrayD::from_elem(IxDyn(&dshape), 1.0)))
                    .map(|g| g.dx());
                if let Ok(y) = layer
                    .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train))
                    .map(|o| o.output)
                {
                    let _ = layer
                        .backward(OutputGrads::new(&ArrayD::ones(y.raw_dim())))
                        .map(|g| g.dx());
                }
            }));
            assert!(
                result.is_ok(),
                "{} panicked on input {shape:?}, mask {:?}",
                layer.name(),
                mask.map(|m| m.dim())
            );
        }
    }
}
