//! Echo state networks against the numpy reference cases (`"kind": "esn"`, schema in
//! `tests/fixtures/graph/README.md` section 6): the spectral radius and rescaling, the
//! reservoir states (1e-12 absolute), the ridge readout and its predictions (1e-8 relative to
//! the largest entry), and the test series continuing from the last training state. Also the
//! options' checks and closed-loop generation against a slow reference written here.

use crate::common;

use common::*;
use ndarray::{Array1, Array2, Ix1, Ix2, s};
use rnnkit::{EchoStateNetwork, Error, EsnConfig, reservoir::Reservoir};
use serde_json::Value;

fn t2(v: &Value) -> Array2<f64> {
    tensor::<f64>(v).into_dimensionality::<Ix2>().unwrap()
}

fn t1(v: &Value) -> Array1<f64> {
    tensor::<f64>(v).into_dimensionality::<Ix1>().unwrap()
}

/// `|a − e| ≤ rtol · max|e|`, the README's "relative to the largest entry".
fn close_to_max(what: &str, a: &Array2<f64>, e: &Array2<f64>, rtol: f64) -> Result<(), String> {
    let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    close(
        &a.clone().into_dyn(),
        &e.clone().into_dyn(),
        0.0,
        rtol * scale,
    )
    .map_err(|err| format!("{what}: {err}"))
}

fn close_abs(what: &str, a: &Array2<f64>, e: &Array2<f64>, atol: f64) -> Result<(), String> {
    close(&a.clone().into_dyn(), &e.clone().into_dyn(), 0.0, atol)
        .map_err(|err| format!("{what}: {err}"))
}

fn config_of(c: &Value) -> Result<EsnConfig, String> {
    if c["activation"] != "tanh" {
        return Err(format!("activation {} not supported", c["activation"]));
    }
    if c["features"] != serde_json::json!(["bias", "input", "state"]) {
        return Err(format!("features {} not supported", c["features"]));
    }
    Ok(EsnConfig::new(c["units"].as_u64().ok_or("units")? as usize)
        .spectral_radius(c["spectral_radius"].as_f64().ok_or("spectral_radius")?)
        .leak_rate(c["leak_rate"].as_f64().ok_or("leak_rate")?)
        .washout(c["washout"].as_u64().ok_or("washout")? as usize)
        .ridge(c["ridge_lambda"].as_f64().ok_or("ridge_lambda")?)
        // The fixtures' weights are dense and unscaled: the options only the random
        // reservoir uses do not matter here.
        .density(1.0))
}

fn check_case(case: &Value) -> Result<(), String> {
    let config = config_of(&case["config"])?;
    let w = &case["weights"];
    let (w_in, w_raw, w_scaled, b) = (t2(&w["W_in"]), t2(&w["W_raw"]), t2(&w["W"]), t1(&w["b"]));

    // Our spectral radius and rescaling against numpy's.
    let ours = EchoStateNetwork::<f64>::from_weights(
        config.clone(),
        w_in.clone(),
        Reservoir::Raw(w_raw),
        b.clone(),
    )
    .map_err(|e| e.to_string())?;
    let expected_radius = case["raw_spectral_radius"]
        .as_f64()
        .ok_or("raw_spectral_radius")?;
    let got_radius = ours.raw_spectral_radius().ok_or("no raw radius")?;
    if (got_radius - expected_radius).abs() > 1e-12 * expected_radius {
        return Err(format!(
            "raw spectral radius {got_radius:e}, expected {expected_radius:e}"
        ));
    }
    close_to_max("rescaled W", ours.reservoir(), &w_scaled, 1e-12)?;

    // The dynamics with the stored W, as the README says; and with ours, which must agree.
    let mut esn =
        EchoStateNetwork::<f64>::from_weights(config, w_in, Reservoir::Scaled(w_scaled), b)
            .map_err(|e| e.to_string())?;
    let (x, y) = (t2(&case["train_input"]), t2(&case["train_target"]));
    let zero = Array1::zeros(esn.units());
    let states = esn.states_from(&x, &zero).map_err(|e| e.to_string())?;
    close_abs("states", &states, &t2(&case["states"]), 1e-12)?;
    let own_states = ours.states_from(&x, &zero).map_err(|e| e.to_string())?;
    close_abs(
        "states with our rescaling",
        &own_states,
        &t2(&case["states"]),
        1e-12,
    )?;

    let fitted = esn.fit(&x, &y).map_err(|e| e.to_string())?;
    close_to_max("W_out", esn.readout().unwrap(), &t2(&case["W_out"]), 1e-8)?;
    close_to_max(
        "train_prediction",
        &fitted,
        &t2(&case["train_prediction"]),
        1e-8,
    )?;
    if esn.reservoir_state() != states.row(states.nrows() - 1) {
        return Err("fit did not leave the last training state".into());
    }

    // The test series continues from the last training state.
    let xt = t2(&case["test_input"]);
    let test_states = esn
        .states_from(&xt, esn.reservoir_state())
        .map_err(|e| e.to_string())?;
    close_abs(
        "test_states",
        &test_states,
        &t2(&case["test_states"]),
        1e-12,
    )?;
    let shared = esn
        .run_from(&xt, esn.reservoir_state())
        .map_err(|e| e.to_string())?
        .0;
    let pred = esn.run(&xt).map_err(|e| e.to_string())?;
    close_to_max(
        "test_prediction",
        &pred,
        &t2(&case["test_prediction"]),
        1e-8,
    )?;
    if shared != pred {
        return Err("run_from and predict differ".into());
    }
    Ok(())
}

