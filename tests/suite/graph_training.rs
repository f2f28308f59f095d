//! Training graph models through the one `Model` interface: a graph equal to a `Sequential`
//! trains to the same weights bit for bit (`fit_many`, and `fit` through the one-array
//! methods), softmax outputs train from their logits, `loss_weights` weigh the outputs, and
//! checkpoints resume exactly.

use ndarray::{Array2, Array3, ArrayD};
use rnnkit::prelude::*;

fn data(n: usize) -> (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>) {
    let x = Array3::from_shape_fn((n, 5, 2), |(i, t, f)| {
        ((i * 10 + t * 2 + f) as f64 * 0.31).sin()
    })
    .into_dyn();
    let y = Array2::from_shape_fn((n, 1), |(i, _)| (i as f64 * 0.17).cos()).into_dyn();
    let classes = Array2::from_shape_fn((n, 1), |(i, _)| (i % 3) as f64).into_dyn();
    (x, y, classes)
}

/// `Sequential` [Lstm(6), Dense(k, act)] and the same as a graph, with the same weights.
fn pair(k: usize, act: Activation) -> Result<(Sequential<f64>, Functional<f64>), Error> {
    let seq = Sequential::<f64>::new(&[5, 2])
        .seed(3)
        .push(LstmConfig::new(6))?
        .push(DenseConfig::new(k).activation(act))?;
    let mut g = Graph::<f64>::new(9);
    let x = g.input("x", &[Some(5), Some(2)])?;
    let h = g.apply(&LstmConfig::new(6), x)?;
    let y = g.apply(&DenseConfig::new(k).activation(act), h)?;
    let mut graph = g.build(&[x], &[y])?;
    graph.set_weights(&seq.get_weights())?;
    Ok((seq, graph))
}

#[test]
fn a_graph_trains_exactly_as_the_same_sequential() -> Result<(), Error> {
    let (x, y, classes) = data(40);
    for (loss, k, act, target) in [
        (Loss::Mse, 1, Activation::Linear, &y),
        (
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            3,
            Activation::Softmax,
            &classes,
        ),
    ] {
        let (mut seq, mut graph) = pair(k, act)?;
        let mut graph2 = graph.clone();
        let trainer = || {
            Trainer::new(Adam::new(0.01), loss)
                .epochs(3)
                .batch_size(8)
                .seed(4)
        };
        let h_seq = trainer().fit(&mut seq, (&x, target))?;
        let h_many = trainer().fit(
            &mut graph,
            Data::list(std::slice::from_ref(&x), std::slice::from_ref(target)),
        )?;
        let h_one = trainer().fit(&mut graph2, (&x, target))?;
        assert_eq!(h_seq.loss(), h_many.loss(), "{loss:?}");
        assert_eq!(h_seq.loss(), h_one.loss(), "{loss:?}");
        assert_eq!(seq.get_weights(), graph.get_weights(), "{loss:?}");
        assert_eq!(seq.get_weights(), graph2.get_weights(), "{loss:?}");
        let logs = trainer().evaluate(
            &graph,
            Data::list(std::slice::from_ref(&x), std::slice::from_ref(target)),
        )?;
        let want = trainer().evaluate(&seq, (&x, target))?;
        assert_eq!(logs["loss"], want["loss"]);
        let p = graph.predict(Inputs::new(&x), 32)?;
        assert_eq!(p[0], seq.predict(Inputs::new(&x), 32)?[0]);
    }
    Ok(())
}

