//! Property tests: random shapes, lengths, masks, configurations and values (NaN, infinities
//! and huge numbers among them) driven through the public layer, model and trainer API. Every
//! call returns `Ok` or a typed error, never panics; an `Ok` has the shape the API promises; a
//! failed call changes no weight; `infer` agrees with an inference forward.
//!
//! CI also runs this file in the test profile, with overflow checks and debug assertions on.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use rnnkit::prelude::*;
use rnnkit::{Dim, Error, LayerConfig};

/// A random layer description (kept as data so failures print readably).
#[derive(Debug, Clone)]
struct LayerSpec {
    kind: u8,
    units: usize,
    flags: [bool; 4],
    activation: u8,
    merge: u8,
    mask_value: f64,
}

fn activation(i: u8) -> Activation {
    [
        Activation::Linear,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Relu,
        Activation::Softmax,
    ][usize::from(i) % 5]
}

fn merge(i: u8) -> MergeMode {
    [
        MergeMode::Concat,
        MergeMode::Sum,
        MergeMode::Mul,
        MergeMode::Ave,
        MergeMode::None,
    ][usize::from(i) % 5]
}

fn config(s: &LayerSpec) -> Box<dyn LayerConfig<f64>> {
    let [seq, back, bias, other] = s.flags;
    let a = activation(s.activation);
    match s.kind % 7 {
        0 => Box::new(
            SimpleRnnConfig::new(s.units)
                .return_sequences(seq)
                .go_backwards(back)
                .use_bias(bias)
                .zero_output_for_mask(other)
                .activation(a),
        ),
        1 => Box::new(
            LstmConfig::new(s.units)
                .return_sequences(seq)
                .go_backwards(back)
                .use_bias(bias)
                .unit_forget_bias(other)
                .recurrent_activation(a),
        ),
        2 => Box::new(
            GruConfig::new(s.units)
                .return_sequences(seq)
                .go_backwards(back)
                .use_bias(bias)
                .reset_after(other)
                .activation(a),
        ),
        3 => Box::new(DenseConfig::new(s.units).activation(a).use_bias(bias)),
        4 => Box::new(MaskingConfig::new(s.mask_value)),
        5 => Box::new(
            BidirectionalConfig::new(LstmConfig::new(s.units).return_sequences(seq))
                .merge_mode(merge(s.merge)),
        ),
        _ => Box::new(
            BidirectionalConfig::new(
                GruConfig::new(s.units)
                    .return_sequences(seq)
                    .reset_after(other),
            )
            .merge_mode(merge(s.merge)),
        ),
    }
}

fn layer_spec() -> impl Strategy<Value = LayerSpec> {
    (
        0u8..7,
        prop_oneof![
            20 => 1usize..6,
            1 => Just(0usize),
            1 => Just(usize::MAX / 3),
            1 => Just(1usize << 40)
        ],
        any::<[bool; 4]>(),
        0u8..5,
        0u8..5,
        prop_oneof![Just(0.0), Just(1.0), Just(f64::NAN), Just(f64::INFINITY)],
    )
        .prop_map(
            |(kind, units, flags, activation, merge, mask_value)| LayerSpec {
                kind,
                units,
                flags,
                activation,
                merge,
                mask_value,
            },
        )
}

/// Mostly ordinary numbers, sometimes NaN, infinities or numbers near the top of f64.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        20 => -3.0..3.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
    ]
}

/// An array of the given shape filled (cyclically) from `values`.
fn array(shape: &[usize], values: &[f64]) -> ArrayD<f64> {
    let mut it = values.iter().cycle();
    ArrayD::from_shape_fn(IxDyn(shape), |_| *it.next().unwrap_or(&0.0))
}

/// A shape of rank 1 to 4 with small (possibly zero) axes; mostly rank 3.
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        8 => (1usize..5, 1usize..6, 1usize..5).prop_map(|(b, t, f)| vec![b, t, f]),
        1 => (0usize..5, 0usize..6, 0usize..5).prop_map(|(b, t, f)| vec![b, t, f]),
        1 => prop::collection::vec(0usize..5, 1..=4),
    ]
}

/// An optional mask, usually fitting the input's first two axes, sometimes not.
fn mask_for(shape: &[usize], kind: u8, bits: &[bool]) -> Option<Mask> {
    let (b, t) = (
        shape.first().copied().unwrap_or(1),
        shape.get(1).copied().unwrap_or(1),
    );
    let (rows, cols) = match kind % 4 {
        0 => return None,
        1 | 2 => (b, t),
        _ => (b + 1, t.saturating_sub(1)),
    };
    let mut it = bits.iter().cycle();
    Some(Mask::from_shape_fn((rows, cols), |_| {
        *it.next().unwrap_or(&true)
    }))
}

