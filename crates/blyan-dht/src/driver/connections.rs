//! The bounded cache of QUIC connections the driver reuses: one per peer, dialled with the
//! expected peer id, the least recently used idle one closed beyond the cap.
//!
//! A connection with a request of ours in flight is never evicted (closing it would fail
//! the request): the cache may exceed its cap by the requests in flight, which the core
//! bounds (`max_outstanding_rpcs`), and shrinks back as they end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Requests of ours using the connection.
    in_use: Arc<AtomicUsize>,
}

/// Marks a connection as in use by one request until dropped.
#[derive(Debug)]
pub(crate) struct Lease(Arc<AtomicUsize>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
    /// Keeps the connection from eviction while the request runs.
    pub(crate) _lease: Option<Lease>,
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

    /// The slot of `peer`, created (evicting idle peers beyond the cap) if missing, and
    /// with `lease` a lease on it.
    fn slot(&self, peer: PeerId, lease: bool) -> (Slot, Option<Lease>) {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if !inner.entries.contains_key(&peer) {
            evict_idle(&mut inner, self.capacity.saturating_sub(1));
            inner.entries.insert(
                peer,
                Entry {
                    slot: Arc::new(AsyncMutex::new(None)),
                    last_used: tick,
                    in_use: Arc::new(AtomicUsize::new(0)),
                },
            );
        }
        let Some(entry) = inner.entries.get_mut(&peer) else {
            return (Arc::new(AsyncMutex::new(None)), None);
        };
        entry.last_used = tick;
        let lease = lease.then(|| {
            entry.in_use.fetch_add(1, Ordering::Relaxed);
            Lease(Arc::clone(&entry.in_use))
        });
        (Arc::clone(&entry.slot), lease)
    }

    /// Closes idle connections beyond the cap (after requests ended).
    pub(crate) fn trim(&self) {
        evict_idle(&mut self.lock(), self.capacity);
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
            return Ok(Connected {
                connection,
                fresh,
                _lease: None,
            });
        };
        let (slot, lease) = self.slot(peer, true);
        let mut held = slot.lock().await;
        if let Some(connection) = held.as_ref()
            && connection.close_reason().is_none()
        {
            return Ok(Connected {
                connection: connection.clone(),
                fresh: false,
                _lease: lease,
            });
        }
        let connection = dial_any(endpoint, Some(peer), addrs).await?;
        *held = Some(connection.clone());
        Ok(Connected {
            connection,
            fresh: true,
            _lease: lease,
        })
    }

    /// Files `connection` (dialled without an expected id, or accepted) under its peer,
    /// unless a live one is there already. Returns whether it was filed.
    pub(crate) fn insert(&self, connection: Connection) -> bool {
        let (slot, _) = self.slot(connection.remote_peer_id(), false);
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
    ///
    /// A connection other requests of ours are still using is only forgotten, not closed:
    /// closing it would fail them too. It closes when their handles are dropped.
    pub(crate) fn remove(&self, peer: &PeerId) {
        if let Some(entry) = self.lock().entries.remove(peer)
            && entry.in_use.load(Ordering::Relaxed) == 0
        {
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

/// Removes and closes the least recently used idle entries until at most `keep` remain
/// (or only entries in use are left).
fn evict_idle(inner: &mut Inner, keep: usize) {
    while inner.entries.len() > keep {
        let oldest = inner
            .entries
            .iter()
            .filter(|(_, e)| e.in_use.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(p, _)| *p);
        let Some(evicted) = oldest.and_then(|p| inner.entries.remove(&p)) else {
            return;
        };
        close_slot(&evicted.slot);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn peers(cache: &ConnectionCache) -> BTreeSet<PeerId> {
        cache.lock().entries.keys().copied().collect()
    }

    #[test]
    fn eviction_takes_the_least_recently_used_idle_peer() {
        let cache = ConnectionCache::new(2);
        let (_, lease) = cache.slot(peer(1), true);
        cache.slot(peer(2), false);
        // Full: the new peer evicts the oldest idle one, not the older one in use.
        cache.slot(peer(3), false);
        assert_eq!(peers(&cache), BTreeSet::from([peer(1), peer(3)]));
        cache.slot(peer(4), false);
        assert_eq!(peers(&cache), BTreeSet::from([peer(1), peer(4)]));
        // Once the request ends, peer 1 is the least recently used.
        drop(lease);
        cache.slot(peer(5), false);
        assert_eq!(peers(&cache), BTreeSet::from([peer(4), peer(5)]));
        // Using a peer makes it the most recent.
        cache.slot(peer(4), false);
        cache.slot(peer(6), false);
        assert_eq!(peers(&cache), BTreeSet::from([peer(4), peer(6)]));
    }

    #[test]
    fn requests_in_flight_may_exceed_the_cap_until_they_end() {
        let cache = ConnectionCache::new(1);
        let leases: Vec<Lease> = (1..=3)
            .filter_map(|n| cache.slot(peer(n), true).1)
            .collect();
        assert_eq!(peers(&cache).len(), 3);
        cache.trim();
        assert_eq!(peers(&cache).len(), 3);
        drop(leases);
        cache.trim();
        assert_eq!(peers(&cache), BTreeSet::from([peer(3)]));
        cache.remove(&peer(3));
        assert!(peers(&cache).is_empty());
        assert_eq!(cache.len(), 0);
    }
}