#[test]
fn loss_weights_weigh_the_outputs() -> Result<(), Error> {
    let (x, y, _) = data(32);
    // A trunk with two heads; with weights [1, 0] the second head takes no gradient and
    // the rest trains exactly as the one-head model.
    let build = |two: bool| -> Result<Functional<f64>, Error> {
        let mut g = Graph::<f64>::new(5);
        let xi = g.input("x", &[Some(5), Some(2)])?;
        let h = g.apply(&GruConfig::new(4).name("trunk"), xi)?;
        let a = g.apply(&DenseConfig::new(1).name("a"), h)?;
        let mut outs = vec![a];
        if two {
            outs.push(g.apply(&DenseConfig::new(1).name("b"), h)?);
        }
        g.build(&[xi], &outs)
    };
    let mut one = build(false)?;
    let mut two = build(true)?;
    for name in ["trunk", "a"] {
        let w = one.layer(name).unwrap().get_weights();
        two.layer_mut(name).unwrap().set_weights(&w)?;
    }
    let b0 = two.layer("b").unwrap().get_weights();
    let t = || {
        Trainer::new(Adam::new(0.01), Loss::Mse)
            .epochs(2)
            .batch_size(8)
    };
    let h1 = t().fit(
        &mut one,
        Data::list(std::slice::from_ref(&x), std::slice::from_ref(&y)),
    )?;
    let h2 = t().loss_weights(&[1.0, 0.0]).fit(
        &mut two,
        Data::list(std::slice::from_ref(&x), &[y.clone(), y.clone()]),
    )?;
    assert_eq!(h1.loss(), h2.loss());
    for name in ["trunk", "a"] {
        assert_eq!(
            one.layer(name).unwrap().get_weights(),
            two.layer(name).unwrap().get_weights()
        );
    }
    assert_eq!(two.layer("b").unwrap().get_weights(), b0);
    // Equal weights: the loss is the sum of both outputs' losses.
    let logs = t().evaluate(
        &two,
        Data::list(std::slice::from_ref(&x), &[y.clone(), y.clone()]),
    )?;
    let a_only = t().loss_weights(&[1.0, 0.0]).evaluate(
        &two,
        Data::list(std::slice::from_ref(&x), &[y.clone(), y.clone()]),
    )?;
    let b_only = t().loss_weights(&[0.0, 1.0]).evaluate(
        &two,
        Data::list(std::slice::from_ref(&x), &[y.clone(), y.clone()]),
    )?;
    assert!((logs["loss"] - a_only["loss"] - b_only["loss"]).abs() < 1e-12);
    // Bad settings are typed errors.
    let e = t()
        .loss_weights(&[1.0])
        .fit(
            &mut two,
            Data::list(std::slice::from_ref(&x), &[y.clone(), y.clone()]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("loss_weights"), "{e}");
    let e = t()
        .fit(
            &mut two,
            Data::list(std::slice::from_ref(&x), std::slice::from_ref(&y)),
        )
        .unwrap_err();
    assert!(e.to_string().contains("2 outputs"), "{e}");
    Ok(())
}

#[test]
fn a_graph_checkpoint_resumes_bit_for_bit() -> Result<(), Error> {
    let (x, y, _) = data(24);
    let mut g = Graph::<f64>::new(2);
    let a = g.input("a", &[Some(5), Some(2)])?;
    let b = g.input("b", &[Some(5), Some(2)])?;
    let enc = g.rnn(&LstmConfig::new(4), a).call()?;
    let dec = g
        .rnn(&LstmConfig::new(4), b)
        .initial_state(&enc.states)
        .call()?;
    let out = g.apply(&DenseConfig::new(1), dec.out)?;
    let mut model = g.build(&[a, b], &[out])?;
    let xs = [x.clone(), x.mapv(|v| -v)];
    let t = || {
        Trainer::new(Adam::new(0.01), Loss::Mse)
            .epochs(2)
            .batch_size(8)
    };
    let mut first = t();
    first.fit(&mut model, Data::list(&xs, std::slice::from_ref(&y)))?;
    let path = std::env::temp_dir().join(format!(
        "rnnkit-graph-ckpt-{}.safetensors",
        std::process::id()
    ));
    first.save_checkpoint(&model, &path)?;
    let mut again = t();
    let mut resumed = again.resume(&path)?;
    assert_eq!(again.epochs_done(), 2);
    again.fit(&mut resumed, Data::list(&xs, std::slice::from_ref(&y)))?;
    first.fit(&mut model, Data::list(&xs, std::slice::from_ref(&y)))?;
    assert_eq!(resumed.get_weights(), model.get_weights());
    // The checkpoint also loads as a plain model.
    assert_eq!(
        Functional::<f64>::load(&path)?.param_count(),
        model.param_count()
    );
    std::fs::remove_file(&path).ok();
    Ok(())
}
