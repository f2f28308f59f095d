//! The loader against hostile bytes: every kind of damage is a typed error, and no byte
//! string makes it panic.

use crate::common;

use common::{join_file, split_file};
use rnnkit::prelude::*;
use rnnkit::{Error, FileError, GruConfig, LstmConfig};
use serde_json::{Value, json};

/// A small model with every kind of tensor layout: Masking, Bidirectional LSTM, GRU, Dense.
fn sample() -> Vec<u8> {
    Sequential::<f32>::new(&[4, 2])
        .push(MaskingConfig::new(0.0))
        .unwrap()
        .push(BidirectionalConfig::new(
            LstmConfig::new(3).return_sequences(true),
        ))
        .unwrap()
        .push(GruConfig::new(2))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// The sample with its header edited.
fn edited(f: impl FnOnce(&mut Value, &mut Vec<u8>)) -> Vec<u8> {
    let (mut h, mut d) = split_file(&sample());
    f(&mut h, &mut d);
    join_file(&h, &d)
}

fn arch(h: &mut Value) -> Value {
    serde_json::from_str(h["__metadata__"]["architecture"].as_str().unwrap()).unwrap()
}

fn set_arch(h: &mut Value, a: &Value) {
    h["__metadata__"]["architecture"] = Value::String(a.to_string());
}

fn load_err(bytes: &[u8]) -> FileError {
    match Sequential::<f32>::from_bytes(bytes) {
        Err(Error::File { error, path }) => {
            assert_eq!(path, "<bytes>");
            error
        }
        Ok(_) => panic!("loaded a damaged file"),
        Err(other) => panic!("expected Error::File, got {other:?}"),
    }
}

#[test]
fn the_sample_loads() {
    let m = Sequential::<f32>::from_bytes(&sample()).unwrap();
    assert_eq!(m.layers().len(), 4);
}

#[test]
fn truncation_at_every_boundary_is_a_container_error() {
    let bytes = sample();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, _) = split_file(&bytes);
    let mut cuts: Vec<usize> = (0..=9).collect(); // inside and just past the length prefix
    cuts.extend([8 + n / 2, 8 + n - 1, 8 + n]); // inside and at the end of the header
    for (name, info) in header.as_object().unwrap() {
        if name != "__metadata__" {
            let [s, e] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
            cuts.extend([8 + n + s + 1, 8 + n + e - 1]); // inside every tensor
        }
    }
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        let e = load_err(&bytes[..cut]);
        assert!(matches!(e, FileError::Container(_)), "cut at {cut}: {e:?}");
    }
}

#[test]
fn header_length_past_the_end_and_absurd() {
    let mut b = sample();
    let len = b.len() as u64;
    b[..8].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(load_err(&b), FileError::Container(_)));
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(load_err(&b), FileError::Container(_)));
    assert!(matches!(load_err(b"not a model"), FileError::Container(_)));
    assert!(matches!(load_err(&[]), FileError::Container(_)));
}

#[test]
fn flipped_header_bytes_are_errors() {
    let bytes = sample();
    let original = Sequential::<f32>::from_bytes(&bytes).unwrap().get_weights();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (mut loaded, mut flips) = (Vec::new(), 0);
    for i in (8..8 + n).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        flips += 1;
        // Either an error, or a flip of no consequence (inside a free-text value such as
        // `rnnkit_version`): then the very same weights load.
        if let Ok(m) = Sequential::<f32>::from_bytes(&b) {
            assert_eq!(
                m.get_weights(),
                original,
                "flip at byte {i} changed the weights"
            );
            loaded.push(String::from_utf8_lossy(&bytes[i.saturating_sub(12)..i + 4]).into_owned());
        }
    }
    // Measured: 5 of 268 load (flips in the model's or the masking layer's name, or in the
    // optional `rnnkit_version` entry).
    assert!(
        loaded.len() * 20 < flips,
        "{} of {flips} flips loaded: {loaded:?}",
        loaded.len()
    );
    // A flip in the JSON syntax is a container error.
    let mut b = bytes.clone();
    b[8] = b'[';
    assert!(matches!(load_err(&b), FileError::Container(_)));
}

