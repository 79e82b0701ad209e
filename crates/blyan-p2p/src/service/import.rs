//! The importer: verifies and imports blocks in the order they were handed over, in two
//! stages that overlap.
//!
//! **Verify** (no chain lock): synced blocks are verified in chunks of [`VERIFY_CHUNK`] on
//! tokio's blocking pool with the host's [`BlockValidator`](blyan_consensus::BlockValidator)
//! (`pre_verify`: format, limits, `tx_root`, every signature in one batch). Gossiped
//! blocks arrive verified already.
//!
//! **Import** (chain lock): each verified chunk is imported block by block with
//! [`ChainHost::import_block`], which checks the parent, the clock and the state but not
//! the signatures again.
//!
//! While one chunk is imported, the next is verified: on two cores the signature checks
//! (about half of an import) run beside the state and the database writes instead of
//! before them. At most [`VERIFIED_AHEAD`] verified chunks wait for the import stage.
//!
//! A synced block that fails either stage ends its batch: the rest of the batch is dropped (its
//! blocks descend from the refused one) and the network task hears
//! [`Done::ImportFailed`], so sync penalizes the peers that sent it and starts over from
//! the chain's tip. After each batch the task hears [`Done::Imported`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use blyan_consensus::{Block, BlockError, VerifiedBlock};
use blyan_crypto::Hash;
use tokio::sync::mpsc;

use super::ChainHost;
use super::serve::Event;
use super::task::Done;

/// Synced blocks verified per call on the blocking pool.
pub(super) const VERIFY_CHUNK: usize = 16;

/// Verified chunks that may wait for the import stage.
pub(super) const VERIFIED_AHEAD: usize = 4;

/// Work for the importer.
pub(super) enum ImportJob {
    /// Consecutive blocks from sync, parent first, not verified yet.
    Synced(Vec<Block>),
    /// A gossiped block that checked out against its parent and was verified.
    Gossiped(Box<VerifiedBlock>),
}

/// What the verify stage hands the import stage.
enum Step {
    /// A gossiped block: imported on its own; a refusal is logged (gossip judged the
    /// sender already) and does not disturb sync.
    Gossiped(Box<VerifiedBlock>),
    /// Verified blocks of the current batch, in order.
    Blocks(Vec<VerifiedBlock>),
    /// This block of the current batch failed verification; the batch ends here.
    Refused(Hash, Blame),
    /// The batch is over.
    EndOfBatch,
}

/// Runs both stages until `jobs` closes or the service stops (the block being imported
/// finishes first).
pub(super) async fn import_loop<H: ChainHost>(
    host: Arc<H>,
    jobs: mpsc::Receiver<ImportJob>,
    events: mpsc::Sender<Event>,
    stopping: Arc<AtomicBool>,
) {
    let (steps, verified) = mpsc::channel(VERIFIED_AHEAD);
    let verifier = tokio::spawn(verify_stage(Arc::clone(&host), jobs, steps));
    import_stage(host, verified, events, stopping).await;
    verifier.abort();
}

async fn verify_stage<H: ChainHost>(
    host: Arc<H>,
    mut jobs: mpsc::Receiver<ImportJob>,
    steps: mpsc::Sender<Step>,
) {
    while let Some(job) = jobs.recv().await {
        let blocks = match job {
            ImportJob::Gossiped(block) => {
                if steps.send(Step::Gossiped(block)).await.is_err() {
                    return;
                }
                continue;
            }
            ImportJob::Synced(blocks) => blocks,
        };
        let mut blocks = blocks.into_iter();
        loop {
            let chunk: Vec<Block> = blocks.by_ref().take(VERIFY_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let host = Arc::clone(&host);
            let Ok((verified, refused)) =
                tokio::task::spawn_blocking(move || verify_chunk(host.as_ref(), chunk)).await
            else {
                return;
            };
            if !verified.is_empty() && steps.send(Step::Blocks(verified)).await.is_err() {
                return;
            }
            if let Some((hash, blame)) = refused {
                if steps.send(Step::Refused(hash, blame)).await.is_err() {
                    return;
                }
                break;
            }
        }
        if steps.send(Step::EndOfBatch).await.is_err() {
            return;
        }
    }
}

/// Who is to blame for a refused synced block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Blame {
    /// The body fails a check its header does not commit to (a transaction signature:
    /// `tx_root` covers transactions without their signatures): the body's sender.
    Body,
    /// The block itself is invalid: whoever sent its header and its body.
    Chain,
}

