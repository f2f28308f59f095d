//! Keras's callback hooks: their order, results readable after `fit`, the learning rate in
//! reach (ReduceLROnPlateau, closures), and a callback's error stopping training cleanly.

use ndarray::{Array2, ArrayD};
use rnnkit::prelude::*;
use rnnkit::{Callback, train::Context, train::Control, train::EpochEnd, train::Logs};
use std::cell::RefCell;
use std::rc::Rc;

fn data() -> (ArrayD<f64>, ArrayD<f64>) {
    let x = Array2::from_shape_fn((8, 2), |(i, j)| ((i + j) as f64 * 0.3).sin()).into_dyn();
    let y = Array2::from_shape_fn((8, 1), |(i, _)| (i as f64 * 0.2).cos()).into_dyn();
    (x, y)
}

fn model() -> Sequential<f64> {
    Sequential::<f64>::new(&[2])
        .push(DenseConfig::new(1))
        .unwrap()
}

/// Records every hook it sees.
#[derive(Default)]
struct Events(Vec<String>);

impl Callback<f64> for Events {
    fn on_train_begin(&mut self, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
        self.0.push("train_begin".into());
        Ok(())
    }
    fn on_epoch_begin(&mut self, e: usize, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
        self.0.push(format!("epoch_begin {e}"));
        Ok(())
    }
    fn on_train_batch_begin(&mut self, b: usize, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
        self.0.push(format!("batch_begin {b}"));
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        b: usize,
        logs: &Logs,
        _: &mut Context<'_, f64>,
    ) -> rnnkit::Result<()> {
        assert!(logs["loss"].is_finite());
        self.0.push(format!("batch_end {b}"));
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        e: usize,
        logs: &Logs,
        _: &mut Context<'_, f64>,
    ) -> rnnkit::Result<Control> {
        assert!(logs.contains_key("loss"));
        self.0.push(format!("epoch_end {e}"));
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
        self.0.push("train_end".into());
        Ok(())
    }
}

#[test]
fn hooks_run_in_keras_order_and_results_are_readable_after_fit() {
    let (x, y) = data();
    let mut m = model();
    let events = Rc::new(RefCell::new(Events::default()));
    let mut t = Trainer::new(Sgd::new(0.01), Loss::Mse)
        .epochs(2)
        .batch_size(4)
        .shuffle(false)
        .callback(events.clone());
    t.fit(&mut m, (&x, &y)).unwrap();
    let expected = [
        "train_begin",
        "epoch_begin 0",
        "batch_begin 0",
        "batch_end 0",
        "batch_begin 1",
        "batch_end 1",
        "epoch_end 0",
        "epoch_begin 1",
        "batch_begin 0",
        "batch_end 0",
        "batch_begin 1",
        "batch_end 1",
        "epoch_end 1",
        "train_end",
    ];
    assert_eq!(events.borrow().0, expected);

    // An EarlyStopping kept by the caller: stopped_epoch is there after fit.
    let es = Rc::new(RefCell::new(EarlyStopping::new("loss").patience(1)));
    let mut m = model();
    let mut t = Trainer::new(Sgd::new(1e-300), Loss::Mse) // the loss cannot improve
        .epochs(10)
        .shuffle(false)
        .callback(es.clone());
    let h = t.fit(&mut m, (&x, &y)).unwrap();
    assert_eq!(es.borrow().stopped_epoch(), Some(1));
    assert_eq!(h.loss().len(), 2);
}

#[test]
fn a_closure_reaches_the_learning_rate() {
    let (x, y) = data();
    let mut m = model();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut t = Trainer::new(Sgd::new(0.1), Loss::Mse)
        .epochs(3)
        .callback(EpochEnd::new(
            move |_: usize, _: &Logs, ctx: &mut Context<'_, f64>| {
                log.borrow_mut().push(ctx.learning_rate());
                let lr = ctx.learning_rate();
                ctx.set_learning_rate(lr / 10.0)?;
                Ok(Control::Continue)
            },
        ));
    t.fit(&mut m, (&x, &y)).unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3);
    assert!((seen[1] - 0.01).abs() < 1e-18 && (seen[2] - 0.001).abs() < 1e-18);
    // A bad rate from a callback is an error that stops training.
    let mut t = Trainer::new(Sgd::new(0.1), Loss::Mse)
        .epochs(3)
        .callback(EpochEnd::new(
            |_: usize, _: &Logs, ctx: &mut Context<'_, f64>| {
                ctx.set_learning_rate(f64::NAN)?;
                Ok(Control::Continue)
            },
        ));
    assert!(matches!(
        t.fit(&mut m, (&x, &y)),
        Err(rnnkit::Error::Config {
            field: "learning_rate",
            ..
        })
    ));
}

/// Fails at the end of epoch `at`.
struct FailAt(usize, Rc<RefCell<bool>>);

impl Callback<f64> for FailAt {
    fn on_epoch_end(
        &mut self,
        e: usize,
        _: &Logs,
        _: &mut Context<'_, f64>,
    ) -> rnnkit::Result<Control> {
        if e == self.0 {
            return Err(rnnkit::Error::Data("stop here".into()));
        }
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
        *self.1.borrow_mut() = true;
        Ok(())
    }
}

#[test]
fn a_callback_error_stops_training_with_the_last_good_weights() {
    let (x, y) = data();
    let ended = Rc::new(RefCell::new(false));
    let mut m = model();
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(10)
        .shuffle(false)
        .callback(FailAt(2, ended.clone()));
    let r = t.fit(&mut m, (&x, &y));
    assert!(matches!(r, Err(rnnkit::Error::Data(ref s)) if s == "stop here"));
    assert!(*ended.borrow(), "on_train_end still ran");
    // The weights are those after epoch 2 (3 epochs), as an uninterrupted 3-epoch run.
    let mut reference = model();
    let mut t3 = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(3)
        .shuffle(false);
    t3.fit(&mut reference, (&x, &y)).unwrap();
    assert_eq!(m.get_weights(), reference.get_weights());
}
