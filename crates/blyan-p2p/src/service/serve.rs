//! The protocol router: one reader per connection, and the answers to sync requests.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use blyan_crypto::{Hash, PeerId};
use blyan_dht::{Dht, InboundError, PROTOCOL_ID as DHT_PROTOCOL};
use blyan_security::{MessageKind, MessageMeta, PeerEvent, Reject, SecurityManager, SystemClock};
use blyan_wire::{Connection, Inbound, InboundRequest, ResetCode};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::ChainHost;
use crate::chain::{SyncChain, serve_bodies, serve_headers};
use crate::message::{
    GOSSIP_PROTOCOL, GossipEnvelope, GossipPayload, SYNC_PROTOCOL, Status, SyncRequest,
    SyncResponse,
};

/// What readers and request tasks tell the network task.
pub(super) enum Event {
    /// A connection closed (its reader ended).
    Closed { peer: PeerId, serial: u64 },
    /// A one-way message on the gossip protocol.
    Gossip {
        peer: PeerId,
        addr: SocketAddr,
        bytes: Bytes,
    },
    /// A peer asked for our status: admit it if new, then answer (`None` refuses).
    InboundStatus {
        peer: PeerId,
        connection: Connection,
        serial: u64,
        theirs: Status,
        reply: oneshot::Sender<Option<Status>>,
    },
    /// A peer asked for a gossip envelope we may hold. The reply says whether we
    /// announced it to that peer (a solicited fetch).
    GetGossip {
        peer: PeerId,
        id: Hash,
        reply: oneshot::Sender<(Option<GossipEnvelope>, bool)>,
    },
    /// A peer misbehaved while we served it.
    Penalty { peer: PeerId, event: PeerEvent },
    /// Anything the task itself spawned reports back here.
    Task(Box<super::task::Done>),
}

/// What readers and request handlers share.
pub(super) struct Serving<H> {
    pub(super) host: Arc<H>,
    pub(super) dht: Dht,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) security: Arc<Mutex<SecurityManager>>,
    pub(super) clock: SystemClock,
    pub(super) max_bodies_bytes: usize,
}

