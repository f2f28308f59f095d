//! `Embedding`: lookups, `mask_zero` into a recurrent layer, gradients against finite
//! differences, bad ids, save/load, streaming.

use ndarray::{ArrayD, Axis, IxDyn, array};
use rnnkit::prelude::*;
use rnnkit::{EmbeddingConfig, Error};

fn ids() -> ArrayD<f64> {
    array![
        [3.0, 1.0, 4.0, 0.0, 0.0],
        [5.0, 9.0, 2.0, 6.0, 0.0],
        [0.0, 0.0, 7.0, 1.0, 8.0]
    ]
    .into_dyn()
}

fn text_model(mask_zero: bool) -> Sequential<f64> {
    Sequential::<f64>::with_input_shape(vec![None])
        .push(EmbeddingConfig::new(10, 3).mask_zero(mask_zero))
        .unwrap()
        .push(LstmConfig::new(4))
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap()
}

#[test]
fn lookups_and_mask_zero_match_the_layers_run_by_hand() {
    let m = text_model(true);
    let table = m.layers()[0].get_weights()[0].clone();
    let x = ids();
    // The embedded vectors are rows of the table.
    let e = m.layers()[0]
        .infer(Inputs::new(&x).mask(None))
        .map(|o| o.output)
        .unwrap();
    for ((b, t), &id) in x
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter()
    {
        assert_eq!(
            e.index_axis(Axis(0), b).index_axis(Axis(0), t),
            table.index_axis(Axis(0), id as usize)
        );
    }
    // mask_zero: the rest of the model sees the mask id ≠ 0, as if given by hand.
    let mask = x
        .mapv(|v| v != 0.0)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let mut rest = Sequential::<f64>::with_input_shape(vec![None, Some(3)])
        .push(LstmConfig::new(4))
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap();
    rest.set_weights(&m.get_weights()[1..]).unwrap();
    let want = rest
        .forward(Inputs::new(&e).mask(Some(&mask)).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    assert_eq!(
        m.infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        want
    );
    // Without mask_zero, id 0 is a token like any other: the outputs differ.
    let mut plain = text_model(false);
    plain.set_weights(&m.get_weights()).unwrap();
    assert_ne!(
        plain
            .infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0).output)
            .unwrap(),
        want
    );
}

#[test]
fn gradients_match_finite_differences() {
    let mut m = text_model(true);
    let x = ids();
    let y = m
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let r = y.mapv(|v| 0.3 + v.sin());
    m.zero_grad();
    let dx = m
        .backward(&[OutputGrads::new(&r)])
        .map(|mut d| d.remove(0))
        .unwrap();
    assert!(dx.iter().all(|&v| v == 0.0) && dx.shape() == x.shape());
    let mut grads = Vec::new();
    m.visit_params(&mut |_, p| grads.push(p.grad().clone()));
    let weights = m.get_weights();
    let h = 1e-5;
    for (wi, w) in weights.iter().enumerate() {
        for i in 0..w.len() {
            let f = |d: f64| {
                let mut ws = weights.clone();
                ws[wi].as_slice_mut().unwrap()[i] += d;
                let mut mm = m.clone();
                mm.set_weights(&ws).unwrap();
                (mm.infer(Inputs::new(&x).mask(None))
                    .map(|mut o| o.remove(0).output)
                    .unwrap()
                    * &r)
                    .sum()
            };
            let num = (-f(2.0 * h) + 8.0 * f(h) - 8.0 * f(-h) + f(-2.0 * h)) / (12.0 * h);
            let a = grads[wi].as_slice().unwrap()[i];
            assert!(
                (a - num).abs() <= 1e-7 * (a.abs() + num.abs()).max(1e-3),
                "weight {wi}[{i}]: {a} vs {num}"
            );
        }
    }
    // Id 0 appears only at masked steps: its row gets no gradient.
    assert!(grads[0].index_axis(Axis(0), 0).iter().all(|&v| v == 0.0));
}