/// Verifies `chunk` in order up to the first block that fails, which is returned by hash
/// with the blame.
fn verify_chunk<H: ChainHost>(
    host: &H,
    chunk: Vec<Block>,
) -> (Vec<VerifiedBlock>, Option<(Hash, Blame)>) {
    let validator = host.validator();
    let mut verified = Vec::with_capacity(chunk.len());
    for block in chunk {
        let hash = block.hash();
        match validator.pre_verify(block) {
            Ok(block) => verified.push(block),
            Err(error) => {
                tracing::info!(%hash, %error, "synced block failed verification");
                let blame = match error {
                    BlockError::BadTxSignature { .. } | BlockError::TxRootMismatch { .. } => {
                        Blame::Body
                    }
                    _ => Blame::Chain,
                };
                return (verified, Some((hash, blame)));
            }
        }
    }
    (verified, None)
}

async fn import_stage<H: ChainHost>(
    host: Arc<H>,
    mut verified: mpsc::Receiver<Step>,
    events: mpsc::Sender<Event>,
    stopping: Arc<AtomicBool>,
) {
    // Set when a block of the current batch was refused: its descendants are dropped.
    let mut skipping = false;
    while let Some(step) = verified.recv().await {
        match step {
            Step::Gossiped(block) => {
                let host = Arc::clone(&host);
                let stop = Arc::clone(&stopping);
                let imported = tokio::task::spawn_blocking(move || {
                    import_chunk(host.as_ref(), vec![*block], &stop)
                })
                .await;
                if matches!(imported, Err(_) | Ok(Imported::Stopped)) {
                    return;
                }
                let _ = events.send(Event::Task(Box::new(Done::Imported))).await;
            }
            Step::Blocks(blocks) if !skipping => {
                let host = Arc::clone(&host);
                let stop = Arc::clone(&stopping);
                let Ok(outcome) =
                    tokio::task::spawn_blocking(move || import_chunk(host.as_ref(), blocks, &stop))
                        .await
                else {
                    return;
                };
                match outcome {
                    Imported::All => {}
                    Imported::Stopped => return,
                    Imported::Refused(hash) => {
                        skipping = true;
                        let done = Done::ImportFailed {
                            hash,
                            blame: Blame::Chain,
                        };
                        let _ = events.send(Event::Task(Box::new(done))).await;
                    }
                }
            }
            Step::Blocks(_) => {}
            Step::Refused(hash, blame) => {
                if !skipping {
                    skipping = true;
                    let done = Done::ImportFailed { hash, blame };
                    let _ = events.send(Event::Task(Box::new(done))).await;
                }
            }
            Step::EndOfBatch => {
                skipping = false;
                let _ = events.send(Event::Task(Box::new(Done::Imported))).await;
            }
        }
    }
}

enum Imported {
    All,
    Refused(Hash),
    Stopped,
}

/// Imports `blocks` in order; stops at the first refusal or when the service stops.
fn import_chunk<H: ChainHost>(host: &H, blocks: Vec<VerifiedBlock>, stop: &AtomicBool) -> Imported {
    for block in blocks {
        if stop.load(Ordering::SeqCst) {
            return Imported::Stopped;
        }
        let hash = block.block().hash();
        if let Err(refused) = host.import_block(block) {
            tracing::info!(%hash, %refused, "block refused on import");
            return Imported::Refused(hash);
        }
    }
    Imported::All
}