#[test]
fn esn_fixtures() {
    run_fixtures("esn", "esn", check_case);
}

/// A slow reference: the update written out per unit with explicit sums.
fn reference_step(esn: &EchoStateNetwork<f64>, x: &[f64], h: &[f64]) -> Vec<f64> {
    let (n, a) = (esn.units(), esn.config().clone());
    let leak = serde_json::to_value(&a).unwrap()["leak_rate"]
        .as_f64()
        .unwrap();
    (0..n)
        .map(|j| {
            let mut z = esn.bias()[j];
            for (i, xi) in x.iter().enumerate() {
                z += xi * esn.w_in()[[i, j]];
            }
            for (i, hi) in h.iter().enumerate() {
                z += hi * esn.reservoir()[[i, j]];
            }
            (1.0 - leak) * h[j] + leak * z.tanh()
        })
        .collect()
}

#[test]
fn closed_loop_generation_feeds_each_output_back() {
    let s = Array2::from_shape_fn((400, 1), |(t, _)| (t as f64 * 0.2).sin());
    let (x, y) = (
        s.slice(s![..399, ..]).to_owned(),
        s.slice(s![1.., ..]).to_owned(),
    );
    let mut esn = EsnConfig::new(30)
        .spectral_radius(0.95)
        .leak_rate(0.5)
        .washout(50)
        .seed(4)
        .build::<f64>(1)
        .unwrap();
    esn.fit(&x, &y).unwrap();
    let start = esn.reservoir_state().clone();
    let first = Array1::from_elem(1, y[[398, 0]]);
    let generated = esn.generate(&first, 20).unwrap();

    // The same by hand: state update, readout [1, x, h], output becomes the next input.
    let w_out = esn.readout().unwrap().clone();
    let (mut h, mut xin) = (start.to_vec(), vec![first[0]]);
    for k in 0..20 {
        h = reference_step(&esn, &xin, &h);
        let mut out = w_out[[0, 0]] + xin[0] * w_out[[1, 0]];
        for (j, hj) in h.iter().enumerate() {
            out += hj * w_out[[2 + j, 0]];
        }
        assert!((generated[[k, 0]] - out).abs() < 1e-12, "step {k}");
        xin = vec![out];
    }
    assert!(
        esn.reservoir_state()
            .iter()
            .zip(&h)
            .all(|(a, b)| (a - b).abs() < 1e-12)
    );
    // And it forecasts the sine.
    let truth = Array2::from_shape_fn((20, 1), |(k, _)| ((400 + k) as f64 * 0.2).sin());
    let err = (&generated - &truth)
        .mapv(f64::abs)
        .fold(0.0f64, |m, &v| m.max(v));
    assert!(err < 0.05, "closed-loop error {err}");
}

#[test]
fn a_seeded_reservoir_has_the_asked_spectral_radius_and_repeats() {
    for (units, density) in [(40, 0.1), (100, 0.05), (7, 1.0)] {
        let c = EsnConfig::new(units)
            .spectral_radius(1.25)
            .density(density)
            .seed(11);
        let a = c.build::<f64>(2).unwrap();
        assert!((a.spectral_radius().unwrap() - 1.25).abs() < 1e-10);
        let b = c.build::<f64>(2).unwrap();
        assert_eq!(a.reservoir(), b.reservoir());
        assert_eq!(a.w_in(), b.w_in());
        let f32_net = c.build::<f32>(2).unwrap();
        assert!((f32_net.spectral_radius().unwrap() - 1.25).abs() < 1e-5);
    }
}

