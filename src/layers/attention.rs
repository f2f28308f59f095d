//! `Attention` (Luong: dot or concat scores) and `AdditiveAttention` (Bahdanau), as in
//! Keras 3: a layer called on `[query, value]` or `[query, value, key]`.

use super::{Dim, Layer, LayerConfig, Mask, Mode, check_dy, wrong_input};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::layers::call::{self};
use crate::param::{Module, Param};
use ndarray::{Array2, Array3, ArrayD, ArrayView3, Axis, Ix3, IxDyn};

/// How `Attention` scores a query against a key.
///
/// ```
/// use rnnkit::{AttentionConfig, layers::ScoreMode};
/// let c: AttentionConfig = serde_json::from_str(r#"{"score_mode": "concat"}"#).unwrap();
/// assert_eq!(c.score_mode, ScoreMode::Concat);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMode {
    /// `S = Q·Kᵀ` (times `scale` with `use_scale`).
    #[default]
    Dot,
    /// `S = w·Σ_d tanh(Q + K)` (`tanh(scale·(Q + K))` with `use_scale`).
    Concat,
}

/// Configuration of an [`Attention`] layer, Keras's `keras.layers.Attention` (Luong).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{AttentionConfig, layers::ScoreMode};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let q = g.input("query", &[None, Some(4)])?;
/// let v = g.input("value", &[None, Some(4)])?;
/// let ctx = g.apply_list(&AttentionConfig::new().score_mode(ScoreMode::Concat), &[q, v])?;
/// assert_eq!(g.shape(ctx)?, vec![None, Some(4)]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Learn a scalar `scale` (initialised to 1). Keras default `false`.
    #[serde(default)]
    pub use_scale: bool,
    /// Dot or concat scores. Keras default dot.
    #[serde(default)]
    pub score_mode: ScoreMode,
}

