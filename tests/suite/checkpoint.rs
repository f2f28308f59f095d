//! Training checkpoints: a run stopped, saved, loaded and resumed equals an uninterrupted
//! run bit for bit.

use ndarray::{Array2, Array3, ArrayD};
use rnnkit::prelude::*;
use rnnkit::{Error, FileError, GruConfig, LstmConfig, ModelCheckpoint, Optimizer, RmsProp, Sgd};

fn data() -> (ArrayD<f32>, ArrayD<f32>) {
    let x = Array3::from_shape_fn((20, 4, 2), |(i, t, f)| {
        ((i * 3 + t * 2 + f) as f32 * 0.37).sin()
    });
    let y = Array2::from_shape_fn((20, 1), |(i, _)| (i as f32 * 0.2).cos());
    (x.into_dyn(), y.into_dyn())
}

fn model() -> Sequential<f32> {
    Sequential::<f32>::new(&[4, 2])
        .seed(11)
        .push(BidirectionalConfig::new(
            LstmConfig::new(5).return_sequences(true),
        ))
        .unwrap()
        .push(GruConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
}

/// The same model with every kind of dropout: `dropout` and `recurrent_dropout` in both
/// directions of a Bidirectional and in a GRU, and a Dropout layer.
fn dropout_model() -> Sequential<f32> {
    Sequential::<f32>::new(&[4, 2])
        .seed(11)
        .push(BidirectionalConfig::new(
            LstmConfig::new(5)
                .return_sequences(true)
                .dropout(0.3)
                .recurrent_dropout(0.2),
        ))
        .unwrap()
        .push(rnnkit::DropoutConfig::new(0.25))
        .unwrap()
        .push(GruConfig::new(3).dropout(0.1).recurrent_dropout(0.3))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
}

fn bits(w: &[ArrayD<f32>]) -> Vec<u32> {
    w.iter()
        .flat_map(|a| a.iter().map(|v| v.to_bits()))
        .collect()
}

fn resumes_exactly<O: Optimizer<f32>>(make: impl Fn() -> O, label: &str) {
    resumes_exactly_with(make, model, label);
}

fn resumes_exactly_with<O: Optimizer<f32>>(
    make: impl Fn() -> O,
    model: fn() -> Sequential<f32>,
    label: &str,
) {
    let (x, y) = data();
    let dir = std::env::temp_dir().join(format!("rnnkit-ckpt-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trainer = || Trainer::new(make(), Loss::Mse).batch_size(6).seed(5);

    // 6 epochs straight.
    let mut straight = model();
    let h = trainer().epochs(6).fit(&mut straight, (&x, &y)).unwrap();

    // 3 epochs, checkpoint through the callback, then a fresh trainer resumes for 3 more.
    let mut first = model();
    let mut t1 = trainer()
        .epochs(3)
        .checkpoint(ModelCheckpoint::new(dir.join("ckpt-{epoch}.safetensors")).every(3));
    let h1 = t1.fit(&mut first, (&x, &y)).unwrap();
    assert_eq!(
        t1.checkpointer().unwrap().saved(),
        &[dir.join("ckpt-3.safetensors")]
    );
    let mut t2 = trainer().epochs(3);
    let mut resumed = t2.resume(dir.join("ckpt-3.safetensors")).unwrap();
    assert_eq!(t2.epochs_done(), 3);
    assert_eq!(t2.optimizer.iterations(), t1.optimizer.iterations());
    let h2 = t2.fit(&mut resumed, (&x, &y)).unwrap();

    assert_eq!(
        bits(&resumed.get_weights()),
        bits(&straight.get_weights()),
        "{label}: weights after 6 epochs"
    );
    let losses: Vec<f64> = h1.loss().iter().chain(h2.loss()).copied().collect();
    assert_eq!(losses, h.loss(), "{label}: loss per epoch");
    assert_eq!(h2.epoch, vec![3, 4, 5]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn adam_resumes_bit_for_bit() {
    resumes_exactly(Adam::default, "adam");
}

#[test]
fn a_model_with_dropout_resumes_bit_for_bit() {
    // The mask streams' state (seed, passes drawn) is in the checkpoint: the resumed run
    // draws epoch 4's masks, not epoch 1's again.
    resumes_exactly_with(Adam::default, dropout_model, "dropout");
    // And the masks matter: restarted streams make another run.
    let (x, y) = data();
    let path = std::env::temp_dir().join(format!("rnnkit-drop-{}.safetensors", std::process::id()));
    let mut m = dropout_model();
    let mut t = Trainer::new(Adam::default(), Loss::Mse)
        .batch_size(6)
        .seed(5)
        .epochs(2);
    t.fit(&mut m, (&x, &y)).unwrap();
    t.save_checkpoint(&m, &path).unwrap();
    let state = m.state().unwrap().rng_state();
    let draws: Vec<Vec<u64>> = state
        .iter()
        .map(|l| l.chunks(2).map(|s| s[1]).collect())
        .collect();
    assert_eq!(
        draws,
        vec![vec![8, 8], vec![8], vec![8], vec![]],
        "4 steps an epoch"
    );
    let mut t2 = Trainer::new(Adam::default(), Loss::Mse)
        .batch_size(6)
        .seed(5)
        .epochs(1);
    let mut resumed = t2.resume(&path).unwrap();
    assert_eq!(resumed.state().unwrap().rng_state(), state);
    let mut fresh = resumed.clone();
    let restarted: Vec<Vec<u64>> = state
        .iter()
        .map(|l| l.chunks(2).flat_map(|s| [s[0], 0]).collect())
        .collect();
    fresh
        .state_mut()
        .unwrap()
        .set_rng_state(&restarted)
        .unwrap();
    assert!(
        fresh
            .state_mut()
            .unwrap()
            .set_rng_state(&[vec![1]])
            .is_err()
    );
    assert_eq!(fresh.state().unwrap().rng_state(), restarted);
    let mut t3 = Trainer::new(Adam::default(), Loss::Mse)
        .batch_size(6)
        .seed(5)
        .epochs(1);
    let _ = t3.resume(&path).unwrap();
    t2.fit(&mut resumed, (&x, &y)).unwrap();
    t3.fit(&mut fresh, (&x, &y)).unwrap();
    assert_ne!(bits(&resumed.get_weights()), bits(&fresh.get_weights()));
    std::fs::remove_file(&path).ok();
}

#[test]
fn sgd_with_momentum_resumes_bit_for_bit() {
    resumes_exactly(|| Sgd::new(0.05).momentum(0.9).nesterov(true), "sgd");
}

#[test]
fn rmsprop_resumes_bit_for_bit() {
    resumes_exactly(
        || RmsProp::new(0.01).momentum(0.5).centered(true),
        "rmsprop",
    );
}

#[test]
fn save_best_only_keeps_the_best_epoch() {
    let (x, y) = data();
    let dir = std::env::temp_dir().join(format!("rnnkit-best-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let best = dir.join("best.safetensors");
    let mut m = model();
    // A learning rate that makes the loss jump around, so some epochs are not saved.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut t = Trainer::new(Adam::new(0.3), Loss::Mse)
        .epochs(8)
        .checkpoint(ModelCheckpoint::new(&best).save_best_only("loss"))
        .callback(rnnkit::train::EpochEnd::new(
            move |_: usize, _: &rnnkit::train::Logs, ctx: &mut rnnkit::train::Context<'_, f32>| {
                log.borrow_mut().push(ctx.model.get_weights());
                Ok(rnnkit::train::Control::Continue)
            },
        ));
    let h = t.fit(&mut m, (&x, &y)).unwrap();
    let lowest = h.loss().iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(
        t.checkpointer().unwrap().saved(),
        std::slice::from_ref(&best)
    );
    // The file holds the best epoch's model: its epoch count says which.
    let info = rnnkit::io::FileInfo::read(&best).unwrap();
    let c = info.checkpoint.unwrap();
    let best_epoch = h.loss().iter().position(|&l| l == lowest).unwrap();
    assert_eq!(c.epoch, best_epoch + 1, "losses {:?}", h.loss());
    // The best epoch is not the last, so saving every epoch would have failed the above,
    // and the file holds other weights than the final model.
    assert!(best_epoch + 1 < h.loss().len(), "losses {:?}", h.loss());
    let saved = Sequential::<f32>::load(&best).unwrap();
    assert_ne!(saved.get_weights(), m.get_weights());
    // ... and exactly the weights the model had at the end of the best epoch.
    assert_eq!(
        bits(&saved.get_weights()),
        bits(&seen.borrow()[best_epoch]),
        "the saved weights are the best epoch's"
    );
    assert_eq!(c.optimizer, "adam");
    assert_eq!(c.state, ["m", "v"]);
    // (A checkpoint loads as a plain model too: `saved` above.)
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_refuses_what_does_not_fit() {
    let (x, y) = data();
    let dir = std::env::temp_dir().join(format!("rnnkit-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("c.safetensors");
    let mut m = model();
    let mut t = Trainer::new(Adam::default(), Loss::Mse).epochs(1);
    t.fit(&mut m, (&x, &y)).unwrap();
    t.save_checkpoint(&m, &ckpt).unwrap();

    let err = |r: Result<AnyModel<f32>, Error>| match r {
        Err(Error::File { error, .. }) => error,
        other => panic!("expected a file error, got {other:?}"),
    };
    // Another optimizer.
    let e = err(Trainer::new(Sgd::new(0.1), Loss::Mse).resume(&ckpt));
    assert!(matches!(e, FileError::Checkpoint(m) if m.contains("adam")));
    // A model file is not a checkpoint.
    let plain = dir.join("m.safetensors");
    m.save(&plain).unwrap();
    let e = err(Trainer::new(Adam::default(), Loss::Mse).resume(&plain));
    assert!(matches!(e, FileError::Checkpoint(_)));
    // Optimizer state of the wrong shape.
    let bytes = std::fs::read(&ckpt).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let shape = header["optimizer/m/0"]["shape"].clone();
    header["optimizer/m/0"]["shape"] = serde_json::json!([shape[1], shape[0]]);
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut damaged = (h.len() as u64).to_le_bytes().to_vec();
    damaged.extend(h);
    damaged.extend(&bytes[8 + n..]);
    std::fs::write(&ckpt, &damaged).unwrap();
    let e = err(Trainer::new(Adam::default(), Loss::Mse).resume(&ckpt));
    assert!(matches!(e, FileError::Tensor { tensor, .. } if tensor == "optimizer/m/0"));
    std::fs::remove_dir_all(&dir).ok();
}
