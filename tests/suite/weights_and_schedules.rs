//! Keras's sample and class weights, weight decay and learning-rate schedules: the
//! arithmetic by hand, the class → sample conversion, and bad settings as typed errors that
//! change nothing. (The Keras trajectories replay in tests/suite/training.rs.)

use ndarray::{Array2, Array3, ArrayD, array};
use rnnkit::prelude::*;
use rnnkit::{
    Error, Optimizer, train::CosineDecay, train::ExponentialDecay, train::PiecewiseConstantDecay,
};

fn dense_identity() -> Sequential<f64> {
    let mut m = Sequential::<f64>::new(&[1])
        .push(DenseConfig::new(1))
        .unwrap();
    m.set_weights(&[
        ArrayD::ones(ndarray::IxDyn(&[1, 1])),
        ArrayD::zeros(ndarray::IxDyn(&[1])),
    ])
    .unwrap();
    m
}

#[test]
fn the_weighted_loss_divides_by_the_number_of_entries_not_the_weights() {
    // ŷ = x = [1, 2, 3], y = 0: squared errors 1, 4, 9; weights 2, 0, 1 → (2 + 0 + 9) / 3.
    let x = array![[1.0], [2.0], [3.0]].into_dyn();
    let y = ArrayD::zeros(x.raw_dim());
    let w = array![2.0, 0.0, 1.0].into_dyn();
    let m = dense_identity();
    let t = Trainer::new(Sgd::new(0.1), Loss::Mse);
    let logs = t
        .evaluate(&m, Data::new(&x, &y).mask(None).sample_weight(Some(&w)))
        .unwrap();
    assert_eq!(logs["loss"], 11.0 / 3.0);
    // [N, 1] is the same weighting.
    let w2 = array![[2.0], [0.0], [1.0]].into_dyn();
    let logs = t
        .evaluate(&m, Data::new(&x, &y).mask(None).sample_weight(Some(&w2)))
        .unwrap();
    assert_eq!(logs["loss"], 11.0 / 3.0);
}

#[test]
fn per_step_weights_on_a_sequence_output() {
    // Loss entries per (sample, step); [N, 1] weighs a whole sequence, [N, T] each step.
    let pred = Array3::from_shape_fn((2, 3, 1), |(i, t, _)| (i * 3 + t) as f64).into_dyn();
    let y = ArrayD::zeros(pred.raw_dim());
    let per_sample = array![[1.0], [0.5]].into_dyn();
    let (l, _) = Loss::Mse
        .compute(&pred, &y, None, Some(&per_sample))
        .unwrap();
    // squares 0, 1, 4 | 9, 16, 25: (5 + 0.5·50) / 6
    assert!((l - (5.0 + 25.0) / 6.0).abs() < 1e-14, "{l}");
    let per_step = array![[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]].into_dyn();
    let (l, g) = Loss::Mse.compute(&pred, &y, None, Some(&per_step)).unwrap();
    assert!((l - (1.0 + 50.0) / 6.0).abs() < 1e-14, "{l}");
    // dL/dŷ = w·2(ŷ − y)/N
    assert!((g[[1, 2, 0]] - 2.0 * 2.0 * 5.0 / 6.0).abs() < 1e-14);
    assert_eq!(g[[0, 0, 0]], 0.0);
    // [N] is not a per-sample weight on a sequence output: refused.
    assert!(matches!(
        Loss::Mse.compute(&pred, &y, None, Some(&array![1.0, 1.0].into_dyn())),
        Err(Error::Data(_))
    ));
}

