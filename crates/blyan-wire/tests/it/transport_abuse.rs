//! Hostile peers: no certificate, oversized frames, zstd bombs, stream floods and stalled
//! streams each fail cleanly, and the server keeps serving everyone else.

use std::time::Duration;

use blyan_wire::{Codec, Endpoint, Inbound, Limits, RequestError, ResetCode, TransportConfig};

use crate::bomb::{message as zstd_message, rle_bomb};
use crate::transport_support::{
    HOLD, PING, Ping, config, key, localhost, raw_client, raw_client_with_alpn, serve, within,
};

/// A server that serves every connection it accepts.
fn spawn_server(config: TransportConfig) -> Endpoint {
    let server = Endpoint::bind(localhost(), &key(100), config).unwrap();
    let acceptor = server.clone();
    tokio::spawn(async move {
        while let Some(connection) = acceptor.accept().await {
            let _ = serve(connection);
        }
    });
    server
}

async fn healthy_client_works(server: &Endpoint, seed: u8) {
    let client = Endpoint::bind(localhost(), &key(seed), config()).unwrap();
    let connection = within(client.dial(server.local_addr().unwrap(), Some(server.peer_id())))
        .await
        .unwrap();
    let pong: Ping = within(connection.request(
        PING,
        &Ping {
            n: 10,
            data: vec![],
        },
    ))
    .await
    .unwrap();
    assert_eq!(pong.n, 11);
}

