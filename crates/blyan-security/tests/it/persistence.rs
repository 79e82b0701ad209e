use std::time::Duration;

use blyan_security::{BanConfig, BanReason, Direction, Now, PersistError, Reject, SecurityConfig};

use crate::{T0_UNIX_MS, admit, ip, manager, peer, secs, start};

const HOUR: u64 = 3600;

fn config_with_memory(memory: Duration) -> SecurityConfig {
    SecurityConfig {
        bans: BanConfig {
            offence_memory: memory,
            ..BanConfig::default()
        },
        ..SecurityConfig::default()
    }
}

#[test]
fn bans_survive_a_restart_and_expired_ones_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bans.json");
    let mut m = manager(config_with_memory(secs(HOUR)));
    let now = start();
    admit(&mut m, now, peer(1), ip("192.0.2.1"));
    m.ban_peer(now, peer(1), BanReason::LowScore, secs(10 * HOUR));
    m.ban_peer(now, peer(2), BanReason::Manual, secs(60));
    m.ban_ip(now, ip("2001:db8:1:2::7"), secs(5 * HOUR));
    m.save_bans(&path, now).unwrap();
    assert!(!dir.path().join("bans.json.tmp").exists());

    // The process restarts 2 h later: its monotonic clock starts again near zero.
    let restarted = Now::new(Duration::from_millis(5), T0_UNIX_MS + 2 * HOUR * 1000);
    let mut fresh = manager(config_with_memory(secs(HOUR)));
    assert_eq!(fresh.load_bans(&path, restarted).unwrap(), vec![]);
    assert!(fresh.is_banned(restarted, &peer(1)));
    let record = fresh.bans().peer_record(&peer(1)).copied().unwrap();
    assert_eq!(record.reason, BanReason::LowScore);
    assert_eq!(record.ip, Some(blyan_security::IpKey::V4([192, 0, 2, 1])));
    assert_eq!(record.until, restarted.monotonic() + secs(8 * HOUR));
    assert!(fresh.is_ip_banned(restarted, ip("2001:db8:1:2::1")));
    // Peer 2's one-minute ban ended, and its offence memory (1 h) too: forgotten.
    assert!(fresh.bans().peer_record(&peer(2)).is_none());
    assert_eq!(
        fresh.check_connection(restarted, peer(1), ip("192.0.2.1"), Direction::Inbound),
        Err(Reject::Banned)
    );
    // Saving again writes the same records.
    fresh.save_bans(&path, restarted).unwrap();
    let mut again = manager(config_with_memory(secs(HOUR)));
    again.load_bans(&path, restarted).unwrap();
    assert_eq!(again.bans().peer_record(&peer(1)), Some(&record));
}

#[test]
fn a_missing_file_is_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manager(SecurityConfig::default());
    assert_eq!(
        m.load_bans(&dir.path().join("none.json"), start()).unwrap(),
        vec![]
    );
    assert_eq!(m.table_sizes().banned_peers, 0);
}

#[test]
fn loading_bans_closes_banned_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bans.json");
    let now = start();
    let mut old = manager(SecurityConfig::default());
    old.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    old.save_bans(&path, now).unwrap();
    let mut m = manager(SecurityConfig::default());
    admit(&mut m, now, peer(1), ip("192.0.2.1"));
    assert_eq!(m.load_bans(&path, now).unwrap(), vec![peer(1)]);
    assert!(m.connection(&peer(1)).is_none());
}

#[test]
fn damaged_files_are_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bans.json");
    let now = start();
    let mut m = manager(SecurityConfig::default());
    m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    m.save_bans(&path, now).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();

    type Expected = fn(&PersistError) -> bool;
    let cases: Vec<(String, Expected)> = vec![
        (good[..good.len() / 2].to_owned(), |e| {
            matches!(e, PersistError::Corrupt { .. })
        }),
        ("not json".to_owned(), |e| {
            matches!(e, PersistError::Corrupt { .. })
        }),
        (good.replace("\"version\": 1", "\"version\": 99"), |e| {
            matches!(e, PersistError::UnsupportedVersion { found: 99, .. })
        }),
        (good.replace(&peer(1).to_string(), "xyz"), |e| {
            matches!(e, PersistError::InvalidEntry { .. })
        }),
        (good.replace("\"manual\"", "\"because\""), |e| {
            matches!(e, PersistError::InvalidEntry { .. })
        }),
        (good.replace("\"ips\"", "\"surprise\": 1, \"ips\""), |e| {
            matches!(e, PersistError::Corrupt { .. })
        }),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, &text).unwrap();
        let mut fresh = manager(SecurityConfig::default());
        let err = fresh.load_bans(&path, now).unwrap_err();
        assert!(expected(&err), "unexpected error {err} for {text:.60}");
        assert_eq!(fresh.table_sizes().banned_peers, 0);
    }
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bans.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(17 * 1024 * 1024).unwrap();
    let mut m = manager(SecurityConfig::default());
    assert!(matches!(
        m.load_bans(&path, start()),
        Err(PersistError::TooLarge { .. })
    ));
}
