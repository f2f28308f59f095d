//! Reservoir computing (notes 002): echo state networks of leaky units whose readout is
//! trained in one ridge-regression solve.
//!
//! - `config`: [`EsnConfig`], the options, checked before anything is allocated, and the
//!   seeded random reservoir;
//! - `esn`: [`EchoStateNetwork`], the ridge readout, open-loop prediction and closed-loop
//!   generation;
//! - `run`: the reservoir's time loop, its units split over threads when large;
//! - `model`: the network as a [`Model`](crate::Model), for batches of sequences.

pub mod config;
pub mod esn;
mod model;
mod run;

pub use config::EsnConfig;
pub use esn::{EchoStateNetwork, Reservoir};
