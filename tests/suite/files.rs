//! One way to files: every model type saves through `Save`, loads through `Load`, opens as
//! an `AnyModel` that says what it holds, and is described by `FileInfo`; checkpoints of
//! every trainable model type resume through the one `Trainer::resume`; files written by 0.1
//! open the same way.

use crate::common;

use common::{close, join_file, split_file, tensor};
use ndarray::{Array2, Array3, ArrayD};
use rnnkit::io::{AnyModel, FileInfo};
use rnnkit::model::Architecture;
use rnnkit::prelude::*;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn sequential() -> Sequential<f64> {
    Sequential::<f64>::new(&[4, 2])
        .seed(5)
        .push(LstmConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap()
}

fn functional() -> Functional<f64> {
    let mut g = Graph::<f64>::new(7);
    let x = g.input("x", &[Some(4), Some(2)]).unwrap();
    let h = g.apply(&GruConfig::new(3), x).unwrap();
    let y = g.apply(&DenseConfig::new(2), h).unwrap();
    g.build(&[x], &[y]).unwrap()
}

fn esn() -> EchoStateNetwork<f64> {
    let s = Array2::from_shape_fn((120, 2), |(t, j)| ((t + j) as f64 * 0.2).sin());
    let mut esn = EsnConfig::new(12)
        .density(0.5)
        .washout(10)
        .build::<f64>(2)
        .unwrap();
    esn.fit(&s, &s.mapv(|v| 0.5 * v)).unwrap();
    esn
}

fn batch() -> ArrayD<f64> {
    Array3::from_shape_fn((3, 4, 2), |(b, t, f)| {
        ((b * 5 + t * 2 + f) as f64 * 0.31).cos()
    })
    .into_dyn()
}

/// Predictions of any model on the shared batch.
fn predict(m: &dyn Model<f64>) -> ArrayD<f64> {
    m.predict(Inputs::new(&batch()), 8).unwrap().remove(0)
}

#[test]
fn one_call_opens_every_model_type_and_says_what_it_holds() {
    let cases: Vec<(Box<dyn Model<f64>>, Vec<u8>)> = vec![
        (Box::new(sequential()), sequential().to_bytes().unwrap()),
        (Box::new(functional()), functional().to_bytes().unwrap()),
        (Box::new(esn()), esn().to_bytes().unwrap()),
    ];
    for (model, bytes) in cases {
        let want = model.architecture().unwrap();
        let info = FileInfo::from_bytes(&bytes).unwrap();
        assert_eq!(info.architecture, want);
        assert_eq!(info.dtype, "F64");
        let any = AnyModel::<f64>::from_bytes(&bytes).unwrap();
        let kind = match &any {
            AnyModel::Sequential(_) => "Sequential",
            AnyModel::Functional(_) => "Functional",
            AnyModel::EchoStateNetwork(_) => "EchoStateNetwork",
            _ => unreachable!("no other model type"),
        };
        assert_eq!(kind, want.model_type());
        assert_eq!(any.architecture().unwrap(), want);
        assert_eq!(predict(&any), predict(model.as_ref()), "{kind}");
        assert_eq!(any.summary().to_string(), model.summary().to_string());
        // An AnyModel saves what it holds, byte for byte.
        assert_eq!(any.to_bytes().unwrap(), bytes, "{kind}");
        // And the same bytes open as f32, each model type alike.
        let narrow = AnyModel::<f32>::from_bytes(&bytes).unwrap();
        assert_eq!(narrow.architecture().unwrap().model_type(), kind);
    }
}

#[test]
fn each_typed_loader_names_the_type_a_file_holds() {
    let files = [
        ("Sequential", sequential().to_bytes().unwrap()),
        ("Functional", functional().to_bytes().unwrap()),
        ("EchoStateNetwork", esn().to_bytes().unwrap()),
    ];
    for (kind, bytes) in &files {
        let results = [
            ("Sequential", Sequential::<f64>::from_bytes(bytes).map(drop)),
            ("Functional", Functional::<f64>::from_bytes(bytes).map(drop)),
            (
                "EchoStateNetwork",
                EchoStateNetwork::<f64>::from_bytes(bytes).map(drop),
            ),
        ];
        for (loader, r) in results {
            if loader == *kind {
                assert!(r.is_ok(), "{loader} on its own file: {r:?}");
            } else {
                let e = r.unwrap_err().to_string();
                assert!(
                    e.contains(&format!("holds a {kind} model")) && e.contains("AnyModel::load"),
                    "{loader} on a {kind} file: {e}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_model_type_is_named() {
    let (mut header, body) = split_file(&sequential().to_bytes().unwrap());
    header["__metadata__"]["model_type"] = "Transformer".into();
    let bytes = join_file(&header, &body);
    for e in [
        FileInfo::from_bytes(&bytes).unwrap_err(),
        AnyModel::<f64>::from_bytes(&bytes).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains("\"Transformer\"") && e.contains("model_type"),
            "{e}"
        );
    }
}

#[test]
fn files_written_by_0_1_open_through_the_one_call() {
    // The frozen format-v1 Sequential file and the Keras export of a graph model.
    let seq = Sequential::<f64>::load(data("format_v1_model.safetensors")).unwrap();
    let any = AnyModel::<f64>::load(data("format_v1_model.safetensors")).unwrap();
    assert!(matches!(any, AnyModel::Sequential(_)));
    let x = Array3::from_shape_fn((2, 5, 3), |(b, t, f)| ((b + 2 * t + f) as f64 * 0.2).sin())
        .into_dyn();
    let want = seq.predict(Inputs::new(&x), 8).unwrap();
    assert_eq!(any.predict(Inputs::new(&x), 8).unwrap(), want);
    assert_eq!(any.get_weights(), seq.get_weights());
    let info = FileInfo::read(data("format_v1_model.safetensors")).unwrap();
    assert_eq!(info.architecture.model_type(), "Sequential");

    let graph = data("keras_export_graph.safetensors");
    let typed = Functional::<f64>::load(&graph).unwrap();
    let any = AnyModel::<f64>::load(&graph).unwrap();
    assert!(matches!(any, AnyModel::Functional(_)));
    assert_eq!(any.get_weights(), typed.get_weights());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("keras_export_graph.json")).unwrap())
            .unwrap();
    let xs: Vec<ArrayD<f64>> = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    let out = any.predict(Inputs::from(&xs), 32).unwrap();
    for (o, want) in out.iter().zip(doc["outputs"].as_array().unwrap()) {
        close(o, &tensor(want), 1e-5, 1e-6).unwrap();
    }
    assert!(matches!(
        FileInfo::read(&graph).unwrap().architecture,
        Architecture::Graph(_)
    ));
}

#[test]
fn checkpoints_of_every_trainable_model_type_share_the_file_code() {
    let dir = std::env::temp_dir().join(format!("rnnkit-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = batch();
    let y = Array2::from_shape_fn((3, 2), |(i, j)| 0.1 * (i + j) as f64).into_dyn();
    let models: Vec<Box<dyn Model<f64>>> = vec![Box::new(sequential()), Box::new(functional())];
    for (k, mut model) in models.into_iter().enumerate() {
        let path = dir.join(format!("ckpt-{k}.safetensors"));
        let mut t = Trainer::new(Adam::default(), Loss::Mse)
            .epochs(2)
            .batch_size(2);
        t.fit(model.as_mut(), (&x, &y)).unwrap();
        t.save_checkpoint(model.as_ref(), &path).unwrap();
        let kind = model.architecture().unwrap().model_type();
        // The header says what it holds and that it is a checkpoint.
        let info = FileInfo::read(&path).unwrap();
        assert_eq!(info.architecture.model_type(), kind);
        assert_eq!(info.checkpoint.as_ref().map(|c| c.epoch), Some(2));
        // Every loader opens a checkpoint as its model.
        let any = AnyModel::<f64>::load(&path).unwrap();
        assert_eq!(any.get_weights(), model.get_weights());
        // The one resume continues bit for bit, whichever the model type.
        let mut again = Trainer::new(Adam::default(), Loss::Mse)
            .epochs(2)
            .batch_size(2);
        let mut resumed = again.resume(&path).unwrap();
        assert_eq!(resumed.architecture().unwrap().model_type(), kind);
        again.fit(&mut resumed, (&x, &y)).unwrap();
        t.fit(model.as_mut(), (&x, &y)).unwrap();
        assert_eq!(resumed.get_weights(), model.get_weights(), "{kind}");
    }
    // An echo state network is fitted in one solve: no checkpoint, a named refusal.
    let e = Trainer::new(Adam::default(), Loss::Mse)
        .save_checkpoint(&esn(), dir.join("esn.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("echo state network"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
