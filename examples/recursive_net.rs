//! A recursive network (notes 002): one shared composition layer applied bottom-up over each
//! sample's own tree, against an LSTM reading the same expressions as sequences.
//!
//! ```text
//! cargo run --release --example recursive_net -- [--quick] [--seed S] [--out DIR] [--epochs N]
//! ```
//!
//! The task: evaluate arithmetic expressions over digits with `+` and `−`, written in
//! postfix (`3 4 + 2 −`). The tree network is a user-defined [`Model`]: it reads each row's
//! tokens, builds the tree with a stack, embeds each digit, composes two children with
//! `h = tanh([h_l; h_r; op]·W + b)` (the same `W` at every node), and reads the value from
//! the root with a linear unit. It trains through the [`Trainer`] like any rnnkit model
//! (its `backward` is backpropagation through the structure). The LSTM reads the same
//! tokens (as integer ids through an `Embedding`). Training trees have depth 1–3; the test
//! also has depths 4 and 5, deeper than any seen in training. Prints `depth D tree_mae=..
//! lstm_mae=..` and writes `mae_by_depth.svg`.

mod common;

use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};
use rnnkit::prelude::*;
use rnnkit::rand::Rng;
use rnnkit::{Dim, Param};

const DIGITS: usize = 10;
const PLUS: usize = 10;
const MINUS: usize = 11;
const PAD: usize = 12;
const VOCAB: usize = 13;
/// Tokens of a depth-5 tree at most: 32 leaves and 31 operators.
const MAX_LEN: usize = 63;
/// Targets are values / SCALE.
const SCALE: f64 = 10.0;

/// A random full expression tree of `depth`, in postfix; returns its value.
fn expression(depth: usize, rng: &mut rnnkit::init::StdRng, out: &mut Vec<usize>) -> f64 {
    if depth == 0 {
        let d = rng.random_range(0..DIGITS);
        out.push(d);
        return d as f64;
    }
    // Children of random depth below, so that trees are not all complete.
    let dl = rng.random_range(0..depth);
    let dr = if dl == depth - 1 {
        rng.random_range(0..depth)
    } else {
        depth - 1
    };
    let (l, r) = (expression(dl, rng, out), expression(dr, rng, out));
    if rng.random_bool(0.5) {
        out.push(PLUS);
        l + r
    } else {
        out.push(MINUS);
        l - r
    }
}

/// `n` expressions of the given depths: token ids `[n, MAX_LEN]` (padded) and values `[n, 1]`.
fn data(n: usize, depths: &[usize], seed: u64) -> (Array2<usize>, ArrayD<f64>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array2::from_elem((n, MAX_LEN), PAD);
    let mut y = Array2::zeros((n, 1));
    for i in 0..n {
        let depth = depths[i % depths.len()];
        let mut tokens = Vec::new();
        y[[i, 0]] = expression(depth, &mut rng, &mut tokens) / SCALE;
        for (t, &tok) in tokens.iter().enumerate() {
            x[[i, t]] = tok;
        }
    }
    (x, y.into_dyn())
}

/// The recursive network: leaf embeddings `E` `[10, H]`, the composition `W` `[2H + 2, H]`
/// and `b` `[H]`, the readout `v` `[H]` and `c` `[1]`.
#[derive(Debug)]
struct TreeNet {
    h: usize,
    e: Param<f64>,
    w: Param<f64>,
    b: Param<f64>,
    v: Param<f64>,
    c: Param<f64>,
    /// The last training pass: per sample, its nodes (for backward).
    cache: Vec<Vec<Node>>,
}

/// One node of a parsed tree: a digit, or an operator over two earlier nodes; `h` its
/// vector.
#[derive(Debug, Clone)]
struct Node {
    token: usize,
    children: Option<(usize, usize)>,
    h: Array1<f64>,
}