impl AttentionConfig {
    /// Keras's defaults: dot scores, no scale.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `use_scale`.
    pub fn use_scale(mut self, v: bool) -> Self {
        self.use_scale = v;
        self
    }
    /// Sets `score_mode`.
    pub fn score_mode(mut self, m: ScoreMode) -> Self {
        self.score_mode = m;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Configuration of an additive ([`Attention`] with Bahdanau scores) layer, Keras's
/// `keras.layers.AdditiveAttention`: `S = Σ_d scale_d·tanh(Q_d + K_d)`.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::AdditiveAttentionConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let q = g.input("query", &[Some(2), Some(3)])?;
/// let v = g.input("value", &[Some(5), Some(3)])?;
/// let ctx = g.apply_list(&AdditiveAttentionConfig::new(), &[q, v])?;
/// assert_eq!(g.shape(ctx)?, vec![Some(2), Some(3)]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdditiveAttentionConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Learn `scale` `[d]` (glorot-uniform). Keras default `true`.
    #[serde(default = "crate::layers::yes")]
    pub use_scale: bool,
}

impl Default for AdditiveAttentionConfig {
    fn default() -> Self {
        AdditiveAttentionConfig {
            name: None,
            use_scale: true,
        }
    }
}

impl AdditiveAttentionConfig {
    /// Keras's defaults (`use_scale` true).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `use_scale`.
    pub fn use_scale(mut self, v: bool) -> Self {
        self.use_scale = v;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// The score function of an [`Attention`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Score {
    Dot,
    Concat,
    Additive,
}

/// Attention over a value sequence (Keras's `Attention` and `AdditiveAttention`, no
/// projection weights): scores `S [B, Tq, Tv]` of query against key, `S − 1e9` where the
/// value's mask is false, `A = softmax(S)` over the value steps, `O = A·V`, zero where the
/// query's mask is false; the output carries the query's mask. Called on a list:
/// `[query, value]` (key = value) or `[query, value, key]`, through
/// [`Graph::apply_list`](crate::Graph::apply_list).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{AttentionConfig, LayerConfig};
/// use rnnkit::ndarray::Array3;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let config = AttentionConfig::new();
/// let mut att = LayerConfig::<f64>::build(&config, &[None, Some(2)], &mut seeded_rng(0))?;
/// let q = Array3::from_elem((1, 1, 2), 1.0).into_dyn();
/// let v = rnnkit::ndarray::array![[[1.0, 0.0], [0.0, 1.0]]].into_dyn();
/// // Equal scores: the mean of the two values.
/// let o = att.forward(Inputs::list(&[&q, &v]))?.output;
/// assert_eq!(o, rnnkit::ndarray::array![[[0.5, 0.5]]].into_dyn());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Attention<F: Float> {
    name: String,
    score: Score,
    /// `scale`: `[]` for Attention, `[d]` for AdditiveAttention.
    scale: Option<Param<F>>,
    /// `concat_score_weight` `[]` (concat scores only).
    concat: Option<Param<F>>,
    cache: Option<Cache<F>>,
}

/// What backward needs of a training pass.
#[derive(Debug, Clone)]
struct Cache<F> {
    q: Array3<F>,
    v: Array3<F>,
    k: Array3<F>,
    /// Softmax weights `[B, Tq, Tv]`.
    a: Array3<F>,
    q_mask: Option<Mask>,
    key_given: bool,
}

fn scalar<F: Float>(v: F) -> Param<F> {
    Param::new(ArrayD::from_elem(IxDyn(&[]), v))
}

impl<F: Float> LayerConfig<F> for AttentionConfig {
    fn build(&self, input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self.name.clone().unwrap_or_else(|| "attention".into());
        if input.len() != 2 {
            return Err(wrong_input(
                &name,
                "attention needs [batch, steps, features]",
                input,
            ));
        }
        Ok(Box::new(Attention {
            name,
            score: match self.score_mode {
                ScoreMode::Dot => Score::Dot,
                ScoreMode::Concat => Score::Concat,
            },
            scale: self.use_scale.then(|| scalar(F::one())),
            concat: (self.score_mode == ScoreMode::Concat).then(|| scalar(F::one())),
            cache: None,
        }))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "attention"
    }
}

impl<F: Float> LayerConfig<F> for AdditiveAttentionConfig {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| "additive_attention".into());
        let d = match input {
            [_, Some(d)] => *d,
            _ => {
                return Err(wrong_input(
                    &name,
                    "additive attention needs [batch, steps, features] with known features",
                    input,
                ));
            }
        };
        super::check_weight_size(&name, "scale", &[d])?;
        Ok(Box::new(Attention {
            name,
            score: Score::Additive,
            scale: self
                .use_scale
                .then(|| Param::new(Init::GlorotUniform.sample::<F>(&[d], rng))),
            concat: None,
            cache: None,
        }))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "additive_attention"
    }
}

impl<F: Float> Attention<F> {
    /// Attention's scalar `scale` (1 without one, and for AdditiveAttention's vector).
    fn scale_scalar(&self) -> F {
        match &self.scale {
            Some(p) if p.value().ndim() == 0 => p.value()[[]],
            _ => F::one(),
        }
    }

