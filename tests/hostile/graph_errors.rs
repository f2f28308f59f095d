//! Wiring mistakes and bad inputs of graph models: typed errors naming the layer, what was
//! expected and what was received; the graph and the model unchanged, no panic.

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rnnkit::AttentionConfig;
use rnnkit::prelude::*;

fn msg<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    r.expect_err("must be refused").to_string()
}

#[test]
fn a_tensor_or_layer_of_another_graph_is_refused() -> Result<(), Error> {
    let mut g1 = Graph::<f64>::new(0);
    let mut g2 = Graph::<f64>::new(0);
    let x1 = g1.input("x", &[Some(2), Some(3)])?;
    let x2 = g2.input("x", &[Some(2), Some(3)])?;
    let y1 = g1.apply(&DenseConfig::new(2), x1)?;
    let e = msg(g2.apply(&DenseConfig::new(2), y1));
    assert!(e.contains("another graph"), "{e}");
    let e = msg(g2.reuse(g1.layer_of(y1)?, x2));
    assert!(e.contains("another graph"), "{e}");
    let e = msg(g2.apply_list(&AddConfig::new(), &[x2, x1]));
    assert!(e.contains("another graph"), "{e}");
    // The failed calls left g2 as it was: a Dense named "dense" can still be added.
    let y2 = g2.apply(&DenseConfig::new(2), x2)?;
    assert_eq!(g2.shape(y2)?, vec![Some(2), Some(2)]);
    let e = msg(g1.build(&[x1], &[y2]));
    assert!(e.contains("another graph"), "{e}");
    Ok(())
}

#[test]
fn shapes_that_do_not_fit_name_both_ends() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[None, Some(3)])?;
    let b = g.input("b", &[None, Some(4)])?;
    let e = msg(g.apply_list(&AddConfig::new(), &[a, b]));
    assert!(
        e.contains("add") && e.contains("(None, None, 3)") && e.contains("(None, None, 4)"),
        "{e}"
    );
    let e = msg(g.apply_list(&ConcatenateConfig::new().axis(1), &[a, b]));
    assert!(
        e.contains("concatenate") && e.contains("off the concatenation axis"),
        "{e}"
    );
    let e = msg(g.apply_list(&ConcatenateConfig::new().axis(0), &[a, a]));
    assert!(e.contains("axis"), "{e}");
    let d = g.apply(&DenseConfig::new(2), a)?;
    let dense = g.layer_of(d)?;
    let e = msg(g.reuse(dense, b));
    assert!(e.contains("dense") && e.contains("(None, steps, 3)"), "{e}");
    let e = msg(g.apply_list(&AttentionConfig::new(), &[a, b]));
    assert!(
        e.contains("attention") && e.contains("same features"),
        "{e}"
    );
    let e = msg(g.apply_list(&AttentionConfig::new(), &[a]));
    assert!(e.contains("attention"), "{e}");
    // Attention called on one tensor through the single-input path.
    let e = msg(g.apply(&AttentionConfig::new(), a));
    assert!(e.contains("[query, value(, key)]"), "{e}");
    Ok(())
}

#[test]
fn states_of_the_wrong_count_or_size_are_refused() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let x = g.input("x", &[None, Some(3)])?;
    let enc = g.rnn(&LstmConfig::new(4), x).call()?;
    assert_eq!(enc.states.len(), 2);
    let e = msg(g
        .rnn(&LstmConfig::new(4), x)
        .initial_state(&enc.states[..1])
        .call());
    assert!(
        e.contains("initial_state") && e.contains("2 state tensors"),
        "{e}"
    );
    let e = msg(g
        .rnn(&GruConfig::new(5), x)
        .initial_state(&enc.states[..1])
        .call());
    assert!(e.contains("(None, 5)") && e.contains("[4]"), "{e}");
    let e = msg(g.rnn(&DenseConfig::new(2), x).call());
    assert!(e.contains("no states"), "{e}");
    // Nothing of the failed calls stayed: the names are free.
    let ok = g.rnn(&GruConfig::new(4).name("gru"), x).call()?;
    assert_eq!(ok.states.len(), 1);
    Ok(())
}

/// Wires a graph: its inputs and outputs.
type Wiring = dyn Fn(&mut Graph<f64>) -> Result<(Vec<rnnkit::Tensor>, Vec<rnnkit::Tensor>), Error>;