/// Reads `connection`'s inbound streams until it closes, routing each by protocol.
pub(super) async fn read_loop<H: ChainHost>(
    serving: Arc<Serving<H>>,
    connection: Connection,
    serial: u64,
    _slot: OwnedSemaphorePermit,
) {
    let peer = connection.remote_peer_id();
    let addr = connection.remote_addr();
    while let Some(inbound) = connection.accept_inbound().await {
        match inbound {
            Inbound::Request(request) => match request.protocol().0 {
                DHT_PROTOCOL => {
                    let serving = Arc::clone(&serving);
                    tokio::spawn(async move {
                        if let Err(InboundError::Malformed(_)) =
                            serving.dht.handle_inbound(peer, addr, request).await
                        {
                            penalize(&serving, peer, PeerEvent::InvalidMessage).await;
                        }
                    });
                }
                SYNC_PROTOCOL => {
                    tokio::spawn(serve_request(
                        Arc::clone(&serving),
                        connection.clone(),
                        serial,
                        request,
                    ));
                }
                _ => request.reject(ResetCode::UnknownProtocol),
            },
            Inbound::Message(message) => {
                if message.protocol().0 != GOSSIP_PROTOCOL {
                    continue;
                }
                let event = Event::Gossip {
                    peer,
                    addr,
                    bytes: message.message().clone(),
                };
                if serving.events.send(event).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = serving.events.send(Event::Closed { peer, serial }).await;
}

/// Answers one request on the sync protocol.
async fn serve_request<H: ChainHost>(
    serving: Arc<Serving<H>>,
    connection: Connection,
    serial: u64,
    request: InboundRequest,
) {
    let peer = connection.remote_peer_id();
    let ip = connection.remote_addr().ip();
    let Ok(decoded) = request.decode::<SyncRequest>() else {
        request.reject(ResetCode::Malformed);
        penalize(&serving, peer, PeerEvent::InvalidMessage).await;
        return;
    };
    if let SyncRequest::Status(theirs) = decoded {
        let (reply, answer) = oneshot::channel();
        let asked = serving
            .events
            .send(Event::InboundStatus {
                peer,
                connection,
                serial,
                theirs,
                reply,
            })
            .await;
        match (asked, answer.await) {
            (Ok(()), Ok(Some(ours))) => {
                let _ = request.respond(&SyncResponse::Status(ours)).await;
            }
            _ => request.reject(ResetCode::Refused),
        }
        return;
    }
    if let SyncRequest::GetGossip { id } = decoded {
        serve_gossip_fetch(&serving, peer, ip, id, request).await;
        return;
    }
    let kind = match decoded {
        SyncRequest::Ping { .. } => MessageKind::Control,
        _ => MessageKind::SyncRequest,
    };
    let Some(request) = admit(&serving, peer, ip, kind, request).await else {
        return;
    };
    let response = match decoded {
        SyncRequest::Ping { nonce } => Some(SyncResponse::Pong { nonce }),
        // Answered above; kept for an exhaustive match.
        SyncRequest::GetGossip { .. } => None,
        SyncRequest::GetHeaders { locator, max } => {
            read_chain(&serving, move |chain| {
                SyncResponse::Headers(serve_headers(chain, &locator, max))
            })
            .await
        }
        SyncRequest::GetBodies { hashes } => {
            let max_bytes = serving.max_bodies_bytes;
            read_chain(&serving, move |chain| {
                SyncResponse::Bodies(serve_bodies(chain, &hashes, max_bytes))
            })
            .await
        }
        SyncRequest::GetBlock { hash } => {
            read_chain(&serving, move |chain| {
                SyncResponse::Block(chain.block(&hash).map(Box::new))
            })
            .await
        }
        SyncRequest::Status(_) => None,
    };
    match response {
        Some(response) => {
            blyan_ops::metrics_collector::record_message(
                blyan_ops::MessageType::BlockResponse,
                blyan_ops::MessageStatus::Sent,
            );
            let _ = request.respond(&response).await;
        }
        None => request.reject(ResetCode::Refused),
    }
}

/// Tells the network task to charge `event` to `peer`.
/// Charges `request` to the peer's and the IP's budgets as a message of `kind` and
/// hands it back; over budget, refuses it (and penalizes the peer for a rate-limit or
/// size violation).
async fn admit<H>(
    serving: &Serving<H>,
    peer: PeerId,
    ip: IpAddr,
    kind: MessageKind,
    request: InboundRequest,
) -> Option<InboundRequest> {
    let meta = MessageMeta::direct(kind, request.message().len());
    let checked = serving
        .security
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .check_message(serving.clock.now(), &peer, ip, &meta);
    let Err(reject) = checked else {
        return Some(request);
    };
    super::task::count_rejection(reject);
    request.reject(ResetCode::Refused);
    if matches!(reject, Reject::RateLimited { .. } | Reject::MessageTooLarge) {
        blyan_ops::metrics_collector::record_message(
            blyan_ops::MessageType::BlockRequest,
            blyan_ops::MessageStatus::RateLimited,
        );
        penalize(serving, peer, PeerEvent::RateLimited).await;
    }
    None
}

/// Answers a `GetGossip`. A fetch of a transaction we announced to this peer is what our
/// own announcement asked for, and answered from memory: it costs a control message. Any
/// other fetch (a block envelope, which may be a megabyte to upload, or an id we never
/// announced to it) costs a sync request. Without this, a burst of transactions
/// announced to a peer made its honest fetches overrun our budget for it, and the peers
/// penalized and banned each other.
async fn serve_gossip_fetch<H>(
    serving: &Serving<H>,
    peer: PeerId,
    ip: IpAddr,
    id: Hash,
    request: InboundRequest,
) {
    let (reply, answer) = oneshot::channel();
    let asked = serving
        .events
        .send(Event::GetGossip { peer, id, reply })
        .await;
    let (envelope, announced) = match (asked, answer.await) {
        (Ok(()), Ok(found)) => found,
        _ => {
            request.reject(ResetCode::Refused);
            return;
        }
    };
    let small = envelope
        .as_ref()
        .is_some_and(|e| matches!(e.payload, GossipPayload::Tx(_)));
    let kind = if announced && small {
        MessageKind::Control
    } else {
        MessageKind::SyncRequest
    };
    let Some(request) = admit(serving, peer, ip, kind, request).await else {
        return;
    };
    blyan_ops::metrics_collector::record_message(
        blyan_ops::MessageType::BlockResponse,
        blyan_ops::MessageStatus::Sent,
    );
    let _ = request
        .respond(&SyncResponse::Gossip(envelope.map(Box::new)))
        .await;
}

async fn penalize<H>(serving: &Serving<H>, peer: PeerId, event: PeerEvent) {
    let _ = serving.events.send(Event::Penalty { peer, event }).await;
}

/// Runs a chain read on the blocking pool.
async fn read_chain<H: ChainHost, R: Send + 'static>(
    serving: &Arc<Serving<H>>,
    read: impl FnOnce(&H::Chain) -> R + Send + 'static,
) -> Option<R> {
    let host = Arc::clone(&serving.host);
    tokio::task::spawn_blocking(move || host.with_chain(read))
        .await
        .ok()
        .flatten()
}
