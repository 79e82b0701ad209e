//! The node key: where its passphrase comes from, and loading (or creating) the encrypted
//! key file with `blyan_crypto::KeyStore`.
//!
//! The passphrase comes from, in order: the environment variable named by
//! `security.passphrase_env` (default `BLYAN_KEY_PASSPHRASE`); the file
//! `security.passphrase_file`; and, **on the dev chain only**, a generated passphrase kept
//! in `<key file>.passphrase` (mode 0600) beside the key. That last one is convenient and
//! no protection at all against anyone who can read the data directory: the node logs a
//! warning saying so. A node on a real chain (a `consensus.genesis_file`) without a
//! passphrase refuses to start.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use blyan_crypto::{KeyPair, KeyStore, KeyStoreError};
use zeroize::Zeroizing;

use crate::config::NodeConfig;

/// Largest passphrase file read.
const MAX_PASSPHRASE_FILE_BYTES: u64 = 4096;

/// Why the node key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No passphrase source is configured (and this is not the dev chain).
    #[error(
        "no passphrase for the node key: set {env} or security.passphrase_file \
         (the generated dev passphrase is only used on the dev chain)"
    )]
    NoPassphrase {
        /// The variable that was looked up.
        env: String,
    },
    /// A passphrase file could not be read, written, or is unacceptable.
    #[error("passphrase file {path}: {reason}")]
    PassphraseFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file could not be opened or created.
    #[error("cannot open node key {path}")]
    KeyStore {
        /// The key file.
        path: PathBuf,
        /// The cause (wrong passphrase, damaged file, permissions, ...).
        #[source]
        source: KeyStoreError,
    },
}

/// Where the passphrase came from (reported in the startup log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// An environment variable.
    Env(String),
    /// A configured passphrase file.
    File(PathBuf),
    /// The generated dev passphrase file (`created` on this start).
    DevFile {
        /// The file.
        path: PathBuf,
        /// Whether this start generated it.
        created: bool,
    },
}

/// The passphrase file the dev chain uses beside `key_file`.
pub fn dev_passphrase_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".passphrase");
    PathBuf::from(name)
}

fn file_error(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::PassphraseFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads a passphrase file: the first line, which must not be empty. On Unix the file
/// must not be readable by group or others (as for the key file itself).
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let meta = fs::metadata(path).map_err(|e| file_error(path, e))?;
    if meta.len() > MAX_PASSPHRASE_FILE_BYTES {
        return Err(file_error(path, "larger than 4096 bytes"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(file_error(
                path,
                format!("insecure permissions {mode:o} (expected 600)"),
            ));
        }
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| file_error(path, e))?);
    let line = Zeroizing::new(text.lines().next().unwrap_or("").trim_end().to_owned());
    if line.is_empty() {
        return Err(file_error(path, "empty passphrase"));
    }
    Ok(line)
}

/// Creates a dev passphrase file with 32 random bytes in hex, mode 0600.
fn create_dev_passphrase(path: &Path) -> Result<(), KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| file_error(path, e))?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_ref())));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| file_error(path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e))
}

/// Finds the passphrase for `config`'s key file. `env` looks up environment variables;
/// `dev` allows the generated dev passphrase.
pub fn resolve_passphrase(
    config: &NodeConfig,
    env: &dyn Fn(&str) -> Option<String>,
    dev: bool,
) -> Result<(Zeroizing<String>, PassphraseSource), KeyError> {
    let var = &config.security.passphrase_env;
    if let Some(value) = env(var).filter(|v| !v.is_empty()) {
        return Ok((Zeroizing::new(value), PassphraseSource::Env(var.clone())));
    }
    if let Some(path) = &config.security.passphrase_file {
        let passphrase = read_passphrase_file(path)?;
        return Ok((passphrase, PassphraseSource::File(path.clone())));
    }
    if !dev {
        return Err(KeyError::NoPassphrase { env: var.clone() });
    }
    let path = dev_passphrase_path(&config.key_file());
    let created = match fs::symlink_metadata(&path) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dev_passphrase(&path)?;
            true
        }
        Err(e) => return Err(file_error(&path, e)),
    };
    let passphrase = read_passphrase_file(&path)?;
    Ok((passphrase, PassphraseSource::DevFile { path, created }))
}

/// Loads the node key, creating it if the key file does not exist yet.
pub fn load_node_key(
    config: &NodeConfig,
    env: &dyn Fn(&str) -> Option<String>,
    dev: bool,
) -> Result<(KeyPair, PassphraseSource), KeyError> {
    let (passphrase, source) = resolve_passphrase(config, env, dev)?;
    if let PassphraseSource::DevFile { path, created } = &source {
        tracing::warn!(
            path = %path.display(),
            created,
            "DEV ONLY: the node key passphrase is stored in clear beside the key; \
             set BLYAN_KEY_PASSPHRASE or security.passphrase_file for a real chain"
        );
    }
    let path = config.key_file();
    let store = KeyStore::new(config.security.kdf_params());
    let key = store
        .load_or_generate(&path, passphrase.as_bytes())
        .map_err(|source| KeyError::KeyStore {
            path: path.clone(),
            source,
        })?;
    Ok((key, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> NodeConfig {
        let mut config = NodeConfig::default();
        config.storage.path = dir.to_path_buf();
        config.security.kdf_memory_kib = 64;
        config.security.kdf_passes = 1;
        config
    }

    #[test]
    fn dev_passphrase_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let no_env = |_: &str| None;
        let (first, source) = load_node_key(&config, &no_env, true).unwrap();
        assert!(matches!(
            source,
            PassphraseSource::DevFile { created: true, .. }
        ));
        let (second, source) = load_node_key(&config, &no_env, true).unwrap();
        assert!(matches!(
            source,
            PassphraseSource::DevFile { created: false, .. }
        ));
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dev_passphrase_path(&config.key_file());
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_real_chain_needs_a_configured_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let no_env = |_: &str| None;
        assert!(matches!(
            load_node_key(&config, &no_env, false),
            Err(KeyError::NoPassphrase { .. })
        ));
        let env = |name: &str| (name == "BLYAN_KEY_PASSPHRASE").then(|| "secret".to_owned());
        let (key, source) = load_node_key(&config, &env, false).unwrap();
        assert_eq!(source, PassphraseSource::Env("BLYAN_KEY_PASSPHRASE".into()));
        let wrong = |_: &str| Some("other".to_owned());
        assert!(matches!(
            load_node_key(&config, &wrong, false),
            Err(KeyError::KeyStore {
                source: KeyStoreError::WrongPassphrase,
                ..
            })
        ));
        assert_eq!(
            load_node_key(&config, &env, false).unwrap().0.public_key(),
            key.public_key()
        );
    }
}
