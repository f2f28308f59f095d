//! Regression tests for the silently wrong results of issue #25 (each named after the
//! finding it guards): every one failed on main at ef3382d.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{
    EsnConfig, GlobalAveragePooling1DConfig, MergeMode, Optimizer, RepeatVectorConfig,
    layers::Bidirectional, train::Context, train::Control, train::EpochEnd,
    train::ExponentialDecay, train::Logs, train::ReduceLROnPlateau,
};
use std::cell::RefCell;
use std::rc::Rc;

fn xs(n: usize) -> ArrayD<f64> {
    Array3::from_shape_fn((n, 4, 3), |(i, t, f)| {
        ((i * 7 + t * 3 + f) as f64 * 0.37).sin()
    })
    .into_dyn()
}

fn one_hot(n: usize, k: usize) -> ArrayD<f64> {
    Array2::from_shape_fn((n, k), |(i, j)| f64::from(u8::from(i % k == j))).into_dyn()
}

/// LSTM (with `dropout`, `recurrent_dropout`) → Dropout → Dense softmax, or the same
/// without any dropout, with the same weights.
fn classifier(dropout: bool) -> Sequential<f64> {
    let rate = if dropout { 0.5 } else { 0.0 };
    let mut m = Sequential::<f64>::new(&[4, 3]);
    m.add(
        &LstmConfig::new(5)
            .dropout(rate)
            .recurrent_dropout(rate)
            .seed(3),
    )
    .unwrap();
    if dropout {
        m.add(&DropoutConfig::new(0.5).seed(4)).unwrap();
    }
    m.add(&DenseConfig::new(3).activation(Activation::Softmax))
        .unwrap();
    let mut rng = seeded_rng(11);
    let w: Vec<ArrayD<f64>> = m
        .get_weights()
        .iter()
        .map(|w| w.mapv(|_| ndarray_rand::rand::Rng::random_range(&mut rng, -0.6..0.6)))
        .collect();
    m.set_weights(&w).unwrap();
    m
}

#[test]
fn evaluate_with_a_fused_cross_entropy_runs_without_dropout() {
    let (x, y) = (xs(10), one_hot(10, 3));
    let t = Trainer::new(
        Adam::new(0.01),
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    );
    let with = classifier(true);
    let without = classifier(false);
    let a = t.evaluate(&with, (&x, &y)).unwrap()["loss"];
    let b = t.evaluate(&with, (&x, &y)).unwrap()["loss"];
    let c = t.evaluate(&without, (&x, &y)).unwrap()["loss"];
    assert_eq!(a, b, "two evaluations of one model differ");
    assert_eq!(a, c, "dropout changed the evaluated loss");
    // And the loss is the cross-entropy of `predict`'s probabilities.
    let p = with
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    let ce = -(&p.mapv(f64::ln) * &y).sum() / 10.0;
    assert!((a - ce).abs() < 1e-12, "{a} vs {ce}");
}

#[test]
fn validation_loss_of_a_fused_loss_runs_without_dropout() {
    // lr 1e-300: the weights cannot move, so val_loss equals an evaluation before fit.
    let (x, y) = (xs(12), one_hot(12, 3));
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    let mut m = classifier(true);
    let (vx, vy) = (xs(12).mapv(|v| -v), one_hot(12, 3));
    let want = Trainer::new(Sgd::new(1e-300), loss)
        .evaluate(&classifier(false), (&vx, &vy))
        .unwrap()["loss"];
    let mut t = Trainer::new(Sgd::new(1e-300), loss)
        .epochs(2)
        .validation_data((&vx, &vy));
    let h = t.fit(&mut m, (&x, &y)).unwrap();
    assert_eq!(h.val_loss().unwrap(), &[want, want]);
}

#[test]
fn class_weight_stays_out_of_validation_split_loss() {
    let (x, y) = (xs(10), one_hot(10, 3));
    let loss = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    let mut m = classifier(false);
    let want = Trainer::new(Sgd::new(1e-300), loss)
        .evaluate(
            &classifier(false),
            (
                &x.slice_axis(ndarray::Axis(0), (6..).into()).to_owned(),
                &y.slice_axis(ndarray::Axis(0), (6..).into()).to_owned(),
            ),
        )
        .unwrap()["loss"];
    let mut t = Trainer::new(Sgd::new(1e-300), loss)
        .epochs(1)
        .shuffle(false)
        .validation_split(0.4)
        .class_weight([(0, 5.0), (1, 0.1), (2, 2.0)]);
    let h = t.fit(&mut m, (&x, &y)).unwrap();
    assert_eq!(h.val_loss().unwrap(), &[want]);
}

