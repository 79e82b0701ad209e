//! The bounded cache of QUIC connections the driver reuses: one per peer, dialled with the
//! expected peer id, the least recently used one closed beyond the cap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use blyan_crypto::PeerId;
use blyan_wire::{Connection, DialError, Endpoint};
use tokio::sync::Mutex as AsyncMutex;

/// One peer's connection; the async lock serialises dials so two requests to the same peer
/// share one handshake.
type Slot = Arc<AsyncMutex<Option<Connection>>>;

#[derive(Debug)]
struct Entry {
    slot: Slot,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<PeerId, Entry>,
    tick: u64,
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("no address to dial")]
    NoAddress,
    #[error("dial {addr}: {source}")]
    Dial {
        addr: SocketAddr,
        #[source]
        source: DialError,
    },
}

/// At most `capacity` live connections, keyed by the authenticated peer id.
#[derive(Debug)]
pub(crate) struct ConnectionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

/// What [`ConnectionCache::connect`] found.
pub(crate) struct Connected {
    pub(crate) connection: Connection,
    /// Dialled just now (the caller may want to serve the peer's requests on it).
    pub(crate) fresh: bool,
}

impl ConnectionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections never panic; a poisoned lock still holds a valid map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `peer`, created (evicting the least recently used peer) if missing.
    fn slot(&self, peer: PeerId) -> Slot {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(entry) = inner.entries.get_mut(&peer) {
            entry.last_used = tick;
            return Arc::clone(&entry.slot);
        }
        if inner.entries.len() >= self.capacity {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(p, _)| *p);
            if let Some(evicted) = oldest.and_then(|p| inner.entries.remove(&p)) {
                close_slot(&evicted.slot);
            }
        }
        let slot: Slot = Arc::new(AsyncMutex::new(None));
        inner.entries.insert(
            peer,
            Entry {
                slot: Arc::clone(&slot),
                last_used: tick,
            },
        );
        slot
    }

    /// A live connection to `peer` (if known) at one of `addrs`: the cached one, or a new
    /// dial of each address in turn. A dial to a known peer fails unless the remote proves
    /// that id in the handshake.
    pub(crate) async fn connect(
        &self,
        endpoint: &Endpoint,
        peer: Option<PeerId>,
        addrs: &[SocketAddr],
    ) -> Result<Connected, ConnectError> {
        let Some(peer) = peer else {
            // A seed known only by address: dial, then file the connection under the id
            // its certificate proved.
            let connection = dial_any(endpoint, None, addrs).await?;
            let fresh = self.insert(connection.clone());
            return Ok(Connected { connection, fresh });
        };
        let slot = self.slot(peer);
        let mut held = slot.lock().await;
        if let Some(connection) = held.as_ref()
            && connection.close_reason().is_none()
        {
            return Ok(Connected {
                connection: connection.clone(),
                fresh: false,
            });
        }
        let connection = dial_any(endpoint, Some(peer), addrs).await?;
        *held = Some(connection.clone());
        Ok(Connected {
            connection,
            fresh: true,
        })
    }

    /// Files `connection` (dialled without an expected id, or accepted) under its peer,
    /// unless a live one is there already. Returns whether it was filed.
    pub(crate) fn insert(&self, connection: Connection) -> bool {
        let slot = self.slot(connection.remote_peer_id());
        let Ok(mut held) = slot.try_lock() else {
            // A dial to this peer is under way; it will fill the slot.
            return false;
        };
        if held.as_ref().is_some_and(|c| c.close_reason().is_none()) {
            return false;
        }
        *held = Some(connection);
        true
    }

    /// Forgets (and closes) the connection to `peer` after a failure on it, so the next
    /// request dials afresh.
    pub(crate) fn remove(&self, peer: &PeerId) {
        if let Some(entry) = self.lock().entries.remove(peer) {
            close_slot(&entry.slot);
        }
    }

    /// Live connections held.
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| {
                e.slot
                    .try_lock()
                    .is_ok_and(|c| c.as_ref().is_some_and(|c| c.close_reason().is_none()))
            })
            .count()
    }

    /// Closes every connection (shutdown).
    pub(crate) fn close_all(&self) {
        let entries: Vec<Entry> = self.lock().entries.drain().map(|(_, e)| e).collect();
        for entry in entries {
            close_slot(&entry.slot);
        }
    }
}

/// Closes the slot's connection if no dial holds it (a dial in progress keeps its own).
fn close_slot(slot: &Slot) {
    if let Ok(held) = slot.try_lock()
        && let Some(connection) = held.as_ref()
    {
        connection.close();
    }
}

async fn dial_any(
    endpoint: &Endpoint,
    expected: Option<PeerId>,
    addrs: &[SocketAddr],
) -> Result<Connection, ConnectError> {
    let mut last = ConnectError::NoAddress;
    for addr in addrs {
        match endpoint.dial(*addr, expected).await {
            Ok(connection) => return Ok(connection),
            Err(source) => {
                last = ConnectError::Dial {
                    addr: *addr,
                    source,
                }
            }
        }
    }
    Err(last)
}
