//! Masking properties: padding a sample with masked steps changes nothing about its real
//! steps, for every cell, with and without return_sequences and go_backwards.

use ndarray::{ArrayD, Axis, IxDyn, s};
use ndarray_rand::rand::Rng;
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

fn configs(rs: bool, gb: bool) -> Vec<(&'static str, Box<dyn LayerConfig<f64>>)> {
    let mut v: Vec<(&'static str, Box<dyn LayerConfig<f64>>)> = vec![
        (
            "SimpleRnn",
            Box::new(
                SimpleRnnConfig::new(3)
                    .return_sequences(rs)
                    .go_backwards(gb),
            ),
        ),
        (
            "Lstm",
            Box::new(LstmConfig::new(3).return_sequences(rs).go_backwards(gb)),
        ),
        (
            "Gru",
            Box::new(GruConfig::new(3).return_sequences(rs).go_backwards(gb)),
        ),
        (
            "Gru reset_before",
            Box::new(
                GruConfig::new(3)
                    .reset_after(false)
                    .return_sequences(rs)
                    .go_backwards(gb),
            ),
        ),
    ];
    if !gb {
        // Bidirectional already runs both directions; wrapping a go_backwards layer only
        // swaps which half is flipped (Keras does the same), so it is tested as configured.
        v.push((
            "Bidirectional(Lstm)",
            Box::new(BidirectionalConfig::new(
                LstmConfig::new(2).return_sequences(rs),
            )),
        ));
    }
    v
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-13 * (1.0 + y.abs()),
            "{what}: {x} vs {y}"
        );
    }
}

#[test]
fn padded_sample_equals_the_unpadded_sample_alone() {
    let (len, pad, f) = (4, 3, 2);
    let mut rng = seeded_rng(11);
    for rs in [false, true] {
        for gb in [false, true] {
            for (name, cfg) in configs(rs, gb) {
                let label = format!("{name} rs={rs} gb={gb}");
                let mut layer = cfg.build(&[None, Some(f)], &mut seeded_rng(3)).unwrap();
                let x = ArrayD::from_shape_simple_fn(IxDyn(&[1, len, f]), || {
                    rng.random_range(-1.0..1.0)
                });
                let mut xp = ArrayD::zeros(IxDyn(&[1, len + pad, f]));
                xp.slice_mut(s![.., ..len, ..]).assign(&x);
                let mask = mask_from_lengths(&[len], len + pad).unwrap();

                let y = layer
                    .forward(Inputs::new(&x).mode(Mode::Train))
                    .map(|o| o.output)
                    .unwrap();
                let dy = ArrayD::from_shape_simple_fn(y.raw_dim(), || rng.random_range(-1.0..1.0));
                layer.zero_grad();
                let dx = layer
                    .backward(OutputGrads::new(&dy))
                    .map(|g| g.dx())
                    .unwrap();
                let grads: Vec<_> = {
                    let mut g = Vec::new();
                    layer.visit_params(&mut |_, p| g.push(p.grad().clone()));
                    g
                };

                let yp = layer
                    .forward(Inputs::new(&xp).mask(Some(&mask)).mode(Mode::Train))
                    .map(|o| o.output)
                    .unwrap();
                // Where the real steps sit in the padded output: processing order puts the
                // padding first with go_backwards, except inside Bidirectional, which
                // flips its backward half back into input order.
                let bidirectional = name.starts_with("Bi");
                let offset = if gb && !bidirectional { pad } else { 0 };
                let mut dyp = ArrayD::zeros(yp.raw_dim());
                if rs {
                    assert_close(
                        &yp.slice(s![.., offset..offset + len, ..])
                            .to_owned()
                            .into_dyn(),
                        &y,
                        &label,
                    );
                    dyp.slice_mut(s![.., offset..offset + len, ..]).assign(&dy);
                } else {
                    assert_close(&yp, &y, &label);
                    dyp.assign(&dy);
                }
                layer.zero_grad();
                let dxp = layer
                    .backward(OutputGrads::new(&dyp))
                    .map(|g| g.dx())
                    .unwrap();
                assert_close(
                    &dxp.slice(s![.., ..len, ..]).to_owned().into_dyn(),
                    &dx,
                    &format!("{label} dx"),
                );
                assert!(
                    dxp.slice(s![.., len.., ..]).iter().all(|&v| v == 0.0),
                    "{label}: dx at padding must be 0"
                );
                let mut i = 0;
                layer.visit_params(&mut |n, p| {
                    assert_close(p.grad(), &grads[i], &format!("{label} d{n}"));
                    i += 1;
                });
            }
        }
    }
}

#[test]
fn fully_masked_sample_outputs_zeros() {
    let mut layer = LstmConfig::new(3)
        .return_sequences(true)
        .build::<f64>(2, &mut seeded_rng(0))
        .unwrap();
    let x = ArrayD::from_elem(IxDyn(&[2, 4, 2]), 0.3);
    let mask = mask_from_lengths(&[4, 0], 4).unwrap();
    let y = layer
        .forward(Inputs::new(&x).mask(Some(&mask)).mode(Mode::Infer))
        .map(|o| o.output)
        .unwrap();
    assert!(y.index_axis(Axis(0), 1).iter().all(|&v| v == 0.0));
    assert!(y.index_axis(Axis(0), 0).iter().any(|&v| v != 0.0));
}

#[test]
fn masked_steps_repeat_the_previous_output_or_zero_it() {
    let x = ArrayD::from_elem(IxDyn(&[1, 5, 1]), 0.7);
    let mask = ndarray::array![[false, true, false, true, false]];
    for zero in [false, true] {
        let mut l = SimpleRnnConfig::new(2)
            .return_sequences(true)
            .zero_output_for_mask(zero)
            .build::<f64>(1, &mut seeded_rng(0))
            .unwrap();
        let y = l
            .forward(Inputs::new(&x).mask(Some(&mask)).mode(Mode::Infer))
            .map(|o| o.output)
            .unwrap();
        let row = |t: usize| y.slice(s![0, t, ..]).to_owned();
        assert!(
            row(0).iter().all(|&v| v == 0.0),
            "left padding outputs zeros"
        );
        if zero {
            assert!(row(2).iter().all(|&v| v == 0.0) && row(4).iter().all(|&v| v == 0.0));
        } else {
            assert_eq!(row(2), row(1));
            assert_eq!(row(4), row(3));
        }
    }
}

#[test]
fn the_mask_flows_through_a_stack() {
    let mut m = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(MaskingConfig::new(0.0))
        .unwrap()
        .push(LstmConfig::new(3).return_sequences(true))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let mut x = ArrayD::from_elem(IxDyn(&[2, 3, 2]), 1.0);
    x.slice_mut(s![1, 2.., ..]).fill(0.0);
    let expected = ndarray::array![[true, true, true], [true, true, false]];
    let trained = Model::forward(&mut m, Inputs::new(&x).mode(Mode::Train)).unwrap();
    assert_eq!(trained[0].mask.as_ref(), Some(&expected));
    let inferred = m.infer(Inputs::new(&x)).unwrap().remove(0);
    assert_eq!(inferred.mask.as_ref(), Some(&expected));
    assert_eq!(inferred.output, trained[0].output);
    let last = Sequential::<f64>::new(&[3, 2])
        .push(MaskingConfig::new(0.0))
        .unwrap()
        .push(LstmConfig::new(3))
        .unwrap();
    assert!(
        last.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0))
            .unwrap()
            .mask
            .is_none(),
        "return_sequences=false consumes the mask"
    );
}
