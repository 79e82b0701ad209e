//! Transport metrics: a test recorder (local to the test's thread, so tests running in
//! parallel do not see each other's counts) watches the counters move on a handshake, a
//! refused stream, a failed handshake, a close and an address validation.
//!
//! Each test runs a current-thread runtime inside `metrics::with_local_recorder`, so every
//! task of both endpoints records into that test's recorder.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blyan_wire::metric_names::{
    ADDRESS_VALIDATIONS_TOTAL, CONNECTIONS_CLOSED_TOTAL, CONNECTIONS_OPENED_TOTAL,
    HANDSHAKE_FAILURES_TOTAL, P2P_BYTES_TOTAL, STREAMS_RESET_TOTAL,
};
use blyan_wire::{Codec, DialError, Endpoint, RequestError, ResetCode, TransportConfig};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::transport_support::{
    HOLD, PATIENCE, Ping, config, connected_pair, key, localhost, serve, within,
};

/// Counters by `name{label=value,...}` (labels in the order they were recorded).
#[derive(Debug, Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

impl TestRecorder {
    fn counter(&self, series: &str) -> u64 {
        let counters = self.counters.lock().unwrap();
        counters
            .get(series)
            .map_or(0, |value| value.load(Ordering::SeqCst))
    }

    /// Every series of `name` with a non-zero count.
    fn series_of(&self, name: &str) -> Vec<(String, u64)> {
        let counters = self.counters.lock().unwrap();
        counters
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(series, value)| (series.clone(), value.load(Ordering::SeqCst)))
            .filter(|(_, value)| *value > 0)
            .collect()
    }

    /// Waits (up to [`PATIENCE`]) until `series` counts at least `at_least`: for events
    /// the peer records after this side has moved on.
    async fn reaches(&self, series: &str, at_least: u64) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.counter(series) < at_least {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{series} stayed at {} (< {at_least}); counters: {:?}",
            self.counter(series),
            self.counters.lock().unwrap()
        );
    }
}

fn series(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(Arc::clone(counters.entry(series(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Runs `test` on a current-thread runtime with `recorder` as this thread's recorder.
fn recorded<F, Fut>(test: F) -> Arc<TestRecorder>
where
    F: FnOnce(Arc<TestRecorder>) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = Arc::new(TestRecorder::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&*recorder, || runtime.block_on(test(Arc::clone(&recorder))));
    recorder
}

fn opened(direction: &str) -> String {
    format!("{CONNECTIONS_OPENED_TOTAL}{{direction={direction}}}")
}

#[test]
fn a_handshake_a_refused_stream_and_a_close_move_their_counters() {
    recorded(|recorder| async move {
        let (_a, _b, a_to_b, b_to_a) = connected_pair(config()).await;
        // Both sides count the connection before handing it out.
        assert_eq!(recorder.counter(&opened("outbound")), 1);
        assert_eq!(recorder.counter(&opened("inbound")), 1);
        assert_eq!(recorder.series_of(HANDSHAKE_FAILURES_TOTAL), vec![]);

        // A request the server drops unanswered: refused, counted by the server before the
        // reset reaches the client.
        let (_, mut held) = serve(b_to_a);
        let request = Ping {
            n: 7,
            data: vec![9; 100],
        };
        let pending = tokio::spawn({
            let a_to_b = a_to_b.clone();
            let request = request.clone();
            async move { a_to_b.request::<_, Ping>(HOLD, &request).await }
        });
        drop(within(held.recv()).await.unwrap());
        match within(pending).await.unwrap() {
            Err(RequestError::Reset {
                code: ResetCode::Refused,
            }) => {}
            other => panic!("expected a refused reset, got {other:?}"),
        }
        let refused = format!("{STREAMS_RESET_TOTAL}{{code=refused}}");
        assert_eq!(recorder.counter(&refused), 1);

        // The stream's bytes: protocol byte, length, message; sent by one side, received by
        // the other (both endpoints record into this recorder).
        let stream_len = 1 + Codec::DEFAULT.frame(&request).unwrap().len() as u64;
        let bytes = |direction: &str| {
            recorder.counter(&format!("{P2P_BYTES_TOTAL}{{direction={direction}}}"))
        };
        assert_eq!(bytes("outbound"), stream_len);
        assert_eq!(bytes("inbound"), stream_len);

        // Closing: this side counts a local close, the peer a remote one.
        a_to_b.close();
        let closed = |direction: &str, reason: &str| {
            format!("{CONNECTIONS_CLOSED_TOTAL}{{direction={direction},reason={reason}}}")
        };
        recorder.reaches(&closed("outbound", "local"), 1).await;
        recorder.reaches(&closed("inbound", "remote"), 1).await;
    });
}

#[test]
fn a_failed_handshake_is_counted_by_reason_on_both_sides() {
    recorded(|recorder| async move {
        let server = Endpoint::bind(localhost(), &key(2), config()).unwrap();
        let client = Endpoint::bind(localhost(), &key(1), config()).unwrap();
        let wrong = key(9).peer_id();
        match within(client.dial(server.local_addr().unwrap(), Some(wrong))).await {
            Err(DialError::PeerIdMismatch { .. }) => {}
            other => panic!("expected a PeerId mismatch, got {other:?}"),
        }
        let failure = |direction: &str, reason: &str| {
            format!("{HANDSHAKE_FAILURES_TOTAL}{{direction={direction},reason={reason}}}")
        };
        assert_eq!(
            recorder.counter(&failure("outbound", "peer_id_mismatch")),
            1
        );
        // The client aborted with a certificate alert (access_denied), which the server
        // counts as a certificate failure once the alert arrives.
        recorder
            .reaches(&failure("inbound", "certificate"), 1)
            .await;
        assert_eq!(recorder.series_of(CONNECTIONS_OPENED_TOTAL), vec![]);
    });
}

#[test]
fn past_the_threshold_new_addresses_are_validated_with_a_retry_and_still_connect() {
    recorded(|recorder| async move {
        let always = TransportConfig {
            validate_addresses_above: 0,
            ..config()
        };
        let (_a, _b, a_to_b, _b_to_a) = connected_pair(always).await;
        assert_eq!(recorder.counter(ADDRESS_VALIDATIONS_TOTAL), 1);
        assert_eq!(recorder.counter(&opened("inbound")), 1);
        assert_eq!(a_to_b.close_reason().map(|lost| lost.to_string()), None);

        // With the default threshold, a quiet endpoint never asks.
        let (_c, _d, _c_to_d, _d_to_c) = connected_pair(config()).await;
        assert_eq!(recorder.counter(ADDRESS_VALIDATIONS_TOTAL), 1);
        assert_eq!(recorder.counter(&opened("inbound")), 2);
    });
}