#[tokio::test]
async fn a_client_without_certificate_is_refused_and_others_keep_working() {
    let server = Endpoint::bind(localhost(), &key(100), config()).unwrap();
    let addr = server.local_addr().unwrap();

    let anonymous = raw_client(None);
    // TLS 1.3 lets the client finish its side before the server has judged its (missing)
    // certificate: the refusal surfaces on connect or right after, as the TLS alert
    // certificate_required (116) carried in a QUIC CRYPTO_ERROR.
    let connecting = anonymous.connect(addr, "blyan").unwrap();
    let reason = match within(connecting).await {
        Err(reason) => reason,
        Ok(connection) => within(connection.closed()).await,
    };
    assert!(
        matches!(
            &reason,
            quinn::ConnectionError::ConnectionClosed(close)
                if close.error_code == quinn::TransportErrorCode::crypto(116)
        ),
        "unexpected refusal: {reason:?}"
    );

    // The next connection the server hands out is the authenticated one.
    let good = Endpoint::bind(localhost(), &key(5), config()).unwrap();
    let (dialed, accepted) =
        within(async { tokio::join!(good.dial(addr, Some(server.peer_id())), server.accept()) })
            .await;
    let accepted = accepted.unwrap();
    assert_eq!(accepted.remote_peer_id(), good.peer_id());
    let _ = serve(accepted);
    let pong: Ping = within(dialed.unwrap().request(PING, &Ping { n: 1, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 2);
}

#[tokio::test]
async fn a_client_with_a_certificate_but_no_blyan_endpoint_is_served() {
    // The raw client presents a valid Blyan certificate signed by rustls' own Ed25519
    // signer: the server accepts it and sees the client's id.
    let server = Endpoint::bind(localhost(), &key(100), config()).unwrap();
    let addr = server.local_addr().unwrap();
    let client_key = key(6);
    let raw = raw_client(Some(&client_key));
    let (connection, accepted) = within(async {
        tokio::join!(
            async { raw.connect(addr, "blyan").unwrap().await },
            server.accept()
        )
    })
    .await;
    let _connection = connection.unwrap();
    assert_eq!(accepted.unwrap().remote_peer_id(), client_key.peer_id());
}

#[tokio::test]
async fn an_oversized_frame_is_reset_before_its_payload_and_others_keep_working() {
    let small = TransportConfig {
        limits: Limits {
            max_frame_len: 64 * 1024,
            ..Limits::DEFAULT
        },
        ..config()
    };
    let server = spawn_server(small);
    // The client's own limits allow the frame, the server's do not.
    let client = Endpoint::bind(localhost(), &key(7), config()).unwrap();
    let connection = within(client.dial(server.local_addr().unwrap(), Some(server.peer_id())))
        .await
        .unwrap();
    let big = Codec::DEFAULT
        .with_compression(blyan_wire::Compression::Disabled)
        .serialize(&Ping {
            n: 0,
            data: vec![1; 1024 * 1024],
        })
        .unwrap();
    match within(connection.request_bytes(PING, &big)).await {
        Err(RequestError::Reset {
            code: ResetCode::TooLarge,
        }) => {}
        other => panic!("expected a too-large reset, got {other:?}"),
    }
    // The same connection and a new one still work.
    let pong: Ping = within(connection.request(PING, &Ping { n: 3, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 4);
    healthy_client_works(&server, 8).await;
}

#[tokio::test]
async fn a_zstd_bomb_is_refused_and_others_keep_working() {
    let server = spawn_server(config());
    let client = Endpoint::bind(localhost(), &key(9), config()).unwrap();
    let connection = within(client.dial(server.local_addr().unwrap(), Some(server.peer_id())))
        .await
        .unwrap();
    // 4 bytes per 128 KiB: 1 GiB of zeros in 32 KiB, far inside the frame limit.
    let bomb = zstd_message(&rle_bomb(8192));
    assert!(bomb.len() < 40 * 1024);
    match within(connection.request_bytes(PING, &bomb)).await {
        Err(RequestError::Reset {
            code: ResetCode::TooLarge,
        }) => {}
        other => panic!("expected a too-large reset, got {other:?}"),
    }
    let pong: Ping = within(connection.request(PING, &Ping { n: 5, data: vec![] }))
        .await
        .unwrap();
    assert_eq!(pong.n, 6);
    healthy_client_works(&server, 10).await;
}

#[tokio::test]
async fn a_stream_flood_is_held_to_the_stream_limit_and_drains() {
    const LIMIT: u32 = 4;
    const FLOOD: u64 = 40;
    let capped = TransportConfig {
        max_concurrent_bidi_streams: LIMIT,
        ..config()
    };
    let server = Endpoint::bind(localhost(), &key(100), capped).unwrap();
    let addr = server.local_addr().unwrap();
    let flooder = Endpoint::bind(localhost(), &key(11), config()).unwrap();
    let (dialed, accepted) =
        within(async { tokio::join!(flooder.dial(addr, Some(server.peer_id())), server.accept()) })
            .await;
    let (flood_connection, server_side) = (dialed.unwrap(), accepted.unwrap());

    let flood: Vec<_> = (0..FLOOD)
        .map(|n| {
            let connection = flood_connection.clone();
            tokio::spawn(async move {
                connection
                    .request::<_, Ping>(HOLD, &Ping { n, data: vec![] })
                    .await
            })
        })
        .collect();

    // The server sees exactly LIMIT requests while it holds them: QUIC gives the flooder
    // no more stream credit.
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        match within(server_side.accept_inbound()).await {
            Some(Inbound::Request(request)) => held.push(request),
            other => panic!("expected a request, got {other:?}"),
        }
    }
    let more = tokio::time::timeout(Duration::from_millis(300), server_side.accept_inbound()).await;
    assert!(more.is_err(), "a request beyond the stream limit arrived");

    // Another client is served meanwhile.
    let acceptor = server.clone();
    let other = tokio::spawn(async move {
        let connection = acceptor.accept().await.unwrap();
        let _ = serve(connection);
    });
    healthy_client_works(&server, 12).await;
    within(other).await.unwrap();

    // Answering frees credit: the rest of the flood drains through the same limit.
    let mut answered = 0;
    while answered < FLOOD {
        let request = match held.pop() {
            Some(request) => request,
            None => match within(server_side.accept_inbound()).await {
                Some(Inbound::Request(request)) => request,
                other => panic!("expected a request, got {other:?}"),
            },
        };
        let ping: Ping = request.decode().unwrap();
        request
            .respond(&Ping {
                n: ping.n + 1,
                data: vec![],
            })
            .await
            .unwrap();
        answered += 1;
    }
    for (n, handle) in flood.into_iter().enumerate() {
        assert_eq!(within(handle).await.unwrap().unwrap().n, n as u64 + 1);
    }
}

#[tokio::test]
async fn a_stalled_inbound_stream_is_reset_without_blocking_others() {
    let impatient = TransportConfig {
        inbound_read_timeout: Duration::from_millis(300),
        ..config()
    };
    let server = spawn_server(impatient);
    let addr = server.local_addr().unwrap();
    let staller_key = key(13);
    let raw = raw_client(Some(&staller_key));
    let connection = within(raw.connect(addr, "blyan").unwrap()).await.unwrap();

    // Protocol byte and a header announcing 100 bytes, then 1 byte, then silence.
    let (mut send, mut recv) = within(connection.open_bi()).await.unwrap();
    send.write_all(&[PING.0, 0, 0, 0, 100, 0x00]).await.unwrap();

    // A well-behaved request on another stream of the same connection is answered first.
    let (mut send2, mut recv2) = within(connection.open_bi()).await.unwrap();
    let frame = Codec::DEFAULT.frame(&Ping { n: 1, data: vec![] }).unwrap();
    send2.write_all(&[PING.0]).await.unwrap();
    send2.write_all(&frame).await.unwrap();
    send2.finish().unwrap();
    let response = within(recv2.read_to_end(1024)).await.unwrap();
    let pong: Ping = Codec::DEFAULT
        .decode_frame(&mut bytes::BytesMut::from(&response[..]))
        .unwrap()
        .unwrap();
    assert_eq!(pong.n, 2);

    // The stalled stream is reset with the timeout code.
    match within(recv.read_to_end(1024)).await {
        Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
            assert_eq!(ResetCode::from_u64(code.into_inner()), ResetCode::Timeout);
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    healthy_client_works(&server, 14).await;
}

#[tokio::test]
async fn a_client_with_another_or_no_alpn_is_refused() {
    let server = spawn_server(config());
    let addr = server.local_addr().unwrap();
    let client_key = key(15);
    for alpn in [&[b"h3".as_slice()][..], &[]] {
        let raw = raw_client_with_alpn(Some(&client_key), alpn);
        let connecting = raw.connect(addr, "blyan").unwrap();
        let reason = match within(connecting).await {
            Err(reason) => reason,
            Ok(connection) => within(connection.closed()).await,
        };
        let refused = match &reason {
            // rustls: no_application_protocol (120) for a protocol we do not speak.
            quinn::ConnectionError::ConnectionClosed(close) => {
                close.error_code == quinn::TransportErrorCode::crypto(120)
            }
            // No ALPN at all: the endpoint closes the established connection itself.
            quinn::ConnectionError::ApplicationClosed(close) => {
                close.error_code == blyan_wire::close_code::WRONG_PROTOCOL.into()
            }
            _ => false,
        };
        assert!(refused, "ALPN {alpn:?}: unexpected outcome {reason:?}");
    }
    healthy_client_works(&server, 16).await;
}

#[tokio::test]
async fn unhandled_inbound_bytes_are_held_to_the_budget() {
    // A budget of one 64 KiB frame: a second large request is not read while the first
    // one is held, and is read as soon as it is answered.
    let tight = TransportConfig {
        limits: Limits {
            max_frame_len: 64 * 1024,
            ..Limits::DEFAULT
        },
        max_inbound_bytes_per_connection: 0,
        ..config()
    };
    let server = Endpoint::bind(localhost(), &key(100), tight).unwrap();
    // Uncompressed, so that each request really is 40 KiB on the wire.
    let plain = TransportConfig {
        compression: blyan_wire::Compression::Disabled,
        ..config()
    };
    let client = Endpoint::bind(localhost(), &key(17), plain).unwrap();
    let (dialed, accepted) = within(async {
        tokio::join!(
            client.dial(server.local_addr().unwrap(), None),
            server.accept()
        )
    })
    .await;
    let (connection, server_side) = (dialed.unwrap(), accepted.unwrap());
    let big = Ping {
        n: 1,
        data: vec![1; 40 * 1024],
    };
    let requests: Vec<_> = (0..2)
        .map(|n| {
            let connection = connection.clone();
            let ping = Ping { n, ..big.clone() };
            tokio::spawn(async move { connection.request::<_, Ping>(HOLD, &ping).await })
        })
        .collect();
    let Some(Inbound::Request(first)) = within(server_side.accept_inbound()).await else {
        panic!("expected a request");
    };
    let second =
        tokio::time::timeout(Duration::from_millis(300), server_side.accept_inbound()).await;
    assert!(
        second.is_err(),
        "a second frame was read beyond the byte budget"
    );
    let n = first.decode::<Ping>().unwrap().n;
    first
        .respond(&Ping {
            n: n + 10,
            data: vec![],
        })
        .await
        .unwrap();
    let Some(Inbound::Request(second)) = within(server_side.accept_inbound()).await else {
        panic!("expected the second request");
    };
    let m = second.decode::<Ping>().unwrap().n;
    second
        .respond(&Ping {
            n: m + 10,
            data: vec![],
        })
        .await
        .unwrap();
    let mut answers: Vec<u64> = Vec::new();
    for request in requests {
        answers.push(within(request).await.unwrap().unwrap().n);
    }
    answers.sort_unstable();
    assert_eq!(answers, vec![10, 11]);
}