    /// `[query, value(, key)]` as rank-3 views, checked against each other.
    fn views<'a>(&self, xs: &[&'a ArrayD<F>]) -> Result<[ArrayView3<'a, F>; 3]> {
        if !(2..=3).contains(&xs.len()) {
            return Err(Error::Unsupported {
                layer: self.name.clone(),
                reason: format!(
                    "attention takes [query, value] or [query, value, key], got {} tensors",
                    xs.len()
                ),
            });
        }
        let mut v3 = Vec::new();
        for (x, what) in xs.iter().zip(["query", "value", "key"]) {
            v3.push(
                x.view()
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| Error::Rank {
                        layer: self.name.clone(),
                        expected: format!("3 for the {what}"),
                        layout: "[batch, steps, features]",
                        got: x.ndim(),
                        shape: x.shape().to_vec(),
                    })?,
            );
        }
        let mut it = v3.into_iter();
        let (q, v) = (it.next().expect("two"), it.next().expect("two"));
        let k = it.next().unwrap_or(v);
        let (b, _, d) = q.dim();
        let bad = |what: &str| Error::Incompatible {
            layer: self.name.clone(),
            previous: "its inputs".into(),
            reason: format!(
                "{what}: query {:?}, value {:?}, key {:?}",
                q.shape(),
                v.shape(),
                k.shape()
            ),
        };
        if v.dim().0 != b || k.dim().0 != b {
            return Err(bad("batch sizes differ"));
        }
        if k.dim().1 != v.dim().1 {
            return Err(bad("key and value have different steps"));
        }
        if k.dim().2 != d {
            return Err(bad("query and key have different features"));
        }
        if let (Score::Additive, Some(s)) = (self.score, &self.scale)
            && s.value().len() != d
        {
            return Err(bad("the query's features differ from the layer's scale"));
        }
        Ok([q, v, k])
    }

    /// Scores `[B, Tq, Tv]` (before masking).
    fn scores(&self, q: &ArrayView3<'_, F>, k: &ArrayView3<'_, F>) -> Array3<F> {
        let (b, tq, d) = q.dim();
        let tv = k.dim().1;
        let mut sc = Array3::<F>::zeros((b, tq, tv));
        for bi in 0..b {
            let (qb, kb) = (q.index_axis(Axis(0), bi), k.index_axis(Axis(0), bi));
            let mut out = sc.index_axis_mut(Axis(0), bi);
            match self.score {
                Score::Dot => {
                    out.assign(&qb.dot(&kb.t()));
                    if self.scale.is_some() {
                        out.mapv_inplace(|v| v * self.scale_scalar());
                    }
                }
                Score::Concat | Score::Additive => {
                    let c = self.scale_scalar();
                    let w = self.concat.as_ref().map_or(F::one(), |p| p.value()[[]]);
                    let sv = self.scale.as_ref().map(|p| p.value());
                    for i in 0..tq {
                        for j in 0..tv {
                            let mut acc = F::zero();
                            for di in 0..d {
                                let pre = qb[[i, di]] + kb[[j, di]];
                                acc += match (self.score, sv) {
                                    (Score::Additive, Some(s)) => s[[di]] * pre.tanh(),
                                    (Score::Additive, None) => pre.tanh(),
                                    _ => (c * pre).tanh(),
                                };
                            }
                            out[[i, j]] = if self.score == Score::Concat {
                                w * acc
                            } else {
                                acc
                            };
                        }
                    }
                }
            }
        }
        sc
    }

    fn run(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<(ArrayD<F>, Cache<F>)> {
        let [q, v, k] = self.views(xs)?;
        let (b, tq, _) = q.dim();
        let tv = v.dim().1;
        let mask_at = |i: usize, what: &str, steps: usize| -> Result<Option<Mask>> {
            match masks.get(i).copied().flatten() {
                Some(m) if m.dim() != (b, steps) => Err(Error::Mask {
                    layer: self.name.clone(),
                    reason: format!(
                        "the {what}'s mask is {:?}, expected [{b}, {steps}]",
                        m.dim()
                    ),
                }),
                m => Ok(m.cloned()),
            }
        };
        let q_mask = mask_at(0, "query", tq)?;
        let v_mask = mask_at(1, "value", tv)?;
        let mut a = self.scores(&q, &k);
        if let Some(vm) = &v_mask {
            for ((bi, _, j), s) in a.indexed_iter_mut() {
                if !vm[[bi, j]] {
                    *s -= F::c(1e9);
                }
            }
        }
        for mut row in a.rows_mut() {
            let max = row.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row.mapv_inplace(|v| v / sum);
        }
        let mut o = Array3::<F>::zeros((b, tq, v.dim().2));
        for bi in 0..b {
            o.index_axis_mut(Axis(0), bi)
                .assign(&a.index_axis(Axis(0), bi).dot(&v.index_axis(Axis(0), bi)));
        }
        if let Some(qm) = &q_mask {
            for ((bi, i, _), x) in o.indexed_iter_mut() {
                if !qm[[bi, i]] {
                    *x = F::zero();
                }
            }
        }
        let cache = Cache {
            q: q.to_owned(),
            v: v.to_owned(),
            k: k.to_owned(),
            a,
            q_mask,
            key_given: xs.len() == 3,
        };
        Ok((o.into_dyn(), cache))
    }

    fn single_input(&self) -> Error {
        Error::Unsupported {
            layer: self.name.clone(),
            reason: "attention is called on a list: [query, value] or [query, value, key] \
                     (Graph::apply_list)"
                .into(),
        }
    }
}