/// The epochs at which ReduceLROnPlateau lowers the rate when nothing improves after
/// epoch 0 (ŷ = x exactly: the loss is 0 every epoch), each with the rate it set, and the
/// optimizer's rate at the end.
fn plateau(patience: usize, cooldown: usize, epochs: usize) -> (Vec<(usize, f64)>, f64) {
    let x = Array2::from_shape_fn((4, 1), |(i, _)| i as f64).into_dyn();
    let mut m = Sequential::<f64>::new(&[1])
        .push(DenseConfig::new(1))
        .unwrap();
    m.set_weights(&[ArrayD::ones(IxDyn(&[1, 1])), ArrayD::zeros(IxDyn(&[1]))])
        .unwrap();
    let plateau = Rc::new(RefCell::new(
        ReduceLROnPlateau::new("loss")
            .factor(0.5)
            .patience(patience)
            .cooldown(cooldown)
            .min_lr(0.0),
    ));
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(epochs)
        .callback(plateau.clone());
    t.fit(&mut m, (&x, &x)).unwrap();
    let r = plateau.borrow().reductions().to_vec();
    (r, t.optimizer.learning_rate())
}

fn plateau_epochs(patience: usize, cooldown: usize, epochs: usize) -> Vec<usize> {
    plateau(patience, cooldown, epochs)
        .0
        .iter()
        .map(|r| r.0)
        .collect()
}

#[test]
fn reduce_lr_on_plateau_cooldown_is_keras_3s() {
    // keras/src/callbacks/reduce_lr_on_plateau.py: the wait resumes in the epoch the
    // cooldown ends.
    let (r, lr) = plateau(2, 1, 8);
    assert_eq!(r, vec![(2, 0.005), (4, 0.0025), (6, 0.00125)]);
    assert_eq!(lr, 0.00125);
    assert_eq!(plateau_epochs(1, 2, 10), vec![1, 3, 5, 7, 9]);
    assert_eq!(plateau_epochs(2, 0, 7), vec![2, 4, 6]);
}

#[test]
fn a_callback_reads_the_next_steps_learning_rate() {
    // Two steps an epoch, the rate halving every step: Keras's `optimizer.learning_rate`
    // at the end of epoch e is the rate of step 2(e + 1).
    let x = Array2::from_shape_fn((4, 1), |(i, _)| i as f64).into_dyn();
    let mut m = Sequential::<f64>::new(&[1])
        .push(DenseConfig::new(1))
        .unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let schedule = ExponentialDecay::new(0.1, 1, 0.5);
    let mut t = Trainer::new(Sgd::new(schedule.clone()), Loss::Mse)
        .epochs(2)
        .batch_size(2)
        .callback(EpochEnd::new(
            move |_: usize, _: &Logs, ctx: &mut Context<'_, f64>| {
                log.borrow_mut().push(ctx.learning_rate());
                Ok(Control::Continue)
            },
        ));
    t.fit(&mut m, (&x, &x)).unwrap();
    let want = vec![
        rnnkit::train::LearningRate::from(schedule.clone()).at(2),
        rnnkit::train::LearningRate::from(schedule).at(4),
    ];
    assert_eq!(*seen.borrow(), want);
    assert!(want[0] < 0.1 * 0.25 + 1e-9 && want[0] > 0.1 * 0.25 - 1e-9);
}

/// A one-input, two-output graph: `h` (sequences, masked by Masking) twice, and Dense.
fn graph_with_repeated_output() -> Result<Functional<f64>, Error> {
    let mut g = Graph::<f64>::new(0);
    let x = g.input("x", &[Some(4), Some(3)])?;
    let m = g.apply(&MaskingConfig::new(0.0), x)?;
    let h = g.apply(&SimpleRnnConfig::new(2).return_sequences(true), m)?;
    g.build(&[x], &[h, h])
}

