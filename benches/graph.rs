//! Criterion benchmarks of graph models: a seq2seq-with-attention training pass through a
//! `Functional` against the same layers called by hand (the graph should add no measurable
//! cost), and step-by-step decoding at 10 and 200 tokens (the cost per token should not grow
//! with the tokens already generated).
//!
//! ```text
//! cargo bench --bench graph
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use rnnkit::prelude::*;
use rnnkit::{
    AttentionConfig, Layer, LayerConfig, layers::ConcatenateConfig, model::DecodeState,
    model::StepDecoder,
};
use std::hint::black_box;

const B: usize = 64;
const T: usize = 12;
const H: usize = 64;
const V: usize = 13;
const E: usize = 16;

fn ids(rows: usize, steps: usize, seed: u64) -> ArrayD<f32> {
    let mut rng = seeded_rng(seed);
    ArrayD::from_shape_simple_fn(IxDyn(&[rows, steps]), || rng.random_range(1..V) as f32)
}

fn configs() -> [Box<dyn LayerConfig<f32>>; 7] {
    [
        Box::new(EmbeddingConfig::new(V, E).name("src_emb")),
        Box::new(LstmConfig::new(H).return_sequences(true).name("enc")),
        Box::new(EmbeddingConfig::new(V, E).name("dec_emb")),
        Box::new(LstmConfig::new(H).return_sequences(true).name("dec")),
        Box::new(AttentionConfig::new().name("att")),
        Box::new(ConcatenateConfig::new().name("cat")),
        Box::new(
            DenseConfig::new(V)
                .activation(Activation::Softmax)
                .name("probs"),
        ),
    ]
}

fn graph() -> Functional<f32> {
    let c = configs();
    let mut g = Graph::<f32>::new(0);
    let src = g.input("src", &[Some(T)]).unwrap();
    let dec_in = g.input("dec_in", &[Some(T + 1)]).unwrap();
    let se = g.apply(c[0].as_ref(), src).unwrap();
    let enc = g.rnn(c[1].as_ref(), se).call().unwrap();
    let te = g.apply(c[2].as_ref(), dec_in).unwrap();
    let dec = g
        .rnn(c[3].as_ref(), te)
        .initial_state(&enc.states)
        .call()
        .unwrap();
    let ctx = g.apply_list(c[4].as_ref(), &[dec.out, enc.out]).unwrap();
    let both = g.apply_list(c[5].as_ref(), &[dec.out, ctx]).unwrap();
    let p = g.apply(c[6].as_ref(), both).unwrap();
    g.build(&[src, dec_in], &[p]).unwrap()
}

/// The same seven layers, called by hand.
struct ByHand {
    layers: Vec<Box<dyn Layer<f32>>>,
}

impl ByHand {
    fn new(graph: &Functional<f32>) -> Self {
        let names = ["src_emb", "enc", "dec_emb", "dec", "att", "cat", "probs"];
        ByHand {
            layers: names
                .iter()
                .map(|n| graph.layer(*n).expect("layer").box_clone())
                .collect(),
        }
    }

    /// One training pass: forward, backward from `dy`.
    fn pass(&mut self, src: &ArrayD<f32>, dec_in: &ArrayD<f32>, dy: &ArrayD<f32>) {
        let l = &mut self.layers;
        let se = l[0]
            .forward(Inputs::new(src).mask(None).mode(Mode::Train))
            .map(|o| o.output)
            .unwrap();
        let mut st = l[1].state().unwrap().zero_states(B).unwrap();
        let enc_out = l[1]
            .forward(
                Inputs::new(&se)
                    .mask(None)
                    .mode(Mode::Train)
                    .states(&st.clone()),
            )
            .map(|o| {
                st = o.states;
                o.output
            })
            .unwrap();
        let te = l[2]
            .forward(Inputs::new(dec_in).mask(None).mode(Mode::Train))
            .map(|o| o.output)
            .unwrap();
        let dec_out = l[3]
            .forward(
                Inputs::new(&te)
                    .mask(None)
                    .mode(Mode::Train)
                    .states(&st.clone()),
            )
            .map(|o| {
                st = o.states;
                o.output
            })
            .unwrap();
        let ctx = l[4]
            .forward(
                Inputs::list(&[&dec_out, &enc_out])
                    .masks(&[None, None])
                    .mode(Mode::Train),
            )
            .map(|o| o.output)
            .unwrap();
        let both = l[5]
            .forward(
                Inputs::list(&[&dec_out, &ctx])
                    .masks(&[None, None])
                    .mode(Mode::Train),
            )
            .map(|o| o.output)
            .unwrap();
        let _p = l[6]
            .forward(Inputs::new(&both).mask(None).mode(Mode::Train))
            .map(|o| o.output)
            .unwrap();
        for layer in l.iter_mut() {
            layer.zero_grad();
        }
        let d_both = l[6].backward(OutputGrads::new(dy)).map(|g| g.dx()).unwrap();
        let d = l[5]
            .backward(OutputGrads::new(&d_both))
            .map(|g| g.dxs)
            .unwrap();
        let mut d_dec = d[0].clone();
        let d_att = l[4]
            .backward(OutputGrads::new(&d[1]))
            .map(|g| g.dxs)
            .unwrap();
        d_dec += &d_att[0];
        let zeros = vec![Array2::<f32>::zeros((B, H)); 2];
        let (d_te, d_init) = l[3]
            .backward(OutputGrads::new(&d_dec).states(&zeros))
            .map(|mut g| (g.dxs.remove(0), g.states))
            .unwrap();
        l[2].backward(OutputGrads::new(&d_te))
            .map(|g| g.dx())
            .unwrap();
        let (d_se, _) = l[1]
            .backward(OutputGrads::new(&d_att[1]).states(&d_init))
            .map(|mut g| (g.dxs.remove(0), g.states))
            .unwrap();
        l[0].backward(OutputGrads::new(&d_se))
            .map(|g| g.dx())
            .unwrap();
    }
}

