//! A tour of the Blyan node crates that are built so far, doing real work:
//!
//! 1. loads (or, on first run, creates) an encrypted node key file under `./data/`,
//! 2. signs a block hash and a batch of transactions in their domains and verifies them
//!    with the exact batch path,
//! 3. commits the transactions to a Merkle root and checks an inclusion proof,
//! 4. encodes the batch as a wire frame (MsgPack, zstd when it pays) and decodes it back.
//!
//! Run it twice: the second run loads the same identity from the key file.
//!
//! ```sh
//! cargo run --release -p blyan-examples --example quickstart
//! ```
//!
//! The key file's passphrase comes from `BLYAN_KEY_PASSPHRASE`; without it the example
//! uses a fixed development passphrase and says so.

use std::error::Error;
use std::path::Path;

use blyan_crypto::{
    BatchItem, Domain, Hash, KeyPair, KeyStore, MerkleTree, sha256, sign_block, verify_batch,
    verify_block_signature,
};
use blyan_wire::{Codec, FLAG_ZSTD, to_canonical_bytes};
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

/// The chain id this tour signs for.
const CHAIN_ID: u32 = 1;
/// Where the node key lives, relative to the working directory.
const KEY_PATH: &str = "data/quickstart-node.key";
/// Used only when `BLYAN_KEY_PASSPHRASE` is not set: fine for a tour, never for a node.
const DEV_PASSPHRASE: &str = "blyan-dev-passphrase";

/// A transfer, shaped like the chain's transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Transfer {
    from: blyan_crypto::PublicKey,
    to: blyan_crypto::Address,
    amount: u64,
    nonce: u64,
    #[serde(with = "serde_bytes")]
    memo: Vec<u8>,
}

/// A signed transfer as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SignedTransfer {
    transfer: Transfer,
    signature: blyan_crypto::Signature,
}

fn main() -> Result<(), Box<dyn Error>> {
    // 1. The node identity, encrypted at rest.
    let passphrase = match std::env::var("BLYAN_KEY_PASSPHRASE") {
        Ok(p) => p,
        Err(_) => {
            println!("BLYAN_KEY_PASSPHRASE not set: using the development passphrase");
            DEV_PASSPHRASE.to_owned()
        }
    };
    let path = Path::new(KEY_PATH);
    let existed = path.exists();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let node_key = KeyStore::default().load_or_generate(path, passphrase.as_bytes())?;
    println!(
        "node key   {} {}",
        if existed { "loaded from" } else { "created at" },
        path.display()
    );
    println!("peer id    {}", node_key.peer_id());
    println!("address    {}", node_key.address());

    // 2. Signatures: a block hash in the `block` domain, 256 transfers in the `tx` domain.
    let block_hash = sha256(b"a block header would be hashed here");
    let block_sig = sign_block(&node_key, CHAIN_ID, &block_hash);
    verify_block_signature(&node_key.public_key(), CHAIN_ID, &block_hash, &block_sig)?;
    println!("block sig  verified for chain {CHAIN_ID}");

    let senders: Vec<KeyPair> = (0..16u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
    let mut txs = Vec::with_capacity(256);
    for n in 0..256u64 {
        let sender = &senders[(n % 16) as usize];
        let transfer = Transfer {
            from: sender.public_key(),
            to: node_key.address(),
            amount: 1_000 + n,
            nonce: n / 16,
            memo: b"quickstart".to_vec(),
        };
        let signature = sender.sign(Domain::Tx, CHAIN_ID, &to_canonical_bytes(&transfer)?);
        txs.push(SignedTransfer {
            transfer,
            signature,
        });
    }
    let messages: Vec<Vec<u8>> = txs
        .iter()
        .map(|tx| to_canonical_bytes(&tx.transfer))
        .collect::<Result<_, _>>()?;
    let items: Vec<BatchItem<'_>> = txs
        .iter()
        .zip(&messages)
        .map(|(tx, message)| BatchItem {
            public_key: &tx.transfer.from,
            domain: Domain::Tx,
            chain_id: CHAIN_ID,
            message,
            signature: &tx.signature,
        })
        .collect();
    verify_batch(&items)?;
    println!("batch      {} transaction signatures verified", items.len());

    // 3. Commit the transactions to a Merkle root; prove one of them is included.
    let leaves: Vec<Hash> = messages.iter().map(|m| sha256(m)).collect();
    let tree = MerkleTree::from_items(&leaves)?;
    let proof = tree.proof(42)?;
    proof.verify(&tree.root(), 42, &leaves[42], leaves.len())?;
    println!(
        "merkle     root {} ({} siblings prove tx 42)",
        tree.root(),
        proof.siblings().len()
    );

    // 4. The same batch as a wire frame, and back.
    let codec = Codec::DEFAULT;
    let canonical = to_canonical_bytes(&txs)?;
    let frame = codec.frame(&txs)?;
    let compressed = frame.get(4).is_some_and(|flags| flags & FLAG_ZSTD != 0);
    let mut received = BytesMut::from(&frame[..]);
    let decoded: Vec<SignedTransfer> = codec
        .decode_frame(&mut received)?
        .ok_or("a whole frame was buffered, yet the decoder wants more")?;
    assert_eq!(decoded, txs, "the frame must decode to what was sent");
    println!(
        "wire       {} txs: {} canonical bytes, {} bytes framed ({})",
        txs.len(),
        canonical.len(),
        frame.len(),
        if compressed { "zstd" } else { "uncompressed" }
    );
    Ok(())
}
