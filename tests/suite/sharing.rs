//! Inference through `&self`: a trained model is `Send + Sync` and serves several threads at
//! once; `infer` gives exactly what a `Mode::Infer` forward gives, for every layer type, with
//! and without masks; and the recurrent kernel packed for inference follows weight updates.

use ndarray::{ArrayD, IxDyn};
use rnnkit::prelude::*;
use rnnkit::{Dim, LayerConfig, Param};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn models_and_layers_are_send_and_sync() {
    assert_send_sync::<Sequential<f32>>();
    assert_send_sync::<Sequential<f64>>();
    assert_send_sync::<SimpleRnn<f32>>();
    assert_send_sync::<Lstm<f32>>();
    assert_send_sync::<Gru<f64>>();
    assert_send_sync::<Dense<f32>>();
    assert_send_sync::<Masking<f64>>();
    assert_send_sync::<Bidirectional<f32, Lstm<f32>>>();
    assert_send_sync::<Box<dyn Layer<f32>>>();
    assert_send_sync::<Box<dyn Model<f64>>>();
}

fn input<F: Float>(batch: usize, steps: usize, features: usize) -> ArrayD<F> {
    ArrayD::from_shape_fn(IxDyn(&[batch, steps, features]), |i| {
        F::from((i[0] * 7 + i[1] * 3 + i[2]) as f64 * 0.173)
            .unwrap()
            .sin()
    })
}

type Stack<F> = Vec<Box<dyn LayerConfig<F>>>;

/// Every layer type and option that changes the inference path.
fn stacks<F: Float>() -> Vec<(&'static str, Sequential<F>)> {
    let configs: Vec<(&str, Stack<F>)> = vec![
        (
            "masking + simple_rnn seq + dense",
            vec![
                Box::new(MaskingConfig::new(0.0)),
                Box::new(SimpleRnnConfig::new(6).return_sequences(true)),
                Box::new(DenseConfig::new(2).activation(Activation::Softmax)),
            ],
        ),
        (
            "lstm go_backwards + dense sigmoid",
            vec![
                Box::new(LstmConfig::new(40).go_backwards(true)),
                Box::new(DenseConfig::new(1).activation(Activation::Sigmoid)),
            ],
        ),
        (
            "gru + gru reset_before",
            vec![
                Box::new(GruConfig::new(24).return_sequences(true)),
                Box::new(GruConfig::new(5).reset_after(false)),
            ],
        ),
        (
            "bidirectional lstm concat + bidirectional gru ave",
            vec![
                Box::new(BidirectionalConfig::new(
                    LstmConfig::new(7).return_sequences(true),
                )),
                Box::new(BidirectionalConfig::new(GruConfig::new(3)).merge_mode(MergeMode::Ave)),
            ],
        ),
    ];
    configs
        .into_iter()
        .map(|(label, layers)| {
            let mut m = Sequential::<F>::with_input_shape(vec![None, Some(3)]).seed(5);
            for l in &layers {
                m.add(&**l).unwrap();
            }
            (label, m)
        })
        .collect()
}

fn ragged_mask(batch: usize, steps: usize) -> Mask {
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % steps).collect();
    mask_from_lengths(&lengths, steps).unwrap()
}

fn infer_equals_forward<F: Float>() {
    for (label, mut m) in stacks::<F>() {
        for (batch, masked) in [(3, false), (3, true), (40, false), (40, true)] {
            let x = input::<F>(batch, 9, 3);
            let mask = masked.then(|| ragged_mask(batch, 9));
            let shared = m
                .infer(Inputs::new(&x).mask(mask.as_ref()))
                .unwrap()
                .remove(0);
            let owned = Model::forward(&mut m, Inputs::new(&x).mask(mask.as_ref())).unwrap();
            assert_eq!(shared.output, owned[0].output, "{label}, batch {batch}");
            assert_eq!(shared.mask, owned[0].mask, "{label}, batch {batch}");
            // A second call reuses the layer's kept buffers: same numbers.
            assert_eq!(
                m.infer(Inputs::new(&x).mask(mask.as_ref())).unwrap()[0].output,
                owned[0].output
            );
        }
    }
}

#[test]
fn infer_equals_an_infer_forward_for_every_layer_f32() {
    infer_equals_forward::<f32>();
}

#[test]
fn infer_equals_an_infer_forward_for_every_layer_f64() {
    infer_equals_forward::<f64>();
}

