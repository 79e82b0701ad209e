//! blyan-crypto (being written; see the crate's issue).

mod peer_id;

pub use peer_id::PeerId;
