//! The ban file: bans survive a restart.
//!
//! Format: JSON, `{"version": 1, "saved_unix_ms": .., "peers": [..], "ips": [..]}`, each
//! entry with wall-clock `until_unix_ms` / `forget_unix_ms` (monotonic time does not
//! survive a restart, so times are translated through the [`Now`] given to save and load).
//! JSON because the file is small (at most ~14,000 entries) and an operator may read it.
//!
//! Writes are atomic: a temporary file beside the target, `fsync`, rename over the target,
//! `fsync` of the directory. A crash leaves the old file or the new one, never half of one.
//! A damaged file is a typed error ([`PersistError::Corrupt`]) and is never overwritten or
//! discarded here: the node decides (it logs, keeps the file aside and starts empty).

use core::time::Duration;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use blyan_crypto::PeerId;
use serde::{Deserialize, Serialize};

use crate::bans::{BanList, BanReason, BanRecord};
use crate::error::PersistError;
use crate::net_group::IpKey;
use crate::time::Now;

/// The format version this code writes and reads.
pub const BAN_FILE_VERSION: u32 = 1;

/// No ban list this node writes comes near this (≈ 250 bytes × 14,096 entries ≈ 3.5 MB).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BanFile {
    version: u32,
    saved_unix_ms: u64,
    peers: Vec<PeerEntry>,
    ips: Vec<IpEntry>,
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerEntry {
    peer: String,
    ip: Option<String>,
    reason: String,
    offences: u32,
    until_unix_ms: u64,
    forget_unix_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IpEntry {
    ip: String,
    reason: String,
    offences: u32,
    until_unix_ms: u64,
    forget_unix_ms: u64,
}

fn to_unix(now: Now, mono: Duration) -> u64 {
    let delta = i128::try_from(mono.as_millis()).unwrap_or(i128::MAX)
        - i128::try_from(now.monotonic().as_millis()).unwrap_or(i128::MAX);
    let unix = i128::from(now.unix_ms()).saturating_add(delta);
    u64::try_from(unix.max(0)).unwrap_or(u64::MAX)
}

fn to_mono(now: Now, unix_ms: u64) -> Duration {
    if unix_ms >= now.unix_ms() {
        now.monotonic()
            .saturating_add(Duration::from_millis(unix_ms - now.unix_ms()))
    } else {
        now.monotonic()
            .saturating_sub(Duration::from_millis(now.unix_ms() - unix_ms))
    }
}

fn parse_peer(text: &str) -> Option<PeerId> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let hex = core::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(PeerId::from_bytes(bytes))
}

