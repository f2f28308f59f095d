//! Every `kind: "stateful"` Keras fixture: a stateful model run chunk by chunk over one long
//! sequence per batch row, with resets; the output and every carried state after each
//! chunk. Each case runs three ways: `forward` through `&mut`, `infer` through `&self`
//! (f32), and the streaming API with explicit states on the same model (whose carried states
//! it must leave alone).
//!
//! Reads `$RNNKIT_FIXTURES` when set, else `tests/fixtures`. Closes with
//! `stateful: N passed, M failed` (f64) and `stateful [f32]: N passed, M failed`.

use crate::common;

use common::*;
use ndarray::{Array2, ArrayD};
use rnnkit::Float;
use rnnkit::prelude::*;
use rnnkit::{BidirectionalConfig, MergeMode};
use serde_json::Value;

fn flat<F: Float>(states: Vec<Vec<Array2<F>>>) -> Vec<ArrayD<F>> {
    states.into_iter().flatten().map(|a| a.into_dyn()).collect()
}

fn check_states<F: Float>(got: Vec<ArrayD<F>>, want: &Value, what: &str) -> Result<(), String> {
    let want = want.as_array().unwrap();
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} states, expected {}",
            got.len(),
            want.len()
        ));
    }
    let (rtol, atol) = tolerance::<F>();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(g, &tensor(w), rtol, atol).map_err(|e| format!("{what}, state {i}: {e}"))?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Path {
    Forward,
    Infer,
}