#[test]
fn overlapping_and_out_of_range_offsets() {
    let b = edited(|h, _| {
        h["dense/bias"]["data_offsets"] = json!([0, 4]);
    });
    assert!(matches!(load_err(&b), FileError::Container(_)));
    let b = edited(|h, d| {
        let end = d.len() as u64;
        h["dense/bias"]["data_offsets"] = json!([end, end + 4]);
    });
    assert!(matches!(load_err(&b), FileError::Container(_)));
}

#[test]
fn not_an_rnnkit_file() {
    let b = edited(|h, _| {
        h.as_object_mut().unwrap().remove("__metadata__");
    });
    assert!(matches!(load_err(&b), FileError::NotRnnkit(_)));
    let b = edited(|h, _| h["__metadata__"]["format"] = json!("pt"));
    assert!(matches!(load_err(&b), FileError::NotRnnkit(m) if m.contains("\"pt\"")));
}

#[test]
fn a_newer_format_version() {
    let b = edited(|h, _| h["__metadata__"]["format_version"] = json!("2"));
    assert_eq!(
        load_err(&b),
        FileError::Version {
            found: 2,
            supported: 1
        }
    );
    let b = edited(|h, _| h["__metadata__"]["format_version"] = json!("one"));
    assert!(matches!(
        load_err(&b),
        FileError::Metadata {
            key: "format_version",
            ..
        }
    ));
    let b = edited(|h, _| h["__metadata__"]["dtype"] = json!("BF16"));
    assert!(matches!(
        load_err(&b),
        FileError::Metadata { key: "dtype", .. }
    ));
    let b = edited(|h, _| {
        h["__metadata__"]
            .as_object_mut()
            .unwrap()
            .remove("architecture");
    });
    assert!(matches!(
        load_err(&b),
        FileError::Metadata {
            key: "architecture",
            ..
        }
    ));
}

#[test]
fn unknown_layer_types_and_options() {
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][2]["layer"] = json!("Conv1D");
        set_arch(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::UnknownLayer { found, .. } if found == "Conv1D"));
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][1]["config"]["layer"]["layer"] = json!("Transformer");
        set_arch(h, &a);
    });
    assert!(
        matches!(load_err(&b), FileError::UnknownLayer { found, .. } if found == "Transformer")
    );
    // A known layer that Bidirectional cannot wrap.
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][1]["config"]["layer"]["layer"] = json!("Attention");
        set_arch(h, &a);
    });
    let e = load_err(&b);
    assert!(
        matches!(&e, FileError::Architecture(m) if m.contains("Attention")),
        "{e:?}"
    );
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][2]["config"]["unroll"] = json!(true);
        set_arch(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::Architecture(m) if m.contains("unroll")));
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][3]["config"]["units"] = json!(0);
        set_arch(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::Architecture(m) if m.contains("units")));
    let b = edited(|h, _| h["__metadata__"]["architecture"] = json!("{\"layers\": 3"));
    assert!(matches!(load_err(&b), FileError::Architecture(_)));
}

#[test]
fn shapes_that_disagree_with_the_architecture() {
    // Dense kernel [2, 1] stored as [1, 2]: same bytes, swapped shape.
    let b = edited(|h, _| h["dense/kernel"]["shape"] = json!([1, 2]));
    assert_eq!(
        load_err(&b),
        FileError::Tensor {
            tensor: "dense/kernel".into(),
            expected: "shape [2, 1]".into(),
            found: "shape [1, 2]".into(),
        }
    );
    // The architecture says more units than the weights have.
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][3]["config"]["units"] = json!(2);
        set_arch(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::Tensor { tensor, .. } if tensor == "dense/kernel"));
    // A tensor of the other dtype.
    let b = edited(|h, _| h["dense/bias"]["dtype"] = json!("I32"));
    assert!(matches!(load_err(&b), FileError::Tensor { tensor, .. } if tensor == "dense/bias"));
}

#[test]
fn missing_and_unexpected_tensors() {
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["layers"][3]["config"]["use_bias"] = json!(false);
        set_arch(h, &a);
    });
    assert_eq!(
        load_err(&b),
        FileError::UnexpectedTensor("dense/bias".into())
    );
    let b = edited(|h, _| {
        let t = h.as_object_mut().unwrap().remove("gru/bias").unwrap();
        h["gru/bias_renamed"] = t;
    });
    assert_eq!(load_err(&b), FileError::MissingTensor("gru/bias".into()));
}