#[test]
fn a_graph_output_listed_twice_keeps_its_mask_both_times() -> Result<(), Error> {
    let model = graph_with_repeated_output()?;
    let mut x = xs(2);
    x.slice_mut(ndarray::s![0, 3, ..]).fill(0.0);
    let out = model.infer(Inputs::from(&[x]))?;
    assert!(out[0].mask.is_some());
    assert_eq!(out[0].mask, out[1].mask);
    assert_eq!(out[0].output, out[1].output);
    Ok(())
}

#[test]
fn predict_many_refuses_ragged_missing_or_empty_inputs() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[Some(3)])?;
    let b = g.input("b", &[Some(3)])?;
    let s = g.apply_list(&AddConfig::new(), &[a, b])?;
    let y = g.apply(&DenseConfig::new(1), s)?;
    let model = g.build(&[a, b], &[y])?;
    let (x5, x3) = (
        ArrayD::<f64>::ones(IxDyn(&[5, 3])),
        ArrayD::<f64>::ones(IxDyn(&[3, 3])),
    );
    let e = model
        .predict(Inputs::from(&[x5.clone(), x3.clone()]), 32)
        .unwrap_err();
    assert!(e.to_string().contains("samples of input 0"), "{e}");
    let e = model
        .predict(Inputs::from(&[x3, x5.clone()]), 32)
        .unwrap_err();
    assert!(e.to_string().contains("samples of input 0"), "{e}");
    let e = model.predict(Inputs::list(&[]), 32).unwrap_err();
    assert!(e.to_string().contains("2 arrays"), "{e}");
    let empty = ArrayD::<f64>::zeros(IxDyn(&[0, 3]));
    // No samples: empty predictions, as Keras's predict gives.
    let none = model.predict(Inputs::from(&[empty.clone(), empty]), 32)?;
    assert_eq!(none[0].shape(), &[0, 1]);
    assert_eq!(
        model.predict(Inputs::from(&[x5.clone(), x5]), 32)?[0].shape(),
        &[5, 1]
    );
    Ok(())
}

/// A stateful SimpleRNN(1) that counts its steps: h ← h + 1 (linear, kernel 1 on a
/// constant input of 1, recurrent weight 1).
fn counter() -> Sequential<f64> {
    let mut m = Sequential::<f64>::with_input_shape(vec![Some(1), Some(1)]);
    m.add(
        &SimpleRnnConfig::new(1)
            .activation(Activation::Linear)
            .stateful(true),
    )
    .unwrap();
    m.add(&DenseConfig::new(1)).unwrap();
    let one = ArrayD::ones(IxDyn(&[1, 1]));
    m.set_weights(&[
        one.clone(),
        one.clone(),
        ArrayD::zeros(IxDyn(&[1])),
        one,
        ArrayD::zeros(IxDyn(&[1])),
    ])
    .unwrap();
    m
}

#[test]
fn stateful_inference_from_several_threads_loses_no_step() {
    let m = counter();
    let x = ArrayD::<f64>::ones(IxDyn(&[1, 1, 1]));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2_000 {
                    m.infer(Inputs::new(&x).mask(None))
                        .map(|mut o| o.remove(0).output)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(m.state().unwrap().states()[0][0][[0, 0]], 8_000.0);
}

#[test]
fn a_refused_inference_moves_no_carried_state() {
    // Two stateful layers; the second's carried batch is changed by hand, so a call with
    // the first's batch fails at the second: the first must not have moved.
    let mut m = Sequential::<f64>::with_input_shape(vec![Some(2), Some(1)]);
    m.add(
        &SimpleRnnConfig::new(2)
            .return_sequences(true)
            .stateful(true),
    )
    .unwrap();
    m.add(&SimpleRnnConfig::new(2).stateful(true)).unwrap();
    let x = ArrayD::<f64>::ones(IxDyn(&[1, 2, 1]));
    m.infer(Inputs::new(&x).mask(None))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    m.layers_mut()[1]
        .state_mut()
        .unwrap()
        .set_states(Some(&[Array2::zeros((3, 2))]))
        .unwrap();
    let before = m.state().unwrap().states();
    assert!(
        m.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .is_err()
    );
    assert_eq!(m.state().unwrap().states(), before);
}

#[test]
fn reset_states_reaches_a_graphs_stateful_layers() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let x = g.input("x", &[Some(2), Some(1)])?;
    let h = g.apply(&SimpleRnnConfig::new(2).stateful(true), x)?;
    let mut model = g.build(&[x], &[h])?;
    let input = ArrayD::<f64>::ones(IxDyn(&[1, 2, 1]));
    let first = model
        .infer(Inputs::new(&input).mask(None))
        .map(|mut o| o.remove(0).output)?;
    assert_ne!(
        model
            .infer(Inputs::new(&input).mask(None))
            .map(|mut o| o.remove(0).output)?,
        first
    );
    model.state_mut().unwrap().reset_states();
    assert_eq!(
        model
            .infer(Inputs::new(&input).mask(None))
            .map(|mut o| o.remove(0).output)?,
        first
    );
    Ok(())
}

