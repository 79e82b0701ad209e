//! Captured log lines: JSON fields, the component span, filtering, errors.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use blyan_ops::{LogConfig, LogFormat, OpsError, build_dispatch, get_logger, init_logging};
use serde_json::Value;

/// A `MakeWriter` that appends every line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
        .unwrap()
    }

    fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

/// Runs `log` under a subscriber writing `format` at `level` to a buffer.
fn capture(format: LogFormat, level: &str, log: impl FnOnce()) -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let dispatch = build_dispatch(format, level, move || writer.clone()).unwrap();
    tracing::dispatcher::with_default(&dispatch, log);
    captured
}

#[test]
fn json_lines_carry_timestamp_level_target_message_and_every_field() {
    let captured = capture(LogFormat::Json, "info", || {
        tracing::info!(
            block_hash = "9f86d081",
            height = 42_u64,
            peer_id = "12D3Koo",
            "block imported"
        );
        tracing::debug!(height = 43_u64, "filtered out at info");
    });
    let lines = captured.json_lines();
    assert_eq!(lines.len(), 1, "{}", captured.text());
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "it::logging");
    assert_eq!(line["message"], "block imported");
    assert_eq!(line["block_hash"], "9f86d081");
    assert_eq!(line["height"], 42);
    assert_eq!(line["peer_id"], "12D3Koo");
    // RFC 3339, UTC: `2025-01-31T12:34:56.789012Z`.
    let timestamp = line["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() >= 20 && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
    assert!(timestamp.ends_with('Z'), "{timestamp}");
}

#[test]
fn get_logger_tags_events_with_their_component() {
    let captured = capture(LogFormat::Json, "info", || {
        let _chain = get_logger("chain").entered();
        tracing::info!(depth = 2_u64, "reorg");
        {
            let _sync = tracing::info_span!("sync", peer_id = "abc").entered();
            tracing::info!("batch requested");
        }
    });
    let lines = captured.json_lines();
    assert_eq!(lines.len(), 2, "{}", captured.text());
    assert_eq!(lines[0]["span"]["component"], "chain");
    assert_eq!(lines[0]["depth"], 2);
    // Nested spans: the innermost under `span`, all of them under `spans`.
    assert_eq!(lines[1]["span"]["peer_id"], "abc");
    assert_eq!(lines[1]["spans"][0]["component"], "chain");
    assert_eq!(lines[1]["spans"][1]["name"], "sync");
}

#[test]
fn the_component_survives_a_warn_filter() {
    let captured = capture(LogFormat::Json, "warn", || {
        let _p2p = get_logger("p2p").entered();
        tracing::info!("connected");
        tracing::warn!(peer_id = "abc", "peer penalised");
    });
    let lines = captured.json_lines();
    assert_eq!(lines.len(), 1, "{}", captured.text());
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["span"]["component"], "p2p");
}

#[test]
fn per_target_directives_apply() {
    let captured = capture(LogFormat::Json, "warn,it::logging=debug", || {
        tracing::debug!("kept: this target is at debug");
        tracing::trace!("dropped: below debug");
        tracing::info!(target: "blyan_p2p", "dropped: other targets are at warn");
    });
    let messages: Vec<_> = captured
        .json_lines()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, ["kept: this target is at debug"]);
}

#[test]
fn pretty_lines_are_human_readable_and_uncoloured() {
    let captured = capture(LogFormat::Pretty, "info", || {
        let _chain = get_logger("chain").entered();
        tracing::info!(height = 42_u64, "block imported");
    });
    let text = captured.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    for part in [
        " INFO ",
        "component=",
        "chain",
        "it::logging",
        "block imported",
        "height=42",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    assert!(!text.contains('\u{1b}'), "colour codes in {text:?}");
    assert!(serde_json::from_str::<Value>(text.trim()).is_err());
}

#[test]
fn bad_log_settings_are_typed_errors() {
    assert!(matches!(
        "xml".parse::<LogFormat>(),
        Err(OpsError::InvalidLogFormat { value }) if value == "xml"
    ));
    assert_eq!(" Pretty ".parse::<LogFormat>().unwrap(), LogFormat::Pretty);
    assert!(matches!(
        build_dispatch(LogFormat::Json, "chain=loud", std::io::sink),
        Err(OpsError::InvalidLogLevel { .. })
    ));
    assert!(matches!(
        LogConfig::from_values(Some("json"), Some("info,[{")),
        Err(OpsError::InvalidLogLevel { directives, .. }) if directives == "info,[{"
    ));
}

#[test]
fn log_config_defaults_to_json_at_info() {
    let config = LogConfig::from_values(None, Some("  ")).unwrap();
    assert_eq!(config, LogConfig::default());
    assert_eq!(
        (config.format, config.level.as_str()),
        (LogFormat::Json, "info")
    );
    let config = LogConfig::from_values(Some("pretty"), Some("debug,hyper=warn")).unwrap();
    assert_eq!(
        (config.format, config.level.as_str()),
        (LogFormat::Pretty, "debug,hyper=warn")
    );
}

#[test]
fn init_logging_installs_once() {
    // A bad level is refused before anything is installed.
    assert!(matches!(
        init_logging(LogFormat::Json, "=error="),
        Err(OpsError::InvalidLogLevel { .. })
    ));
    // "off": the global subscriber of this test binary stays silent.
    init_logging(LogFormat::Json, "off").unwrap();
    assert!(matches!(
        init_logging(LogFormat::Pretty, "off"),
        Err(OpsError::LoggerAlreadyInstalled)
    ));
}

#[test]
fn a_filter_naming_only_other_targets_needs_blyan_error_for_the_component() {
    let log = || {
        let _dht = get_logger("dht").entered();
        tracing::info!("lookup done");
    };
    let without = capture(LogFormat::Json, "it::logging=info", log).json_lines();
    assert_eq!(without.len(), 1);
    assert!(without[0].get("span").is_none(), "{:?}", without[0]);
    let with = capture(LogFormat::Json, "it::logging=info,blyan=error", log).json_lines();
    assert_eq!(with.len(), 1);
    assert_eq!(with[0]["span"]["component"], "dht");
}