fn training_pass(c: &mut Criterion) {
    let mut g = c.benchmark_group("seq2seq attention pass B64 T12 H64");
    let src = ids(B, T, 1);
    let dec_in = ids(B, T + 1, 2);
    let dy = ArrayD::<f32>::from_elem(IxDyn(&[B, T + 1, V]), 1e-3);
    let mut model = graph();
    let mut hand = ByHand::new(&model);
    g.bench_function("graph", |bench| {
        bench.iter(|| {
            model
                .forward(Inputs::from(&[src.clone(), dec_in.clone()]).mode(Mode::Train))
                .unwrap();
            Module::zero_grad(&mut model);
            black_box(
                model
                    .backward(
                        &std::slice::from_ref(&dy)
                            .iter()
                            .zip(&[false])
                            .map(|(d, &f)| OutputGrads::new(d).from_logits(f))
                            .collect::<Vec<_>>(),
                    )
                    .unwrap(),
            );
        })
    });
    g.bench_function("by hand", |bench| {
        bench.iter(|| hand.pass(black_box(&src), &dec_in, &dy))
    });
    g.finish();
}

/// A step decoder over the graph's layers: [token, h, c, encoder outputs] → [p, h, c].
fn decoder(trained: &Functional<f32>) -> StepDecoder<f32> {
    let mut g = Graph::<f32>::new(0);
    let tok = g.input("token", &[Some(1)]).unwrap();
    let h = g.input("h", &[Some(H)]).unwrap();
    let c = g.input("c", &[Some(H)]).unwrap();
    let enc_out = g.input("enc_out", &[Some(T), Some(H)]).unwrap();
    let emb = g.import(trained, "dec_emb").unwrap();
    let x = g.reuse(emb, tok).unwrap();
    let dec = g.import(trained, "dec").unwrap();
    let d = g.reuse_rnn(dec, x).initial_state(&[h, c]).call().unwrap();
    let att = g.import(trained, "att").unwrap();
    let ctx = g.reuse_list(att, &[d.out, enc_out]).unwrap();
    let cat = g.import(trained, "cat").unwrap();
    let both = g.reuse_list(cat, &[d.out, ctx]).unwrap();
    let dense = g.import(trained, "probs").unwrap();
    let p = g.reuse(dense, both).unwrap();
    StepDecoder::new(
        g.build(&[tok, h, c, enc_out], &[p, d.states[0], d.states[1]])
            .unwrap(),
        2,
    )
    .unwrap()
}

fn decoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("greedy decoding B1 H64");
    let model = graph();
    let dec = decoder(&model);
    let start = DecodeState::new(
        vec![Array2::<f32>::zeros((1, H)).into_dyn(); 2],
        vec![ArrayD::<f32>::from_elem(IxDyn(&[1, T, H]), 0.1)],
    );
    for tokens in [10, 200] {
        // An end token that never comes: exactly `tokens` steps.
        g.throughput(Throughput::Elements(tokens as u64));
        g.bench_with_input(BenchmarkId::new("tokens", tokens), &tokens, |bench, &n| {
            bench.iter(|| black_box(dec.greedy(start.clone(), 1, V + 1, n).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, training_pass, decoding);
criterion_main!(benches);