#[test]
fn unused_missing_and_repeated_inputs_are_refused() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[Some(3)])?;
    let b = g.input("b", &[Some(3)])?;
    let e = msg(g.input("a", &[Some(2)]));
    assert!(e.contains("already used"), "{e}");
    let y = g.apply(&DenseConfig::new(1), a)?;
    let e = msg(Graph::<f64>::new(0).input("empty", &[]));
    assert!(e.contains("at least one axis"), "{e}");
    let g2 = |f: &Wiring| {
        let mut g = Graph::<f64>::new(0);
        let (i, o) = f(&mut g).unwrap();
        g.build(&i, &o).map(|_| ())
    };
    let e = msg(g2(&|g| {
        let a = g.input("a", &[Some(3)])?;
        let b = g.input("b", &[Some(3)])?;
        let y = g.apply(&DenseConfig::new(1), a)?;
        Ok((vec![a, b], vec![y]))
    }));
    assert!(e.contains("b") && e.contains("unused input"), "{e}");
    let e = msg(g2(&|g| {
        let a = g.input("a", &[Some(3)])?;
        let y = g.apply(&DenseConfig::new(1), a)?;
        Ok((vec![], vec![y]))
    }));
    assert!(
        e.contains("a") && e.contains("not among the model's inputs"),
        "{e}"
    );
    let e = msg(g2(&|g| {
        let a = g.input("a", &[Some(3)])?;
        let y = g.apply(&DenseConfig::new(1), a)?;
        Ok((vec![a, a], vec![y]))
    }));
    assert!(e.contains("more than once"), "{e}");
    let e = msg(g2(&|g| {
        let a = g.input("a", &[Some(3)])?;
        Ok((vec![a], vec![]))
    }));
    assert!(e.contains("at least one output"), "{e}");
    let _ = (b, y);
    Ok(())
}

#[test]
fn bad_inputs_at_run_time_are_typed_errors() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let ids = g.input("ids", &[None])?;
    let x = g.input("x", &[None, Some(2)])?;
    let e = g.apply(&EmbeddingConfig::new(5, 2), ids)?;
    let both = g.apply_list(&AddConfig::new(), &[e, x])?;
    let y = g.apply(&LstmConfig::new(3), both)?;
    let mut m = g.build(&[ids, x], &[y])?;
    let good_ids = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, 2.0, 4.0]).unwrap();
    let good_x = Array3::<f64>::zeros((1, 3, 2)).into_dyn();
    m.forward(Inputs::from(&[good_ids.clone(), good_x.clone()]).mode(Mode::Train))?;
    let before = m.get_weights();
    // Wrong number of inputs, wrong feature count, different batch, ids out of range,
    // negative or fractional: errors naming what was expected.
    let e = msg(m.forward(Inputs::from(std::slice::from_ref(&good_ids)).mode(Mode::Train)));
    assert!(e.contains("2 arrays"), "{e}");
    let e = msg(m.infer(Inputs::from(&[
        good_ids.clone(),
        Array3::<f64>::zeros((1, 3, 4)).into_dyn(),
    ])));
    assert!(e.contains("x") && e.contains("[1, 3, 4]"), "{e}");
    let e = msg(m.infer(Inputs::from(&[
        good_ids.clone(),
        Array3::<f64>::zeros((2, 3, 2)).into_dyn(),
    ])));
    assert!(e.contains("x") && e.contains("batch 1"), "{e}");
    for bad in [5.0, -1.0, 1.5, f64::NAN] {
        let ids = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, bad, 2.0]).unwrap();
        let e = msg(m.infer(Inputs::from(&[ids, good_x.clone()])));
        assert!(e.contains("embedding"), "{bad}: {e}");
    }
    // Merged tensors whose steps differ at run time.
    let e = msg(m.infer(Inputs::from(&[
        good_ids.clone(),
        Array3::<f64>::zeros((1, 4, 2)).into_dyn(),
    ])));
    assert!(e.contains("add"), "{e}");
    // Gradients: wrong count or shape (after a training pass: a failed forward clears the
    // training cache).
    m.forward(Inputs::from(&[good_ids.clone(), good_x.clone()]).mode(Mode::Train))?;
    let e = msg(m.backward(&[].iter().map(OutputGrads::new).collect::<Vec<_>>()));
    assert!(e.contains("1 arrays"), "{e}");
    let e = msg(m.backward(
        &[Array2::<f64>::zeros((1, 4)).into_dyn()]
            .iter()
            .map(OutputGrads::new)
            .collect::<Vec<_>>(),
    ));
    assert!(e.contains("dL/d(output)"), "{e}");
    assert_eq!(m.get_weights(), before);
    // A model with two inputs given one array.
    let e = msg(Model::infer(&m, Inputs::new(&good_x)));
    assert!(e.contains("list of inputs"), "{e}");
    Ok(())
}

