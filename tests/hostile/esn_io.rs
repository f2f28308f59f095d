//! Echo state networks in model files: round trips, and a loader as strict as the
//! `Sequential` one (damaged, tampered or foreign files are typed errors, never panics).

use crate::common;

use common::{join_file, split_file};
use ndarray::{Array1, Array2};
use rnnkit::prelude::*;
use rnnkit::{EchoStateNetwork, EsnConfig, FileError};
use serde_json::Value;

fn series() -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((120, 2), |(t, f)| ((t * (f + 1)) as f64 * 0.1).sin());
    let y = Array2::from_shape_fn((120, 3), |(t, o)| ((t + o) as f64 * 0.07).cos());
    (x, y)
}

fn fitted() -> EchoStateNetwork<f64> {
    let (x, y) = series();
    let mut esn = EsnConfig::new(16)
        .density(0.3)
        .leak_rate(0.6)
        .washout(10)
        .seed(3)
        .name("esn")
        .build::<f64>(2)
        .unwrap();
    esn.fit(&x, &y).unwrap();
    esn
}

fn edited(f: impl FnOnce(&mut Value, &mut Vec<u8>)) -> Vec<u8> {
    let (mut h, mut d) = split_file(&fitted().to_bytes().unwrap());
    f(&mut h, &mut d);
    join_file(&h, &d)
}

fn load_err(bytes: &[u8]) -> FileError {
    match EchoStateNetwork::<f64>::from_bytes(bytes) {
        Err(Error::File { error, .. }) => error,
        Ok(_) => panic!("loaded a damaged file"),
        Err(other) => panic!("expected Error::File, got {other:?}"),
    }
}

#[test]
fn a_saved_network_predicts_the_same_after_loading() {
    let (x, _) = series();
    let mut esn = fitted();
    let path = std::env::temp_dir().join(format!("rnnkit-esn-{}.safetensors", std::process::id()));
    esn.save(&path).unwrap();
    let mut loaded = EchoStateNetwork::<f64>::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded.config(), esn.config());
    assert_eq!(loaded.reservoir(), esn.reservoir());
    assert_eq!(loaded.reservoir_state(), esn.reservoir_state());
    // The state is saved too: the loaded network continues the series exactly.
    assert_eq!(loaded.run(&x).unwrap(), esn.run(&x).unwrap());

    // f32, and an unfitted network (no readout in the file).
    let net = EsnConfig::new(8).density(0.5).build::<f32>(1).unwrap();
    let back = EchoStateNetwork::<f32>::from_bytes(&net.to_bytes().unwrap()).unwrap();
    assert!(back.readout().is_none());
    assert_eq!(back.w_in(), net.w_in());
    // An f32 file opens as f64 exactly.
    let wide = EchoStateNetwork::<f64>::from_bytes(&net.to_bytes().unwrap()).unwrap();
    assert_eq!(wide.w_in(), &net.w_in().mapv(f64::from));
    assert_eq!(wide.reservoir(), &net.reservoir().mapv(f64::from));
}

#[test]
fn each_loader_refuses_the_others_files_by_name() {
    let esn_bytes = fitted().to_bytes().unwrap();
    match Sequential::<f64>::from_bytes(&esn_bytes) {
        Err(Error::File {
            error: FileError::Architecture(msg),
            ..
        }) => assert!(msg.contains("EchoStateNetwork::load"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let seq = Sequential::<f64>::new(&[3, 1])
        .push(GruConfig::new(2))
        .unwrap()
        .to_bytes()
        .unwrap();
    match load_err(&seq) {
        FileError::Architecture(msg) => assert!(msg.contains("Sequential::load"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tampered_files_are_typed_errors() {
    let arch = |h: &mut Value| -> Value {
        serde_json::from_str(h["__metadata__"]["architecture"].as_str().unwrap()).unwrap()
    };
    let set = |h: &mut Value, a: &Value| {
        h["__metadata__"]["architecture"] = Value::String(a.to_string());
    };
    // An option out of range.
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["config"]["spectral_radius"] = serde_json::json!(-1.0);
        set(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::Architecture(_)));
    // An unknown key.
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["config"]["sparsity"] = serde_json::json!(0.5);
        set(h, &a);
    });
    assert!(matches!(
        load_err(&b),
        FileError::Metadata {
            key: "architecture",
            ..
        }
    ));
    // More units than the file holds: refused before allocating.
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["config"]["units"] = serde_json::json!(10_000);
        set(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::TooLarge { .. }));
    // A readout of the wrong shape, a stray tensor, a missing tensor, a NaN.
    let b = edited(|h, _| h["W_out"]["shape"] = serde_json::json!([57, 1]));
    assert!(matches!(
        load_err(&b),
        FileError::Tensor { .. } | FileError::Container(_)
    ));
    let b = edited(|h, d| {
        h["extra"] = serde_json::json!({
            "dtype": "F64", "shape": [1], "data_offsets": [d.len(), d.len() + 8]
        });
        d.extend(1.0f64.to_le_bytes());
    });
    assert!(matches!(load_err(&b), FileError::UnexpectedTensor(t) if t == "extra"));
    let b = edited(|h, _| {
        let state = h.as_object_mut().unwrap().remove("state").unwrap();
        h["status"] = state;
    });
    assert!(matches!(load_err(&b), FileError::MissingTensor(t) if t == "state"));
    let b = edited(|h, d| {
        let at = h["b"]["data_offsets"][0].as_u64().unwrap() as usize;
        d[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    });
    assert!(matches!(load_err(&b), FileError::NonFinite { .. }));
}

#[test]
fn random_mutations_never_panic() {
    use ndarray_rand::rand::Rng;
    let bytes = fitted().to_bytes().unwrap();
    let mut rng = seeded_rng(7);
    let mut refused = 0;
    for round in 0..3000 {
        let mut b = bytes.clone();
        if round % 3 == 2 {
            let len = rng.random_range(0..b.len() + 16);
            b.resize(len, rng.random());
        } else {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
        }
        match EchoStateNetwork::<f64>::from_bytes(&b) {
            Ok(mut esn) => {
                let _ = esn.run(&Array2::ones((3, 2)));
                let _ = esn.generate(&Array1::ones(2), 3);
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 1500, "{refused} refused");
}
