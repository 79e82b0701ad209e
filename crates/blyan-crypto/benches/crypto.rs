//! Signature, batch verification and Merkle benchmarks, each next to its raw baseline.
//!
//! Run: `cargo bench -p blyan-crypto --bench crypto -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use blyan_crypto::{
    BatchItem, Domain, Hash, KeyPair, MerkleTree, PublicKey, Signature, merkle_root, sha256,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::Digest as _;

const CHAIN: u32 = 1;

struct Fixture {
    keys: Vec<PublicKey>,
    messages: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
    // The same signatures for raw ed25519-dalek: over the domain-prefixed bytes.
    dalek_keys: Vec<VerifyingKey>,
    dalek_messages: Vec<Vec<u8>>,
    dalek_sigs: Vec<ed25519_dalek::Signature>,
}

fn fixture(n: usize) -> Fixture {
    let mut f = Fixture {
        keys: Vec::new(),
        messages: Vec::new(),
        sigs: Vec::new(),
        dalek_keys: Vec::new(),
        dalek_messages: Vec::new(),
        dalek_sigs: Vec::new(),
    };
    for i in 0..n {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let key = KeyPair::from_seed(&seed);
        let message = sha256(&(i as u64).to_be_bytes()).to_bytes().to_vec();
        let sig = key.sign(Domain::Tx, CHAIN, &message);
        f.dalek_keys
            .push(VerifyingKey::from_bytes(key.public_key().as_bytes()).unwrap());
        f.dalek_messages
            .push(Domain::Tx.signing_message(CHAIN, &message));
        f.dalek_sigs
            .push(ed25519_dalek::Signature::from_bytes(sig.as_bytes()));
        f.keys.push(key.public_key());
        f.messages.push(message);
        f.sigs.push(sig);
    }
    f
}

fn single(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[7u8; 32]);
    let dalek = SigningKey::from_bytes(&key.to_seed());
    let hash = sha256(b"a block header");
    let sig = key.sign(Domain::Block, CHAIN, hash.as_bytes());
    let prefixed = Domain::Block.signing_message(CHAIN, hash.as_bytes());
    let dalek_sig = ed25519_dalek::Signature::from_bytes(sig.as_bytes());
    let dalek_vk = dalek.verifying_key();
    let pk = key.public_key();

    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign/blyan", |b| {
        b.iter(|| key.sign(Domain::Block, CHAIN, black_box(hash.as_bytes())))
    });
    g.bench_function("sign/dalek_raw", |b| {
        b.iter(|| dalek.sign(black_box(&prefixed)))
    });
    g.bench_function("verify/blyan", |b| {
        b.iter(|| pk.verify(Domain::Block, CHAIN, black_box(hash.as_bytes()), &sig))
    });
    g.bench_function("verify/dalek_verify_strict", |b| {
        b.iter(|| dalek_vk.verify_strict(black_box(&prefixed), &dalek_sig))
    });
    g.bench_function("verify/dalek_verify", |b| {
        b.iter(|| {
            use ed25519_dalek::Verifier as _;
            dalek_vk.verify(black_box(&prefixed), &dalek_sig)
        })
    });
    g.bench_function("public_key_parse/blyan", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(pk.as_bytes())))
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_verify");
    g.sample_size(20);
    for n in [64usize, 256, 1024] {
        let f = fixture(n);
        let items: Vec<BatchItem<'_>> = (0..n)
            .map(|i| BatchItem {
                public_key: &f.keys[i],
                domain: Domain::Tx,
                chain_id: CHAIN,
                message: &f.messages[i],
                signature: &f.sigs[i],
            })
            .collect();
        assert!(blyan_crypto::verify_batch(&items).is_ok());
        let dalek_messages: Vec<&[u8]> = f.dalek_messages.iter().map(Vec::as_slice).collect();
        assert!(ed25519_dalek::verify_batch(&dalek_messages, &f.dalek_sigs, &f.dalek_keys).is_ok());

        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("blyan", n), &n, |b, _| {
            b.iter(|| blyan_crypto::verify_batch(black_box(&items)))
        });
        g.bench_with_input(BenchmarkId::new("dalek_raw", n), &n, |b, _| {
            b.iter(|| {
                ed25519_dalek::verify_batch(
                    black_box(&dalek_messages),
                    &f.dalek_sigs,
                    &f.dalek_keys,
                )
            })
        });
        if n == 1024 {
            g.bench_with_input(BenchmarkId::new("blyan_single_loop", n), &n, |b, _| {
                b.iter(|| {
                    items.iter().all(|it| {
                        it.public_key
                            .verify(it.domain, it.chain_id, it.message, it.signature)
                            .is_ok()
                    })
                })
            });
        }
    }
    g.finish();
}

/// The same root computed with a plain loop over SHA-256: the cost floor of the hashing.
fn raw_root(items: &[Hash]) -> [u8; 32] {
    let mut layer: Vec<[u8; 32]> = items
        .iter()
        .map(|item| {
            let mut h = sha2::Sha256::new();
            h.update([0x00]);
            h.update(item.as_bytes());
            h.finalize().into()
        })
        .collect();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = sha2::Sha256::new();
                    h.update([0x01]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [odd] => *odd,
                _ => unreachable!(),
            })
            .collect();
    }
    layer[0]
}

fn merkle(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle_root");
    for n in [100usize, 1_000, 10_000] {
        let items: Vec<Hash> = (0..n as u64).map(|i| sha256(&i.to_be_bytes())).collect();
        assert_eq!(
            MerkleTree::from_items(&items).unwrap().root().to_bytes(),
            raw_root(&items)
        );
        assert_eq!(merkle_root(&items).to_bytes(), raw_root(&items));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("blyan_merkle_root", n), &n, |b, _| {
            b.iter(|| merkle_root(black_box(&items)))
        });
        g.bench_with_input(BenchmarkId::new("blyan_tree_build", n), &n, |b, _| {
            b.iter(|| MerkleTree::from_items(black_box(&items)).unwrap().root())
        });
        g.bench_with_input(BenchmarkId::new("raw_sha256_loop", n), &n, |b, _| {
            b.iter(|| raw_root(black_box(&items)))
        });
    }
    g.finish();
}

criterion_group!(benches, single, batch, merkle);
criterion_main!(benches);