fn run_case<F: Float>(case: &Value, path: Path) -> Result<(), String> {
    let mut model = stateful_model::<F>(case)?;
    let (rtol, atol) = tolerance::<F>();
    let resets: Vec<usize> = case["reset_after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let batches = case["batches"].as_array().unwrap();
    let b = case["batch_shape"][0].as_u64().unwrap() as usize;
    let mut streamed = model.zero_states(b).unwrap();
    for (k, xk) in batches.iter().enumerate() {
        let x: ArrayD<F> = tensor(xk);
        let carried_before = model.states();
        // The streaming API on the same model: explicit states, carried ones untouched.
        let s = model
            .state()
            .unwrap()
            .infer_from(Inputs::new(&x).mask(None), &mut streamed)
            .map(|mut o| o.remove(0))
            .map_err(|e| format!("chunk {k}: stream: {e}"))?;
        if model.states() != carried_before {
            return Err(format!("chunk {k}: streaming moved the carried states"));
        }
        let y = match path {
            Path::Forward => model
                .forward(Inputs::new(&x).mode(Mode::Infer))
                .map(|mut o| o.remove(0).output),
            Path::Infer => model
                .infer(Inputs::new(&x).mask(None))
                .map(|mut o| o.remove(0))
                .map(|f| f.output),
        }
        .map_err(|e| format!("chunk {k}: {e}"))?;
        let want = tensor(&case["outputs"][k]);
        close(&y, &want, rtol, atol).map_err(|e| format!("chunk {k}, output: {e}"))?;
        close(&s.output, &want, rtol, atol).map_err(|e| format!("chunk {k}, streamed: {e}"))?;
        check_states(
            flat(model.states()),
            &case["states"][k],
            &format!("chunk {k}"),
        )?;
        check_states(
            flat(streamed.clone()),
            &case["states"][k],
            &format!("chunk {k}, streamed"),
        )?;
        if resets.contains(&k) {
            model.reset_states();
            streamed = model.zero_states(b).unwrap();
        }
    }
    Ok(())
}

#[test]
fn keras_stateful_fixtures_f64() {
    run_fixtures("stateful", "stateful", |c| {
        run_case::<f64>(c, Path::Forward)
    });
}

#[test]
fn keras_stateful_fixtures_f32() {
    run_fixtures("stateful", "stateful [f32]", |c| {
        run_case::<f32>(c, Path::Infer)
    });
}

fn stream_model(stateful: bool) -> Sequential<f64> {
    Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(LstmConfig::new(3).return_sequences(true).stateful(stateful))
        .unwrap()
        .push(
            BidirectionalConfig::new(GruConfig::new(2).return_sequences(true).stateful(stateful))
                .merge_mode(MergeMode::Concat),
        )
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
}

fn series(b: usize, t: usize) -> ArrayD<f64> {
    ndarray::Array3::from_shape_fn((b, t, 2), |(i, s, f)| {
        ((1 + i + 3 * s + 5 * f) as f64 * 0.29).sin()
    })
    .into_dyn()
}

#[test]
fn streaming_one_step_at_a_time_equals_one_pass() {
    // Unidirectional stack: step by step through explicit states equals the whole pass to
    // 1e-12, and a cloned state branches without disturbing the original.
    let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(LstmConfig::new(4).return_sequences(true))
        .unwrap()
        .push(SimpleRnnConfig::new(3).return_sequences(true))
        .unwrap()
        .push(GruConfig::new(2))
        .unwrap();
    let x = series(3, 9);
    let whole = model
        .infer(Inputs::new(&x).mask(None))
        .map(|mut o| o.remove(0))
        .unwrap()
        .output;
    let mut states = model.zero_states(3).unwrap();
    let mut last = None;
    let mut branch = None;
    for t in 0..9 {
        let step = x.slice_axis(ndarray::Axis(1), (t..t + 1).into()).to_owned();
        last = Some(
            model
                .state()
                .unwrap()
                .infer_from(Inputs::new(&step).mask(None), &mut states)
                .map(|mut o| o.remove(0))
                .unwrap()
                .output,
        );
        if t == 4 {
            branch = Some(states.clone());
        }
    }
    let d = (&last.unwrap() - &whole)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(d < 1e-12, "max difference {d:e}");
    // Resuming the branch at step 5 reproduces the same ending.
    let mut branch = branch.unwrap();
    let rest = x.slice_axis(ndarray::Axis(1), (5..9).into()).to_owned();
    let resumed = model
        .state()
        .unwrap()
        .infer_from(Inputs::new(&rest).mask(None), &mut branch)
        .map(|mut o| o.remove(0))
        .unwrap()
        .output;
    assert!((&resumed - &whole).iter().all(|v| v.abs() < 1e-12));
    assert_eq!(branch, states);
}

#[test]
fn stateful_bidirectional_chunks_follow_the_keras_rule() {
    // Keras's rule for a stateful Bidirectional: each direction carries its own state, and
    // the backward one reads each chunk from its end. Reference: the same layers with
    // explicit states, which follow that rule by construction, chunk after chunk.
    let mut stateful = stream_model(true);
    let plain = stream_model(false);
    stateful.set_weights(&plain.get_weights()).unwrap();
    let x = series(2, 12);
    let mut states = plain.zero_states(2).unwrap();
    for (k, r) in [0..5, 5..6, 6..12].into_iter().enumerate() {
        let chunk = x.slice_axis(ndarray::Axis(1), r.into()).to_owned();
        let want = plain
            .state()
            .unwrap()
            .infer_from(Inputs::new(&chunk).mask(None), &mut states)
            .map(|mut o| o.remove(0))
            .unwrap()
            .output;
        let got = stateful
            .forward(Inputs::new(&chunk).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .unwrap();
        assert!((&got - &want).iter().all(|v| v.abs() < 1e-14), "chunk {k}");
        assert_eq!(stateful.states(), states, "chunk {k}");
    }
    // Reset: back to zeros, same batch size.
    stateful.reset_states();
    assert!(
        stateful
            .states()
            .iter()
            .flatten()
            .all(|s| s.iter().all(|v| *v == 0.0))
    );
}

#[test]
fn stateful_errors_leave_the_states_as_they_were() {
    let mut m = stream_model(true);
    m.forward(Inputs::new(&series(2, 4)).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let before = m.states();
    // Another batch size: a typed error naming the carried one; nothing moves.
    let err = m
        .forward(Inputs::new(&series(3, 4)).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap_err();
    assert!(
        matches!(err, rnnkit::Error::Shape { .. })
            && err.to_string().contains("[2, steps, features]"),
        "{err}"
    );
    assert_eq!(m.states(), before);
    // A wrong feature count: refused before any layer runs.
    let bad = ndarray::Array3::<f64>::zeros((2, 4, 5)).into_dyn();
    assert!(
        m.forward(Inputs::new(&bad).mode(Mode::Infer))
            .map(|mut o| o.remove(0).output)
            .is_err()
    );
    assert_eq!(m.states(), before);
    // Explicit states of the wrong shape: refused, the given states unchanged.
    let mut wrong = m.zero_states(3).unwrap();
    let kept = wrong.clone();
    assert!(
        m.state()
            .unwrap()
            .infer_from(Inputs::new(&series(2, 4)).mask(None), &mut wrong)
            .map(|mut o| o.remove(0))
            .is_err()
    );
    assert_eq!(wrong, kept);
    let mut too_few = vec![Vec::new()];
    assert!(
        m.state()
            .unwrap()
            .infer_from(Inputs::new(&series(2, 4)).mask(None), &mut too_few)
            .map(|mut o| o.remove(0))
            .is_err()
    );
    // Forgetting the states frees the batch size.
    for layer in m.layers_mut() {
        if let Some(st) = layer.state_mut()
            && !st.states().is_empty()
        {
            st.set_states(None).unwrap();
        }
    }
    m.forward(Inputs::new(&series(3, 4)).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    // A layer that is not stateful carries nothing to set.
    let mut plain = stream_model(false);
    assert!(
        plain.layers_mut()[0]
            .state_mut()
            .unwrap()
            .set_states(None)
            .is_err()
    );
}

#[test]
fn stateful_survives_save_and_load() {
    let m = stream_model(true);
    let loaded = Sequential::<f64>::from_bytes(&m.to_bytes().unwrap()).unwrap();
    let json = serde_json::to_string(&loaded.spec().unwrap()).unwrap();
    assert_eq!(json.matches("\"stateful\":true").count(), 2, "{json}");
}

#[test]
fn step_by_step_streaming_equals_whole_passes_and_branches() {
    let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(MaskingConfig::new(-9.0))
        .unwrap()
        .push(LstmConfig::new(4).return_sequences(true))
        .unwrap()
        .push(GruConfig::new(3).return_sequences(true).reset_after(false))
        .unwrap()
        .push(SimpleRnnConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(2).activation(Activation::Softmax))
        .unwrap();
    let (b, t) = (3, 11);
    let x = series(b, t);
    let mut state = model.stream_state(b);
    let mut saved = None;
    for k in 0..t {
        let xt = x.slice(ndarray::s![.., k, ..]);
        let y = model.step(xt, &mut state).unwrap().to_owned();
        // What a whole pass over the first k + 1 steps outputs.
        let prefix = x.slice_axis(ndarray::Axis(1), (0..k + 1).into()).to_owned();
        let want = model
            .infer(Inputs::new(&prefix).mask(None))
            .map(|mut o| o.remove(0))
            .unwrap()
            .output;
        let d = (&y.into_dyn() - &want)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(d < 1e-12, "step {k}: max difference {d:e}");
        if k == 6 {
            saved = Some(state.states().to_vec());
        }
    }
    // The states equal those of the chunk API over the whole sequence.
    let mut chunked = model.zero_states(b).unwrap();
    model
        .state()
        .unwrap()
        .infer_from(Inputs::new(&x).mask(None), &mut chunked)
        .map(|mut o| o.remove(0))
        .unwrap();
    for (s, c) in state
        .states()
        .iter()
        .flatten()
        .zip(chunked.iter().flatten())
    {
        assert!((s - c).iter().all(|v| v.abs() < 1e-12));
    }
    // Resuming from saved states replays the same ending.
    let mut resumed = model.stream_state_from(saved.unwrap()).unwrap();
    let mut last = None;
    for k in 7..t {
        last = Some(
            model
                .step(x.slice(ndarray::s![.., k, ..]), &mut resumed)
                .unwrap()
                .to_owned(),
        );
    }
    let want = model
        .infer(Inputs::new(&x).mask(None))
        .map(|mut o| o.remove(0))
        .unwrap()
        .output;
    assert!(
        (&last.unwrap().into_dyn() - &want)
            .iter()
            .all(|v| v.abs() < 1e-12)
    );
}

#[test]
fn streaming_errors_are_typed_and_leave_the_state() {
    let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
        .push(LstmConfig::new(3))
        .unwrap();
    let mut state = model.stream_state(2);
    let good = ndarray::Array2::<f64>::ones((2, 2));
    model.step(good.view(), &mut state).unwrap();
    let kept = state.states().to_vec();
    let wrong_batch = ndarray::Array2::<f64>::ones((3, 2));
    assert!(matches!(
        model.step(wrong_batch.view(), &mut state),
        Err(rnnkit::Error::Shape { .. })
    ));
    let wrong_features = ndarray::Array2::<f64>::ones((2, 5));
    assert!(matches!(
        model.step(wrong_features.view(), &mut state),
        Err(rnnkit::Error::Features {
            expected: 2,
            got: 5,
            ..
        })
    ));
    assert_eq!(state.states(), &kept[..]);
    assert!(
        model
            .stream_state_from(vec![vec![ndarray::Array2::zeros((2, 3))]])
            .is_err()
    );
    let nan = ndarray::Array2::from_elem((2, 3), f64::NAN);
    assert!(matches!(
        model.stream_state_from(vec![vec![nan.clone(), nan]]),
        Err(rnnkit::Error::Data(_))
    ));
    // A Bidirectional layer cannot stream.
    let bi = stream_model(false);
    let mut st = bi.stream_state(2);
    let err = bi.step(good.view(), &mut st).unwrap_err();
    assert!(matches!(err, rnnkit::Error::Unsupported { .. }), "{err}");
}
