//! Helpers shared by the test modules.

use std::time::{Duration, UNIX_EPOCH};

use blyan_ops::{
    BlockStatus, Direction, MessageStatus, MessageType, PenaltyReason, RejectionReason,
    metrics_collector as mc,
};

/// Records every catalog metric at least once, with every label value.
pub(crate) fn record_every_metric() {
    mc::set_build_info("0.1.0-test");
    mc::set_start_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    mc::update_chain_height(1_234);
    mc::update_finalized_height(1_224);
    mc::set_sync_progress(0.5);
    for status in BlockStatus::ALL {
        mc::record_block(*status, Duration::from_millis(7));
    }
    mc::record_block(true, Duration::from_millis(2));
    mc::record_reorg(3);
    mc::set_orphan_blocks(4);
    mc::set_mempool_size(17);
    mc::set_peers(Direction::Inbound, 5);
    mc::set_peers(Direction::Outbound, 8);
    for kind in MessageType::ALL {
        for status in MessageStatus::ALL {
            mc::record_message(*kind, *status);
        }
    }
    mc::record_bytes(Direction::Inbound, 4_096);
    mc::record_bytes(Direction::Outbound, 1_024);
    mc::set_banned_peers(2);
    for reason in PenaltyReason::ALL {
        mc::record_penalty(*reason);
    }
    for reason in RejectionReason::ALL {
        mc::record_security_rejection(*reason);
    }
    mc::set_dht_nodes(160);
    mc::record_dht_lookup(Duration::from_millis(180));
}

/// Asserts that each of `lines` is a whole line of `text`.
pub(crate) fn assert_has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "{line:?} missing from:\n{text}"
        );
    }
}