#[test]
fn non_finite_weights() {
    let b = edited(|h, d| {
        let s = h["dense/kernel"]["data_offsets"][0].as_u64().unwrap() as usize;
        d[s + 4..s + 8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(matches!(
        load_err(&b),
        FileError::NonFinite { tensor, index: 1, .. } if tensor == "dense/kernel"
    ));
    let b = edited(|h, d| {
        let s = h["gru/recurrent_kernel"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize;
        d[s..s + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    });
    assert!(matches!(
        load_err(&b),
        FileError::NonFinite { index: 0, .. }
    ));
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    for units in [1u64 << 20, 1 << 31, u64::MAX / 2] {
        let b = edited(|h, _| {
            let mut a = arch(h);
            a["layers"][2]["config"]["units"] = json!(units);
            set_arch(h, &a);
        });
        assert!(
            matches!(load_err(&b), FileError::TooLarge { ref layer, .. } if layer == "gru"),
            "units {units}"
        );
    }
    let b = edited(|h, _| {
        let mut a = arch(h);
        a["input_shape"] = json!([4, 1u64 << 40]);
        set_arch(h, &a);
    });
    assert!(matches!(load_err(&b), FileError::TooLarge { .. }));
}

/// Thousands of random mutations of a valid file: load returns, never panics.
#[test]
fn random_mutations_never_panic() {
    use rnnkit::seeded_rng;
    let bytes = sample();
    let mut rng = seeded_rng(42);
    let (mut ok, mut err) = (0, 0);
    for round in 0..4000 {
        let b = mutate(&bytes, round, &mut rng);
        match Sequential::<f32>::from_bytes(&b) {
            Ok(m) => {
                ok += 1;
                // What loads also runs: a mutated weight changes numbers, never panics.
                let x = ndarray::Array3::<f32>::ones((2, 4, 2)).into_dyn();
                let _ = m.predict(Inputs::new(&x), 32).map(|mut p| p.remove(0));
            }
            Err(_) => err += 1,
        }
        let _ = Sequential::<f64>::from_bytes(&b);
        let _ = AnyModel::<f32>::from_bytes(&b);
        let _ = rnnkit::io::FileInfo::from_bytes(&b);
    }
    assert!(err > 3000, "{ok} loaded, {err} refused");
}

/// One random mutation of `bytes`: a few random bytes, a JSON-significant character in the
/// header, or a truncation or extension.
fn mutate(bytes: &[u8], round: usize, rng: &mut rnnkit::init::StdRng) -> Vec<u8> {
    use ndarray_rand::rand::Rng;
    let mut b = bytes.to_vec();
    match round % 4 {
        0 | 1 => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
        }
        2 => {
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let i = rng.random_range(8..8 + n);
            let chars = b"{}[]\",:0123456789-e.";
            b[i] = chars[rng.random_range(0..chars.len())];
        }
        _ => {
            let len = rng.random_range(0..b.len() + 16);
            b.resize(len, rng.random());
        }
    }
    b
}

/// A graph model with every kind of node: Embedding(mask_zero), an encoder LSTM whose
/// states start a decoder, Attention, RepeatVector, a merge and two outputs.
fn graph_sample() -> Functional<f32> {
    let mut g = Graph::<f32>::new(3);
    let ids = g.input("ids", &[Some(5)]).unwrap();
    let dec_in = g.input("dec_in", &[Some(3), Some(2)]).unwrap();
    let e = g
        .apply(&rnnkit::EmbeddingConfig::new(7, 3).mask_zero(true), ids)
        .unwrap();
    let enc = g
        .rnn(&LstmConfig::new(4).return_sequences(true), e)
        .call()
        .unwrap();
    let dec = g
        .rnn(&LstmConfig::new(4).return_sequences(true), dec_in)
        .initial_state(&enc.states)
        .call()
        .unwrap();
    let ctx = g
        .apply_list(&rnnkit::AttentionConfig::new(), &[dec.out, enc.out])
        .unwrap();
    let both = g
        .apply_list(&ConcatenateConfig::new(), &[dec.out, ctx])
        .unwrap();
    let y = g.apply(&DenseConfig::new(2), both).unwrap();
    let last = g.apply(&GruConfig::new(2), e).unwrap();
    let rep = g.apply(&rnnkit::RepeatVectorConfig::new(3), last).unwrap();
    g.build(&[ids, dec_in], &[y, rep]).unwrap()
}

/// Thousands of random mutations of a graph model file: load returns, never panics, and
/// what loads also runs.
#[test]
fn random_mutations_of_a_graph_file_never_panic() {
    let bytes = graph_sample().to_bytes().unwrap();
    assert!(Functional::<f32>::from_bytes(&bytes).is_ok());
    let mut rng = rnnkit::seeded_rng(43);
    let ids = ndarray::Array2::from_shape_fn((2, 5), |(r, t)| ((r + t) % 7) as f32).into_dyn();
    let dec = ndarray::Array3::<f32>::ones((2, 3, 2)).into_dyn();
    let mut refused = 0;
    for round in 0..3000 {
        let b = mutate(&bytes, round, &mut rng);
        match Functional::<f32>::from_bytes(&b) {
            Ok(m) => {
                let _ = m.infer(Inputs::from(&[ids.clone(), dec.clone()]));
            }
            Err(_) => refused += 1,
        }
        let _ = rnnkit::io::FileInfo::from_bytes(&b);
    }
    assert!(refused > 2000, "{refused} of 3000 refused");
}

/// Random mutations of training checkpoints (a Sequential one and a graph one): resume
/// returns, never panics, and a refused resume leaves the trainer as it was.
#[test]
fn random_mutations_of_a_checkpoint_never_panic() {
    use rnnkit::{Optimizer, Trainer};
    let dir = std::env::temp_dir().join(format!("rnnkit-ckpt-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    let x = ndarray::Array3::from_shape_fn((6, 4, 2), |(i, t, f)| ((i + t + f) as f32 * 0.3).sin())
        .into_dyn();
    let y = ndarray::Array2::from_shape_fn((6, 1), |(i, _)| i as f32 * 0.1).into_dyn();
    let mut model = Sequential::<f32>::new(&[4, 2])
        .push(LstmConfig::new(3).dropout(0.2))
        .unwrap()
        .push(DenseConfig::new(1))
        .unwrap();
    let mut t = Trainer::new(Adam::default(), Loss::Mse)
        .epochs(1)
        .batch_size(3);
    t.fit(&mut model, (&x, &y)).unwrap();
    t.save_checkpoint(&model, &path).unwrap();
    let seq = std::fs::read(&path).unwrap();
    let mut g = graph_sample();
    let mut tg = Trainer::new(Adam::default(), Loss::Mse).epochs(1);
    let ids = ndarray::Array2::from_shape_fn((4, 5), |(r, t)| ((r + t) % 7) as f32).into_dyn();
    let dec = ndarray::Array3::<f32>::ones((4, 3, 2)).into_dyn();
    let ys = [
        ndarray::Array3::<f32>::zeros((4, 3, 2)).into_dyn(),
        ndarray::Array3::<f32>::zeros((4, 3, 2)).into_dyn(),
    ];
    tg.fit(&mut g, Data::list(&[ids.clone(), dec.clone()], &ys))
        .unwrap();
    tg.save_checkpoint(&g, &path).unwrap();
    let graph = std::fs::read(&path).unwrap();

    let mut rng = rnnkit::seeded_rng(44);
    let mut refused = 0;
    for round in 0..1500 {
        for (which, bytes) in [("sequential", &seq), ("graph", &graph)] {
            std::fs::write(&path, mutate(bytes, round, &mut rng)).unwrap();
            let mut fresh = Trainer::new(Adam::<f32>::default(), Loss::Mse).epochs(1);
            let r = if which == "sequential" {
                fresh.resume(&path).map(|m| {
                    let _ = m.predict(Inputs::new(&x), 4).map(|mut p| p.remove(0));
                })
            } else {
                fresh.resume(&path).map(|m| {
                    let _ = m.infer(Inputs::from(&[ids.clone(), dec.clone()]));
                })
            };
            if r.is_err() {
                refused += 1;
                assert_eq!(
                    fresh.epochs_done(),
                    0,
                    "{which}: a refused resume moved epochs"
                );
                assert_eq!(
                    fresh.optimizer.iterations(),
                    0,
                    "{which}: ... or the optimizer"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(refused > 2000, "{refused} of 3000 refused");
}
