//! The same transport over the in-process `SimNetwork`: handshake and requests, a cut link
//! that stops traffic and heals, delay and loss.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blyan_wire::{Endpoint, LinkConditions, RequestError, SimNetwork, TransportConfig};

use crate::transport_support::{NOTE, PING, Ping, config, key, serve, within};

fn sim_addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 9000))
}

/// Two endpoints on `net`, `a` connected to `b` and `b` serving.
async fn sim_pair(
    net: &SimNetwork,
    config: TransportConfig,
) -> (
    Endpoint,
    Endpoint,
    blyan_wire::Connection,
    blyan_wire::Connection,
) {
    let a = Endpoint::bind_sim(net, sim_addr(1), &key(1), config.clone()).unwrap();
    let b = Endpoint::bind_sim(net, sim_addr(2), &key(2), config).unwrap();
    let (dialed, accepted) =
        within(async { tokio::join!(a.dial(sim_addr(2), Some(b.peer_id())), b.accept()) }).await;
    (a, b, dialed.unwrap(), accepted.unwrap())
}

#[tokio::test]
async fn handshake_requests_and_messages_over_the_simulated_network() {
    let net = SimNetwork::new(1);
    let (a, b, a_to_b, b_to_a) = sim_pair(&net, config()).await;
    assert_eq!(a.local_addr().unwrap(), sim_addr(1));
    assert_eq!(a_to_b.remote_peer_id(), b.peer_id());
    assert_eq!(b_to_a.remote_peer_id(), a.peer_id());
    assert_eq!(b_to_a.remote_addr(), sim_addr(1));
    let (mut notes, _) = serve(b_to_a.clone());
    let _ = serve(a_to_b.clone());

    let pong: Ping = within(a_to_b.request(
        PING,
        &Ping {
            n: 1,
            data: vec![3; 100_000],
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        pong,
        Ping {
            n: 2,
            data: vec![3; 100_000]
        }
    );
    let pong: Ping = within(b_to_a.request(PING, &Ping { n: 7, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 8);
    within(a_to_b.send_message(NOTE, &Ping { n: 5, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(within(notes.recv()).await.unwrap().n, 5);
}

#[tokio::test]
async fn a_cut_link_stops_traffic_and_a_healed_one_resumes() {
    let net = SimNetwork::new(2);
    let short = TransportConfig {
        request_timeout: Duration::from_millis(500),
        ..config()
    };
    let (_a, _b, a_to_b, b_to_a) = sim_pair(&net, short).await;
    let _ = serve(b_to_a);
    let pong: Ping = within(a_to_b.request(PING, &Ping { n: 1, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 2);

    net.cut(sim_addr(1), sim_addr(2));
    match within(a_to_b.request::<_, Ping>(PING, &Ping { n: 2, data: vec![] })).await {
        Err(RequestError::Timeout { .. }) => {}
        other => panic!("expected a timeout across a cut link, got {other:?}"),
    }

    // QUIC retransmits across the healed link; the connection (idle timeout 30 s) survives.
    net.heal(sim_addr(1), sim_addr(2));
    let resumed = async {
        loop {
            match a_to_b
                .request::<_, Ping>(PING, &Ping { n: 3, data: vec![] })
                .await
            {
                Ok(pong) => return pong,
                // A request may still time out while the retransmission timer backs off.
                Err(RequestError::Timeout { .. }) => continue,
                Err(other) => panic!("connection did not survive the partition: {other:?}"),
            }
        }
    };
    assert_eq!(within(resumed).await.n, 4);
}

#[tokio::test]
async fn delay_adds_to_the_round_trip_and_loss_is_recovered() {
    let net = SimNetwork::new(3);
    let (_a, _b, a_to_b, b_to_a) = sim_pair(&net, config()).await;
    let _ = serve(b_to_a);

    let delay = Duration::from_millis(40);
    net.set_link(
        sim_addr(1),
        sim_addr(2),
        LinkConditions {
            delay,
            ..LinkConditions::HEALTHY
        },
    );
    let started = Instant::now();
    let pong: Ping = within(a_to_b.request(PING, &Ping { n: 1, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 2);
    // A request and its response each cross the link once.
    assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());

    net.set_link(
        sim_addr(1),
        sim_addr(2),
        LinkConditions {
            loss: 0.2,
            ..LinkConditions::HEALTHY
        },
    );
    for n in 0..20 {
        let pong: Ping = within(a_to_b.request(
            PING,
            &Ping {
                n,
                data: vec![9; 5000],
            },
        ))
        .await
        .unwrap();
        assert_eq!(pong.n, n + 1);
    }
}
