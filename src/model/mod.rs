//! Models: [`Sequential`] and its [`Summary`].

mod sequential;
mod summary;

pub use sequential::Sequential;
pub use summary::{Summary, SummaryRow};
