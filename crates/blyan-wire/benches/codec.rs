//! Codec benchmarks on a realistic block shape, against serde_json with hex byte fields.
//!
//! The JSON baseline is what a JSON wire format really costs: hex encoding is inside the JSON
//! encode time and hex decoding inside the JSON decode time.
//!
//! Run: `cargo bench -p blyan-wire --bench codec -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use blyan_wire::{Codec, Compression, from_canonical_bytes, to_canonical_bytes};
use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    version: u32,
    chain_id: u32,
    height: u64,
    slot: u64,
    timestamp_ms: u64,
    #[serde(with = "serde_bytes")]
    parent_hash: [u8; 32],
    #[serde(with = "serde_bytes")]
    tx_root: [u8; 32],
    #[serde(with = "serde_bytes")]
    state_root: [u8; 32],
    #[serde(with = "serde_bytes")]
    producer: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SignedTransfer {
    chain_id: u32,
    #[serde(with = "serde_bytes")]
    from: [u8; 32],
    #[serde(with = "serde_bytes")]
    to: [u8; 20],
    amount: u64,
    fee: u64,
    nonce: u64,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Block {
    header: Header,
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
    txs: Vec<SignedTransfer>,
}

// The JSON twin: every byte field a lowercase hex string.

#[derive(Serialize, Deserialize)]
struct HeaderJson {
    version: u32,
    chain_id: u32,
    height: u64,
    slot: u64,
    timestamp_ms: u64,
    parent_hash: String,
    tx_root: String,
    state_root: String,
    producer: String,
}

#[derive(Serialize, Deserialize)]
struct SignedTransferJson {
    chain_id: u32,
    from: String,
    to: String,
    amount: u64,
    fee: u64,
    nonce: u64,
    data: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct BlockJson {
    header: HeaderJson,
    signature: String,
    txs: Vec<SignedTransferJson>,
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0; N];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

fn to_json(block: &Block) -> Vec<u8> {
    let h = &block.header;
    let twin = BlockJson {
        header: HeaderJson {
            version: h.version,
            chain_id: h.chain_id,
            height: h.height,
            slot: h.slot,
            timestamp_ms: h.timestamp_ms,
            parent_hash: hex::encode(h.parent_hash),
            tx_root: hex::encode(h.tx_root),
            state_root: hex::encode(h.state_root),
            producer: hex::encode(h.producer),
        },
        signature: hex::encode(block.signature),
        txs: block
            .txs
            .iter()
            .map(|tx| SignedTransferJson {
                chain_id: tx.chain_id,
                from: hex::encode(tx.from),
                to: hex::encode(tx.to),
                amount: tx.amount,
                fee: tx.fee,
                nonce: tx.nonce,
                data: hex::encode(&tx.data),
                signature: hex::encode(tx.signature),
            })
            .collect(),
    };
    serde_json::to_vec(&twin).unwrap()
}

fn from_json(bytes: &[u8]) -> Block {
    let twin: BlockJson = serde_json::from_slice(bytes).unwrap();
    let h = twin.header;
    Block {
        header: Header {
            version: h.version,
            chain_id: h.chain_id,
            height: h.height,
            slot: h.slot,
            timestamp_ms: h.timestamp_ms,
            parent_hash: unhex(&h.parent_hash),
            tx_root: unhex(&h.tx_root),
            state_root: unhex(&h.state_root),
            producer: unhex(&h.producer),
        },
        signature: unhex(&twin.signature),
        txs: twin
            .txs
            .into_iter()
            .map(|tx| SignedTransfer {
                chain_id: tx.chain_id,
                from: unhex(&tx.from),
                to: unhex(&tx.to),
                amount: tx.amount,
                fee: tx.fee,
                nonce: tx.nonce,
                data: hex::decode(&tx.data).unwrap(),
                signature: unhex(&tx.signature),
            })
            .collect(),
    }
}

/// splitmix64: deterministic "random" keys, hashes and signatures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.next() as u8;
        }
        out
    }
}

fn block(tx_count: usize) -> Block {
    let mut rng = Rng(tx_count as u64);
    let txs = (0..tx_count)
        .map(|i| SignedTransfer {
            chain_id: 1,
            from: rng.bytes(),
            to: rng.bytes(),
            amount: 1_000 + rng.next() % 1_000_000_000,
            fee: 10 + rng.next() % 1_000,
            nonce: rng.next() % 10_000,
            data: (0..i % 17).map(|_| rng.next() as u8).collect(),
            signature: rng.bytes(),
        })
        .collect();
    Block {
        header: Header {
            version: 1,
            chain_id: 1,
            height: 1_234_567,
            slot: 2_345_678,
            timestamp_ms: 1_767_225_600_000,
            parent_hash: rng.bytes(),
            tx_root: rng.bytes(),
            state_root: rng.bytes(),
            producer: rng.bytes(),
        },
        signature: rng.bytes(),
        txs,
    }
}