#[test]
fn bad_ids_are_typed_errors_naming_the_id() {
    let mut m = text_model(false);
    let before = m.get_weights();
    for (bad, shown) in [(3.5, "3.5"), (-1.0, "-1"), (10.0, "10"), (f64::NAN, "NaN")] {
        let mut x = ids();
        x[[1, 2]] = bad;
        let err = m
            .forward(Inputs::new(&x).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Data(s) if s.contains(shown) && s.contains("0..10")),
            "{err}"
        );
    }
    assert_eq!(m.get_weights(), before);
    // Vectors where ids are expected: a shape error before anything runs.
    let wrong = ArrayD::<f64>::zeros(IxDyn(&[2, 5, 3]));
    assert!(
        m.forward(Inputs::new(&wrong).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .is_err()
    );
    assert!(
        Sequential::<f64>::new(&[4])
            .push(EmbeddingConfig::new(0, 3))
            .is_err()
    );
}

#[test]
fn saved_loaded_and_streamed() {
    let m = text_model(true);
    let loaded = Sequential::<f64>::from_bytes(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(loaded.get_weights(), m.get_weights());
    let json = serde_json::to_string(&loaded.spec().unwrap()).unwrap();
    assert!(
        json.contains(r#""layer":"Embedding""#) && json.contains(r#""mask_zero":true"#),
        "{json}"
    );
    assert!(m.summary().to_string().contains("Embedding"));
    // One id per step through the stream equals the whole pass (no padding fed).
    let x = array![[3.0, 1.0, 4.0, 1.0, 5.0]].into_dyn();
    let whole = m
        .infer(Inputs::new(&x).mask(None))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let mut state = m.stream_state(1);
    let mut last = None;
    for t in 0..5 {
        let xt = x.slice_axis(Axis(1), (t..t + 1).into()).to_owned();
        let xt = xt.into_dimensionality::<ndarray::Ix2>().unwrap();
        last = Some(m.step(xt.view(), &mut state).unwrap().to_owned());
    }
    assert!(
        (&last.unwrap().into_dyn() - &whole)
            .iter()
            .all(|v| v.abs() < 1e-12)
    );
}

/// Token ids arrive as integer arrays, as `pad_sequences` gives them (issue #26 item 7):
/// `predict`, `fit` and `evaluate` take them and give the numbers the same ids as floats
/// give; ids outside the table are still refused by name.
#[test]
fn integer_token_ids_go_in_as_they_are() {
    let seqs: Vec<Vec<usize>> = vec![vec![3, 1, 4], vec![5, 9, 2, 6], vec![7, 1, 8]];
    let ids: ndarray::Array2<usize> = pad_sequences(&seqs, 0).unwrap();
    let floats = ids.mapv(|i| i as f64).into_dyn();
    let model = text_model(true);
    let want = model.predict(Inputs::new(&floats), 2).unwrap();
    assert_eq!(model.predict(Inputs::from(&ids), 2).unwrap(), want);
    assert_eq!(
        model
            .predict(Inputs::from(&ids.mapv(|i| i as i64)), 2)
            .unwrap(),
        want
    );
    assert_eq!(
        model
            .predict(Inputs::from(&ids.mapv(|i| i as u32)), 2)
            .unwrap(),
        want
    );

    let y = ndarray::Array2::from_shape_fn((3, 2), |(i, j)| (i + j) as f64 * 0.5).into_dyn();
    let (mut a, mut b) = (text_model(true), text_model(true));
    let mut ta = Trainer::new(Adam::default(), Loss::Mse)
        .epochs(3)
        .batch_size(2)
        .seed(1);
    let mut tb = Trainer::new(Adam::default(), Loss::Mse)
        .epochs(3)
        .batch_size(2)
        .seed(1);
    let ha = ta.fit(&mut a, (&ids, &y)).unwrap();
    let hb = tb.fit(&mut b, (&floats, &y)).unwrap();
    assert_eq!(ha.loss(), hb.loss());
    assert_eq!(a.get_weights(), b.get_weights());
    assert_eq!(
        ta.evaluate(&a, (&ids.mapv(|i| i as i32), &y)).unwrap(),
        tb.evaluate(&b, (&floats, &y)).unwrap()
    );

    let bad = ndarray::Array2::from_elem((1, 3), 10usize); // the table has 10 rows
    let e = model
        .predict(Inputs::from(&bad), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("10"), "{e}");
    let negative = ndarray::Array2::from_elem((1, 3), -1i64);
    assert!(model.predict(Inputs::from(&negative), 1).is_err());
}
