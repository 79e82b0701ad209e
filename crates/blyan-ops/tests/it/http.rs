//! The real endpoint: `install_prometheus` serves the exposition over HTTP.
//!
//! Only `install_prometheus_serves_metrics_over_http` installs the global
//! recorder; the other tests fail before reaching that point.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use blyan_ops::{ALL_METRICS, OpsError, install_prometheus};

use crate::support::{assert_has_lines, record_every_metric};

/// Generous: other engineers' builds share this machine's two cores.
const PATIENCE: Duration = Duration::from_secs(30);

/// A port that was free a moment ago (the exporter binds a fixed address).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Retries `attempt` every 50 ms until it succeeds or `PATIENCE` runs out.
fn poll<T, E: std::fmt::Debug>(what: &str, mut attempt: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(error) if Instant::now() >= deadline => panic!("{what}: {error:?}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A plain HTTP/1.1 GET: (status line, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = poll("connect", || TcpStream::connect_timeout(&addr, PATIENCE));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[test]
fn install_prometheus_serves_metrics_over_http() {
    let addr = free_addr();
    let handle = install_prometheus(addr).unwrap();
    assert_eq!(handle.listen_addr(), Some(addr));

    // Before any event, every series with closed labels is already there.
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for def in ALL_METRICS
        .iter()
        .filter(|def| def.name != "blyan_build_info")
    {
        let kind = format!("# TYPE {} {}", def.name, def.kind.as_str());
        assert!(
            body.lines().any(|l| l == kind),
            "{kind:?} missing from:\n{body}"
        );
    }
    assert!(
        body.contains("blyan_p2p_peers{direction=\"outbound\"} 0"),
        "{body}"
    );
    let started = body
        .lines()
        .find_map(|l| l.strip_prefix("blyan_start_time_seconds "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(started.is_some_and(|secs| secs > 1.7e9), "{started:?}");

    // Facade calls from any thread reach the global recorder.
    thread::spawn(record_every_metric).join().unwrap();
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_has_lines(
        &body,
        &[
            "blyan_chain_height 1234",
            "blyan_build_info{version=\"0.1.0-test\"} 1",
            "blyan_p2p_peers{direction=\"inbound\"} 5",
            "blyan_dht_lookup_seconds_count 1",
        ],
    );
    assert!(
        handle
            .render()
            .lines()
            .any(|l| l == "blyan_chain_height 1234")
    );

    let (status, body) = http_get(addr, "/health");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "OK"));

    // A second global recorder is refused, and its socket is released.
    let other = free_addr();
    let second = install_prometheus(other);
    assert!(
        matches!(second, Err(OpsError::RecorderAlreadyInstalled)),
        "{second:?}"
    );
    poll("rebind the refused exporter's address", || {
        TcpListener::bind(other)
    });
}

#[test]
fn an_address_in_use_is_a_typed_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    match install_prometheus(addr) {
        Err(OpsError::MetricsListener {
            addr: reported,
            reason,
        }) => {
            assert_eq!(reported, addr);
            assert!(!reason.is_empty());
        }
        other => panic!("expected MetricsListener, got {other:?}"),
    }
}

#[test]
fn port_zero_is_refused() {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert!(matches!(
        install_prometheus(addr),
        Err(OpsError::EphemeralMetricsPort { addr: a }) if a == addr
    ));
}

#[test]
fn errors_inside_an_async_context_do_not_panic() {
    // The exporter's runtime lives on its own thread, so failing to bind
    // from within a tokio task must not drop a runtime in async context.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = runtime.block_on(async move { install_prometheus(addr) });
    assert!(
        matches!(result, Err(OpsError::MetricsListener { .. })),
        "{result:?}"
    );
}