fn same(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn weights_of(l: &dyn Layer<f64>) -> Vec<ArrayD<f64>> {
    l.get_weights()
}

fn unchanged(a: &[ArrayD<f64>], b: &[ArrayD<f64>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

/// The input shape a layer is built for, from a batch shape (steps open when `open`).
fn dims(shape: &[usize], open: bool) -> Vec<Dim> {
    shape
        .iter()
        .skip(1)
        .enumerate()
        .map(|(i, &d)| if open && i == 0 { None } else { Some(d) })
        .collect()
}

/// Counts of generated layer calls: (valid ones, all).
static LAYER_CALLS: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

#[test]
fn layers_succeed_when_valid_and_name_the_fault_when_not() {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::Ordering::Relaxed;
    let strategy = (
        layer_spec(),
        shape(),
        prop_oneof![6 => Just(None), 1 => (0usize..5).prop_map(Some)],
        prop::collection::vec(value(), 1..40),
        0u8..4,
        prop::collection::vec(prop::bool::weighted(0.8), 1..30),
        0u8..3,
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config::with_cases(512));
    runner
        .run(
            &strategy,
            |(spec, x_shape, build_features, values, mask_kind, bits, dy_kind, open)| {
                let config = config(&spec);
                // Build for the input's own shape, or for another feature count.
                let mut build_shape = dims(&x_shape, open);
                if let (Some(f), Some(last)) = (build_features, build_shape.last_mut()) {
                    *last = Some(f);
                }
                let Ok(mut layer) = config.build(&build_shape, &mut seeded_rng(1)) else {
                    return Ok(());
                };
                let x = array(&x_shape, &values);
                let mask = mask_for(&x_shape, mask_kind, &bits);
                let w0 = weights_of(&*layer);
                // The faults of this call, each with the error kinds that name it; none: it must
                // succeed.
                let mut faults: Vec<&[&str]> = Vec::new();
                if build_features.is_some_and(|f| Some(&f) != x_shape.last()) {
                    faults.push(&["Features", "Shape", "Rank"]);
                }
                if x_shape.iter().take(2).any(|&d| d == 0) {
                    faults.push(&["Empty", "Shape", "Rank", "Mask"]);
                }
                if mask.is_some() && (mask_kind == 3 || x_shape.len() != 3) {
                    faults.push(&["Mask", "Shape", "Rank"]);
                }
                let allowed = |e: &Error| faults.iter().any(|f| f.contains(&kind(e)));

                let shared = layer
                    .infer(Inputs::new(&x).mask(mask.as_ref()))
                    .map(|o| o.output);
                let owned = layer
                    .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Infer))
                    .map(|o| o.output);
                match (&shared, &owned) {
                    (Ok(a), Ok(b)) => prop_assert!(same(a, b), "infer differs from forward(Infer)"),
                    (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                    _ => prop_assert!(
                        false,
                        "infer {:?} but forward {:?}",
                        shared.is_ok(),
                        owned.is_ok()
                    ),
                }
                LAYER_CALLS[1].fetch_add(1, Relaxed);
                if faults.is_empty() {
                    LAYER_CALLS[0].fetch_add(1, Relaxed);
                }
                match &shared {
                    Ok(_) => prop_assert!(
                        faults.is_empty(),
                        "accepted a call with faults {:?}",
                        faults
                    ),
                    Err(e) => prop_assert!(
                        allowed(e),
                        "{} ({}) names none of the faults {:?}",
                        kind(e),
                        e,
                        faults
                    ),
                }
                match layer
                    .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train))
                    .map(|o| o.output)
                {
                    Ok(y) => {
                        // The promised output shape.
                        let expected = layer.output_shape(&[dims(&x_shape, false)]);
                        prop_assert!(expected.is_ok());
                        let expected: Vec<usize> = std::iter::once(x_shape[0])
                            .chain(expected.unwrap().into_iter().map(|d| d.unwrap_or(0)))
                            .collect();
                        prop_assert_eq!(y.shape(), &expected[..]);
                        let dy = match dy_kind {
                            0 => ArrayD::ones(y.raw_dim()),
                            1 => array(y.shape(), &values),
                            _ => ArrayD::ones(IxDyn(&[y.shape()[0] + 1])),
                        };
                        layer.zero_grad();
                        match layer.backward(OutputGrads::new(&dy)).map(|g| g.dx()) {
                            Ok(dx) => prop_assert_eq!(dx.shape(), x.shape()),
                            Err(e) => {
                                prop_assert!(
                                    dy_kind == 2,
                                    "backward refused a fitting gradient: {}",
                                    e
                                );
                                let mut grads_zero = true;
                                layer.visit_params(&mut |_, p| {
                                    grads_zero &= p.grad().iter().all(|g| *g == 0.0)
                                });
                                prop_assert!(grads_zero, "a refused backward added gradients");
                            }
                        }
                    }
                    Err(e) => prop_assert!(
                        allowed(&e),
                        "{} ({}) names none of the faults {:?}",
                        kind(&e),
                        e,
                        faults
                    ),
                }
                prop_assert!(
                    unchanged(&w0, &weights_of(&*layer)),
                    "a pass changed the weights"
                );
                Ok(())
            },
        )
        .unwrap();
    let (valid, all) = (LAYER_CALLS[0].load(Relaxed), LAYER_CALLS[1].load(Relaxed));
    assert!(
        valid * 3 >= all && all >= 256,
        "only {valid} of {all} generated layer calls were valid"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn models_return_ok_or_a_typed_error(
        specs in prop::collection::vec(layer_spec(), 1..4),
        x_shape in shape(),
        features in 0usize..5,
        open in any::<bool>(),
        values in prop::collection::vec(value(), 1..40),
        mask_kind in 0u8..4,
        bits in prop::collection::vec(prop::bool::weighted(0.8), 1..30),
        batch_size in 0usize..4,
        new_weights in prop::collection::vec(value(), 1..20),
    ) {
        let steps = x_shape.get(1).copied().unwrap_or(1);
        let input = vec![if open { None } else { Some(steps) }, Some(features)];
        let mut model = Sequential::<f64>::with_input_shape(input);
        for s in &specs {
            let before = (model.layers().len(), model.output_shape().to_vec());
            if model.add(&*config(s)).is_err() {
                // A refused layer leaves the model as it was.
                prop_assert_eq!(model.layers().len(), before.0);
                prop_assert_eq!(model.output_shape(), &before.1[..]);
            }
        }
        let x = array(&x_shape, &values);
        let mask = mask_for(&x_shape, mask_kind, &bits);
        let w0 = model.get_weights();

        // The faults of the call (none: predict must succeed with the promised shape).
        let mut faults: Vec<&[&str]> = Vec::new();
        if x_shape.len() != 3 {
            faults.push(&["Rank", "Shape"]);
        } else {
            if x_shape[2] != features || (!open && x_shape[1] != steps) {
                faults.push(&["Features", "Shape", "Rank"]);
            }
            // No samples: Keras's predict returns empty outputs.
        }
        if mask.is_some() && (mask_kind == 3 || x_shape.len() != 3) {
            faults.push(&["Mask", "Shape", "Rank"]);
        }
        if batch_size == 0 {
            faults.push(&["Config"]);
        }
        // Zero steps: a layer that needs steps refuses, a model without one passes them.
        let no_steps = x_shape.get(1) == Some(&0);
        match model.predict(Inputs::new(&x).mask(mask.as_ref()), batch_size).map(|mut p| p.remove(0)) {
            Ok(_) => prop_assert!(faults.is_empty(), "accepted a call with faults {:?}", faults),
            Err(e) if faults.is_empty() && no_steps => {
                prop_assert_eq!(kind(&e), "Empty", "{}", e)
            }
            Err(e) => prop_assert!(
                faults.iter().any(|f| f.contains(&kind(&e))),
                "{} ({}) names none of the faults {:?}",
                kind(&e),
                e,
                faults
            ),
        }
        if let Ok(y) = model.predict(Inputs::new(&x).mask(mask.as_ref()), batch_size).map(|mut p| p.remove(0)) {
            prop_assert_eq!(y.shape()[0], x_shape[0]);
        }
        if let (Ok(y), true) = (
            model.predict(Inputs::new(&x).mask(mask.as_ref()), batch_size).map(|mut p| p.remove(0)),
            x_shape[0] > 0,
        ) {
            let whole = model.infer(Inputs::new(&x).mask(mask.as_ref())).map(|mut o| o.remove(0).output);
            prop_assert!(whole.is_ok());
            prop_assert!(same(&whole.unwrap(), &y), "batched predict differs");
        }
        if let Ok(out) = Model::forward(&mut model, Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train)) {
            let d = ArrayD::ones(out[0].output.raw_dim());
            let dx = Model::backward(&mut model, &[OutputGrads::new(&d)]);
            prop_assert!(dx.is_ok());
            let dx = dx.unwrap().remove(0);
            prop_assert_eq!(dx.shape(), x.shape());
        }
        prop_assert!(unchanged(&w0, &model.get_weights()));

        // set_weights with arrays of the right shapes and random (maybe non-finite) values.
        let proposed: Vec<ArrayD<f64>> = w0.iter().map(|w| array(w.shape(), &new_weights)).collect();
        match model.set_weights(&proposed) {
            Ok(()) => prop_assert!(unchanged(&proposed, &model.get_weights())),
            Err(_) => prop_assert!(unchanged(&w0, &model.get_weights())),
        }
    }
}

