//! Model files: round trips of every layer kind in f32 and f64, the Keras-JSON import of
//! every fixture, conversion between float types, and atomic saves.

use crate::common;

use common::*;
use ndarray::{Array3, ArrayD};
use rnnkit::io::FileInfo;
use rnnkit::prelude::*;
use rnnkit::{Error, FileError, Float, GruConfig, LstmConfig};

/// Models covering every layer type and option.
fn models<F: Float>() -> Vec<(&'static str, Sequential<F>)> {
    let mk = |shape: &[usize]| Sequential::<F>::new(shape).seed(3);
    let mut v = vec![
        (
            "simple_rnn relu, no bias, backwards, sequences + dense softmax",
            mk(&[5, 3])
                .push(
                    SimpleRnnConfig::new(4)
                        .activation(Activation::Relu)
                        .use_bias(false)
                        .go_backwards(true)
                        .return_sequences(true),
                )
                .unwrap()
                .push(DenseConfig::new(3).activation(Activation::Softmax))
                .unwrap(),
        ),
        (
            "lstm options",
            mk(&[5, 3])
                .push(
                    LstmConfig::new(6)
                        .unit_forget_bias(false)
                        .recurrent_activation(Activation::Relu)
                        .activation(Activation::Sigmoid),
                )
                .unwrap()
                .push(DenseConfig::new(2).use_bias(false))
                .unwrap(),
        ),
        (
            "gru reset_after, gru reset_before, stacked",
            mk(&[5, 3])
                .push(GruConfig::new(5).return_sequences(true))
                .unwrap()
                .push(GruConfig::new(4).reset_after(false).name("second"))
                .unwrap()
                .push(DenseConfig::new(1).activation(Activation::Tanh))
                .unwrap(),
        ),
        (
            "masking, zero_output_for_mask, open steps",
            Sequential::<F>::with_input_shape(vec![None, Some(3)])
                .push(MaskingConfig::new(0.0))
                .unwrap()
                .push(
                    LstmConfig::new(4)
                        .return_sequences(true)
                        .zero_output_for_mask(true),
                )
                .unwrap()
                .push(SimpleRnnConfig::new(3))
                .unwrap(),
        ),
    ];
    for (merge, label) in [
        (MergeMode::Concat, "bidirectional concat lstm"),
        (MergeMode::Sum, "bidirectional sum gru"),
        (MergeMode::Mul, "bidirectional mul rnn"),
        (MergeMode::Ave, "bidirectional ave gru reset_before"),
    ] {
        let m = mk(&[5, 3]).push(MaskingConfig::new(0.0)).unwrap();
        let m = match merge {
            MergeMode::Concat => m.push(
                BidirectionalConfig::new(LstmConfig::new(4).return_sequences(true))
                    .merge_mode(merge),
            ),
            MergeMode::Sum => m.push(BidirectionalConfig::new(GruConfig::new(4)).merge_mode(merge)),
            MergeMode::Mul => m.push(
                BidirectionalConfig::new(SimpleRnnConfig::new(4).go_backwards(true))
                    .merge_mode(merge)
                    .name("bi"),
            ),
            _ => m.push(
                BidirectionalConfig::new(GruConfig::new(4).reset_after(false)).merge_mode(merge),
            ),
        };
        let m = m.unwrap().push(DenseConfig::new(2)).unwrap();
        v.push((label, m));
    }
    v
}

/// A batch with padded (all-zero) steps at the end of the second sample.
fn batch<F: Float>() -> ArrayD<F> {
    Array3::from_shape_fn((3, 5, 3), |(b, t, f)| {
        if b == 1 && t >= 3 {
            F::zero()
        } else {
            F::c(((b * 7 + t * 3 + f) as f64 * 0.61).sin())
        }
    })
    .into_dyn()
}

