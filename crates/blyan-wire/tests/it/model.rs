//! A rich message type and its proptest strategy: nested structs, enums of every shape,
//! `serde_bytes` fields, strings, options, signed and unsigned integers, maps.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: u64,
    pub(crate) delta: i64,
    pub(crate) small: u8,
    pub(crate) flag: bool,
    pub(crate) name: String,
    #[serde(with = "serde_bytes")]
    pub(crate) payload: Vec<u8>,
    pub(crate) hash: Option<Digest>,
    pub(crate) items: Vec<Item>,
    pub(crate) index: BTreeMap<String, u32>,
    pub(crate) kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Digest(#[serde(with = "serde_bytes")] pub(crate) Vec<u8>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) amount: u64,
    pub(crate) memo: Option<String>,
    #[serde(with = "serde_bytes")]
    pub(crate) data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Ping,
    Height(u64),
    Range { from: u64, to: u64 },
    Pair(i32, String),
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Ping),
        any::<u64>().prop_map(Kind::Height),
        (any::<u64>(), any::<u64>()).prop_map(|(from, to)| Kind::Range { from, to }),
        (any::<i32>(), ".{0,8}").prop_map(|(a, b)| Kind::Pair(a, b)),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    (any::<u64>(), option::of(".{0,12}"), bytes(80)).prop_map(|(amount, memo, data)| Item {
        amount,
        memo,
        data,
    })
}

/// Payloads sometimes large and repetitive, so that the zstd path is exercised too.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => bytes(300),
        1 => (any::<u8>(), 1_000_usize..6_000).prop_map(|(b, n)| vec![b; n]),
        1 => bytes(3_000),
    ]
}

pub(crate) fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (
            any::<u64>(),
            any::<i64>(),
            any::<u8>(),
            any::<bool>(),
            ".{0,24}",
        ),
        payload(),
        option::of(vec(any::<u8>(), 32).prop_map(Digest)),
        vec(item(), 0..12),
        btree_map(".{0,6}", any::<u32>(), 0..6),
        kind(),
    )
        .prop_map(
            |((id, delta, small, flag, name), payload, hash, items, index, kind)| Envelope {
                id,
                delta,
                small,
                flag,
                name,
                payload,
                hash,
                items,
                index,
                kind,
            },
        )
}

/// Splits `bytes` into consecutive chunks at the given (unsorted, possibly out of range) cuts.
pub(crate) fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}
