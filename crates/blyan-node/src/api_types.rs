//! The JSON shapes of the HTTP API. Hashes, keys, addresses, signatures and payloads are
//! lowercase hex strings; amounts and heights are JSON numbers (u64).
//!
//! These are the API's own types rather than the consensus types with serde: the API is a
//! public contract that should not move when an internal type gains a field.

use blyan_consensus::{AccountProof, Block, ForkChain, Header, SignedTransaction, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error: `{ "error": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    /// Always `ok` while the node serves requests.
    pub status: String,
}

/// `GET /api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// Node name (`NODE_ID`, or the peer id).
    pub name: String,
    /// `FULL`, `LIGHT` or `VALIDATOR`.
    pub role: String,
    /// Whether this node produces blocks.
    pub producing: bool,
    /// Node version.
    pub version: String,
    /// The node's peer id.
    pub peer_id: String,
    /// The node key's account address.
    pub address: String,
    /// Chain id.
    pub chain_id: u32,
    /// Genesis block hash.
    pub genesis_hash: String,
    /// Canonical tip height.
    pub height: u64,
    /// Canonical tip hash.
    pub tip_hash: String,
    /// Canonical tip slot.
    pub tip_slot: u64,
    /// Highest finalized height (null while the chain is shorter than the finality depth).
    pub finalized_height: Option<u64>,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Slot length in milliseconds.
    pub slot_duration_ms: u64,
    /// State root at the tip.
    pub state_root: String,
    /// Peers that completed the status exchange.
    pub peers: usize,
    /// Reorgs since the node started.
    pub reorgs: u64,
    /// Branches refused since start because they would revert more than
    /// `max_reorg_depth` blocks.
    pub reorgs_refused: u64,
}

/// One connected peer, in `GET /api/peers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    /// Its peer id.
    pub peer_id: String,
    /// Its address.
    pub addr: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Whether the status exchange completed.
    pub ready: bool,
    /// Its best height as last reported.
    pub best_height: u64,
    /// Its finalized height as last reported.
    pub finalized_height: u64,
    /// Its score: 0 is neutral, negative is bad.
    pub score: f64,
    /// Seconds since it connected.
    pub connected_secs: u64,
}

/// `GET /api/sync`: how far the node is behind its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncView {
    /// Whether the node is behind the best height a peer claims.
    pub syncing: bool,
    /// Local tip height.
    pub current_height: u64,
    /// Best height a peer claims (at least the local one).
    pub target_height: u64,
    /// `current / target`, 1 when caught up.
    pub progress_ratio: f64,
    /// Peers that delivered valid headers or bodies.
    pub peers_used: usize,
    /// Headers held ahead of the chain.
    pub held_headers: usize,
    /// Sync requests in flight.
    pub requests_in_flight: usize,
    /// Ready peers.
    pub peers: usize,
    /// Inbound connections.
    pub inbound: usize,
    /// Outbound connections.
    pub outbound: usize,
    /// Candidates known for dialling.
    pub candidates: usize,
    /// Peers banned now.
    pub banned: usize,
    /// Nodes in the DHT routing table.
    pub dht_nodes: usize,
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeaderView {
    /// Block format version.
    pub version: u32,
    /// Chain id.
    pub chain_id: u32,
    /// Height.
    pub height: u64,
    /// Slot.
    pub slot: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Parent block hash.
    pub parent_hash: String,
    /// Merkle root of the transaction hashes.
    pub tx_root: String,
    /// State root after the block.
    pub state_root: String,
    /// Producer's public key.
    pub producer: String,
}

/// A block with its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// Block hash.
    pub hash: String,
    /// The header.
    pub header: HeaderView,
    /// Producer's signature over the hash.
    pub signature: String,
    /// Whether the block is canonical and at least `finality_depth` deep.
    pub finalized: bool,
    /// The transactions, in block order.
    pub txs: Vec<TxView>,
}

/// A transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxView {
    /// Transaction hash.
    pub hash: String,
    /// The signed transaction.
    #[serde(flatten)]
    pub tx: TxBody,
}

/// A signed transaction, as `POST /api/tx` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxBody {
    /// Chain id the transaction is signed for.
    pub chain_id: u32,
    /// Sender's public key (64 hex characters).
    pub from: String,
    /// Recipient address (40 hex characters).
    pub to: String,
    /// Amount transferred.
    pub amount: u64,
    /// Fee paid to the producer.
    pub fee: u64,
    /// Sender's account nonce.
    pub nonce: u64,
    /// Payload, hex (may be empty).
    #[serde(default)]
    pub data: String,
    /// Signature over the transaction hash in the `tx` domain (128 hex characters).
    pub signature: String,
}

/// `POST /api/tx` accepted the transaction into the mempool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxAccepted {
    /// Transaction hash.
    pub hash: String,
}

/// `GET /api/accounts/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// The address.
    pub address: String,
    /// Balance.
    pub balance: u64,
    /// Next nonce.
    pub nonce: u64,
    /// Tip height the answer is for.
    pub height: u64,
    /// State root at that tip.
    pub state_root: String,
    /// With `?proof=true`: the sparse Merkle proof against `state_root`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proof: Option<ProofView>,
}

