//! The encrypted key file: round trips, typed failures, and a file that is never replaced
//! by a new identity when it cannot be opened.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use blyan_crypto::{KeyStore, KeyStoreError, KeyStoreParams, sha256};

const PASS: &[u8] = b"correct horse battery staple";

fn store() -> KeyStore {
    KeyStore::new(KeyStoreParams::fast_insecure_for_tests())
}

fn key_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("node.key")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Flips bits of one byte and fixes the trailing checksum, as a deliberate forger would.
fn forge(bytes: &mut [u8], at: usize, mask: u8) {
    bytes[at] ^= mask;
    let body_len = bytes.len() - 32;
    let sum = sha256(&bytes[..body_len]);
    bytes[body_len..].copy_from_slice(sum.as_bytes());
}

fn only_the_key_file_exists(dir: &tempfile::TempDir) {
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("node.key")]);
}

#[test]
fn production_defaults_are_documented_values() {
    let params = KeyStoreParams::default();
    assert_eq!(
        (params.m_cost_kib, params.t_cost, params.p_cost),
        (65536, 3, 1)
    );
}

#[test]
fn create_load_and_load_or_generate_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let created = store().load_or_generate(&path, PASS).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::metadata(&path).unwrap().len(), 142);
    let again = store().load_or_generate(&path, PASS).unwrap();
    assert_eq!(created.public_key(), again.public_key());
    // Loading uses the parameters stored in the file, whatever the store's own.
    let loaded = KeyStore::default().load(&path, PASS).unwrap();
    assert_eq!(created.peer_id(), loaded.peer_id());
    only_the_key_file_exists(&dir);
}

#[test]
fn create_never_replaces_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    store().create(&path, PASS).unwrap();
    let before = fs::read(&path).unwrap();
    assert!(matches!(
        store().create(&path, PASS),
        Err(KeyStoreError::AlreadyExists(_))
    ));
    assert_eq!(fs::read(&path).unwrap(), before);
    only_the_key_file_exists(&dir);
}

/// Every way a file can fail to open: the typed error, and the bytes on disk unchanged even
/// through `load_or_generate`.
#[test]
fn unreadable_files_are_typed_errors_and_stay_untouched() {
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    type Expected = fn(&KeyStoreError) -> bool;
    let cases: Vec<(&str, Damage, Expected)> = vec![
        ("unchanged (wrong passphrase)", Box::new(|_| {}), |e| {
            matches!(e, KeyStoreError::WrongPassphrase)
        }),
        ("truncated", Box::new(|b| b.truncate(100)), |e| {
            matches!(
                e,
                KeyStoreError::Truncated {
                    len: 100,
                    expected: 142
                }
            )
        }),
        ("trailing data", Box::new(|b| b.push(0)), |e| {
            matches!(e, KeyStoreError::TrailingData { .. })
        }),
        ("bit flip in ciphertext", Box::new(|b| b[70] ^= 1), |e| {
            matches!(e, KeyStoreError::Corrupted)
        }),
        ("forged ciphertext", Box::new(|b| forge(b, 70, 1)), |e| {
            matches!(e, KeyStoreError::WrongPassphrase)
        }),
        ("forged salt", Box::new(|b| forge(b, 25, 1)), |e| {
            matches!(e, KeyStoreError::WrongPassphrase)
        }),
        ("wrong magic", Box::new(|b| b[0] = b'X'), |e| {
            matches!(e, KeyStoreError::BadMagic)
        }),
        ("future version", Box::new(|b| forge(b, 8, 1 ^ 2)), |e| {
            matches!(e, KeyStoreError::UnsupportedVersion(2))
        }),
        ("unknown kdf", Box::new(|b| forge(b, 9, 1 ^ 7)), |e| {
            matches!(e, KeyStoreError::UnsupportedKdf(7))
        }),
        ("huge memory cost", Box::new(|b| forge(b, 10, 0xff)), |e| {
            matches!(e, KeyStoreError::InvalidKdfParams { .. })
        }),
        ("empty file", Box::new(|b| b.clear()), |e| {
            matches!(e, KeyStoreError::Truncated { len: 0, .. })
        }),
    ];
    for (name, damage, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        store().create(&path, PASS).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        damage(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let passphrase: &[u8] = if name.starts_with("unchanged") {
            b"wrong"
        } else {
            PASS
        };
        let err = store().load(&path, passphrase).unwrap_err();
        assert!(expected(&err), "{name}: got {err:?}");
        let err = store().load_or_generate(&path, passphrase).unwrap_err();
        assert!(expected(&err), "{name}: load_or_generate got {err:?}");
        let err = store()
            .rotate_passphrase(&path, passphrase, b"new")
            .unwrap_err();
        assert!(expected(&err), "{name}: rotate got {err:?}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{name}: file changed");
        only_the_key_file_exists(&dir);
    }
}

#[test]
fn loose_permissions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    store().create(&path, PASS).unwrap();
    let before = fs::read(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        store().load(&path, PASS),
        Err(KeyStoreError::InsecurePermissions { mode: 0o644, .. })
    ));
    assert!(store().load_or_generate(&path, PASS).is_err());
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn empty_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    assert!(matches!(
        store().create(&path, b""),
        Err(KeyStoreError::EmptyPassphrase)
    ));
    assert!(!path.exists());
    only_nothing(&dir);
}

fn only_nothing(dir: &tempfile::TempDir) {
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn rotate_passphrase_reencrypts_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let key = store().create(&path, PASS).unwrap();
    let before = fs::read(&path).unwrap();
    store()
        .rotate_passphrase(&path, PASS, b"new passphrase")
        .unwrap();
    assert_ne!(fs::read(&path).unwrap(), before);
    assert_eq!(mode(&path), 0o600);
    assert!(matches!(
        store().load(&path, PASS),
        Err(KeyStoreError::WrongPassphrase)
    ));
    let loaded = store().load(&path, b"new passphrase").unwrap();
    assert_eq!(loaded.public_key(), key.public_key());
    only_the_key_file_exists(&dir);
}

#[test]
fn missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent").join("node.key");
    assert!(matches!(
        store().load_or_generate(&path, PASS),
        Err(KeyStoreError::Io { .. })
    ));
}
