//! Regression tests for the silently wrong results of issue #25 (each named after the
//! finding it guards): every one failed on main at ef3382d.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{Context, Control, EpochEnd, ExponentialDecay, Logs, ReduceLROnPlateau};
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
    let mut with = classifier(true);
    let mut without = classifier(false);
    let a = t.evaluate(&mut with, &x, &y).unwrap()["loss"];
    let b = t.evaluate(&mut with, &x, &y).unwrap()["loss"];
    let c = t.evaluate(&mut without, &x, &y).unwrap()["loss"];
    assert_eq!(a, b, "two evaluations of one model differ");
    assert_eq!(a, c, "dropout changed the evaluated loss");
    // And the loss is the cross-entropy of `predict`'s probabilities.
    let p = with.predict(&x, 32).unwrap();
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
        .evaluate(&mut classifier(false), &vx, &vy)
        .unwrap()["loss"];
    let mut t = Trainer::new(Sgd::new(1e-300), loss)
        .epochs(2)
        .validation_data(vx, vy);
    let h = t.fit(&mut m, &x, &y).unwrap();
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
            &mut classifier(false),
            &x.slice_axis(ndarray::Axis(0), (6..).into()).to_owned(),
            &y.slice_axis(ndarray::Axis(0), (6..).into()).to_owned(),
        )
        .unwrap()["loss"];
    let mut t = Trainer::new(Sgd::new(1e-300), loss)
        .epochs(1)
        .shuffle(false)
        .validation_split(0.4)
        .class_weight([(0, 5.0), (1, 0.1), (2, 2.0)]);
    let h = t.fit(&mut m, &x, &y).unwrap();
    assert_eq!(h.val_loss().unwrap(), &[want]);
}

/// The epochs at which ReduceLROnPlateau lowers the rate when nothing improves after
/// epoch 0.
fn plateau_epochs(patience: usize, cooldown: usize, epochs: usize) -> Vec<usize> {
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
    t.fit(&mut m, &x, &x).unwrap();
    let r = plateau.borrow().reductions().iter().map(|r| r.0).collect();
    r
}

#[test]
fn reduce_lr_on_plateau_cooldown_is_keras_3s() {
    // keras/src/callbacks/reduce_lr_on_plateau.py: the wait resumes in the epoch the
    // cooldown ends.
    assert_eq!(plateau_epochs(2, 1, 8), vec![2, 4, 6]);
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
    t.fit(&mut m, &x, &x).unwrap();
    let want = vec![
        rnnkit::LearningRate::from(schedule.clone()).at(2),
        rnnkit::LearningRate::from(schedule).at(4),
    ];
    assert_eq!(*seen.borrow(), want);
    assert!(want[0] < 0.1 * 0.25 + 1e-9 && want[0] > 0.1 * 0.25 - 1e-9);
}