fn bits<F: Float>(w: &[ArrayD<F>]) -> Vec<Vec<u64>> {
    w.iter()
        .map(|a| a.iter().map(|v| v.to_f64().unwrap().to_bits()).collect())
        .collect()
}

fn round_trip<F: Float>() {
    let dir = std::env::temp_dir().join(format!(
        "rnnkit-io-{}-{}",
        std::mem::size_of::<F>(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (label, model) in models::<F>() {
        let x = batch::<F>();
        let y = model
            .predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap();
        let path = dir.join("m.safetensors");
        model.save(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
        let loaded = Sequential::<F>::load(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            bits(&loaded.get_weights()),
            bits(&model.get_weights()),
            "{label}: weights"
        );
        let y2 = loaded
            .predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap();
        assert_eq!(bits(&[y2]), bits(&[y]), "{label}: predictions");
        assert_eq!(
            loaded.spec().unwrap(),
            model.spec().unwrap(),
            "{label}: spec"
        );
        assert_eq!(
            loaded.summary().to_string(),
            model.summary().to_string(),
            "{label}: summary"
        );
        // The bytes form is the same file.
        assert_eq!(
            model.to_bytes().unwrap(),
            std::fs::read(&path).unwrap(),
            "{label}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_layer_kind_round_trips_bit_for_bit_f32() {
    round_trip::<f32>();
}

#[test]
fn every_layer_kind_round_trips_bit_for_bit_f64() {
    round_trip::<f64>();
}

#[test]
fn weights_use_keras_names() {
    let (_, model) = models::<f32>().pop().unwrap();
    let info = FileInfo::from_bytes(&model.to_bytes().unwrap()).unwrap();
    let names: Vec<&str> = info.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "bidirectional/backward_gru/bias",
            "bidirectional/backward_gru/kernel",
            "bidirectional/backward_gru/recurrent_kernel",
            "bidirectional/forward_gru/bias",
            "bidirectional/forward_gru/kernel",
            "bidirectional/forward_gru/recurrent_kernel",
            "dense/bias",
            "dense/kernel",
        ]
    );
    assert_eq!(info.tensors[0].1, vec![12]); // reset_before GRU: [3u] bias
    assert_eq!(info.format_version, 1);
    assert_eq!(info.dtype, "F32");
    assert!(info.checkpoint.is_none());
}

#[test]
fn loading_the_other_float_type_converts() {
    let (_, m64) = models::<f64>().remove(1);
    let bytes = m64.to_bytes().unwrap();
    assert_eq!(FileInfo::from_bytes(&bytes).unwrap().dtype, "F64");
    let m32 = Sequential::<f32>::from_bytes(&bytes).unwrap();
    for (a, b) in m32.get_weights().iter().zip(m64.get_weights()) {
        assert_eq!(a, &b.mapv(|v| v as f32));
    }
    let y32 = m32
        .predict(Inputs::new(&batch::<f32>()), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    let y64 = m64
        .predict(Inputs::new(&batch::<f64>()), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    for (a, b) in y32.iter().zip(&y64) {
        assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
    }
    // f32 → f64 is exact.
    let back = Sequential::<f64>::from_bytes(&m32.to_bytes().unwrap()).unwrap();
    for (a, b) in back.get_weights().iter().zip(m32.get_weights()) {
        assert_eq!(a, &b.mapv(f64::from));
    }
}

#[test]
fn every_keras_fixture_survives_the_json_import_and_a_save_load() {
    run_fixtures("layer", "layer [import, save/load]", |case| {
        let text = serde_json::to_string(case).unwrap();
        let model =
            Sequential::<f64>::from_keras_json(&text).map_err(|e| format!("import: {e}"))?;
        let x: ArrayD<f64> = tensor(&case["input"]);
        let y = model
            .predict(Inputs::new(&x), 64)
            .map(|mut p| p.remove(0))
            .map_err(|e| format!("predict: {e}"))?;
        let (rtol, atol) = tolerance::<f64>();
        close(&y, &tensor(&case["output"]), rtol, atol)?;
        // The same weights as the independent fixture builder of the parity tests.
        let reference = build_model::<f64>(&case["model"], x.shape());
        if model.get_weights() != reference.get_weights() {
            return Err("weights differ from the parity tests' builder".into());
        }
        let loaded = Sequential::<f64>::from_bytes(&model.to_bytes().unwrap())
            .map_err(|e| format!("load: {e}"))?;
        if loaded
            .predict(Inputs::new(&x), 64)
            .map(|mut p| p.remove(0))
            .unwrap()
            != y
        {
            return Err("predictions changed by save/load".into());
        }
        Ok(())
    });
}

/// `tools/keras_export.py` output for a Keras model (see tests/data/README.md): the
/// safetensors file and the JSON with Keras's own predictions.
#[test]
fn a_keras_export_loads_and_predicts_as_keras() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let json = std::fs::read_to_string(dir.join("keras_export_sample.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let x: ArrayD<f32> = tensor(&doc["input"]);
    let keras: ArrayD<f32> = tensor(&doc["output"]);
    let from_file = Sequential::<f32>::load(dir.join("keras_export_sample.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"));
    let from_json = Sequential::<f32>::from_keras_json(&json).unwrap();
    assert_eq!(from_file.get_weights(), from_json.get_weights());
    let y = from_file
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))
        .unwrap();
    close(&y, &keras, 1e-4, 1e-5).unwrap();
    assert_eq!(
        from_json
            .predict(Inputs::new(&x), 32)
            .map(|mut p| p.remove(0))
            .unwrap(),
        y
    );
    let kinds: Vec<&str> = from_file.layers().iter().map(|l| l.type_name()).collect();
    assert_eq!(kinds, ["Masking", "Bidirectional", "GRU", "Dense"]);
}

/// `tools/keras_export.py` output for a Keras functional model: a seq2seq with attention,
/// return_state / initial_state, an explicit mask, a shared layer and two outputs (see
/// tests/data/README.md): its float32 weights loaded in f64, Keras's float32 predictions to
/// 1e-5 relative (float32 rounding), and rnnkit's own file round trip.
#[test]
fn a_keras_functional_export_loads_and_predicts_as_keras() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let json = std::fs::read_to_string(dir.join("keras_export_graph.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let xs: Vec<ArrayD<f64>> = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    let model = rnnkit::Functional::<f64>::load(dir.join("keras_export_graph.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = model.infer(Inputs::from(&xs)).unwrap();
    for (o, want) in out.iter().zip(doc["outputs"].as_array().unwrap()) {
        close(&o.output, &tensor(want), 1e-5, 1e-6).unwrap();
    }
    let again = rnnkit::Functional::<f64>::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(again.infer(Inputs::from(&xs)).unwrap(), out);
    let kinds: Vec<&str> = model.layers().map(|l| l.type_name()).collect();
    assert!(
        kinds.contains(&"Attention") && kinds.contains(&"Add"),
        "{kinds:?}"
    );
}

#[test]
fn from_keras_json_names_what_is_wrong() {
    let ok = r#"{"input_shape": [null, 1], "layers": [{"layer": "Dense", "config": {"units": 1},
        "weights": {"kernel": {"shape": [1, 1], "data": [2.0]}, "bias": {"shape": [1], "data": [0.5]}}}]}"#;
    assert!(Sequential::<f64>::from_keras_json(ok).is_ok());
    let err = |json: &str| match Sequential::<f64>::from_keras_json(json) {
        Err(Error::File { error, .. }) => error,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(matches!(
        err(&ok.replace("\"Dense\"", "\"Conv1D\"")),
        FileError::UnknownLayer { found, .. } if found == "Conv1D"
    ));
    assert!(matches!(
        err(&ok.replace("[2.0]", "[2.0, 3.0]")),
        FileError::Tensor { tensor, .. } if tensor == "dense/kernel"
    ));
    assert!(matches!(
        err(&ok.replace(r#""bias": {"shape": [1], "data": [0.5]}"#, r#""x": 1"#)),
        FileError::MissingTensor(t) if t == "dense/bias"
    ));
    assert!(matches!(
        err(&ok.replace(r#""units": 1"#, r#""units": 1, "dropout": 0.5"#)),
        FileError::Architecture(m) if m.contains("dropout")
    ));
    assert!(matches!(
        err(&ok.replace(r#""units": 1"#, r#""units": 4000000000"#)),
        FileError::TooLarge { .. }
    ));
    assert!(matches!(err("[1, 2"), FileError::Architecture(_)));
}

#[test]
fn save_refuses_what_load_would_refuse() {
    let (_, mut model) = models::<f32>().remove(0);
    model.visit_params_mut(&mut |_, p| {
        if let Some(v) = p.value_mut().iter_mut().next() {
            *v = f32::NAN;
        }
    });
    match model.to_bytes() {
        Err(Error::File {
            error: FileError::NonFinite {
                tensor, index: 0, ..
            },
            ..
        }) => assert!(tensor.ends_with("/kernel")),
        other => panic!("expected a non-finite error, got {other:?}"),
    }
}

#[test]
fn a_failed_save_leaves_the_previous_file_loadable() {
    let dir = std::env::temp_dir().join(format!("rnnkit-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let (_, first) = models::<f32>().remove(1);
    first.save(&path).unwrap();
    let (_, mut second) = models::<f32>().remove(2);

    // The path is a directory: refused before anything is written.
    match second.save(&dir) {
        Err(Error::Io { reason, .. }) => assert!(reason.contains("directory"), "{reason}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // A model that cannot be serialised: nothing is written, the old file stays.
    second.visit_params_mut(&mut |_, p| p.value_mut().fill(f32::INFINITY));
    assert!(second.save(&path).is_err());
    // A directory without write permission (not enforced for root, so only checked when
    // the permission actually bites).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.join("ro");
        std::fs::create_dir_all(&ro).unwrap();
        let target = ro.join("model.safetensors");
        first.save(&target).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(ro.join("probe"), b"x").is_err() {
            let (_, third) = models::<f32>().remove(0);
            assert!(matches!(third.save(&target), Err(Error::Io { .. })));
            let again = Sequential::<f32>::load(&target).unwrap();
            assert_eq!(again.get_weights(), first.get_weights());
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let loaded = Sequential::<f32>::load(&path).unwrap();
    assert_eq!(loaded.get_weights(), first.get_weights());
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn load_errors_name_the_path() {
    match Sequential::<f32>::load("/nonexistent/dir/model.safetensors") {
        Err(Error::Io { path, op, .. }) => {
            assert_eq!(
                (path.as_str(), op),
                ("/nonexistent/dir/model.safetensors", "read")
            )
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn a_saved_architecture_rebuilds_with_its_initialisation_options() {
    // Model 1 is an LSTM with unit_forget_bias(false): a fresh build keeps the bias at zero.
    let (_, model) = models::<f64>().remove(1);
    let loaded = Sequential::<f64>::from_bytes(&model.to_bytes().unwrap()).unwrap();
    let fresh = Sequential::<f64>::from_spec(&loaded.spec().unwrap(), 0).unwrap();
    let bias = &fresh.get_weights()[2];
    assert_eq!(bias.shape(), &[24]);
    assert!(bias.iter().all(|&b| b == 0.0), "{bias}");
    // The default (Keras's unit_forget_bias=True) sets the forget block to one.
    let default = Sequential::<f64>::new(&[5, 3])
        .push(LstmConfig::new(6))
        .unwrap();
    let again = Sequential::<f64>::from_spec(&default.spec().unwrap(), 0).unwrap();
    assert_eq!(
        again.get_weights()[2].iter().filter(|&&b| b == 1.0).count(),
        6
    );
}

/// The recurrent configurations became plain serde structs in 0.2 (issue #26 item 8); the
/// file format stayed: this is the architecture JSON and the config JSON the generic
/// configuration of 0.1 wrote for the same model, byte for byte (captured from commit
/// 588c05b), with every option off its default somewhere.
#[test]
fn recurrent_configs_serialise_as_0_1_did() {
    let m = Sequential::<f64>::new(&[5, 3])
        .push(MaskingConfig::new(0.0))
        .unwrap()
        .push(
            BidirectionalConfig::new(
                LstmConfig::new(4)
                    .return_sequences(true)
                    .stateful(true)
                    .dropout(0.25)
                    .seed(3),
            )
            .merge_mode(MergeMode::Sum)
            .name("enc"),
        )
        .unwrap()
        .push(
            GruConfig::new(3)
                .reset_after(false)
                .recurrent_dropout(0.5)
                .activation(Activation::Relu)
                .return_sequences(true)
                .go_backwards(true),
        )
        .unwrap()
        .push(
            SimpleRnnConfig::new(3)
                .use_bias(false)
                .zero_output_for_mask(true)
                .name("s"),
        )
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap();
    let (header, _) = split_file(&m.to_bytes().unwrap());
    assert_eq!(
        header["__metadata__"]["architecture"].as_str().unwrap(),
        r#"{"name":"sequential","input_shape":[5,3],"layers":[{"layer":"Masking","config":{"name":"masking","mask_value":0.0}},{"layer":"Bidirectional","config":{"name":"enc","merge_mode":"sum","layer":{"config":{"activation":"tanh","dropout":0.25,"go_backwards":false,"name":"lstm","recurrent_activation":"sigmoid","recurrent_dropout":0.0,"return_sequences":true,"seed":3,"stateful":true,"unit_forget_bias":true,"units":4,"use_bias":true,"zero_output_for_mask":false},"layer":"LSTM"}}},{"layer":"GRU","config":{"name":"gru","units":3,"activation":"relu","recurrent_activation":"sigmoid","use_bias":true,"return_sequences":true,"go_backwards":true,"zero_output_for_mask":false,"stateful":false,"dropout":0.0,"recurrent_dropout":0.5,"seed":null,"reset_after":false}},{"layer":"SimpleRNN","config":{"name":"s","units":3,"activation":"tanh","use_bias":false,"return_sequences":false,"go_backwards":false,"zero_output_for_mask":true,"stateful":false,"dropout":0.0,"recurrent_dropout":0.0,"seed":null}},{"layer":"Dense","config":{"name":"dense","units":2,"activation":"linear","use_bias":true}}]}"#
    );
    // Keras's `return_state: false` is read and not kept; `seed: null` is the default.
    let c: LstmConfig =
        serde_json::from_str(r#"{"units": 2, "return_state": false, "seed": null}"#).unwrap();
    assert_eq!(c, LstmConfig::new(2));
    assert_eq!(
        serde_json::to_string(&c).unwrap(),
        r#"{"units":2,"activation":"tanh","recurrent_activation":"sigmoid","use_bias":true,"return_sequences":false,"go_backwards":false,"zero_output_for_mask":false,"stateful":false,"dropout":0.0,"recurrent_dropout":0.0,"seed":null,"unit_forget_bias":true}"#
    );
    for bad in [
        r#"{"units": 2, "return_state": true}"#,
        r#"{"units": 2, "reset_after": true}"#,
        r#"{"activation": "tanh"}"#,
    ] {
        assert!(serde_json::from_str::<LstmConfig>(bad).is_err(), "{bad}");
    }
    assert!(
        serde_json::from_str::<SimpleRnnConfig>(r#"{"units": 2, "recurrent_activation": "relu"}"#)
            .is_err()
    );
}
