//! Models: [`Sequential`], its architecture as data ([`ModelSpec`]) and its [`Summary`].

mod sequential;
mod spec;
mod summary;

pub use sequential::Sequential;
pub use spec::ModelSpec;
pub use summary::{Summary, SummaryRow};