#[test]
fn bad_options_and_data_are_typed_errors_before_allocating() {
    let field = |r: Result<EchoStateNetwork<f64>, Error>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected a Config error, got {other:?}"),
    };
    for rho in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            field(EsnConfig::new(10).spectral_radius(rho).build(1)),
            "spectral_radius"
        );
    }
    for d in [0.0, 1.5, f64::NAN] {
        assert_eq!(field(EsnConfig::new(10).density(d).build(1)), "density");
    }
    for a in [0.0, 1.01, -0.5, f64::NAN] {
        assert_eq!(field(EsnConfig::new(10).leak_rate(a).build(1)), "leak_rate");
    }
    assert_eq!(field(EsnConfig::new(10).ridge(-1e-3).build(1)), "ridge");
    assert_eq!(
        field(EsnConfig::new(10).input_scaling(f64::NAN).build(1)),
        "input_scaling"
    );
    assert_eq!(field(EsnConfig::new(0).build(1)), "units");
    // Too large for memory: refused before the N×N matrix is allocated.
    assert_eq!(field(EsnConfig::new(1 << 20).build(1)), "units");
    assert_eq!(field(EsnConfig::new(usize::MAX).build(1)), "units");
    assert_eq!(field(EsnConfig::new(10).build(0)), "input_dim");
    // Too sparse to have a spectral radius.
    assert_eq!(field(EsnConfig::new(3).density(1e-9).build(1)), "density");

    let mut esn = EsnConfig::new(10)
        .density(0.5)
        .washout(5)
        .build::<f64>(2)
        .unwrap();
    let x = Array2::<f64>::zeros((5, 2));
    let y = Array2::<f64>::zeros((5, 1));
    assert!(matches!(
        esn.fit(&x, &y),
        Err(Error::Config {
            field: "washout",
            ..
        })
    ));
    assert!(matches!(esn.run(&x), Err(Error::NotFitted { .. })));
    let x = Array2::<f64>::zeros((8, 3));
    assert!(matches!(
        esn.fit(&x, &Array2::zeros((8, 1))),
        Err(Error::Features {
            expected: 2,
            got: 3,
            ..
        })
    ));
    let x = Array2::<f64>::zeros((8, 2));
    assert!(matches!(
        esn.fit(&x, &Array2::zeros((7, 1))),
        Err(Error::Shape { .. })
    ));
    let mut bad = Array2::<f64>::zeros((8, 2));
    bad[[3, 1]] = f64::NAN;
    assert!(matches!(
        esn.fit(&bad, &Array2::zeros((8, 1))),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        esn.set_reservoir_state(&Array1::zeros(4)),
        Err(Error::Shape { .. })
    ));
    // Nothing changed by the failed calls.
    assert!(esn.readout().is_none());
    assert!(esn.reservoir_state().iter().all(|v| *v == 0.0));
    // Generation needs as many outputs as inputs.
    esn.fit(
        &Array2::from_shape_fn((30, 2), |(t, f)| ((t + f) as f64).sin()),
        &Array2::zeros((30, 1)),
    )
    .unwrap();
    assert!(matches!(
        esn.generate(&Array1::zeros(2), 3),
        Err(Error::Config {
            field: "output_dim",
            ..
        })
    ));
}

#[test]
fn the_network_is_a_model_for_prediction_and_evaluation() {
    use rnnkit::prelude::*;
    let s = Array2::from_shape_fn((300, 1), |(t, _)| (t as f64 * 0.1).sin());
    let mut esn = EsnConfig::new(20)
        .density(0.4)
        .washout(20)
        .build::<f64>(1)
        .unwrap();
    esn.fit(
        &s.slice(s![..299, ..]).to_owned(),
        &s.slice(s![1.., ..]).to_owned(),
    )
    .unwrap();
    let batch =
        ndarray::Array3::from_shape_fn((3, 40, 1), |(i, t, _)| ((i * 11 + t) as f64 * 0.1).sin())
            .into_dyn();
    let y = esn
        .predict(Inputs::new(&batch), 2)
        .map(|mut p| p.remove(0))
        .unwrap();
    // Each sequence from a zero state, as run_from.
    let zero = Array1::zeros(20);
    for i in 0..3 {
        let seq = batch
            .index_axis(ndarray::Axis(0), i)
            .into_dimensionality::<Ix2>()
            .unwrap()
            .to_owned();
        let (alone, _) = esn.run_from(&seq, &zero).unwrap();
        assert_eq!(y.index_axis(ndarray::Axis(0), i), alone.into_dyn());
    }
    // Evaluation works; gradient training is refused by name, and changes nothing.
    let target = y.clone();
    let mut t = Trainer::new(Adam::default(), Loss::Mse);
    assert_eq!(t.evaluate(&esn, (&batch, &target)).unwrap()["loss"], 0.0);
    let before = esn.readout().unwrap().clone();
    assert!(matches!(
        t.fit(&mut esn, (&batch, &target)),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(esn.readout().unwrap(), &before);
    assert!(matches!(
        esn.predict(
            Inputs::new(&ndarray::ArrayD::zeros(ndarray::IxDyn(&[3, 2]))),
            32
        )
        .map(|mut p| p.remove(0)),
        Err(Error::Shape { .. })
    ));
}
