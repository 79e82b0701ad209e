//! blyan-wire records its transport metrics under names of its own (it sits below
//! blyan-ops and cannot import the catalog); the node exports them through the catalog.
//! The two lists must agree, or a renamed counter would vanish from the exposition.

use blyan_ops::catalog::{HANDSHAKE_FAILURE_REASON_LABEL, P2P_BYTES_TOTAL};
use blyan_ops::metric_def;
use blyan_wire::metric_names as wire;

#[test]
fn every_transport_metric_is_in_the_catalog_with_the_same_label_values() {
    for name in [
        wire::CONNECTIONS_OPENED_TOTAL,
        wire::CONNECTIONS_CLOSED_TOTAL,
        wire::HANDSHAKE_FAILURES_TOTAL,
        wire::STREAMS_RESET_TOTAL,
        wire::TIMEOUTS_TOTAL,
        wire::ADDRESS_VALIDATIONS_TOTAL,
        wire::P2P_BYTES_TOTAL,
    ] {
        assert!(metric_def(name).is_some(), "{name} is not in the catalog");
    }
    assert_eq!(wire::P2P_BYTES_TOTAL, P2P_BYTES_TOTAL.name);
    assert_eq!(
        wire::HANDSHAKE_FAILURE_REASONS,
        HANDSHAKE_FAILURE_REASON_LABEL.values
    );
    let failures = metric_def(wire::HANDSHAKE_FAILURES_TOTAL).unwrap();
    assert!(
        failures
            .labels
            .iter()
            .any(|l| l.values == wire::HANDSHAKE_FAILURE_REASONS)
    );
}