fn report_sizes(block: &Block) {
    let canonical = to_canonical_bytes(block).unwrap().len();
    let message = Codec::DEFAULT.serialize(block).unwrap();
    let json = to_json(block).len();
    eprintln!(
        "sizes, {} txs: msgpack {canonical} B, message {} B (zstd flag {}), json+hex {json} B, \
         msgpack/json {:.1}%",
        block.txs.len(),
        message.len(),
        message[0] & 1,
        100.0 * canonical as f64 / json as f64,
    );
}

fn codec(c: &mut Criterion) {
    let no_zstd = Codec::DEFAULT.with_compression(Compression::Disabled);
    for tx_count in [100, 1_000] {
        let block = block(tx_count);
        report_sizes(&block);
        assert_eq!(from_json(&to_json(&block)), block);

        let mut group = c.benchmark_group(format!("encode/{tx_count}tx"));
        group.bench_function("msgpack_canonical", |b| {
            b.iter(|| to_canonical_bytes(black_box(&block)).unwrap())
        });
        group.bench_function("serialize_zstd_attempted", |b| {
            b.iter(|| Codec::DEFAULT.serialize(black_box(&block)).unwrap())
        });
        group.bench_function("serialize_no_zstd", |b| {
            b.iter(|| no_zstd.serialize(black_box(&block)).unwrap())
        });
        group.bench_function("json_hex", |b| b.iter(|| to_json(black_box(&block))));
        group.finish();

        let canonical = to_canonical_bytes(&block).unwrap();
        let message = Codec::DEFAULT.serialize(&block).unwrap();
        let json = to_json(&block);
        let mut group = c.benchmark_group(format!("decode/{tx_count}tx"));
        group.bench_function("msgpack_canonical", |b| {
            b.iter(|| from_canonical_bytes::<Block>(black_box(&canonical)).unwrap())
        });
        group.bench_function("deserialize", |b| {
            b.iter(|| {
                Codec::DEFAULT
                    .deserialize::<Block>(black_box(&message))
                    .unwrap()
            })
        });
        group.bench_function("json_hex", |b| b.iter(|| from_json(black_box(&json))));
        group.finish();
    }
}

/// A compressible payload (repeated senders and zero data), to price the zstd path itself.
fn compression(c: &mut Criterion) {
    let mut block = block(1_000);
    let senders: Vec<[u8; 32]> = block.txs.iter().take(10).map(|tx| tx.from).collect();
    for (i, tx) in block.txs.iter_mut().enumerate() {
        tx.from = senders[i % senders.len()];
        tx.data = vec![0; 64];
    }
    let message = Codec::DEFAULT.serialize(&block).unwrap();
    let canonical = to_canonical_bytes(&block).unwrap();
    eprintln!(
        "compressible 1000 txs: msgpack {} B, zstd message {} B",
        canonical.len(),
        message.len()
    );
    let mut group = c.benchmark_group("zstd/1000tx_compressible");
    group.throughput(Throughput::Bytes(canonical.len() as u64));
    group.bench_function("serialize", |b| {
        b.iter(|| Codec::DEFAULT.serialize(black_box(&block)).unwrap())
    });
    group.bench_function("deserialize", |b| {
        b.iter(|| {
            Codec::DEFAULT
                .deserialize::<Block>(black_box(&message))
                .unwrap()
        })
    });
    group.finish();
}

/// Framing alone: split a buffer of many frames, and read frames from an async stream.
fn framing(c: &mut Criterion) {
    let codec = Codec::DEFAULT;
    let mut group = c.benchmark_group("framing");
    for (name, size, count) in [
        ("small", 200_usize, 10_000_usize),
        ("large", 256 * 1024, 64),
    ] {
        let value = serde_bytes::ByteBuf::from(vec![0x5a_u8; size]);
        let plain = codec.with_compression(Compression::Disabled);
        let mut stream = BytesMut::new();
        for _ in 0..count {
            plain.encode_frame(&value, &mut stream).unwrap();
        }
        let stream = stream.freeze();
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::new("split", name), &stream, |b, stream| {
            b.iter(|| {
                let mut buf = BytesMut::from(&stream[..]);
                let mut decoder = codec.frame_decoder();
                let mut frames = 0;
                while let Some(message) = decoder.decode(&mut buf).unwrap() {
                    frames += message.len();
                }
                frames
            })
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("async_read", name),
            &stream,
            |b, stream| {
                b.iter(|| {
                    runtime.block_on(async {
                        let mut reader = &stream[..];
                        let mut total = 0;
                        while let Some(message) = codec.read_message(&mut reader).await.unwrap() {
                            total += message.len();
                        }
                        total
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, codec, compression, framing);
criterion_main!(benches);
