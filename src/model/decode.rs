//! Step-by-step decoding from trained layers, for seq2seq inference: greedy, sampling with
//! a temperature, beam search. Each generated token costs one decoder step, whatever was
//! generated before (the states carry the prefix).

use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::{Inputs, Mask};
use crate::model::{Functional, Model};
use crate::param::Module;
use ndarray::{Array2, Array3, ArrayD, Axis, IxDyn};
use ndarray_rand::rand::Rng;

/// A decoder run one step at a time: a graph model (built from the trained layers with
/// [`Graph::import`](crate::Graph::import)) whose inputs are `[token, states…,
/// context…]` and outputs `[probabilities, states…]`:
///
/// - `token`: `[batch, 1]` token ids (for an `Embedding`) or `[batch, 1, vocab]` one-hot;
/// - `states`: the recurrent states the step starts from, as many as it returns;
/// - `context`: inputs constant through the decode (the encoder's outputs, for
///   attention), with masks if given ([`DecodeState::with_mask`]);
/// - `probabilities`: `[batch, vocab]` or `[batch, 1, vocab]` (a softmax).
///
/// See `examples/seq2seq.rs` for the whole encoder-decoder with attention.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{model::DecodeState, model::StepDecoder};
/// # fn main() -> Result<(), rnnkit::Error> {
/// // An (untrained) decoder: token → Embedding → GRU(8) from h → softmax over 5 tokens.
/// let mut g = Graph::<f64>::new(0);
/// let tok = g.input("token", &[Some(1)])?;
/// let h = g.input("h", &[Some(8)])?;
/// let e = g.apply(&EmbeddingConfig::new(5, 4), tok)?;
/// let out = g.rnn(&GruConfig::new(8), e).initial_state(&[h]).call()?;
/// let p = g.apply(&DenseConfig::new(5).activation(Activation::Softmax), out.out)?;
/// let decoder = StepDecoder::new(g.build(&[tok, h], &[p, out.states[0]])?, 1)?;
/// let start = DecodeState::new(vec![rnnkit::ndarray::Array2::<f64>::zeros((1, 8)).into_dyn()], vec![]);
/// let greedy = decoder.greedy(start.clone(), 0, 4, 6)?;
/// assert!(greedy[0].len() <= 6);
/// let beams = decoder.beam_search(start, 0, 4, 6, 3)?;
/// assert!(beams.len() <= 3 && beams.windows(2).all(|w| w[0].1 >= w[1].1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StepDecoder<F: Float> {
    model: Functional<F>,
    states: usize,
    /// The vocabulary size of a one-hot token input; `None` for ids.
    one_hot: Option<usize>,
}

/// Where a batch of decodes stands: each row's recurrent states and its context.
///
/// ```
/// # fn main() -> Result<(), rnnkit::Error> {
/// use rnnkit::model::DecodeState;
/// use rnnkit::ndarray::{Array2, Array3};
/// // Two rows: h and c of 8 units, and encoder outputs of 5 steps to attend to, the second
/// // row's last two steps padding.
/// let mask = Array2::from_shape_fn((2, 5), |(r, t)| r == 0 || t < 3);
/// let s = DecodeState::new(
///     vec![Array2::<f32>::zeros((2, 8)).into_dyn(), Array2::<f32>::zeros((2, 8)).into_dyn()],
///     vec![Array3::<f32>::zeros((2, 5, 8)).into_dyn()],
/// )
/// .with_mask(0, mask)?;
/// # let _ = s;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DecodeState<F: Float> {
    states: Vec<ArrayD<F>>,
    context: Vec<ArrayD<F>>,
    masks: Vec<Option<Mask>>,
}

impl<F: Float> DecodeState<F> {
    /// States (`[batch, units]` each, in the decoder's input order) and context inputs.
    pub fn new(states: Vec<ArrayD<F>>, context: Vec<ArrayD<F>>) -> Self {
        let masks = vec![None; context.len()];
        DecodeState {
            states,
            context,
            masks,
        }
    }

    /// Gives context input `k` a `[batch, steps]` mask (the encoder's padding, for
    /// attention).
    ///
    /// # Errors
    /// [`Error::Mask`] when there is no context input `k`, or the mask is not
    /// `[batch, steps]` of that input.
    pub fn with_mask(mut self, k: usize, mask: Mask) -> Result<Self> {
        let Some(c) = self.context.get(k) else {
            return Err(Error::Mask {
                layer: "DecodeState".into(),
                reason: format!(
                    "a mask for context input {k}, but there are {} context inputs",
                    self.context.len()
                ),
            });
        };
        if c.ndim() < 2 || mask.dim() != (c.shape()[0], c.shape()[1]) {
            return Err(Error::Mask {
                layer: "DecodeState".into(),
                reason: format!(
                    "mask of shape {:?} for context input {k} of shape {:?}: expected \
                     [batch, steps]",
                    mask.shape(),
                    c.shape()
                ),
            });
        }
        self.masks[k] = Some(mask);
        Ok(self)
    }

