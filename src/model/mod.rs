//! Models: [`Sequential`], its architecture as data ([`ModelSpec`]), its [`Summary`], and
//! streaming one step at a time ([`StreamState`]).

mod interface;
mod sequential;
mod spec;
mod stream;
mod summary;

pub use interface::{Forward, Model};
pub use sequential::Sequential;
pub use spec::ModelSpec;
pub use stream::StreamState;
pub use summary::{Summary, SummaryRow};