#[test]
fn class_weights_become_sample_weights_as_in_keras() {
    // One-hot targets: class = argmax; classes missing from the map weigh 1.
    let x = Array2::from_shape_fn((4, 3), |(i, j)| ((i + j) as f64 * 0.3).sin()).into_dyn();
    let y = array![
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0]
    ]
    .into_dyn();
    let model = || {
        Sequential::<f64>::new(&[3])
            .seed(1)
            .push(DenseConfig::new(3).activation(Activation::Softmax))
            .unwrap()
    };
    let mut a = model();
    let mut b = model();
    let loss = Loss::categorical_crossentropy();
    let mut by_class = Trainer::new(Sgd::new(0.1), loss).class_weight([(0, 0.5), (1, 2.0)]);
    let mut by_sample = Trainer::new(Sgd::new(0.1), loss);
    let w = array![0.5, 2.0, 1.0, 2.0].into_dyn();
    let la = by_class.train_on_batch(&mut a, (&x, &y)).unwrap();
    let lb = by_sample
        .train_on_batch(&mut b, Data::new(&x, &y).sample_weight(Some(&w)))
        .unwrap();
    assert_eq!(la, lb);
    assert_eq!(a.get_weights(), b.get_weights());
}

#[test]
fn bad_weights_are_typed_errors_and_change_nothing() {
    let x = Array3::from_shape_fn((4, 3, 1), |(i, t, _)| (i + t) as f64 * 0.1).into_dyn();
    let y = Array2::from_shape_fn((4, 2), |(i, k)| f64::from(i % 2 == k)).into_dyn();
    let model = || {
        Sequential::<f64>::new(&[3, 1])
            .push(GruConfig::new(3))
            .unwrap()
            .push(DenseConfig::new(2).activation(Activation::Softmax))
            .unwrap()
    };
    let check = |t: &mut Trainer<f64, Adam<f64>>, w: Option<ArrayD<f64>>, what: &str| {
        let mut m = model();
        let before = m.get_weights();
        let r = t.fit(
            &mut m,
            Data::new(&x, &y).mask(None).sample_weight(w.as_ref()),
        );
        assert!(
            matches!(r, Err(Error::Data(_) | Error::Config { .. })),
            "{what}: {r:?}"
        );
        assert_eq!(m.get_weights(), before, "{what}");
    };
    let loss = Loss::categorical_crossentropy();
    let mut t = Trainer::new(Adam::default(), loss);
    check(
        &mut t,
        Some(array![1.0, 1.0, 1.0].into_dyn()),
        "wrong length",
    );
    check(
        &mut t,
        Some(array![1.0, -1.0, 1.0, 1.0].into_dyn()),
        "negative",
    );
    check(
        &mut t,
        Some(array![1.0, f64::NAN, 1.0, 1.0].into_dyn()),
        "NaN",
    );
    let mut t = Trainer::new(Adam::default(), loss).class_weight([(5, 1.0)]);
    check(&mut t, None, "a class the model does not have");
    let mut t = Trainer::new(Adam::default(), loss).class_weight([(1, f64::INFINITY)]);
    check(&mut t, None, "an infinite class weight");
    let mut t = Trainer::new(Adam::default(), loss).class_weight([(1, 2.0)]);
    check(
        &mut t,
        Some(array![1.0, 1.0, 1.0, 1.0].into_dyn()),
        "class_weight with sample_weight",
    );
    // Label smoothing outside [0, 1].
    let mut m = model();
    let mut t = Trainer::new(Adam::default(), loss.label_smoothing(1.5));
    assert!(matches!(
        t.fit(&mut m, (&x, &y)),
        Err(Error::Config {
            field: "label_smoothing",
            ..
        })
    ));
}