#[test]
fn streaming_refuses_what_one_step_cannot_mean() {
    // go_backwards reads the last step first.
    let m = Sequential::<f64>::new(&[4, 3])
        .push(LstmConfig::new(3).go_backwards(true))
        .unwrap();
    let mut st = m.stream_state(1);
    let x = Array2::<f64>::ones((1, 3));
    let e = m.step(x.view(), &mut st).unwrap_err();
    assert!(e.to_string().contains("go_backwards"), "{e}");
    // A stream whose states would pass the size limit refuses to step (no abort).
    let mut huge = m.stream_state(usize::MAX / 4);
    let e = m
        .step(Array2::<f64>::ones((1, 3)).view(), &mut huge)
        .unwrap_err();
    assert!(
        e.to_string().contains("batch size") || e.to_string().contains("size limit"),
        "{e}"
    );
    // Embedding(mask_zero) fed the padding id.
    let m = Sequential::<f64>::new(&[4])
        .push(EmbeddingConfig::new(5, 2).mask_zero(true))
        .unwrap()
        .push(GruConfig::new(2))
        .unwrap();
    let mut st = m.stream_state(2);
    let ids = ndarray::array![[3.0], [0.0]];
    let e = m.step(ids.view(), &mut st).unwrap_err();
    assert!(e.to_string().contains("padding id 0"), "{e}");
    assert!(
        m.step(ndarray::array![[3.0], [1.0]].view(), &mut st)
            .is_ok()
    );
}

#[test]
fn pooling_an_all_padding_row_gives_zero_and_a_finite_gradient() {
    let mut m = Sequential::<f64>::new(&[3, 2])
        .push(GlobalAveragePooling1DConfig::new())
        .unwrap();
    let x = xs(2).slice(ndarray::s![.., ..3, ..2]).to_owned().into_dyn();
    let mask = Array2::from_shape_fn((2, 3), |(r, _)| r == 0);
    let y = m
        .forward(Inputs::new(&x).mask(Some(&mask)).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    assert_eq!(y.slice(ndarray::s![1, ..]).to_vec(), vec![0.0, 0.0]);
    let dx = m
        .backward(&[OutputGrads::new(&ArrayD::ones(IxDyn(&[2, 2])))])
        .map(|mut d| d.remove(0))
        .unwrap();
    assert!(dx.iter().all(|v| v.is_finite()));
    assert!(dx.slice(ndarray::s![1, .., ..]).iter().all(|&v| v == 0.0));
}

#[test]
fn an_optimizer_serves_one_model_not_its_twin() {
    let x = ArrayD::<f64>::ones(IxDyn(&[4, 2]));
    let y = ArrayD::<f64>::zeros(IxDyn(&[4, 1]));
    let twin = || {
        Sequential::<f64>::new(&[2])
            .push(DenseConfig::new(1))
            .unwrap()
    };
    let (mut a, mut b) = (twin(), twin());
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse).epochs(1);
    t.fit(&mut a, (&x, &y)).unwrap();
    let before = b.get_weights();
    let e = t.fit(&mut b, (&x, &y)).unwrap_err();
    assert!(e.to_string().contains("another model"), "{e}");
    assert_eq!(b.get_weights(), before);
    // A copy is another model too (as a cloned Keras model is).
    let mut c = a.clone();
    assert!(t.fit(&mut c, (&x, &y)).is_err());
    assert!(t.fit(&mut a, (&x, &y)).is_ok());
    // Through Optimizer::apply.
    let mut opt = Sgd::<f64>::new(0.1);
    a.forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    a.backward(&[OutputGrads::new(&ArrayD::ones(IxDyn(&[4, 1])))])
        .map(|mut d| d.remove(0))
        .unwrap();
    opt.apply(&mut a).unwrap();
    let before = b.get_weights();
    b.forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    b.backward(&[OutputGrads::new(&ArrayD::ones(IxDyn(&[4, 1])))])
        .map(|mut d| d.remove(0))
        .unwrap();
    assert!(opt.apply(&mut b).is_err());
    assert_eq!(b.get_weights(), before);
}