/// A small graph with an encoder's states into a decoder and a shared Dense.
fn seq2seq() -> Result<Functional<f64>, Error> {
    let mut g = Graph::<f64>::new(1);
    let a = g.input("a", &[None, Some(2)])?;
    let b = g.input("b", &[None, Some(2)])?;
    let enc = g.rnn(&LstmConfig::new(3).name("enc"), a).call()?;
    let dec = g
        .rnn(&LstmConfig::new(3).return_sequences(true).name("dec"), b)
        .initial_state(&enc.states)
        .call()?;
    let y = g.apply(&DenseConfig::new(2).name("proj"), dec.out)?;
    let z = g.reuse(g.layer_of(y)?, enc.out)?;
    g.build(&[a, b], &[y, z])
}

/// An edit of an architecture's JSON.
type Edit = dyn Fn(&mut serde_json::Value);

/// Rewrites the file's `architecture` metadata.
fn with_architecture(bytes: &[u8], f: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let arch = header["__metadata__"]["architecture"]
        .as_str()
        .unwrap()
        .to_string();
    let mut a: serde_json::Value = serde_json::from_str(&arch).unwrap();
    f(&mut a);
    header["__metadata__"]["architecture"] = serde_json::json!(a.to_string());
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn graph_files_are_checked_like_sequential_ones() -> Result<(), Error> {
    let m = seq2seq()?;
    let bytes = m.to_bytes()?;
    let loaded = Functional::<f64>::from_bytes(&bytes)?;
    assert_eq!(loaded.get_weights(), m.get_weights());
    let spec = loaded.spec_graph()?;
    assert_eq!(spec, m.spec_graph()?);
    assert!(matches!(spec.nodes[3].layer, rnnkit::model::NodeLayer::Shares(ref o) if o == "proj"));
    // The other model types' loaders name the right one.
    let e = msg(Sequential::<f64>::from_bytes(&bytes));
    assert!(e.contains("Functional"), "{e}");
    let seq = Sequential::<f64>::new(&[2]).push(DenseConfig::new(1))?;
    let e = msg(Functional::<f64>::from_bytes(&seq.to_bytes()?));
    assert!(e.contains("Sequential"), "{e}");
    // The float type converts (rounding f64 to f32), as every loader does since 0.2.
    let narrow = Functional::<f32>::from_bytes(&bytes)?;
    for (a, b) in narrow.get_weights().iter().zip(m.get_weights()) {
        assert_eq!(a, &b.mapv(|v| v as f32));
    }
    // Corrupt architectures: unknown layer, a ref to nothing, a shares of nothing, a huge
    // layer, wiring that does not fit.
    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "Transformer",
            Box::new(|a| a["nodes"][0]["layer"] = "Transformer".into()),
        ),
        (
            "nowhere",
            Box::new(|a| a["nodes"][1]["inputs"][0] = "nowhere".into()),
        ),
        (
            "ghost",
            Box::new(|a| a["nodes"][3]["shares"] = "ghost".into()),
        ),
        (
            "scalars",
            Box::new(|a| a["nodes"][0]["config"]["units"] = 100_000.into()),
        ),
        (
            "initial_state",
            Box::new(|a| a["nodes"][1]["initial_state"] = serde_json::json!(["enc:1"])),
        ),
        (
            "unknown field",
            Box::new(|a| a["nodes"][0]["colour"] = "red".into()),
        ),
    ];
    for (want, f) in &cases {
        let e = msg(Functional::<f64>::from_bytes(&with_architecture(&bytes, f)));
        assert!(e.contains(want), "{want}: {e}");
    }
    // A missing and an extra tensor.
    let e = msg(Functional::<f64>::from_bytes(&with_architecture(
        &bytes,
        |a| {
            a["nodes"][2]["config"]["use_bias"] = false.into();
        },
    )));
    assert!(e.contains("proj/bias"), "{e}");
    Ok(())
}

