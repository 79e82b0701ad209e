//! The rendered exposition: complete, typed as the catalog says, and clean
//! under `promtool check metrics` (Prometheus' own parser and linter).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use blyan_ops::{ALL_METRICS, MetricKind, build_recorder, metrics_collector};

use crate::support::{assert_has_lines, record_every_metric};

fn render_everything() -> String {
    let (recorder, handle) = build_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics_collector::describe_all();
        metrics_collector::register_all();
        record_every_metric();
    });
    handle.render()
}

#[test]
fn every_catalog_metric_is_rendered_with_help_and_type() {
    let text = render_everything();
    for def in ALL_METRICS {
        let help = format!("# HELP {} {}\n", def.name, def.help);
        let kind = format!("# TYPE {} {}\n", def.name, def.kind.as_str());
        assert!(text.contains(&help), "{help:?} missing from:\n{text}");
        assert!(text.contains(&kind), "{kind:?} missing from:\n{text}");
    }
}

#[test]
fn recorded_values_appear_in_the_exposition() {
    let text = render_everything();
    assert_has_lines(
        &text,
        &[
            "blyan_chain_height 1234",
            "blyan_finalized_height 1224",
            "blyan_sync_progress_ratio 0.5",
            "blyan_build_info{version=\"0.1.0-test\"} 1",
            "blyan_start_time_seconds 1700000000",
            "blyan_p2p_peers{direction=\"inbound\"} 5",
            "blyan_p2p_peers{direction=\"outbound\"} 8",
            // `record_block(true, ..)` counts as imported.
            "blyan_blocks_total{status=\"imported\"} 2",
            "blyan_blocks_total{status=\"orphaned\"} 1",
            "blyan_p2p_messages_total{type=\"dht_store\",status=\"timeout\"} 1",
            "blyan_p2p_bytes_total{direction=\"inbound\"} 4096",
            "blyan_peer_penalties_total{reason=\"replay\"} 1",
            "blyan_security_rejections_total{reason=\"too_many_per_subnet\"} 1",
            "blyan_reorg_total 1",
            "blyan_reorg_depth_bucket{le=\"3\"} 1",
            "blyan_reorg_depth_bucket{le=\"2\"} 0",
            "blyan_block_processing_seconds_count 5",
            "blyan_dht_lookup_seconds_bucket{le=\"0.25\"} 1",
            "blyan_dht_lookup_seconds_bucket{le=\"0.1\"} 0",
            "blyan_dht_nodes 160",
            "blyan_banned_peers 2",
            "blyan_mempool_transactions 17",
            "blyan_orphan_blocks 4",
        ],
    );
}

#[test]
fn registered_series_start_at_zero_before_any_event() {
    let (recorder, handle) = build_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics_collector::describe_all();
        metrics_collector::register_all();
    });
    let text = handle.render();
    assert_has_lines(
        &text,
        &[
            "blyan_p2p_peers{direction=\"inbound\"} 0",
            "blyan_blocks_total{status=\"rejected\"} 0",
            "blyan_peer_penalties_total{reason=\"timeout\"} 0",
            "blyan_chain_height 0",
        ],
    );
    // The version of build_info is the binary's to set.
    assert!(!text.contains("blyan_build_info{"));
}

#[test]
fn sync_progress_is_clamped_and_nan_is_ignored() {
    let (recorder, handle) = build_recorder().unwrap();
    let value = |ratio: f64| {
        metrics::with_local_recorder(&recorder, || metrics_collector::set_sync_progress(ratio));
        let text = handle.render();
        text.lines()
            .find_map(|l| l.strip_prefix("blyan_sync_progress_ratio "))
            .map(str::to_owned)
    };
    assert_eq!(value(0.25).as_deref(), Some("0.25"));
    assert_eq!(value(7.0).as_deref(), Some("1"));
    assert_eq!(value(f64::NAN).as_deref(), Some("1"));
    assert_eq!(value(f64::NEG_INFINITY).as_deref(), Some("0"));
}

/// `PROMTOOL`, then `promtool` on `PATH`, then the usual install locations.
fn find_promtool() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(explicit));
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("promtool"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/local/bin/promtool", "/usr/bin/promtool"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// Pipes `text` to `promtool check metrics`: (success, stdout + stderr).
fn promtool_check(promtool: &Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn promtool_check_metrics_passes_without_lint_warnings() {
    let Some(promtool) = find_promtool() else {
        eprintln!(
            "SKIPPED promtool_check_metrics_passes_without_lint_warnings: promtool not found \
             (PROMTOOL, PATH, /usr/local/bin, /usr/bin); run scripts/install-promtool.sh"
        );
        return;
    };
    let text = render_everything();
    let (success, said) = promtool_check(&promtool, &text);
    assert!(
        success && said.trim().is_empty(),
        "promtool check metrics failed or warned:\n{said}\ninput:\n{text}"
    );
}

#[test]
fn promtool_lints_a_total_suffixed_gauge() {
    // Shows the check has teeth: the name DESIGN §8 gave the peer gauge fails it.
    let Some(promtool) = find_promtool() else {
        eprintln!("SKIPPED promtool_lints_a_total_suffixed_gauge: promtool not found");
        return;
    };
    let text = "# HELP blyan_p2p_peers_total Connected peers.\n\
                # TYPE blyan_p2p_peers_total gauge\n\
                blyan_p2p_peers_total{direction=\"inbound\"} 3\n";
    let (success, said) = promtool_check(&promtool, text);
    assert!(!success, "promtool accepted a _total gauge: {said}");
    assert!(
        said.contains("non-counter metrics should not have \"_total\" suffix"),
        "{said}"
    );
}

#[test]
fn histogram_kinds_render_buckets() {
    let text = render_everything();
    for def in ALL_METRICS
        .iter()
        .filter(|d| d.kind == MetricKind::Histogram)
    {
        let prefix = format!("{}_bucket{{", def.name);
        let buckets = text.lines().filter(|l| l.starts_with(&prefix)).count();
        // One line per bound plus +Inf.
        assert_eq!(buckets, def.buckets.len() + 1, "{}", def.name);
    }
}