#[test]
fn invalid_schedules_and_weight_decay_are_typed_errors_naming_the_value() {
    let x = Array3::from_shape_fn((4, 3, 1), |(i, t, _)| (i + t) as f64 * 0.1).into_dyn();
    let y = Array2::from_shape_fn((4, 1), |(i, _)| i as f64 * 0.1).into_dyn();
    let fails = |opt: Box<dyn Optimizer<f64>>, field: &str| {
        let mut m = Sequential::<f64>::new(&[3, 1])
            .push(SimpleRnnConfig::new(2))
            .unwrap();
        let before = m.get_weights();
        let mut t = Trainer::new(opt, Loss::Mse);
        match t.fit(&mut m, (&x, &y)) {
            Err(Error::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a Config error on {field}, got {other:?}"),
        }
        assert_eq!(m.get_weights(), before);
    };
    fails(
        Box::new(Adam::new(ExponentialDecay::new(-0.1, 10, 0.5))),
        "initial_learning_rate",
    );
    fails(
        Box::new(Sgd::new(ExponentialDecay::new(0.1, 0, 0.5))),
        "decay_steps",
    );
    fails(
        Box::new(RmsProp::new(PiecewiseConstantDecay::new(
            vec![5, 3],
            vec![0.1, 0.2, 0.3],
        ))),
        "boundaries",
    );
    fails(
        Box::new(Adam::new(PiecewiseConstantDecay::new(vec![5], vec![0.1]))),
        "values",
    );
    fails(
        Box::new(Adam::new(CosineDecay::new(0.1, 10).alpha(2.0))),
        "alpha",
    );
    fails(
        Box::new(AdamW::new(0.01).weight_decay(f64::NAN)),
        "weight_decay",
    );
    fails(Box::new(Sgd::new(0.01).weight_decay(-1.0)), "weight_decay");
}

#[test]
fn weight_decay_moves_weights_toward_zero_in_proportion_to_the_rate() {
    // With a zero gradient (ŷ = y), SGD with weight decay only decays: w·(1 − wd·lr) per step.
    let x = Array2::from_shape_fn((3, 1), |(i, _)| i as f64).into_dyn();
    let mut m = dense_identity();
    let y = x.clone();
    let mut t = Trainer::new(Sgd::new(0.5).weight_decay(0.25), Loss::Mse).shuffle(false);
    t.train_on_batch(&mut m, (&x, &y)).unwrap();
    let wd = f64::from(0.25f32);
    assert_eq!(m.get_weights()[0][[0, 0]], 1.0 - 1.0 * wd * 0.5);
}

/// MSE written by hand, per row.
#[derive(Debug)]
struct RowMse;

impl rnnkit::train::RowLoss<f64> for RowMse {
    fn name(&self) -> &str {
        "row_mse"
    }
    fn row(
        &self,
        p: ndarray::ArrayView1<'_, f64>,
        y: ndarray::ArrayView1<'_, f64>,
        mut g: ndarray::ArrayViewMut1<'_, f64>,
    ) -> f64 {
        let k = p.len() as f64;
        let mut s = 0.0;
        for i in 0..p.len() {
            let d = p[i] - y[i];
            s += d * d;
            g[i] = 2.0 * d / k;
        }
        s / k
    }
}

#[test]
fn a_user_loss_per_row_is_masked_and_weighted_as_the_built_ins() {
    let x = Array3::from_shape_fn((6, 4, 2), |(i, t, f)| ((i + 2 * t + f) as f64 * 0.3).sin())
        .into_dyn();
    let y = Array3::from_shape_fn((6, 4, 1), |(i, t, _)| ((i * t) as f64 * 0.2).cos()).into_dyn();
    let mask = mask_from_lengths(&[4, 1, 3, 2, 4, 3], 4).unwrap();
    let w = Array2::from_shape_fn((6, 4), |(i, t)| 0.5 + ((i + t) % 3) as f64).into_dyn();
    let model = || {
        Sequential::<f64>::new(&[4, 2])
            .push(LstmConfig::new(3).return_sequences(true))
            .unwrap()
            .push(DenseConfig::new(1))
            .unwrap()
    };
    let (mut a, mut b) = (model(), model());
    let mut ta = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(3)
        .batch_size(4);
    let mut tb = Trainer::new(Adam::new(0.01), rnnkit::train::PerRow(RowMse))
        .epochs(3)
        .batch_size(4);
    let ha = ta
        .fit(
            &mut a,
            Data::new(&x, &y).mask(Some(&mask)).sample_weight(Some(&w)),
        )
        .unwrap();
    let hb = tb
        .fit(
            &mut b,
            Data::new(&x, &y).mask(Some(&mask)).sample_weight(Some(&w)),
        )
        .unwrap();
    for (la, lb) in ha.loss().iter().zip(hb.loss()) {
        assert!((la - lb).abs() <= 1e-14 * la.abs(), "{la} vs {lb}");
    }
    for (wa, wb) in a.get_weights().iter().zip(b.get_weights()) {
        assert!(wa.iter().zip(wb.iter()).all(|(p, q)| (p - q).abs() < 1e-13));
    }
}