impl TreeNet {
    fn new(h: usize, seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let mut u = |shape: &[usize], s: f64| {
            Param::new(ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                rng.random_range(-s..s)
            }))
        };
        let s = (6.0 / (3 * h + 2) as f64).sqrt();
        TreeNet {
            h,
            e: u(&[DIGITS, h], 0.5),
            w: u(&[2 * h + 2, h], s),
            b: Param::new(ArrayD::zeros(IxDyn(&[h]))),
            v: u(&[h], (3.0 / h as f64).sqrt()),
            c: Param::new(ArrayD::zeros(IxDyn(&[1]))),
            cache: Vec::new(),
        }
    }

    /// Parses one row of tokens bottom-up and computes every node's vector.
    fn run(&self, tokens: ndarray::ArrayViewD<'_, f64>) -> Result<Vec<Node>, rnnkit::Error> {
        let bad = |what: String| rnnkit::Error::Data(format!("tree_net: {what}"));
        let (e, w, b) = (self.e.value(), self.w.value(), self.b.value());
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        for &t in tokens {
            let token = t as usize;
            if token == PAD {
                break;
            }
            if token < DIGITS {
                let h = e.index_axis(Axis(0), token).to_owned();
                nodes.push(Node {
                    token,
                    children: None,
                    h: h.into_dimensionality().unwrap(),
                });
            } else if token == PLUS || token == MINUS {
                let (Some(r), Some(l)) = (stack.pop(), stack.pop()) else {
                    return Err(bad("an operator without two operands".into()));
                };
                let (hl, hr): (&Array1<f64>, &Array1<f64>) = (&nodes[l].h, &nodes[r].h);
                let mut z = b.clone().into_dimensionality::<ndarray::Ix1>().unwrap();
                for j in 0..self.h {
                    let mut s = 0.0;
                    for k in 0..self.h {
                        s += hl[k] * w[[k, j]] + hr[k] * w[[self.h + k, j]];
                    }
                    s += w[[2 * self.h + usize::from(token == MINUS), j]];
                    z[j] += s;
                }
                nodes.push(Node {
                    token,
                    children: Some((l, r)),
                    h: z.mapv(f64::tanh),
                });
            } else {
                return Err(bad(format!("token {t} is not a digit or an operator")));
            }
            stack.push(nodes.len() - 1);
        }
        if stack.len() != 1 {
            return Err(bad(format!("{} trees in one row, expected 1", stack.len())));
        }
        Ok(nodes)
    }

    fn readout(&self, root: &Node) -> f64 {
        let v = self.v.value();
        root.h.iter().zip(v.iter()).map(|(a, b)| a * b).sum::<f64>() + self.c.value()[[0]]
    }
}

impl Module<f64> for TreeNet {
    fn name(&self) -> &str {
        "tree_net"
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("embeddings", &self.e);
        f("composition/kernel", &self.w);
        f("composition/bias", &self.b);
        f("readout/kernel", &self.v);
        f("readout/bias", &self.c);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
        f("embeddings", &mut self.e);
        f("composition/kernel", &mut self.w);
        f("composition/bias", &mut self.b);
        f("readout/kernel", &mut self.v);
        f("readout/bias", &mut self.c);
    }
}