/// A sparse Merkle proof of an account (or of its absence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProofView {
    /// Sibling hashes from the leaf up.
    pub siblings: Vec<String>,
    /// The leaf met on the path, `[key, value hash]`, if any (absence proofs may end at
    /// another account's leaf).
    pub leaf: Option<Vec<String>>,
}

/// A live side branch (`GET /api/chain/forks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForkView {
    /// The canonical block the branch starts from.
    pub fork_point: String,
    /// Its height.
    pub fork_height: u64,
    /// The branch tip.
    pub tip: String,
    /// The branch tip's height.
    pub tip_height: u64,
    /// Blocks in the branch.
    pub length: u64,
}

impl From<&Header> for HeaderView {
    fn from(h: &Header) -> Self {
        Self {
            version: h.version,
            chain_id: h.chain_id,
            height: h.height,
            slot: h.slot,
            timestamp_ms: h.timestamp_ms,
            parent_hash: h.parent_hash.to_string(),
            tx_root: h.tx_root.to_string(),
            state_root: h.state_root.to_string(),
            producer: h.producer.to_string(),
        }
    }
}

impl From<&SignedTransaction> for TxView {
    fn from(signed: &SignedTransaction) -> Self {
        let tx = &signed.tx;
        Self {
            hash: signed.hash().to_string(),
            tx: TxBody {
                chain_id: tx.chain_id,
                from: tx.from.to_string(),
                to: tx.to.to_string(),
                amount: tx.amount,
                fee: tx.fee,
                nonce: tx.nonce,
                data: hex::encode(&tx.data),
                signature: signed.signature.to_string(),
            },
        }
    }
}

impl BlockView {
    /// The view of `block`.
    pub fn new(block: &Block, finalized: bool) -> Self {
        Self {
            hash: block.hash().to_string(),
            header: HeaderView::from(&block.header),
            signature: block.signature.to_string(),
            finalized,
            txs: block.txs.iter().map(TxView::from).collect(),
        }
    }
}

impl From<&ForkChain> for ForkView {
    fn from(f: &ForkChain) -> Self {
        Self {
            fork_point: f.fork_point.to_string(),
            fork_height: f.fork_height,
            tip: f.tip.to_string(),
            tip_height: f.tip_height,
            length: f.length,
        }
    }
}

impl From<&AccountProof> for ProofView {
    fn from(p: &AccountProof) -> Self {
        Self {
            siblings: p.proof.siblings.iter().map(ToString::to_string).collect(),
            leaf: p
                .proof
                .leaf
                .map(|(key, value)| vec![key.to_string(), value.to_string()]),
        }
    }
}

/// Why a [`TxBody`] is not a transaction (a field is not valid hex of the right length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct TxBodyError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl TxBody {
    /// The body of a signed transaction.
    pub fn from_signed(signed: &SignedTransaction) -> Self {
        TxView::from(signed).tx
    }

    /// Decodes the hex fields. Payload size is not checked here (the mempool does,
    /// against the chain's limit); the request body limit bounds it.
    pub fn to_signed(&self) -> Result<SignedTransaction, TxBodyError> {
        fn field<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, TxBodyError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| TxBodyError {
                field: name,
                reason: e.to_string(),
            })
        }
        let data = hex::decode(&self.data).map_err(|e| TxBodyError {
            field: "data",
            reason: e.to_string(),
        })?;
        Ok(SignedTransaction {
            tx: Transaction {
                chain_id: self.chain_id,
                from: field("from", &self.from)?,
                to: field("to", &self.to)?,
                amount: self.amount,
                fee: self.fee,
                nonce: self.nonce,
                data,
            },
            signature: field("signature", &self.signature)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::{Address, KeyPair};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tx_body_round_trips(
            amount in any::<u64>(), fee in any::<u64>(), nonce in any::<u64>(),
            data in proptest::collection::vec(any::<u8>(), 0..64), to in any::<[u8; 20]>(),
        ) {
            let key = KeyPair::from_seed(&[5; 32]);
            let signed = Transaction {
                chain_id: 9, from: key.public_key(), to: Address::from_bytes(to),
                amount, fee, nonce, data,
            }.sign(&key);
            let body = TxBody::from_signed(&signed);
            let json = serde_json::to_string(&body).unwrap();
            let back: TxBody = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.to_signed().unwrap(), signed);
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let key = KeyPair::from_seed(&[5; 32]);
        let signed = Transaction {
            chain_id: 9,
            from: key.public_key(),
            to: key.address(),
            amount: 1,
            fee: 1,
            nonce: 0,
            data: vec![],
        }
        .sign(&key);
        let mut body = TxBody::from_signed(&signed);
        body.to = "xyz".into();
        assert_eq!(body.to_signed().unwrap_err().field, "to");
        let mut body = TxBody::from_signed(&signed);
        body.data = "abc".into();
        assert_eq!(body.to_signed().unwrap_err().field, "data");
    }
}