#[test]
fn a_bidirectional_pair_must_agree_on_every_saved_option() {
    let mut rng = seeded_rng(0);
    let f = GruConfig::new(3).build::<f64>(2, &mut rng).unwrap();
    for b in [
        GruConfig::new(3).activation(Activation::Relu),
        GruConfig::new(3).reset_after(false),
        GruConfig::new(3).stateful(true),
        GruConfig::new(3).use_bias(false),
    ] {
        let b = b.build::<f64>(2, &mut rng).unwrap();
        assert!(matches!(
            Bidirectional::from_pair(f.clone(), b, MergeMode::Concat),
            Err(Error::Incompatible { .. })
        ));
    }
    // Name, go_backwards and seed may differ (they are not the saved configuration's).
    let b = GruConfig::new(3)
        .name("other")
        .go_backwards(true)
        .seed(9)
        .build::<f64>(2, &mut rng)
        .unwrap();
    assert!(Bidirectional::from_pair(f, b, MergeMode::Concat).is_ok());
}

#[test]
fn sizes_past_the_limit_are_typed_errors() {
    let big = rnnkit::layers::MAX_WEIGHT_LEN;
    assert!(
        Sequential::<f32>::new(&[4])
            .push(EmbeddingConfig::new(1 << 31, 1))
            .is_err()
    );
    assert!(EsnConfig::new(46_340).build::<f32>(1).is_err());
    assert!(rnnkit::utils::to_categorical::<f32>(&[usize::MAX], None).is_err());
    assert!(rnnkit::utils::to_categorical::<f32>(&[0, big], None).is_err());
    // RepeatVector past the limit: refused at build, and at a call with a large batch.
    assert!(
        Sequential::<f32>::new(&[2])
            .push(RepeatVectorConfig::new(1 << 62))
            .is_err()
    );
    let m = Sequential::<f32>::new(&[1 << 10])
        .push(RepeatVectorConfig::new(1 << 17))
        .unwrap();
    let x = ArrayD::<f32>::zeros(IxDyn(&[4, 1 << 10]));
    assert!(matches!(
        m.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output),
        Err(Error::Data(_))
    ));
    // AdditiveAttention over features past the limit.
    let mut g = Graph::<f32>::new(0);
    let q = g.input("q", &[None, Some(1 << 40)]).unwrap();
    assert!(
        g.apply_list(&rnnkit::AdditiveAttentionConfig::new(), &[q, q])
            .is_err()
    );
    // ESN generation past the limit.
    let mut esn = EsnConfig::new(10).seed(1).build::<f64>(1).unwrap();
    let s = Array2::from_shape_fn((60, 1), |(t, _)| (t as f64 * 0.3).sin());
    esn.fit(&s, &s).unwrap();
    assert!(
        esn.generate(&ndarray::Array1::zeros(1), usize::MAX / 2)
            .is_err()
    );
}