#[test]
fn layers_the_outputs_do_not_reach_are_not_the_model_s() -> Result<(), Error> {
    let mut g = Graph::<f64>::new(0);
    let a = g.input("a", &[Some(3)])?;
    let b = g.input("b", &[Some(3)])?;
    // A Dense first called on a branch no output needs, then again on the one kept.
    let unused = g.apply(&DenseConfig::new(2).name("shared"), a)?;
    let shared = g.layer_of(unused)?;
    let kept = g.reuse(shared, b)?;
    let _dead = g.apply(&DenseConfig::new(7).name("dead"), b)?;
    let y = g.apply(&DenseConfig::new(1).name("out"), kept)?;
    // `a` feeds only the pruned call: it is an unused input.
    let e = msg(Graph::<f64>::new(0).build(&[], &[]));
    assert!(e.contains("output"), "{e}");
    let m = g.build(&[b], &[y])?;
    let names: Vec<&str> = m.layers().map(|l| l.name()).collect();
    assert_eq!(names, ["shared", "out"]);
    assert_eq!(m.param_count(), 3 * 2 + 2 + 2 + 1);
    // The kept call owns the layer now: it saves, loads and trains.
    let again = Functional::<f64>::from_bytes(&m.to_bytes()?)?;
    let x = ndarray::Array2::<f64>::ones((2, 3)).into_dyn();
    assert_eq!(
        again.infer(Inputs::from(std::slice::from_ref(&x)))?,
        m.infer(Inputs::from(std::slice::from_ref(&x)))?
    );
    let mut m = m;
    m.forward(Inputs::from(std::slice::from_ref(&x)).mode(Mode::Train))?;
    Module::zero_grad(&mut m);
    m.backward(
        &[ndarray::Array2::<f64>::ones((2, 1)).into_dyn()]
            .iter()
            .map(OutputGrads::new)
            .collect::<Vec<_>>(),
    )?;
    let mut any = false;
    m.visit_params(&mut |_, p| any |= p.grad().iter().any(|&g| g != 0.0));
    assert!(any);
    let _ = a;
    Ok(())
}

#[test]
fn layers_called_by_hand_on_bad_lists_are_typed_errors() -> Result<(), Error> {
    use rnnkit::{AttentionConfig, LayerConfig, layers::AddConfig, layers::ConcatenateConfig};
    let mut rng = seeded_rng(0);
    let x = ndarray::Array2::<f64>::ones((2, 3)).into_dyn();
    let scalar = ndarray::arr0(1.0).into_dyn();
    for cfg in [
        Box::new(AddConfig::new()) as Box<dyn LayerConfig<f64>>,
        Box::new(ConcatenateConfig::new()),
    ] {
        let mut l = cfg.build(&[Some(3)], &mut rng)?;
        assert!(
            l.forward(Inputs::list(&[]).masks(&[]).mode(Mode::Infer))
                .map(|o| o.output)
                .is_err()
        );
        assert!(
            l.infer(Inputs::list(&[&scalar, &scalar]).masks(&[]))
                .map(|o| o.output)
                .is_err()
        );
        assert!(
            l.forward(Inputs::list(&[&x]).masks(&[]).mode(Mode::Infer))
                .map(|o| o.output)
                .is_ok()
        );
        let wide = ndarray::Array2::<f64>::ones((3, 3)).into_dyn();
        assert!(
            l.infer(Inputs::list(&[&x, &wide]).masks(&[]))
                .map(|o| o.output)
                .is_err()
        ); // batch 2 and 3
    }
    let mut att = LayerConfig::<f64>::build(&AttentionConfig::new(), &[None, Some(3)], &mut rng)?;
    assert!(
        att.forward(
            Inputs::list(&[&x, &x])
                .masks(&[None, None])
                .mode(Mode::Infer)
        )
        .map(|o| o.output)
        .is_err()
    ); // rank 2
    assert!(
        att.forward(Inputs::new(&x).mask(None).mode(Mode::Infer))
            .map(|o| o.output)
            .is_err()
    );
    assert!(att.backward(OutputGrads::new(&x)).map(|g| g.dxs).is_err()); // no training pass
    Ok(())
}
