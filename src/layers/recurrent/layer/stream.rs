//! A recurrent layer's [`LayerState`]: the states a `stateful` layer carries, its dropout
//! streams, and one streaming step.

use super::Recurrent;
use crate::error::{Error, Result};
use crate::layers::recurrent::cell::Cell;
use crate::layers::recurrent::state::{gather_states, scatter_states};
use crate::layers::{LayerState, StepWork, ensure};
use crate::linalg::few_rows_mm;
use ndarray::{Array2, ArrayView2, s};

impl<C: Cell> LayerState<C::F> for Recurrent<C> {
    fn streams(&self) -> bool {
        // A layer going backwards reads the last step first: it needs the whole sequence.
        !self.cfg().go_backwards
    }
    fn step(
        &self,
        x: ArrayView2<'_, C::F>,
        states: &mut [Array2<C::F>],
        work: &mut StepWork<C::F>,
        out: &mut Array2<C::F>,
    ) -> Result<()> {
        let (b, f) = x.dim();
        if f != self.cell.input_dim() {
            return Err(Error::Features {
                layer: self.lname().to_string(),
                expected: self.cell.input_dim(),
                got: f,
            });
        }
        if b == 0 {
            return Err(crate::layers::empty(self.lname(), "input", x.shape()));
        }
        let cell = &self.cell;
        let (u, blocks) = (cell.units(), cell.state_blocks());
        let (g, sw, cw) = (cell.gate_width(), cell.state_width(), cell.cache_width());
        let [xw, prev, next, cache, scratch, _] = &mut work.bufs;
        gather_states(
            self.lname(),
            states,
            blocks,
            u,
            b,
            false, // a stream's own states: checked when they came in
            ensure(prev, (b, sw)).view_mut(),
        )?;
        let w = cell.weights();
        few_rows_mm(
            x,
            w.kernel.v2(),
            w.input_bias(),
            ensure(xw, (b, g)).view_mut(),
        );
        cell.prepare(false);
        cell.step(
            xw.view(),
            prev.view(),
            ensure(next, (b, sw)).view_mut(),
            ensure(cache, (b, cw)).view_mut(),
            ensure(scratch, (b, g)),
        );
        for (i, st) in states.iter_mut().enumerate() {
            st.assign(&next.slice(s![.., i * u..(i + 1) * u]));
        }
        ensure(out, (b, u)).assign(&next.slice(s![.., ..u]));
        Ok(())
    }
    fn zero_states(&self, batch: usize) -> Result<Vec<Array2<C::F>>> {
        crate::layers::check_output_size(self.lname(), &[batch, self.cell.units()])?;
        Ok(vec![
            Array2::zeros((batch, self.cell.units()));
            self.cell.state_blocks()
        ])
    }
    fn reset_states(&mut self) {
        self.carried.reset();
    }
    fn states(&self) -> Vec<Array2<C::F>> {
        let mut out = Vec::new();
        if let Some(s) = self.carried.get() {
            scatter_states(
                s.view(),
                self.cell.state_blocks(),
                self.cell.units(),
                &mut out,
            );
        }
        out
    }
    fn set_states(&mut self, states: Option<&[Array2<C::F>]>) -> Result<()> {
        if !self.cfg().stateful {
            return Err(Error::Unsupported {
                layer: self.lname().to_string(),
                reason: "only a stateful layer carries states between calls \
                         (build it with .stateful(true))"
                    .into(),
            });
        }
        let Some(states) = states else {
            self.carried.set(None);
            return Ok(());
        };
        let (blocks, u) = (self.cell.state_blocks(), self.cell.units());
        let b = states.first().map_or(0, |s| s.nrows());
        let mut block = Array2::zeros((b, blocks * u));
        gather_states(self.lname(), states, blocks, u, b, true, block.view_mut())?;
        self.carried.set(Some(block));
        Ok(())
    }
    fn rng_state(&self) -> Vec<u64> {
        self.masks.state().to_vec()
    }
    fn set_rng_state(&mut self, state: &[u64]) -> Result<()> {
        let name = self.lname().to_string();
        self.masks.set_state(&name, state)
    }
}