impl<F: Float> Layer<F> for Attention<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        match self.score {
            Score::Additive => "AdditiveAttention",
            _ => "Attention",
        }
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        Box::new(self.clone())
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        let name = Some(self.name.clone());
        Some(match self.score {
            Score::Additive => super::LayerSpec::AdditiveAttention(AdditiveAttentionConfig {
                name,
                use_scale: self.scale.is_some(),
            }),
            s => super::LayerSpec::Attention(AttentionConfig {
                name,
                use_scale: self.scale.is_some(),
                score_mode: if s == Score::Concat {
                    ScoreMode::Concat
                } else {
                    ScoreMode::Dot
                },
            }),
        })
    }
    call::layer_call!(F);
}

impl<F: Float> call::Parts<F> for Attention<F> {
    fn takes_list(&self) -> bool {
        true
    }
    fn shape_x(&self, _input: &[Dim]) -> Result<Vec<Dim>> {
        Err(self.single_input())
    }
    fn shape_xs(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
        let ok = (2..=3).contains(&inputs.len()) && inputs.iter().all(|s| s.len() == 2);
        if !ok {
            return Err(Error::Incompatible {
                layer: self.name.clone(),
                previous: "its inputs".into(),
                reason: format!(
                    "attention takes [query, value(, key)] of [batch, steps, features], got {}",
                    inputs
                        .iter()
                        .map(|s| super::format_shape(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let (q, v) = (&inputs[0], &inputs[1]);
        let k = inputs.get(2).unwrap_or(v);
        let clash = |a: Dim, b: Dim| a.is_some() && b.is_some() && a != b;
        if clash(q[1], k[1]) || clash(k[0], v[0]) {
            return Err(Error::Incompatible {
                layer: self.name.clone(),
                previous: "its inputs".into(),
                reason: format!(
                    "query {} and key {} need the same features, key and value {} the same steps",
                    super::format_shape(q),
                    super::format_shape(k),
                    super::format_shape(v)
                ),
            });
        }
        Ok(vec![q[0], v[1]])
    }
    fn forward_x(&mut self, _x: &ArrayD<F>, _m: Option<&Mask>, _mode: Mode) -> Result<ArrayD<F>> {
        Err(self.single_input())
    }
    fn forward_xs(
        &mut self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
        mode: Mode,
    ) -> Result<ArrayD<F>> {
        self.cache = None;
        let (o, cache) = self.run(xs, masks)?;
        if mode == Mode::Train {
            self.cache = Some(cache);
        }
        Ok(o)
    }
    fn infer_xs(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<ArrayD<F>> {
        self.run(xs, masks).map(|(o, _)| o)
    }
    fn mask_xs(&self, _xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Option<Mask> {
        masks.first().copied().flatten().cloned()
    }
    fn backward_x(&mut self, _dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        Err(self.single_input())
    }
    fn backward_xs(&mut self, dy: &ArrayD<F>) -> Result<Vec<ArrayD<F>>> {
        let Some(c) = self.cache.as_ref() else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        let (b, tq, d) = c.q.dim();
        let (tv, dv) = (c.v.dim().1, c.v.dim().2);
        check_dy(&self.name, dy, &[b, tq, dv])?;
        let mut d_o = dy
            .view()
            .into_dimensionality::<Ix3>()
            .expect("checked")
            .to_owned();
        if let Some(qm) = &c.q_mask {
            for ((bi, i, _), x) in d_o.indexed_iter_mut() {
                if !qm[[bi, i]] {
                    *x = F::zero();
                }
            }
        }
        let (mut dq, mut dk, mut dv_) = (
            Array3::<F>::zeros((b, tq, d)),
            Array3::<F>::zeros((b, tv, d)),
            Array3::<F>::zeros((b, tv, dv)),
        );
        let (mut g_scale, mut g_concat) = (
            self.scale
                .as_ref()
                .map(|p| ArrayD::<F>::zeros(p.value().raw_dim())),
            F::zero(),
        );
        let c_scale = self.scale_scalar();
        let w = self.concat.as_ref().map_or(F::one(), |p| p.value()[[]]);
        for bi in 0..b {
            let (a, v, q, k) = (
                c.a.index_axis(Axis(0), bi),
                c.v.index_axis(Axis(0), bi),
                c.q.index_axis(Axis(0), bi),
                c.k.index_axis(Axis(0), bi),
            );
            let dob = d_o.index_axis(Axis(0), bi);
            dv_.index_axis_mut(Axis(0), bi).assign(&a.t().dot(&dob));
            let da = dob.dot(&v.t());
            // Softmax backward, row by row.
            let mut ds = Array2::<F>::zeros((tq, tv));
            for i in 0..tq {
                let dot: F = (0..tv).fold(F::zero(), |acc, j| acc + da[[i, j]] * a[[i, j]]);
                for j in 0..tv {
                    ds[[i, j]] = a[[i, j]] * (da[[i, j]] - dot);
                }
            }
            match self.score {
                Score::Dot => {
                    let s = c_scale;
                    let mut dqb = ds.dot(&k);
                    let mut dkb = ds.t().dot(&q);
                    if let Some(g) = &mut g_scale {
                        let raw = q.dot(&k.t());
                        g[[]] += (&ds * &raw).sum();
                        dqb.mapv_inplace(|x| x * s);
                        dkb.mapv_inplace(|x| x * s);
                    }
                    dq.index_axis_mut(Axis(0), bi).assign(&dqb);
                    dk.index_axis_mut(Axis(0), bi).assign(&dkb);
                }
                Score::Concat | Score::Additive => {
                    let sv = self.scale.as_ref().map(|p| p.value().clone());
                    for i in 0..tq {
                        for j in 0..tv {
                            let g = ds[[i, j]];
                            let mut sum_t = F::zero();
                            for di in 0..d {
                                let pre = q[[i, di]] + k[[j, di]];
                                let (t, dpre) = match (self.score, &sv) {
                                    (Score::Additive, sv) => {
                                        let t = pre.tanh();
                                        let sd = sv.as_ref().map_or(F::one(), |s| s[[di]]);
                                        if let Some(gs) = &mut g_scale {
                                            gs[[di]] += g * t;
                                        }
                                        (t, g * sd * (F::one() - t * t))
                                    }
                                    _ => {
                                        let t = (c_scale * pre).tanh();
                                        let dz = g * w * (F::one() - t * t);
                                        if let Some(gs) = &mut g_scale {
                                            gs[[]] += dz * pre;
                                        }
                                        (t, dz * c_scale)
                                    }
                                };
                                sum_t += t;
                                dq[[bi, i, di]] += dpre;
                                dk[[bi, j, di]] += dpre;
                            }
                            if self.score == Score::Concat {
                                g_concat += g * sum_t;
                            }
                        }
                    }
                }
            }
        }
        if let (Some(p), Some(g)) = (&mut self.scale, &g_scale) {
            p.add_grad(g)?;
        }
        if let Some(p) = &mut self.concat {
            p.add_grad(&ArrayD::from_elem(IxDyn(&[]), g_concat))?;
        }
        let mut grads = vec![dq.into_dyn()];
        if c.key_given {
            grads.push(dv_.into_dyn());
            grads.push(dk.into_dyn());
        } else {
            dv_ += &dk;
            grads.push(dv_.into_dyn());
        }
        Ok(grads)
    }
}

impl<F: Float> Module<F> for Attention<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        if let Some(p) = &self.scale {
            f("scale", p);
        }
        if let Some(p) = &self.concat {
            f("concat_score_weight", p);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        if let Some(p) = &mut self.scale {
            f("scale", p);
        }
        if let Some(p) = &mut self.concat {
            f("concat_score_weight", p);
        }
    }
}