/// The kind of an error, by the fault it names.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Config { .. } => "Config",
        Error::Data(_) => "Data",
        Error::Shape { .. } => "Shape",
        Error::Mask { .. } => "Mask",
        Error::NonFinite { .. } => "NonFinite",
        Error::Rank { .. } => "Rank",
        Error::Features { .. } => "Features",
        Error::Empty { .. } => "Empty",
        _ => "other",
    }
}

/// One generated `fit` call.
#[derive(Debug, Clone)]
struct FitCase {
    cell: u8,
    units: usize,
    out_units: usize,
    out_activation: u8,
    x_shape: Vec<usize>,
    y_extra: usize,
    values: Vec<f64>,
    targets: Vec<f64>,
    mask_kind: u8,
    bits: Vec<bool>,
    loss: u8,
    lr: f64,
    epochs: usize,
    batch_size: usize,
    split: f64,
}

fn fit_case() -> impl Strategy<Value = FitCase> {
    (
        (0u8..3, 1usize..4, 1usize..4, 0u8..5),
        (1usize..7, 1usize..5, 1usize..3).prop_map(|(b, t, f)| vec![b, t, f]),
        prop_oneof![8 => Just(0usize), 1 => 1usize..3],
        prop_oneof![
            8 => prop::collection::vec(-3.0..3.0f64, 1..40),
            1 => prop::collection::vec(value(), 1..40)
        ],
        prop::collection::vec(
            prop_oneof![10 => 0.0..1.0f64, 10 => (0u8..3).prop_map(f64::from), 1 => value()],
            1..20,
        ),
        (
            prop_oneof![4 => Just(0u8), 4 => Just(1u8), 1 => Just(3u8)],
            prop::collection::vec(prop::bool::weighted(0.8), 1..30),
            0u8..6,
        ),
        prop_oneof![
            12 => Just(0.01),
            1 => Just(f64::NAN),
            1 => Just(-1.0),
            1 => Just(0.0),
            1 => Just(1e300)
        ],
        (
            prop_oneof![6 => 1usize..3, 1 => Just(0usize)],
            prop_oneof![8 => 1usize..4, 1 => Just(0usize)],
            prop_oneof![
                12 => Just(0.0),
                3 => Just(0.5),
                1 => Just(1.0),
                1 => Just(-0.1),
                1 => Just(f64::NAN)
            ],
        ),
    )
        .prop_map(
            |(
                (cell, units, out_units, out_activation),
                x_shape,
                y_extra,
                values,
                targets,
                (mask_kind, bits, loss),
                lr,
                (epochs, batch_size, split),
            )| FitCase {
                cell,
                units,
                out_units,
                out_activation,
                x_shape,
                y_extra,
                values,
                targets,
                mask_kind,
                bits,
                loss,
                lr,
                epochs,
                batch_size,
                split,
            },
        )
}

