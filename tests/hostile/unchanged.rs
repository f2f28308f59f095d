//! A refused call changes nothing: after each refused call below, the weights, the
//! optimizer's iterations and moments, the epochs done, the dropout streams and the carried
//! states are compared bit for bit with what they were before; and a backward after a
//! refused forward is refused rather than served from an older pass.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{Adam, Error, Optimizer};

/// Everything a call could move, as bits.
#[derive(Debug, PartialEq)]
struct Snapshot {
    weights: Vec<u64>,
    states: Vec<u64>,
    rng: Vec<Vec<u64>>,
    iterations: u64,
    moments: Vec<u64>,
    epochs_done: usize,
}

fn bits<'a>(arrays: impl IntoIterator<Item = &'a ArrayD<f64>>) -> Vec<u64> {
    arrays
        .into_iter()
        .flat_map(|a| a.iter().map(|v| v.to_bits()))
        .collect()
}

fn snapshot(model: &Sequential<f64>, trainer: &Trainer<f64, Adam<f64>>) -> Snapshot {
    let states: Vec<ArrayD<f64>> = model
        .state()
        .unwrap()
        .states()
        .into_iter()
        .flatten()
        .map(|a| a.into_dyn())
        .collect();
    let moments: Vec<ArrayD<f64>> = trainer.optimizer.state().into_iter().flatten().collect();
    Snapshot {
        weights: bits(&model.get_weights()),
        states: bits(&states),
        rng: model.state().unwrap().rng_state(),
        iterations: trainer.optimizer.iterations(),
        moments: bits(&moments),
        epochs_done: trainer.epochs_done(),
    }
}

/// A stateful LSTM (batch 4) with dropout and recurrent dropout, a Dropout layer and a
/// Dense head, trained for one epoch: every kind of state is non-trivial.
/// A trained model, its trainer and data.
type Trained = (
    Sequential<f64>,
    Trainer<f64, Adam<f64>>,
    ArrayD<f64>,
    ArrayD<f64>,
);