impl BanList {
    /// Writes every record (active and remembered) to `path` atomically.
    pub fn save(&self, path: &Path, now: Now) -> Result<(), PersistError> {
        let io = |source| PersistError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut peers: Vec<PeerEntry> = self
            .peers
            .iter()
            .map(|(peer, r)| PeerEntry {
                peer: peer.to_string(),
                ip: r.ip.map(|ip| ip.to_string()),
                reason: r.reason.as_str().to_owned(),
                offences: r.offences,
                until_unix_ms: to_unix(now, r.until),
                forget_unix_ms: to_unix(now, r.forget_at),
            })
            .collect();
        peers.sort_by(|a, b| a.peer.cmp(&b.peer));
        let mut ips: Vec<IpEntry> = self
            .ips
            .iter()
            .map(|(ip, r)| IpEntry {
                ip: ip.to_string(),
                reason: r.reason.as_str().to_owned(),
                offences: r.offences,
                until_unix_ms: to_unix(now, r.until),
                forget_unix_ms: to_unix(now, r.forget_at),
            })
            .collect();
        ips.sort_by(|a, b| a.ip.cmp(&b.ip));
        let file = BanFile {
            version: BAN_FILE_VERSION,
            saved_unix_ms: now.unix_ms(),
            peers,
            ips,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = temp_path(path);
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(path)
        })();
        if written.is_err() {
            // Best effort: a leftover temp file is harmless but untidy.
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    /// Adds the records saved at `path` to this list and returns how many were kept. A
    /// missing file adds nothing (first start); records whose offence memory has ended are
    /// dropped; this list's caps apply. On error the list is unchanged.
    pub fn load(&mut self, path: &Path, now: Now) -> Result<usize, PersistError> {
        // Parse into a scratch list first so that a bad entry leaves `self` untouched.
        let mut list = self.empty_like();
        let owned = || path.to_path_buf();
        let mut file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(PersistError::Io {
                    path: owned(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        let read = Read::by_ref(&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| PersistError::Io {
                path: owned(),
                source,
            })?;
        if read as u64 > MAX_FILE_BYTES {
            let len = file.metadata().map_or(read as u64, |m| m.len());
            return Err(PersistError::TooLarge {
                path: owned(),
                len,
                max: MAX_FILE_BYTES,
            });
        }
        let probe: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
                path: owned(),
                source,
            })?;
        if probe.version != BAN_FILE_VERSION {
            return Err(PersistError::UnsupportedVersion {
                path: owned(),
                found: probe.version,
                expected: BAN_FILE_VERSION,
            });
        }
        let parsed: BanFile =
            serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
                path: owned(),
                source,
            })?;
        let invalid = |detail: String| PersistError::InvalidEntry {
            path: owned(),
            detail,
        };
        let mono_now = now.monotonic();
        for e in parsed.peers {
            let peer = parse_peer(&e.peer)
                .ok_or_else(|| invalid(format!("peer id {:?}", truncate(&e.peer))))?;
            let ip = match &e.ip {
                Some(text) => Some(
                    text.parse::<IpKey>()
                        .map_err(|err| invalid(err.to_string()))?,
                ),
                None => None,
            };
            let record = record(
                now,
                &e.reason,
                e.offences,
                e.until_unix_ms,
                e.forget_unix_ms,
                ip,
            )
            .map_err(invalid)?;
            if record.forget_at > mono_now {
                list.restore_peer(mono_now, peer, record);
            }
        }
        for e in parsed.ips {
            let ip =
                e.ip.parse::<IpKey>()
                    .map_err(|err| invalid(err.to_string()))?;
            let record = record(
                now,
                &e.reason,
                e.offences,
                e.until_unix_ms,
                e.forget_unix_ms,
                None,
            )
            .map_err(invalid)?;
            if record.forget_at > mono_now {
                list.restore_ip(mono_now, ip, record);
            }
        }
        let kept = list.peers.len() + list.ips.len();
        for (peer, record) in list.peers {
            self.restore_peer(mono_now, peer, record);
        }
        for (ip, record) in list.ips {
            self.restore_ip(mono_now, ip, record);
        }
        Ok(kept)
    }
}

fn record(
    now: Now,
    reason: &str,
    offences: u32,
    until_unix_ms: u64,
    forget_unix_ms: u64,
    ip: Option<IpKey>,
) -> Result<BanRecord, String> {
    let reason = BanReason::from_label(reason)
        .ok_or_else(|| format!("ban reason {:?}", truncate(reason)))?;
    if forget_unix_ms < until_unix_ms {
        return Err("forget time before ban end".to_owned());
    }
    Ok(BanRecord {
        until: to_mono(now, until_unix_ms),
        forget_at: to_mono(now, forget_unix_ms),
        offences: offences.max(1),
        reason,
        ip,
    })
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing on this platform; rename is the best we have.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_monotonic_times_translate_both_ways() {
        let now = Now::new(Duration::from_secs(100), 1_000_000);
        assert_eq!(to_unix(now, Duration::from_secs(110)), 1_010_000);
        assert_eq!(to_unix(now, Duration::from_secs(90)), 990_000);
        assert_eq!(to_mono(now, 1_010_000), Duration::from_secs(110));
        assert_eq!(to_mono(now, 990_000), Duration::from_secs(90));
        assert_eq!(to_mono(now, 0), Duration::ZERO);
    }

    #[test]
    fn peer_ids_parse_strictly() {
        let id = PeerId::from_bytes([0xab; 32]);
        assert_eq!(parse_peer(&id.to_string()), Some(id));
        assert_eq!(parse_peer("ab"), None);
        assert_eq!(parse_peer(&"zz".repeat(32)), None);
        assert_eq!(parse_peer(&"é".repeat(32)), None);
    }
}