/// The error kinds a `fit` call may return, one per fault in it (empty: the call is valid
/// and must succeed, or stop on a diverging loss).
fn faults(c: &FitCase, x: &ArrayD<f64>, y: &ArrayD<f64>, mask: &Option<Mask>) -> Vec<&'static str> {
    let mut f = Vec::new();
    let b = c.x_shape[0];
    if c.batch_size == 0 || !(c.lr.is_finite() && c.lr > 0.0) {
        f.push("Config");
    }
    if !(0.0..1.0).contains(&c.split) {
        f.push("Config");
    } else if c.split > 0.0 {
        let n_train = (b as f64 * (1.0 - c.split)).floor() as usize;
        if n_train == 0 || n_train == b {
            f.push("Data");
        }
    }
    if x.iter().any(|v| !v.is_finite()) || y.iter().any(|v| !v.is_finite()) {
        f.push("Data");
    }
    if c.y_extra > 0 {
        f.push("Data");
    }
    let sparse = c.loss == 4;
    if sparse
        && y.iter()
            .any(|&v| !(v >= 0.0 && v.fract() == 0.0 && v < c.out_units as f64))
    {
        f.push("Data");
    }
    if c.mask_kind == 3 || mask.as_ref().is_some_and(|m| m.dim() != (b, c.x_shape[1])) {
        f.push("Shape");
    }
    f
}

