//! Errors of the peer protocol's messages.

use blyan_crypto::{Hash, SignatureError};
use blyan_wire::CodecError;

/// Why a message could not be encoded, decoded or accepted as well-formed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The bytes are not a valid encoding of the message (this includes a list whose
    /// announced length exceeds its cap: that is refused before anything is allocated).
    #[error("malformed message: {0}")]
    Decode(#[source] CodecError),
    /// The message could not be encoded (it exceeds the codec's limits).
    #[error("message cannot be encoded: {0}")]
    Encode(#[source] CodecError),
    /// A list has more items than the protocol allows.
    #[error("{what}: {len} items, at most {max} allowed")]
    TooMany {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The protocol's cap.
        max: usize,
    },
    /// A gossip envelope's origin signature does not verify.
    #[error("gossip message {id} has an invalid origin signature: {source}")]
    BadSignature {
        /// The message id.
        id: Hash,
        /// Why the signature failed.
        #[source]
        source: SignatureError,
    },
}
