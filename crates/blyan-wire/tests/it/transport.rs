//! The transport over real UDP on 127.0.0.1: handshake, requests both ways, one-way
//! messages, identity checks, refusals and graceful close.

use std::future::Future;
use std::time::Duration;

use blyan_wire::{
    Codec, DialError, Endpoint, Inbound, Protocol, RequestError, ResetCode, close_code,
};

use crate::transport_support::{
    HOLD, NOTE, PING, Ping, config, connected_pair, key, localhost, serve, within,
};

#[tokio::test]
async fn handshake_then_requests_both_ways_and_messages() {
    let (a, b, a_to_b, b_to_a) = connected_pair(config()).await;
    assert_eq!(a_to_b.remote_peer_id(), b.peer_id());
    assert_eq!(b_to_a.remote_peer_id(), a.peer_id());
    assert_eq!(a_to_b.remote_addr(), b.local_addr().unwrap());
    assert_eq!(b_to_a.remote_addr(), a.local_addr().unwrap());

    let (mut notes_at_b, _) = serve(b_to_a.clone());
    let (_, _) = serve(a_to_b.clone());

    let ping = Ping {
        n: 41,
        data: vec![7; 3000],
    };
    let pong: Ping = within(a_to_b.request(PING, &ping)).await.unwrap();
    assert_eq!(
        pong,
        Ping {
            n: 42,
            data: vec![7; 3000]
        }
    );

    let pong: Ping = within(b_to_a.request(PING, &Ping { n: 1, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 2);

    // Many concurrent requests on one connection, each on its own stream.
    let requests = (0..32).map(|n| {
        let connection = a_to_b.clone();
        async move {
            connection
                .request::<_, Ping>(PING, &Ping { n, data: vec![] })
                .await
        }
    });
    let answers = within(futures_join_all(requests)).await;
    for (n, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap().n, n as u64 + 1);
    }

    within(a_to_b.send_message(
        NOTE,
        &Ping {
            n: 9,
            data: b"note".to_vec(),
        },
    ))
    .await
    .unwrap();
    let note = within(notes_at_b.recv()).await.unwrap();
    assert_eq!(
        note,
        Ping {
            n: 9,
            data: b"note".to_vec()
        }
    );
}

/// `join_all` without a futures dependency: spawn and await in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn raw_bytes_round_trip() {
    let (_a, _b, a_to_b, b_to_a) = connected_pair(config()).await;
    let server = tokio::spawn(async move {
        let Some(Inbound::Request(request)) = b_to_a.accept_inbound().await else {
            panic!("expected a request");
        };
        assert_eq!(request.protocol(), Protocol(0x77));
        assert_eq!(&request.message()[..], &[0x00, 0xa2, b'h', b'i']);
        request.respond_bytes(&[0x00, 0xc3]).await.unwrap();
    });
    let response = within(a_to_b.request_bytes(Protocol(0x77), &[0x00, 0xa2, b'h', b'i']))
        .await
        .unwrap();
    assert_eq!(&response[..], &[0x00, 0xc3]);
    let decoded: bool = Codec::DEFAULT.deserialize(&response).unwrap();
    assert!(decoded);
    within(server).await.unwrap();
}

#[tokio::test]
async fn dial_to_the_wrong_peer_id_fails_with_both_ids() {
    let a = Endpoint::bind(localhost(), &key(1), config()).unwrap();
    let b = Endpoint::bind(localhost(), &key(2), config()).unwrap();
    let b_addr = b.local_addr().unwrap();
    let stranger = key(3).peer_id();

    match within(a.dial(b_addr, Some(stranger))).await {
        Err(DialError::PeerIdMismatch { expected, actual }) => {
            assert_eq!(expected, stranger);
            assert_eq!(actual, b.peer_id());
        }
        other => panic!("expected PeerIdMismatch, got {other:?}"),
    }

    // The right id, and no id at all, both work; b never saw the aborted attempt.
    let (dialed, accepted) =
        within(async { tokio::join!(a.dial(b_addr, Some(b.peer_id())), b.accept()) }).await;
    assert_eq!(dialed.unwrap().remote_peer_id(), b.peer_id());
    assert_eq!(accepted.unwrap().remote_peer_id(), a.peer_id());
    let (dialed, accepted) = within(async { tokio::join!(a.dial(b_addr, None), b.accept()) }).await;
    assert_eq!(dialed.unwrap().remote_peer_id(), b.peer_id());
    assert_eq!(accepted.unwrap().remote_peer_id(), a.peer_id());
}

#[tokio::test]
async fn unanswered_and_unknown_requests_are_reset_with_a_code() {
    let (_a, _b, a_to_b, b_to_a) = connected_pair(config()).await;
    let (_, mut held) = serve(b_to_a);

    let pending = tokio::spawn({
        let a_to_b = a_to_b.clone();
        async move {
            a_to_b
                .request::<_, Ping>(HOLD, &Ping { n: 0, data: vec![] })
                .await
        }
    });
    // Dropping a held request (no respond) resets it as refused.
    drop(within(held.recv()).await.unwrap());
    match within(pending).await.unwrap() {
        Err(RequestError::Reset {
            code: ResetCode::Refused,
        }) => {}
        other => panic!("expected a refused reset, got {other:?}"),
    }

    match within(a_to_b.request::<_, Ping>(Protocol(0xee), &Ping { n: 0, data: vec![] })).await {
        Err(RequestError::Reset {
            code: ResetCode::UnknownProtocol,
        }) => {}
        other => panic!("expected an unknown-protocol reset, got {other:?}"),
    }
    // The connection still serves requests.
    let pong: Ping = within(a_to_b.request(PING, &Ping { n: 5, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 6);
}

#[tokio::test]
async fn graceful_close_reaches_the_peer_and_stops_accepting() {
    let (a, b, a_to_b, b_to_a) = connected_pair(config()).await;
    let (_, _) = serve(b_to_a.clone());
    let pong: Ping = within(a_to_b.request(PING, &Ping { n: 0, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 1);

    assert!(
        within(b.close()).await,
        "close did not finish within close_timeout"
    );
    let lost = within(a_to_b.closed()).await;
    assert_eq!(
        lost.application_close_code(),
        Some(u64::from(close_code::SHUTDOWN))
    );
    assert!(within(b.accept()).await.is_none());
    assert!(matches!(
        within(a_to_b.request::<_, Ping>(PING, &Ping { n: 0, data: vec![] })).await,
        Err(RequestError::ConnectionLost(_))
    ));
    // b no longer accepts connections: a dial fails instead of hanging.
    let b_addr = b.local_addr().unwrap();
    let config = blyan_wire::TransportConfig {
        handshake_timeout: Duration::from_secs(3),
        ..config()
    };
    let c = Endpoint::bind(localhost(), &key(9), config).unwrap();
    assert!(within(c.dial(b_addr, None)).await.is_err());
    drop(a);
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (_a, _b, a_to_b, b_to_a) = connected_pair(config()).await;
    let clone = a_to_b.clone();
    drop(a_to_b);
    drop(clone);
    let lost = within(b_to_a.closed()).await;
    assert_eq!(
        lost.application_close_code(),
        Some(u64::from(close_code::NORMAL))
    );
    assert!(within(b_to_a.accept_inbound()).await.is_none());
}