#[test]
fn one_model_predicts_on_several_threads_at_once() {
    for (label, m) in stacks::<f32>() {
        let xs: Vec<ArrayD<f32>> = (0..4).map(|k| input::<f32>(5 + 11 * k, 6, 3)).collect();
        let alone: Vec<ArrayD<f32>> = xs
            .iter()
            .map(|x| {
                m.predict(Inputs::new(x), 8)
                    .map(|mut p| p.remove(0))
                    .unwrap()
            })
            .collect();
        let model = &m;
        // Each thread predicts its input five times while the others do the same.
        let together: Vec<Vec<ArrayD<f32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = xs
                .iter()
                .map(|x| {
                    s.spawn(move || {
                        (0..5)
                            .map(|_| {
                                model
                                    .predict(Inputs::new(x), 8)
                                    .map(|mut p| p.remove(0))
                                    .unwrap()
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (mine, alone) in together.iter().zip(&alone) {
            assert!(mine.iter().all(|y| y == alone), "{label}");
        }
    }
}

#[test]
fn inference_follows_every_weight_update() {
    // The packed recurrent kernel is kept across calls; every way of changing the weights
    // must be seen by the next prediction.
    let x = input::<f32>(32, 10, 3);
    let y = ArrayD::from_shape_fn(IxDyn(&[32, 1]), |i| (i[0] as f32 * 0.3).cos());
    let mut m = Sequential::<f32>::new(&[10, 3])
        .push(LstmConfig::new(48))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let fresh = |m: &Sequential<f32>| {
        let mut copy = Sequential::<f32>::new(&[10, 3])
            .seed(99)
            .push(LstmConfig::new(48))
            .unwrap()
            .push(DenseConfig::new(1))
            .unwrap();
        copy.set_weights(&m.get_weights()).unwrap();
        copy.predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap()
    };
    let before = m
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    assert_eq!(before, fresh(&m));

    // Training steps.
    let mut t = Trainer::new(Adam::new(0.05), Loss::Mse)
        .epochs(2)
        .batch_size(16);
    t.fit(&mut m, (&x, &y)).unwrap();
    let trained = m
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    assert_ne!(trained, before);
    assert_eq!(trained, fresh(&m));

    // set_weights.
    let w: Vec<ArrayD<f32>> = m.get_weights().iter().map(|a| a * 0.5).collect();
    m.set_weights(&w).unwrap();
    assert_eq!(
        m.predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap(),
        fresh(&m)
    );

    // A visit that changes values.
    m.visit_params_mut(&mut |_, p: &mut Param<f32>| p.value_mut().mapv_inplace(|v| v + 0.01));
    assert_eq!(
        m.predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap(),
        fresh(&m)
    );
}

/// A user layer that implements only `forward`: the default `infer` works on a copy.
#[derive(Debug, Clone)]
struct Double;

impl Layer<f64> for Double {
    fn set_name(&mut self, _: &str) {}
    fn type_name(&self) -> &'static str {
        "Double"
    }
    fn output_shape(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>, Error> {
        Ok(inputs[0].clone())
    }
    fn forward(&mut self, inputs: Inputs<'_, f64>) -> Result<Outputs<f64>, Error> {
        Ok(Outputs::new(&*inputs.xs[0] * 2.0))
    }
    fn backward(&mut self, grads: OutputGrads<'_, f64>) -> Result<InputGrads<f64>, Error> {
        Ok(InputGrads {
            dxs: vec![grads.dy * 2.0],
            states: Vec::new(),
        })
    }
    fn box_clone(&self) -> Box<dyn Layer<f64>> {
        Box::new(self.clone())
    }
}

impl Module<f64> for Double {
    fn name(&self) -> &str {
        "double"
    }
    fn visit_params(&self, _: &mut dyn FnMut(&str, &Param<f64>)) {}
    fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Param<f64>)) {}
}
#[test]
fn a_user_layer_without_infer_still_infers() {
    let mut m = Sequential::<f64>::new(&[4, 3]);
    m.add_layer(Box::new(Double)).unwrap();
    m.add(&GruConfig::new(2)).unwrap();
    let x = input::<f64>(2, 4, 3);
    let owned = m
        .forward(Inputs::new(&x).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    assert_eq!(
        m.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        owned
    );
}