#[test]
fn messages_name_what_was_passed() -> Result<(), Error> {
    // A graph input's expected shape, without a phantom time axis.
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[Some(5)])?;
    let y = g.apply(&DenseConfig::new(1), a)?;
    let model = g.build(&[a], &[y])?;
    let e = model
        .infer(Inputs::new(&ArrayD::zeros(IxDyn(&[8, 4]))).mask(None))
        .map(|mut o| o.remove(0).output)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(batch 8, 5)"), "{e}");
    // fit names the array it was given, not its first batch.
    let mut m = Sequential::<f64>::new(&[4, 3])
        .push(LstmConfig::new(2))?
        .push(DenseConfig::new(1))?;
    let x = ArrayD::<f64>::zeros(IxDyn(&[100, 4, 5]));
    let y = ArrayD::<f64>::zeros(IxDyn(&[100, 1]));
    let e = Trainer::new(Adam::new(0.01), Loss::Mse)
        .fit(&mut m, (&x, &y))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[100, 4, 5]") && e.contains("(samples, 4, 3)"),
        "{e}"
    );
    // A file that is not a model file at all.
    let e = Sequential::<f64>::from_bytes(b"hello, this is a text file\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    Ok(())
}

#[test]
fn a_functional_file_converts_its_float_type_as_a_sequential_one_does() -> Result<(), Error> {
    // The dtype error recommended a `load_converted` that Functional lacked; since 0.2 every
    // loader converts.
    let mut g = Graph::<f32>::new(2);
    let x = g.input("x", &[Some(4), Some(3)])?;
    let h = g.apply(&GruConfig::new(3), x)?;
    let y = g.apply(&DenseConfig::new(2), h)?;
    let m32 = g.build(&[x], &[y])?;
    let bytes = m32.to_bytes()?;
    let m64 = Functional::<f64>::from_bytes(&bytes)?;
    let input = Array3::from_shape_fn((2, 4, 3), |(b, t, f)| ((b + t + f) as f32 * 0.3).sin());
    let want = m32.infer(Inputs::from(&[input.clone().into_dyn()]))?[0]
        .output
        .clone();
    let got = m64.infer(Inputs::from(&[input.mapv(f64::from).into_dyn()]))?[0]
        .output
        .clone();
    assert!(
        want.iter()
            .zip(got.iter())
            .all(|(a, b)| (f64::from(*a) - b).abs() < 1e-6),
        "{want} vs {got}"
    );
    // And back: f64 -> f32 rounds.
    let back = Functional::<f32>::from_bytes(&m64.to_bytes()?)?;
    assert_eq!(back.get_weights(), m32.get_weights());
    Ok(())
}

#[test]
fn a_stateful_model_refuses_a_ragged_last_batch_before_moving_any_state() {
    let m = Sequential::<f64>::with_input_shape(vec![Some(2), Some(1)])
        .push(LstmConfig::new(2).stateful(true))
        .unwrap();
    let x = ArrayD::<f64>::ones(IxDyn(&[5, 2, 1]));
    let e = m
        .predict(Inputs::new(&x), 2)
        .map(|mut p| p.remove(0))
        .unwrap_err();
    assert!(e.to_string().contains("multiple of batch_size 2"), "{e}");
    assert!(
        m.state().unwrap().states().concat().is_empty(),
        "no batch ran"
    );
    assert_eq!(
        m.predict(Inputs::new(&x), 5)
            .map(|mut p| p.remove(0))
            .unwrap()
            .shape(),
        &[5, 2]
    );
    // fit and evaluate too: refused before any batch, weights and states as they were.
    let mut m = Sequential::<f64>::with_input_shape(vec![Some(2), Some(1)])
        .push(LstmConfig::new(2).stateful(true))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let y = ArrayD::<f64>::zeros(IxDyn(&[5, 1]));
    let w = m.get_weights();
    let mut t = Trainer::new(Adam::new(0.1), Loss::Mse)
        .batch_size(2)
        .shuffle(false);
    let e = t.fit(&mut m, (&x, &y)).unwrap_err();
    assert!(e.to_string().contains("multiple of batch_size 2"), "{e}");
    assert!(t.evaluate(&m, (&x, &y)).is_err());
    assert_eq!(m.get_weights(), w);
    assert!(m.state().unwrap().states().concat().is_empty());
    let x4 = x.slice_axis(ndarray::Axis(0), (0..4).into()).to_owned();
    let y4 = y.slice_axis(ndarray::Axis(0), (0..4).into()).to_owned();
    assert!(t.fit(&mut m, (&x4, &y4)).is_ok());
}