fn trained() -> Trained {
    let x = Array3::from_shape_fn((8, 5, 3), |(i, t, f)| {
        ((i * 5 + t * 3 + f) as f64 * 0.21).sin()
    })
    .into_dyn();
    let y = Array2::from_shape_fn((8, 1), |(i, _)| (i as f64 * 0.4).cos()).into_dyn();
    let mut m = Sequential::<f64>::with_input_shape(vec![Some(5), Some(3)])
        .seed(3)
        .push(
            LstmConfig::new(4)
                .stateful(true)
                .dropout(0.2)
                .recurrent_dropout(0.3),
        )
        .unwrap()
        .push(rnnkit::DropoutConfig::new(0.3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
        .batch_size(4)
        .shuffle(false)
        .epochs(1);
    t.fit(&mut m, (&x, &y)).unwrap();
    assert!(!m.state().unwrap().states().concat().is_empty());
    assert!(t.optimizer.iterations() == 2 && t.epochs_done() == 1);
    (m, t, x, y)
}

/// Runs `call`, which must be refused, and checks nothing moved.
fn refused(
    what: &str,
    m: &mut Sequential<f64>,
    t: &mut Trainer<f64, Adam<f64>>,
    call: impl FnOnce(&mut Sequential<f64>, &mut Trainer<f64, Adam<f64>>) -> Result<(), Error>,
) {
    let before = snapshot(m, t);
    let r = call(m, t);
    assert!(r.is_err(), "{what}: was not refused");
    assert_eq!(
        snapshot(m, t),
        before,
        "{what}: a refused call changed state"
    );
}

#[test]
fn refused_calls_leave_weights_optimizer_epochs_streams_and_states() {
    let (mut m, mut t, x, y) = trained();
    let wrong_features = ArrayD::<f64>::zeros(IxDyn(&[8, 5, 2]));
    let mut nan_x = x.clone();
    nan_x[[3, 2, 1]] = f64::NAN;
    refused("fit, wrong features", &mut m, &mut t, |m, t| {
        t.fit(m, (&wrong_features, &y)).map(drop)
    });
    refused("fit, NaN input", &mut m, &mut t, |m, t| {
        t.fit(m, (&nan_x, &y)).map(drop)
    });
    refused("fit, targets that do not fit", &mut m, &mut t, |m, t| {
        t.fit(m, (&x, &ArrayD::zeros(IxDyn(&[8, 2])))).map(drop)
    });
    refused("fit, a mask of other rows", &mut m, &mut t, |m, t| {
        t.fit(
            m,
            Data::new(&x, &y).mask(Some(&Array2::from_elem((7, 5), true))),
        )
        .map(drop)
    });
    refused("train_on_batch, wrong features", &mut m, &mut t, |m, t| {
        t.train_on_batch(m, (&wrong_features, &y)).map(drop)
    });
    refused("evaluate, wrong features", &mut m, &mut t, |m, t| {
        t.evaluate(m, (&wrong_features, &y)).map(drop)
    });
    refused("predict, another batch size", &mut m, &mut t, |m, _| {
        m.predict(
            Inputs::new(&x.slice_axis(ndarray::Axis(0), (0..3).into()).to_owned()),
            3,
        )
        .map(|mut p| p.remove(0))
        .map(drop)
    });
    refused("forward, another batch size", &mut m, &mut t, |m, _| {
        m.forward(Inputs::new(&ArrayD::zeros(IxDyn(&[3, 5, 3]))).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .map(drop)
    });
    refused("set_weights, NaN", &mut m, &mut t, |m, _| {
        let mut w = m.get_weights();
        w[0][[0, 0]] = f64::NAN;
        m.set_weights(&w)
    });
    refused("set_weights, too few", &mut m, &mut t, |m, _| {
        let w = m.get_weights();
        m.set_weights(&w[..2])
    });
    refused("set_states, wrong shape", &mut m, &mut t, |m, _| {
        m.layers_mut()[0]
            .state_mut()
            .unwrap()
            .set_states(Some(&[Array2::zeros((4, 4))]))
    });
    refused("set_rng_state, wrong count", &mut m, &mut t, |m, _| {
        m.state_mut().unwrap().set_rng_state(&[vec![1, 2, 3]])
    });
    refused("fit, validation_split 1", &mut m, &mut t, |m, _| {
        let mut t2 = Trainer::new(Adam::new(0.01), Loss::Mse).validation_split(1.0);
        t2.fit(m, (&x, &y)).map(drop)
    });
    refused("fit of a twin model", &mut m, &mut t, |_, t| {
        let (mut twin, ..) = trained();
        t.fit(&mut twin, (&x, &y)).map(drop)
    });
    refused(
        "apply of the optimizer to a twin",
        &mut m,
        &mut t,
        |_, t| {
            let (mut twin, ..) = trained();
            t.optimizer.apply(&mut twin)
        },
    );
    refused(
        "resume from a damaged checkpoint",
        &mut m,
        &mut t,
        |m, t| {
            let path =
                std::env::temp_dir().join(format!("rnnkit-unchanged-{}.st", std::process::id()));
            t.save_checkpoint(m, &path).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let n = bytes.len();
            bytes.truncate(n - 9);
            std::fs::write(&path, &bytes).unwrap();
            let r = t.resume(&path).map(drop);
            std::fs::remove_file(&path).ok();
            r
        },
    );
    // After all that, the trainer still continues from where it was.
    assert!(t.fit(&mut m, (&x, &y)).is_ok());
    assert_eq!(t.epochs_done(), 2);
}

#[test]
fn a_backward_after_a_refused_forward_is_refused() {
    let (mut m, _, x, _) = trained();
    m.state_mut().unwrap().reset_states();
    m.forward(
        Inputs::new(&x.slice_axis(ndarray::Axis(0), (0..4).into()).to_owned()).mode(Mode::Train),
    )
    .map(|mut o| o.remove(0).output)
    .unwrap();
    // A forward that fails at the first layer, then one that fails at the last.
    assert!(
        m.forward(Inputs::new(&ArrayD::zeros(IxDyn(&[4, 5, 2]))).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .is_err()
    );
    let dy = ArrayD::ones(IxDyn(&[4, 1]));
    assert!(matches!(
        m.backward(&[OutputGrads::new(&dy)])
            .map(|mut d| d.remove(0)),
        Err(Error::NoCache { .. })
    ));

    // A graph: the same after a refused forward_many.
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[Some(5), Some(3)]).unwrap();
    let h = g.apply(&GruConfig::new(3), a).unwrap();
    let o = g.apply(&DenseConfig::new(1), h).unwrap();
    let mut model = g.build(&[a], &[o]).unwrap();
    model
        .forward(Inputs::from(std::slice::from_ref(&x)).mode(Mode::Train))
        .unwrap();
    assert!(
        model
            .forward(Inputs::from(&[ArrayD::zeros(IxDyn(&[8, 5, 2]))]).mode(Mode::Train))
            .is_err()
    );
    assert!(
        Model::backward(
            &mut model,
            &[OutputGrads::new(&ArrayD::ones(IxDyn(&[8, 1])))]
        )
        .is_err()
    );
}
