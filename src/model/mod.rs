//! Models: [`Sequential`], its architecture as data ([`ModelSpec`]) and its [`Summary`].

mod interface;
mod sequential;
mod spec;
mod summary;

pub use interface::{Forward, Model};
pub use sequential::Sequential;
pub use spec::ModelSpec;
pub use summary::{Summary, SummaryRow};
