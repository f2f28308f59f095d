//! The panics, aborts and silently wrong results a hostile-but-plausible user program found
//! (the structure issue's list), each now a typed error or made impossible. One test per
//! case, asserting the error; `unchanged.rs` checks bit for bit that refused calls move no
//! weight, optimizer state, epoch count, dropout stream or carried state.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{Error, FileError};

fn small_model() -> Sequential<f64> {
    Sequential::<f64>::new(&[4, 2])
        .push(LstmConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
}

fn data(n: usize) -> (ArrayD<f64>, ArrayD<f64>) {
    let x = Array3::from_shape_fn((n, 4, 2), |(i, t, f)| ((i + 2 * t + f) as f64 * 0.3).sin());
    let y = Array2::from_shape_fn((n, 1), |(i, _)| (i as f64 * 0.1).cos());
    (x.into_dyn(), y.into_dyn())
}

fn is_config(r: Result<impl std::fmt::Debug, Error>, field: &str) {
    match r {
        Err(Error::Config { field: f, .. }) if f == field => {}
        other => panic!("expected Config error on `{field}`, got {other:?}"),
    }
}

#[test]
fn huge_layers_are_refused_before_allocating() {
    let mut rng = seeded_rng(0);
    is_config(
        LstmConfig::new(usize::MAX / 2).build::<f32>(3, &mut rng),
        "units",
    );
    is_config(
        SimpleRnnConfig::new(100_000).build::<f32>(3, &mut rng),
        "units",
    );
    is_config(
        LstmConfig::new(1 << 62)
            .use_bias(false)
            .build::<f32>(1, &mut rng),
        "units",
    );
    is_config(GruConfig::new(1 << 40).build::<f64>(1, &mut rng), "units");
    is_config(
        DenseConfig::new(usize::MAX).build::<f32>(2, &mut rng),
        "units",
    );
    is_config(
        DenseConfig::new(1 << 20).build::<f32>(1 << 20, &mut rng),
        "units",
    );
    let m = Sequential::<f32>::new(&[3, 2]).push(BidirectionalConfig::new(GruConfig::new(1 << 40)));
    assert!(matches!(m, Err(Error::Config { .. })));
}

#[test]
fn a_mask_with_other_rows_than_the_input_is_refused() {
    let m = small_model();
    let (x, _) = data(5);
    let before = m.get_weights();
    for rows in [3, 7] {
        let mask = Array2::from_elem((rows, 4), true);
        assert!(matches!(
            m.predict(Inputs::new(&x).mask(Some(&mask)), 2)
                .map(|mut p| p.remove(0)),
            Err(Error::Shape { what: "mask", .. })
        ));
    }
    assert_eq!(m.get_weights(), before);
}

#[test]
fn a_loss_mask_of_unrelated_shape_is_refused() {
    let pred = ArrayD::<f64>::zeros(IxDyn(&[2, 3, 1]));
    let y = ArrayD::<f64>::zeros(IxDyn(&[2, 3, 1]));
    for shape in [(2, 4), (3, 3), (1, 1)] {
        let mask = Array2::from_elem(shape, true);
        assert!(matches!(
            Loss::Mse.compute(&pred, &y, Some(&mask), None),
            Err(Error::Shape { what: "mask", .. })
        ));
    }
    let pred2 = ArrayD::<f64>::zeros(IxDyn(&[2, 1]));
    let mask = Array2::from_elem((2, 1), true);
    assert!(
        Loss::Mse
            .compute(&pred2, &pred2, Some(&mask), None)
            .is_err()
    );
}

#[test]
fn one_trainer_refuses_a_second_model_with_other_weights() {
    let (x, y) = data(8);
    let mut a = small_model();
    let mut b = Sequential::<f64>::new(&[4, 2])
        .push(GruConfig::new(5))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let mut trainer = Trainer::new(Adam::default(), Loss::Mse).epochs(2);
    trainer.fit(&mut a, (&x, &y)).unwrap();
    let before = b.get_weights();
    match trainer.fit(&mut b, (&x, &y)) {
        Err(Error::Config { field: "model", .. }) => {}
        other => panic!("expected a model mismatch, got {other:?}"),
    }
    assert_eq!(b.get_weights(), before);
    // The same model again is fine.
    trainer.fit(&mut a, (&x, &y)).unwrap();
}

#[test]
fn early_stopping_starts_afresh_in_a_second_fit() {
    use rnnkit::{Callback, train::Context, train::Logs};
    let mut m = small_model();
    let mut opt = Adam::<f64>::default();
    let mut ctx = Context::new(&mut m, &mut opt);
    let mut es = EarlyStopping::<f64>::new("loss").restore_best_weights(true);
    let logs: Logs = [("loss".to_string(), 0.5)].into_iter().collect();
    es.on_train_begin(&mut ctx).unwrap();
    es.on_epoch_end(0, &logs, &mut ctx).unwrap();
    assert_eq!(es.best_epoch(), Some(0));
    // A second fit: nothing of the first one's best value, wait or weights remains.
    es.on_train_begin(&mut ctx).unwrap();
    assert_eq!(es.best_epoch(), None);
    let worse: Logs = [("loss".to_string(), 0.9)].into_iter().collect();
    es.on_epoch_end(0, &worse, &mut ctx).unwrap();
    assert_eq!(es.best_epoch(), Some(0), "0.9 is the best of the new fit");
}

#[test]
fn a_checkpoint_claiming_impossible_counts_is_refused() {
    let (x, y) = data(8);
    let mut m = small_model();
    let mut trainer = Trainer::new(Adam::default(), Loss::Mse).epochs(1);
    trainer.fit(&mut m, (&x, &y)).unwrap();
    let dir = std::env::temp_dir().join(format!("rnnkit-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    trainer.save_checkpoint(&m, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for (epoch, iterations) in [(usize::MAX as u64, u64::MAX), (5, 2), (1, u64::MAX)] {
        let forged = rewrite_checkpoint(&bytes, epoch, iterations);
        std::fs::write(&path, forged).unwrap();
        let mut fresh = Trainer::new(Adam::<f64>::default(), Loss::Mse);
        match fresh.resume(&path) {
            Err(Error::File {
                error: FileError::Checkpoint(_),
                ..
            }) => {}
            other => panic!("({epoch}, {iterations}): expected a Checkpoint error, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The checkpoint's bytes with its `epoch` and `iterations` replaced (header re-padded).
fn rewrite_checkpoint(bytes: &[u8], epoch: u64, iterations: u64) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = &mut header["__metadata__"];
    let mut info: serde_json::Value =
        serde_json::from_str(meta["checkpoint"].as_str().unwrap()).unwrap();
    info["epoch"] = epoch.into();
    info["iterations"] = iterations.into();
    meta["checkpoint"] = info.to_string().into();
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

#[test]
fn an_optimizer_applied_by_hand_validates_its_settings() {
    let (x, y) = data(4);
    let mut m = small_model();
    let out = m
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let (_, g) = Loss::Mse.compute(&out, &y, None, None).unwrap();
    m.backward(&[OutputGrads::new(&g)])
        .map(|mut d| d.remove(0))
        .unwrap();
    let before = m.get_weights();
    let mut adam = Adam::<f64>::new(f64::NAN);
    assert!(matches!(adam.apply(&mut m), Err(Error::Config { .. })));
    let mut clipped = Adam::<f64>::new(0.01).clipnorm(0.0);
    assert!(matches!(clipped.apply(&mut m), Err(Error::Config { .. })));
    assert_eq!(m.get_weights(), before);
}

#[test]
fn a_column_major_parameter_is_stored_row_major() {
    let a = ndarray::Array2::<f64>::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f64);
    let column_major = a.t().to_owned().into_dyn();
    assert!(!column_major.is_standard_layout());
    let p = rnnkit::Param::new(column_major);
    assert!(p.value().is_standard_layout());
    assert_eq!(p.value()[[1, 2]], 5.0);
}

#[test]
fn mismatched_bidirectional_directions_are_refused() {
    let mut rng = seeded_rng(0);
    let f = LstmConfig::new(4).build::<f64>(2, &mut rng).unwrap();
    let b = LstmConfig::new(5).build::<f64>(2, &mut rng).unwrap();
    assert!(matches!(
        Bidirectional::from_pair(f.clone(), b, MergeMode::Concat),
        Err(Error::Incompatible { .. })
    ));
    let b = LstmConfig::new(4)
        .return_sequences(true)
        .build::<f64>(2, &mut rng)
        .unwrap();
    assert!(Bidirectional::from_pair(f, b, MergeMode::Sum).is_err());
}

#[test]
fn names_that_would_not_load_are_refused_when_the_model_is_built() {
    let dup = Sequential::<f32>::new(&[3, 1])
        .push(SimpleRnnConfig::new(2).return_sequences(true).name("a"))
        .unwrap()
        .push(SimpleRnnConfig::new(2).name("a"));
    assert!(matches!(dup, Err(Error::Config { field: "name", .. })));
    // An explicit name equal to an earlier default one.
    let dup = Sequential::<f32>::new(&[3, 1])
        .push(SimpleRnnConfig::new(2).return_sequences(true))
        .unwrap()
        .push(SimpleRnnConfig::new(2).name("simple_rnn"));
    assert!(matches!(dup, Err(Error::Config { field: "name", .. })));
    for bad in ["optimizer", "a/b", ""] {
        let m = Sequential::<f32>::new(&[3, 1]).push(DenseConfig::new(1).name(bad));
        assert!(
            matches!(m, Err(Error::Config { field: "name", .. })),
            "{bad:?}"
        );
    }
    // A default name after an explicit one never repeats it, and a huge numbered name
    // does not overflow the counter.
    let m = Sequential::<f32>::new(&[3, 1])
        .push(
            SimpleRnnConfig::new(2)
                .return_sequences(true)
                .name("simple_rnn_18446744073709551615"),
        )
        .unwrap()
        .push(SimpleRnnConfig::new(2))
        .unwrap();
    let names: Vec<_> = m.layers().iter().map(|l| l.name().to_string()).collect();
    assert_ne!(names[0], names[1]);
}

#[test]
fn add_layer_refuses_names_that_would_not_load_and_defaults_never_repeat_a_name() {
    use rnnkit::LayerConfig;
    let dense = |name: &str| {
        let mut l = LayerConfig::<f32>::build(&DenseConfig::new(1), &[Some(1)], &mut seeded_rng(0))
            .unwrap();
        l.set_name(name);
        l
    };
    for bad in ["optimizer", "a/b", ""] {
        let mut m = Sequential::<f32>::new(&[1]);
        is_config(m.add_layer(dense(bad)).map(|_| ()), "name");
        assert!(m.layers().is_empty(), "{bad:?}: nothing added");
    }
    // A layer added under a default name, then a default-named layer of the same type: the
    // second gets the next name (a clashing added layer gets a suffix), so the model saves
    // and loads.
    let mut m = Sequential::<f32>::new(&[1]);
    m.add_layer(dense("dense")).unwrap();
    m.add(&DenseConfig::new(1)).unwrap();
    m.add_layer(dense("dense_1")).unwrap();
    let names: Vec<_> = m.layers().iter().map(|l| l.name().to_string()).collect();
    assert_eq!(names, ["dense", "dense_1", "dense_1_1"]);
    assert!(Sequential::<f32>::from_bytes(&m.to_bytes().unwrap()).is_ok());
    // The counter at the top of usize: later default names are still found, and unique.
    let mut m = Sequential::<f32>::new(&[1]);
    m.add(&DenseConfig::new(1).name("dense_18446744073709551614"))
        .unwrap();
    for _ in 0..3 {
        m.add(&DenseConfig::new(1)).unwrap();
    }
    let mut names: Vec<_> = m.layers().iter().map(|l| l.name().to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(Sequential::<f32>::from_bytes(&m.to_bytes().unwrap()).is_ok());
}

#[test]
fn early_stopping_run_by_hand_on_another_model_is_an_error() {
    use rnnkit::{Callback, train::Context, train::Control};
    let mut opt = Adam::<f64>::default();
    let mut es = EarlyStopping::<f64>::new("loss").restore_best_weights(true);
    let mut a = small_model();
    let logs = [("loss".to_string(), 1.0)].into_iter().collect();
    assert_eq!(
        es.on_epoch_end(0, &logs, &mut Context::new(&mut a, &mut opt))
            .unwrap(),
        Control::Continue
    );
    let mut other = Sequential::<f64>::new(&[4, 2])
        .push(GruConfig::new(5))
        .unwrap();
    let before = other.get_weights();
    assert!(matches!(
        es.on_train_end(&mut Context::new(&mut other, &mut opt)),
        Err(Error::WeightCount { .. } | Error::WeightShape { .. })
    ));
    assert_eq!(other.get_weights(), before);
    assert!(es.on_train_end(&mut Context::new(&mut a, &mut opt)).is_ok());
}

#[test]
fn non_finite_mask_values_are_refused() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let m = Sequential::<f32>::new(&[3, 1]).push(MaskingConfig::new(v));
        assert!(
            matches!(
                m,
                Err(Error::Config {
                    field: "mask_value",
                    ..
                })
            ),
            "{v}"
        );
    }
}

#[test]
fn set_weights_refuses_non_finite_values_and_changes_nothing() {
    let mut m = small_model();
    let before = m.get_weights();
    let mut w = before.clone();
    w[1][[0, 0]] = f64::INFINITY;
    assert!(matches!(m.set_weights(&w), Err(Error::Data(_))));
    assert_eq!(m.get_weights(), before);
    let layer = &mut m.layers_mut()[0];
    let mut lw = layer.get_weights();
    lw[0][[0, 0]] = f64::NAN;
    assert!(layer.set_weights(&lw).is_err());
}

#[test]
fn an_f64_value_beyond_f32_is_refused_by_an_f32_model() {
    let mut m = Sequential::<f64>::new(&[2])
        .push(DenseConfig::new(1))
        .unwrap();
    m.set_weights(&[
        ArrayD::from_elem(IxDyn(&[2, 1]), 1e300),
        ArrayD::zeros(IxDyn(&[1])),
    ])
    .unwrap();
    let bytes = m.to_bytes().unwrap();
    match Sequential::<f32>::from_bytes(&bytes) {
        Err(Error::File {
            error: FileError::NonFinite { .. },
            ..
        }) => {}
        other => panic!("expected NonFinite, got {other:?}"),
    }
    assert!(Sequential::<f64>::from_bytes(&bytes).is_ok());
}

#[test]
fn a_user_model_claiming_softmax_without_logits_is_an_error() {
    use rnnkit::{Dim, Model, Param};
    #[derive(Debug)]
    struct Liar(Param<f64>);
    impl Model<f64> for Liar {
        fn input_shapes(&self) -> Vec<Vec<Dim>> {
            vec![vec![Some(2)]]
        }
        fn output_shapes(&self) -> Vec<Vec<Dim>> {
            vec![vec![Some(2)]]
        }
        fn output_activations(&self) -> Vec<Activation> {
            vec![Activation::Softmax]
        }
        fn forward(&mut self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, Error> {
            self.infer(inputs)
        }
        fn infer(&self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, Error> {
            Ok(vec![Outputs::new(inputs.xs[0].clone().into_owned())])
        }
        fn backward(&mut self, grads: &[OutputGrads<'_, f64>]) -> Result<Vec<ArrayD<f64>>, Error> {
            Ok(vec![grads[0].dy.clone()])
        }
    }

    impl Module<f64> for Liar {
        fn name(&self) -> &str {
            "liar"
        }
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
            f("w", &self.0)
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
            f("w", &mut self.0)
        }
    }
    let mut m = Liar(Param::new(ArrayD::zeros(IxDyn(&[1]))));
    let x = ArrayD::from_elem(IxDyn(&[4, 2]), 0.5);
    let y = ArrayD::from_shape_fn(IxDyn(&[4, 2]), |i| if i[1] == 0 { 1.0 } else { 0.0 });
    let mut t = Trainer::new(Adam::default(), Loss::categorical_crossentropy());
    assert!(matches!(
        t.fit(&mut m, (&x, &y)),
        Err(Error::Unsupported { .. })
    ));
}