#[test]
fn training_succeeds_when_valid_and_names_the_fault_when_not() {
    use proptest::test_runner::{Config, TestRunner};
    let (valid, total) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let mut runner = TestRunner::new(Config::with_cases(512));
    runner
        .run(&fit_case(), |c| {
            let (b, t, f) = (c.x_shape[0], c.x_shape[1], c.x_shape[2]);
            let layer: Box<dyn LayerConfig<f64>> = match c.cell {
                0 => Box::new(SimpleRnnConfig::new(c.units)),
                1 => Box::new(LstmConfig::new(c.units)),
                _ => Box::new(GruConfig::new(c.units)),
            };
            let mut model = Sequential::<f64>::new(&[t, f]);
            model.add(&*layer).unwrap();
            model
                .add(&DenseConfig::new(c.out_units).activation(activation(c.out_activation)))
                .unwrap();
            let loss = match c.loss {
                0 => Loss::Mse,
                1 => Loss::Mae,
                2 => Loss::binary_crossentropy(),
                3 => Loss::categorical_crossentropy(),
                4 => Loss::SparseCategoricalCrossentropy { from_logits: false },
                _ => Loss::categorical_crossentropy().from_logits(true),
            };
            let x = array(&c.x_shape, &c.values);
            let y_cols = if c.loss == 4 { 1 } else { c.out_units } + c.y_extra;
            let y = array(&[b, y_cols], &c.targets);
            let mask = mask_for(&c.x_shape, c.mask_kind, &c.bits);
            let expected = faults(&c, &x, &y, &mask);
            let mut trainer = Trainer::new(Adam::new(c.lr), loss)
                .epochs(c.epochs)
                .batch_size(c.batch_size)
                .validation_split(c.split)
                .seed(3);
            let w0 = model.get_weights();
            total.set(total.get() + 1);
            match trainer.fit(&mut model, Data::new(&x, &y).mask(mask.as_ref())) {
                Ok(history) => {
                    prop_assert!(
                        expected.is_empty(),
                        "accepted a call with faults {:?}",
                        expected
                    );
                    valid.set(valid.get() + 1);
                    prop_assert_eq!(history.loss().len(), c.epochs);
                    let finite = model
                        .get_weights()
                        .iter()
                        .all(|w| w.iter().all(|v| v.is_finite()));
                    prop_assert!(finite, "training left non-finite weights");
                    // A valid model evaluates and predicts with the promised shapes.
                    let logs = trainer.evaluate(&model, Data::new(&x, &y).mask(mask.as_ref()));
                    prop_assert!(logs.is_ok_and(|l| l.contains_key("loss")));
                    let p = model.predict(Inputs::new(&x), 32).map(|mut p| p.remove(0));
                    prop_assert!(p.is_ok());
                    let p = p.unwrap();
                    prop_assert_eq!(p.shape(), &[b, c.out_units][..]);
                }
                Err(e) => {
                    let k = kind(&e);
                    if expected.is_empty() {
                        // Valid input may still diverge (lr 1e300): the NaN guard's error.
                        prop_assert_eq!(k, "NonFinite", "refused a valid call: {}", e);
                        valid.set(valid.get() + 1);
                    } else {
                        prop_assert!(
                            expected.contains(&k),
                            "error {} ({}) names none of the faults {:?}",
                            k,
                            e,
                            expected
                        );
                        prop_assert_eq!(&model.get_weights(), &w0, "a refused fit moved weights");
                    }
                    let finite = model
                        .get_weights()
                        .iter()
                        .all(|w| w.iter().all(|v| v.is_finite()));
                    prop_assert!(finite, "a failed fit left non-finite weights: {}", e);
                }
            }
            Ok(())
        })
        .unwrap();
    // The generator must mostly make valid calls, or the Ok branch tests little.
    let share = valid.get() as f64 / total.get() as f64;
    assert!(
        share >= 0.3,
        "only {} of {} generated fits were valid",
        valid.get(),
        total.get()
    );
}