impl Model<f64> for TreeNet {
    fn input_shapes(&self) -> Vec<Vec<Dim>> {
        vec![vec![Some(MAX_LEN)]]
    }
    fn output_shapes(&self) -> Vec<Vec<Dim>> {
        vec![vec![Some(1)]]
    }
    fn forward(&mut self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, rnnkit::Error> {
        let x: &ArrayD<f64> = &inputs.xs[0];
        let rows: Vec<Vec<Node>> = x
            .outer_iter()
            .map(|row| self.run(row))
            .collect::<Result<_, _>>()?;
        let y = Array2::from_shape_fn((rows.len(), 1), |(i, _)| {
            self.readout(rows[i].last().expect("one root"))
        });
        if inputs.mode == Mode::Train {
            self.cache = rows;
        }
        Ok(vec![Outputs::new(y.into_dyn())])
    }
    fn infer(&self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, rnnkit::Error> {
        let x: &ArrayD<f64> = &inputs.xs[0];
        let mut y = Array2::zeros((x.shape()[0], 1));
        for (i, row) in x.outer_iter().enumerate() {
            let nodes = self.run(row)?;
            y[[i, 0]] = self.readout(nodes.last().expect("one root"));
        }
        Ok(vec![Outputs::new(y.into_dyn())])
    }
    /// Backpropagation through structure: from the root down, each node's gradient goes to
    /// its children through the shared composition, and to its digit's embedding.
    fn backward(
        &mut self,
        grads: &[OutputGrads<'_, f64>],
    ) -> Result<Vec<ArrayD<f64>>, rnnkit::Error> {
        let dy = grads[0].dy;
        let rows = std::mem::take(&mut self.cache);
        if rows.len() != dy.shape()[0] {
            return Err(rnnkit::Error::NoCache {
                layer: "tree_net".into(),
            });
        }
        let h = self.h;
        let w = self.w.value().clone();
        let v = self.v.value().clone();
        let mut de = ArrayD::zeros(self.e.value().raw_dim());
        let mut dw = ArrayD::zeros(w.raw_dim());
        let mut db = ArrayD::zeros(IxDyn(&[h]));
        let mut dv = ArrayD::zeros(IxDyn(&[h]));
        let mut dc = ArrayD::zeros(IxDyn(&[1]));
        for (i, nodes) in rows.iter().enumerate() {
            let g = dy[[i, 0]];
            let root = nodes.len() - 1;
            let mut dh: Vec<Array1<f64>> = vec![Array1::zeros(h); nodes.len()];
            for j in 0..h {
                dv[[j]] += g * nodes[root].h[j];
                dh[root][j] = g * v[[j]];
            }
            dc[[0]] += g;
            // Postfix order: every child comes before its parent.
            for n in (0..nodes.len()).rev() {
                let node = &nodes[n];
                match node.children {
                    None => {
                        for j in 0..h {
                            de[[node.token, j]] += dh[n][j];
                        }
                    }
                    Some((l, r)) => {
                        let dz: Array1<f64> = &dh[n] * &node.h.mapv(|a| 1.0 - a * a);
                        let op = 2 * h + usize::from(node.token == MINUS);
                        for j in 0..h {
                            db[[j]] += dz[j];
                            dw[[op, j]] += dz[j];
                            for k in 0..h {
                                dw[[k, j]] += nodes[l].h[k] * dz[j];
                                dw[[h + k, j]] += nodes[r].h[k] * dz[j];
                                dh[l][k] += w[[k, j]] * dz[j];
                                dh[r][k] += w[[h + k, j]] * dz[j];
                            }
                        }
                    }
                }
            }
        }
        self.e.add_grad(&de)?;
        self.w.add_grad(&dw)?;
        self.b.add_grad(&db)?;
        self.v.add_grad(&dv)?;
        self.c.add_grad(&dc)?;
        // Token ids take no gradient.
        Ok(vec![ArrayD::zeros(IxDyn(&[rows.len(), MAX_LEN]))])
    }
}

/// Central differences against `backward` for every weight, on a few trees: the largest
/// relative error (`|a − n| / max(|a| + |n|, 1e-4)`).
fn gradient_check(seed: u64) -> Result<f64, rnnkit::Error> {
    let (x, _) = data(6, &[1, 2, 3], seed + 1);
    let x = x.mapv(|t| t as f64).into_dyn();
    let mut net = TreeNet::new(4, seed);
    let r = ArrayD::from_shape_fn(IxDyn(&[6, 1]), |i| 0.3 + 0.1 * i[0] as f64);
    let loss = |net: &TreeNet| -> Result<f64, rnnkit::Error> {
        Ok((&net.infer(Inputs::new(&x))?[0].output * &r).sum())
    };
    net.forward(Inputs::new(&x).mode(Mode::Train))?;
    net.zero_grad();
    net.backward(&[OutputGrads::new(&r)])?;
    let mut grads = Vec::new();
    net.visit_params(&mut |_, p| grads.push(p.grad().clone()));
    let mut worst = 0.0f64;
    for (pi, g) in grads.iter().enumerate() {
        for idx in 0..g.len() {
            let mut at = |d: f64| -> Result<f64, rnnkit::Error> {
                let mut k = 0;
                net.visit_params_mut(&mut |_, p| {
                    if k == pi {
                        p.value_mut().as_slice_mut().expect("standard layout")[idx] += d;
                    }
                    k += 1;
                });
                let l = loss(&net);
                let mut k = 0;
                net.visit_params_mut(&mut |_, p| {
                    if k == pi {
                        p.value_mut().as_slice_mut().expect("standard layout")[idx] -= d;
                    }
                    k += 1;
                });
                l
            };
            let h = 1e-6;
            let numeric = (at(h)? - at(-h)?) / (2.0 * h);
            let a = g.as_slice().expect("standard layout")[idx];
            worst = worst.max((a - numeric).abs() / (a.abs() + numeric.abs()).max(1e-4));
        }
    }
    Ok(worst)
}

fn mae(p: &ArrayD<f64>, y: &ArrayD<f64>) -> f64 {
    p.iter()
        .zip(y.iter())
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        * SCALE
        / y.len() as f64
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("recursive_net", 60);
    let worst = gradient_check(args.seed)?;
    println!(
        "gradient check (backpropagation through structure vs central differences): max relative error {worst:.1e}"
    );
    if worst > 1e-6 {
        return Err(rnnkit::Error::Data(format!(
            "gradient check failed: {worst:e}"
        )));
    }
    let n = if args.quick { 512 } else { 4096 };
    let (x, y) = data(n, &[1, 2, 3], args.seed);

    // The tree network, a user-defined model, through the Trainer.
    let mut tree = TreeNet::new(16, args.seed);
    let mut t = Trainer::new(Adam::new(0.01), Loss::Mse)
        .epochs(args.epochs)
        .batch_size(32)
        .seed(args.seed);
    let start = std::time::Instant::now();
    let th = t.fit(&mut tree, (&x, &y))?; // integer token ids, as they are
    let tree_s = start.elapsed().as_secs_f64();

    // The LSTM on the same tokens, as integer ids shifted by one so that 0 is the padding
    // its Embedding masks.
    let shift = |x: &Array2<usize>| x.mapv(|t| if t == PAD { 0 } else { t + 1 });
    let mut lstm = Sequential::<f64>::new(&[MAX_LEN])
        .seed(args.seed)
        .push(EmbeddingConfig::new(VOCAB, 16).mask_zero(true))?
        .push(LstmConfig::new(32))?
        .push(DenseConfig::new(1))?;
    let mut t = Trainer::new(Adam::new(0.005), Loss::Mse)
        .epochs(args.epochs)
        .batch_size(32)
        .seed(args.seed);
    let start = std::time::Instant::now();
    let lh = t.fit(&mut lstm, (&shift(&x), &y))?;
    let lstm_s = start.elapsed().as_secs_f64();
    println!(
        "trained {} epochs: tree net {tree_s:.1} s (final loss {:.4}), LSTM {lstm_s:.1} s (final loss {:.4})",
        args.epochs,
        th.loss().last().unwrap_or(&f64::NAN),
        lh.loss().last().unwrap_or(&f64::NAN)
    );

    let mut tree_pts = Vec::new();
    let mut lstm_pts = Vec::new();
    for depth in 1..=5 {
        let (xt, yt) = data(200, &[depth], args.seed + 100 + depth as u64);
        let pt = tree.predict(Inputs::from(&xt), 256)?.remove(0);
        let pl = lstm.predict(Inputs::from(&shift(&xt)), 256)?.remove(0);
        let (a, b) = (mae(&pt, &yt), mae(&pl, &yt));
        let seen = if depth <= 3 {
            ""
        } else {
            " (deeper than training)"
        };
        println!("depth {depth} tree_mae={a:.3} lstm_mae={b:.3}{seen}");
        tree_pts.push((depth as f64, a));
        lstm_pts.push((depth as f64, b));
    }
    common::line_plot(
        &args.path("mae_by_depth.svg"),
        "Mean absolute error of the value, by tree depth (training: depths 1–3)",
        "tree depth",
        "MAE",
        &[("tree net".into(), tree_pts), ("LSTM(32)".into(), lstm_pts)],
        false,
    );
    Ok(())
}