    /// The rows `idx` of every array (beam search reorders and copies hypotheses).
    fn select(&self, idx: &[usize]) -> Self {
        DecodeState {
            states: self.states.iter().map(|a| a.select(Axis(0), idx)).collect(),
            context: self
                .context
                .iter()
                .map(|a| a.select(Axis(0), idx))
                .collect(),
            masks: self
                .masks
                .iter()
                .map(|m| m.as_ref().map(|m| m.select(Axis(0), idx)))
                .collect(),
        }
    }

    fn rows(&self) -> usize {
        self.states
            .iter()
            .chain(&self.context)
            .next()
            .map_or(0, |a| a.shape()[0])
    }
}

impl<F: Float> StepDecoder<F> {
    /// Wraps a step model with `states` state inputs and outputs (see [`StepDecoder`]).
    ///
    /// # Errors
    /// [`Error::Config`] when the model's inputs and outputs do not follow the convention:
    /// fewer than `1 + states` inputs, not `1 + states` outputs, a token input that is
    /// neither `[1]` nor `[1, vocab]`.
    pub fn new(model: Functional<F>, states: usize) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            layer: model.name().to_string(),
            field: "decoder",
            reason,
        };
        let want = states
            .checked_add(1)
            .ok_or_else(|| bad(format!("{states} states")))?;
        let (n_in, n_out) = (model.input_shapes().len(), model.output_shapes().len());
        if n_in < want || n_out != want {
            return Err(bad(format!(
                "a step decoder with {states} states takes [token, {states} states, context…] and \
                 gives [probabilities, {states} states]; this model takes {} inputs and gives {} outputs",
                n_in, n_out
            )));
        }
        let one_hot = match model.inputs()[0].1 {
            [Some(1)] => None,
            [Some(1), Some(v)] => Some(*v),
            other => {
                return Err(bad(format!(
                    "the token input must be [1] (ids) or [1, vocab] (one-hot), got {}",
                    crate::layers::format_shape(other)
                )));
            }
        };
        Ok(StepDecoder {
            model,
            states,
            one_hot,
        })
    }

    /// One step for every row: the previous tokens in, the next tokens' probabilities
    /// `[rows, vocab]` out; `state` moves on by one step.
    ///
    /// # Errors
    /// [`Error::Shape`] for a token count other than the state's rows or a state of the
    /// wrong count; a token beyond a one-hot vocabulary; the model's errors (state
    /// unchanged then).
    pub fn step(&self, tokens: &[usize], state: &mut DecodeState<F>) -> Result<Array2<F>> {
        let rows = state.rows();
        if tokens.len() != rows || state.states.len() != self.states {
            return Err(Error::Shape {
                layer: self.model.name().to_string(),
                what: "tokens and states",
                expected: format!("{rows} tokens and {} states", self.states),
                got: vec![tokens.len(), state.states.len()],
            });
        }
        let token = match self.one_hot {
            None => ArrayD::from_shape_fn(IxDyn(&[rows, 1]), |i| F::c(tokens[i[0]] as f64)),
            Some(v) => {
                if let Some(&t) = tokens.iter().find(|&&t| t >= v) {
                    return Err(Error::Config {
                        layer: self.model.name().to_string(),
                        field: "token",
                        reason: format!("token {t} is beyond the one-hot vocabulary of {v}"),
                    });
                }
                Array3::from_shape_fn((rows, 1, v), |(r, _, k)| {
                    if tokens[r] == k { F::one() } else { F::zero() }
                })
                .into_dyn()
            }
        };
        let xs: Vec<ArrayD<F>> = std::iter::once(token)
            .chain(state.states.iter().cloned())
            .chain(state.context.iter().cloned())
            .collect();
        let masks: Vec<Option<&Mask>> = std::iter::repeat_n(None, 1 + self.states)
            .chain(state.masks.iter().map(|m| m.as_ref()))
            .collect();
        let refs: Vec<&ArrayD<F>> = xs.iter().collect();
        let mut out = self.model.infer(Inputs::list(&refs).masks(&masks))?;
        let probs = out.remove(0).output;
        let vocab = probs.shape().last().copied().unwrap_or(0);
        let probs = probs
            .into_shape_with_order((rows, vocab))
            .map_err(|e| Error::Shape {
                layer: self.model.name().to_string(),
                what: "probabilities",
                expected: format!("[{rows}, vocab] or [{rows}, 1, vocab] ({e})"),
                got: vec![],
            })?;
        state.states = out.into_iter().map(|f| f.output).collect();
        Ok(probs)
    }

    /// Greedy decoding: from `start`, the most probable token at each step, until `end`
    /// (not included) or `max_len` tokens, for every row of `state`.
    ///
    /// # Errors
    /// As [`StepDecoder::step`].
    pub fn greedy(
        &self,
        state: DecodeState<F>,
        start: usize,
        end: usize,
        max_len: usize,
    ) -> Result<Vec<Vec<usize>>> {
        self.generate(state, start, end, max_len, |p| argmax(p))
    }

    /// Sampling: each token drawn from the probabilities sharpened or flattened by
    /// `temperature` (`p^(1/T)`, renormalised; `T → 0` approaches greedy).
    ///
    /// # Errors
    /// As [`StepDecoder::step`]; [`Error::Config`] for a temperature that is not positive
    /// and finite.
    pub fn sample(
        &self,
        state: DecodeState<F>,
        start: usize,
        end: usize,
        max_len: usize,
        temperature: f64,
        rng: &mut StdRng,
    ) -> Result<Vec<Vec<usize>>> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(Error::Config {
                layer: self.model.name().to_string(),
                field: "temperature",
                reason: format!("expected a positive finite number, got {temperature}"),
            });
        }
        self.generate(state, start, end, max_len, |p| {
            let w: Vec<f64> = p
                .iter()
                .map(|v| v.to_f64().unwrap_or(0.0).max(0.0).powf(1.0 / temperature))
                .collect();
            let total: f64 = w.iter().sum();
            let mut u = rng.random::<f64>() * total;
            for (k, wk) in w.iter().enumerate() {
                if u < *wk {
                    return k;
                }
                u -= wk;
            }
            argmax(p)
        })
    }

    fn generate(
        &self,
        mut state: DecodeState<F>,
        start: usize,
        end: usize,
        max_len: usize,
        mut pick: impl FnMut(ndarray::ArrayView1<'_, F>) -> usize,
    ) -> Result<Vec<Vec<usize>>> {
        let rows = state.rows();
        let mut tokens = vec![start; rows];
        let mut out = vec![Vec::new(); rows];
        let mut done = vec![false; rows];
        for _ in 0..max_len {
            if done.iter().all(|d| *d) {
                break;
            }
            let probs = self.step(&tokens, &mut state)?;
            for (r, p) in probs.rows().into_iter().enumerate() {
                if done[r] {
                    continue;
                }
                let t = pick(p);
                if t == end {
                    done[r] = true;
                } else {
                    out[r].push(t);
                }
                tokens[r] = t;
            }
        }
        Ok(out)
    }

    /// Beam search of width `width` from one row of `state`: the `width` most probable
    /// sequences (total log-probability, no length normalisation), best first; a
    /// hypothesis ends at `end` (not included) or after `max_len` tokens.
    ///
    /// # Errors
    /// As [`StepDecoder::step`]; [`Error::Config`] for `width` 0 or a state of other than
    /// one row.
    pub fn beam_search(
        &self,
        state: DecodeState<F>,
        start: usize,
        end: usize,
        max_len: usize,
        width: usize,
    ) -> Result<Vec<(Vec<usize>, f64)>> {
        if width == 0 || state.rows() != 1 {
            return Err(Error::Config {
                layer: self.model.name().to_string(),
                field: "beam_search",
                reason: format!(
                    "needs a width ≥ 1 and one row of state, got width {width} and {} rows",
                    state.rows()
                ),
            });
        }
        // Live hypotheses: (tokens, log-probability); row i of `state` is hypothesis i's.
        let mut live: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), 0.0)];
        if max_len == 0 {
            // No token may be taken: the one hypothesis is the empty sequence.
            return Ok(live);
        }
        let mut state = state;
        let mut finished: Vec<(Vec<usize>, f64)> = Vec::new();
        for step in 0..max_len {
            let last: Vec<usize> = live
                .iter()
                .map(|(t, _)| t.last().copied().unwrap_or(start))
                .collect();
            let probs = self.step(&last, &mut state)?;
            let mut cand: Vec<(f64, usize, usize)> = Vec::new();
            for (h, p) in probs.rows().into_iter().enumerate() {
                for (k, v) in p.iter().enumerate() {
                    let lp = v.to_f64().unwrap_or(0.0).max(f64::MIN_POSITIVE).ln();
                    cand.push((live[h].1 + lp, h, k));
                }
            }
            cand.sort_by(|a, b| b.0.total_cmp(&a.0));
            // The best `width` continuations; those that end are finished hypotheses.
            let mut next = Vec::new();
            let mut rows = Vec::new();
            for (lp, h, k) in cand {
                if next.len() == width {
                    break;
                }
                if k == end {
                    finished.push((live[h].0.clone(), lp));
                } else {
                    let mut t = live[h].0.clone();
                    t.push(k);
                    next.push((t, lp));
                    rows.push(h);
                }
            }
            finished.sort_by(|a, b| b.1.total_cmp(&a.1));
            finished.truncate(width);
            // Log-probabilities only fall: no live hypothesis can beat `width` finished
            // ones that are all better than the best of them.
            let beaten = finished.len() == width
                && next.first().is_none_or(|b| b.1 <= finished[width - 1].1);
            if beaten || next.is_empty() {
                break;
            }
            if step + 1 == max_len {
                finished.extend(next);
                break;
            }
            state = state.select(&rows);
            live = next;
        }
        finished.sort_by(|a, b| b.1.total_cmp(&a.1));
        finished.truncate(width);
        Ok(finished)
    }
}

/// The index of the largest entry.
fn argmax<F: Float>(p: ndarray::ArrayView1<'_, F>) -> usize {
    p.iter()
        .enumerate()
        .fold((0, F::neg_infinity()), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}
