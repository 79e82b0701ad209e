//! The node key file: an Ed25519 seed encrypted at rest with a passphrase.
//!
//! File format, version 1 (integers big-endian, 142 bytes):
//!
//! | offset | len | field                                              |
//! |-------:|----:|----------------------------------------------------|
//! |      0 |   8 | magic `BLYANKEY`                                   |
//! |      8 |   1 | format version (1)                                 |
//! |      9 |   1 | KDF id (1 = Argon2id v1.3)                         |
//! |     10 |  12 | Argon2 `m_cost` (KiB), `t_cost`, `p_cost` (u32 ×3) |
//! |     22 |  16 | salt                                               |
//! |     38 |  24 | XChaCha20-Poly1305 nonce                           |
//! |     62 |  32 | encrypted seed                                     |
//! |     94 |  16 | Poly1305 tag (bytes 0..62 are associated data)     |
//! |    110 |  32 | SHA-256 of bytes 0..110                            |
//!
//! The trailing checksum tells accidental damage ([`KeyStoreError::Corrupted`]) apart from a
//! wrong passphrase ([`KeyStoreError::WrongPassphrase`]); the AEAD tag is what protects
//! against deliberate tampering (a forger who also fixes the checksum gets
//! `WrongPassphrase`, as the two cannot be told apart cryptographically).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInOut as _;
use chacha20poly1305::{Key, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::hash::sha256;
use crate::hex;
use crate::keys::{KeyPair, RandomnessError, os_random};

const MAGIC: &[u8; 8] = b"BLYANKEY";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const SEED_LEN: usize = 32;
const TAG_LEN: usize = 16;
const CHECKSUM_LEN: usize = 32;
/// Bytes covered by the AEAD as associated data: magic through nonce.
const HEADER_LEN: usize = 8 + 1 + 1 + 12 + SALT_LEN + NONCE_LEN;
const BODY_LEN: usize = HEADER_LEN + SEED_LEN + TAG_LEN;
/// Size of a version-1 key file.
const FILE_LEN: usize = BODY_LEN + CHECKSUM_LEN;

/// Largest Argon2 memory cost accepted from a file (1 GiB): a damaged or hostile file must not
/// make the node allocate without bound.
const MAX_M_COST_KIB: u32 = 1 << 20;
/// Largest Argon2 time cost accepted from a file.
const MAX_T_COST: u32 = 64;
/// Largest Argon2 parallelism accepted from a file.
const MAX_P_COST: u32 = 64;

/// Argon2id cost parameters for encrypting a key file. They are stored in the file header,
/// so a file is always opened with the parameters it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStoreParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KeyStoreParams {
    /// Production defaults: 64 MiB, 3 passes, 1 lane (about 0.1–0.3 s per unlock on a server
    /// core; within OWASP's Argon2id recommendations).
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KeyStoreParams {
    /// The cheapest parameters Argon2 allows (64 KiB, 1 pass).
    ///
    /// **Insecure:** for tests only. A key file written with these can be brute-forced
    /// quickly; never use them for a real node key.
    pub const fn fast_insecure_for_tests() -> Self {
        Self {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn check(&self) -> Result<argon2::Params, KeyStoreError> {
        let in_range = (1..=MAX_P_COST).contains(&self.p_cost)
            && (1..=MAX_T_COST).contains(&self.t_cost)
            && self.m_cost_kib <= MAX_M_COST_KIB
            && self.m_cost_kib >= 8 * self.p_cost;
        let invalid = || KeyStoreError::InvalidKdfParams { params: *self };
        if !in_range {
            return Err(invalid());
        }
        argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| invalid())
    }
}

/// Why a key file could not be created, read or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// An IO operation on the key file or its directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `create` refuses to replace an existing file.
    #[error("key file {0} already exists")]
    AlreadyExists(PathBuf),
    /// The file does not start with the key file magic bytes.
    #[error("not a Blyan key file (bad magic bytes)")]
    BadMagic,
    /// The file format version is not one this build reads.
    #[error("unsupported key file version {0}")]
    UnsupportedVersion(u8),
    /// The key derivation function id is unknown.
    #[error("unsupported key derivation function id {0}")]
    UnsupportedKdf(u8),
    /// The file is shorter than its format requires.
    #[error("key file truncated: {len} bytes, expected {expected}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes required.
        expected: usize,
    },
    /// The file is longer than its format allows.
    #[error("key file has trailing data: {len} bytes, expected {expected}")]
    TrailingData {
        /// Bytes present (reading stops a little past the expected size).
        len: usize,
        /// Bytes allowed.
        expected: usize,
    },
    /// The checksum does not match: the file was damaged.
    #[error("key file corrupted (checksum mismatch)")]
    Corrupted,
    /// Argon2 parameters outside the accepted range.
    #[error("key derivation parameters out of range: {params:?}")]
    InvalidKdfParams {
        /// The rejected parameters.
        params: KeyStoreParams,
    },
    /// Decryption failed: the passphrase is wrong (or the file was forged).
    #[error("wrong passphrase for key file")]
    WrongPassphrase,
    /// Empty passphrases are refused: they would store the key effectively in clear.
    #[error("the key file passphrase must not be empty")]
    EmptyPassphrase,
    /// The file is readable or writable by group or others.
    #[error("key file {path} has insecure permissions {mode:o} (expected 600)")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The operating system's randomness failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// Argon2 failed on accepted parameters (e.g. out of memory).
    #[error("key derivation failed: {0}")]
    Kdf(argon2::Error),
}

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> KeyStoreError + 'p {
    move |source| KeyStoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and writes encrypted node key files.
///
/// Guarantees: a file is written whole or not at all (temporary file in the same directory,
/// fsync, rename or link, fsync of the directory), with mode 0600; a file that cannot be
/// opened (wrong passphrase, damage, unknown version, loose permissions) is reported and left
/// untouched, never replaced by a new key; secrets in memory are zeroized after use.
///
/// Permissions: on Unix, `load` refuses a key file that group or others may access
/// (`mode & 0o077 != 0`), like OpenSSH does for private keys. Passphrases must not be empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyStore {
    params: KeyStoreParams,
}

impl KeyStore {
    /// A key store that writes new files with `params` (reading uses each file's own).
    pub fn new(params: KeyStoreParams) -> Self {
        Self { params }
    }

    /// The parameters used for files this store writes.
    pub fn params(&self) -> KeyStoreParams {
        self.params
    }

    /// Loads the key at `path`, or, if no file exists there, generates one and stores it.
    ///
    /// Any other condition (wrong passphrase, damaged file, unreadable directory) is an
    /// error and the existing file stays as it is.
    pub fn load_or_generate(
        &self,
        path: &Path,
        passphrase: &[u8],
    ) -> Result<KeyPair, KeyStoreError> {
        match fs::symlink_metadata(path) {
            Ok(_) => self.load(path, passphrase),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match self.create(path, passphrase) {
                    // Another process created it between our check and our link: use theirs.
                    Err(KeyStoreError::AlreadyExists(_)) => self.load(path, passphrase),
                    other => other,
                }
            }
            Err(e) => Err(io_error("inspect", path)(e)),
        }
    }

    /// Generates a new key and stores it at `path`, which must not exist yet.
    pub fn create(&self, path: &Path, passphrase: &[u8]) -> Result<KeyPair, KeyStoreError> {
        let key = KeyPair::generate()?;
        self.import(path, &key, passphrase)?;
        tracing::info!(path = %path.display(), peer_id = %key.peer_id(), "created node key file");
        Ok(key)
    }

    /// Stores an existing key at `path`, which must not exist yet.
    pub fn import(
        &self,
        path: &Path,
        key: &KeyPair,
        passphrase: &[u8],
    ) -> Result<(), KeyStoreError> {
        let file = encrypt(key, passphrase, &self.params)?;
        write_atomic(path, file.as_slice(), WriteMode::CreateNew)
    }

    /// Opens the key file at `path` with `passphrase`.
    pub fn load(&self, path: &Path, passphrase: &[u8]) -> Result<KeyPair, KeyStoreError> {
        let file = read_key_file(path)?;
        decrypt(&file, passphrase)
    }

    /// Re-encrypts the key at `path` under `new` passphrase (and this store's parameters),
    /// replacing the file atomically. The old file stays valid until the new one is in place.
    pub fn rotate_passphrase(
        &self,
        path: &Path,
        old: &[u8],
        new: &[u8],
    ) -> Result<(), KeyStoreError> {
        let key = self.load(path, old)?;
        let file = encrypt(&key, new, &self.params)?;
        write_atomic(path, file.as_slice(), WriteMode::Replace)
    }
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    params: &KeyStoreParams,
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    if passphrase.is_empty() {
        return Err(KeyStoreError::EmptyPassphrase);
    }
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.check()?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(KeyStoreError::Kdf)?;
    Ok(key)
}

fn encrypt(
    key: &KeyPair,
    passphrase: &[u8],
    params: &KeyStoreParams,
) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    os_random(&mut salt)?;
    os_random(&mut nonce)?;
    let derived = derive_key(passphrase, &salt, params)?;

    let mut out = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID);
    out.extend_from_slice(&params.m_cost_kib.to_be_bytes());
    out.extend_from_slice(&params.t_cost.to_be_bytes());
    out.extend_from_slice(&params.p_cost.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);

    let mut sealed = key.to_seed();
    let cipher = XChaCha20Poly1305::new(&Key::from(*derived));
    let tag = cipher
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            out.as_slice(),
            sealed.as_mut_slice().into(),
        )
        // Only fails for messages longer than ChaCha20's 256 GiB keystream.
        .map_err(|_| KeyStoreError::WrongPassphrase)?;
    out.extend_from_slice(sealed.as_ref());
    out.extend_from_slice(tag.as_slice());
    let checksum = sha256(out.as_slice());
    out.extend_from_slice(checksum.as_bytes());
    Ok(out)
}

/// Checks the format (magic, version, length, checksum, parameters), then decrypts.
fn decrypt(file: &[u8], passphrase: &[u8]) -> Result<KeyPair, KeyStoreError> {
    let magic_len = file.len().min(MAGIC.len());
    if file.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(KeyStoreError::BadMagic);
    }
    let version = *file.get(MAGIC.len()).ok_or(KeyStoreError::Truncated {
        len: file.len(),
        expected: FILE_LEN,
    })?;
    if version != VERSION {
        return Err(KeyStoreError::UnsupportedVersion(version));
    }
    if file.len() < FILE_LEN {
        return Err(KeyStoreError::Truncated {
            len: file.len(),
            expected: FILE_LEN,
        });
    }
    if file.len() > FILE_LEN {
        return Err(KeyStoreError::TrailingData {
            len: file.len(),
            expected: FILE_LEN,
        });
    }
    let (body, checksum) = file.split_at(BODY_LEN);
    if sha256(body).as_bytes().as_slice() != checksum {
        return Err(KeyStoreError::Corrupted);
    }
    let mut reader = FieldReader {
        bytes: body,
        at: MAGIC.len() + 1,
    };
    let kdf = reader.array::<1>()?[0];
    if kdf != KDF_ARGON2ID {
        return Err(KeyStoreError::UnsupportedKdf(kdf));
    }
    let params = KeyStoreParams {
        m_cost_kib: u32::from_be_bytes(reader.array()?),
        t_cost: u32::from_be_bytes(reader.array()?),
        p_cost: u32::from_be_bytes(reader.array()?),
    };
    let salt: [u8; SALT_LEN] = reader.array()?;
    let nonce: [u8; NONCE_LEN] = reader.array()?;
    let mut seed = Zeroizing::new(reader.array::<SEED_LEN>()?);
    let tag: [u8; TAG_LEN] = reader.array()?;
    let header = body.get(..HEADER_LEN).ok_or(KeyStoreError::Corrupted)?;

    let derived = derive_key(passphrase, &salt, &params)?;
    let cipher = XChaCha20Poly1305::new(&Key::from(*derived));
    cipher
        .decrypt_inout_detached(
            &XNonce::from(nonce),
            header,
            seed.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| KeyStoreError::WrongPassphrase)?;
    Ok(KeyPair::from_seed(&seed))
}

/// Sequential fixed-size reads from a buffer whose length was already checked.
struct FieldReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl FieldReader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], KeyStoreError> {
        let end = self.at + N;
        let field = self
            .bytes
            .get(self.at..end)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(KeyStoreError::Truncated {
                len: self.bytes.len(),
                expected: FILE_LEN,
            })?;
        self.at = end;
        Ok(field)
    }
}

/// Reads at most a little more than a key file's size, checking permissions first.
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    check_permissions(path, &file)?;
    let mut out = Zeroizing::new(Vec::with_capacity(FILE_LEN + 1));
    // One byte past the format's size is enough to report trailing data.
    file.take(FILE_LEN as u64 + 1)
        .read_to_end(&mut out)
        .map_err(io_error("read", path))?;
    Ok(out)
}

#[cfg(unix)]
fn check_permissions(path: &Path, file: &File) -> Result<(), KeyStoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = file
        .metadata()
        .map_err(io_error("inspect", path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &File) -> Result<(), KeyStoreError> {
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// Fail with `AlreadyExists` if the target exists (hard link, atomic no-clobber).
    CreateNew,
    /// Replace the target atomically (rename).
    Replace,
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`.
fn write_atomic(path: &Path, bytes: &[u8], mode: WriteMode) -> Result<(), KeyStoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_owned());
    let mut suffix = [0u8; 8];
    os_random(&mut suffix)?;
    let tmp = dir.join(format!(".{file_name}.tmp-{}", hex::to_hex(&suffix)));

    let result = write_then_publish(&tmp, path, &dir, bytes, mode);
    if result.is_err() {
        // Best effort: the temporary file holds only ciphertext, but should not linger.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_publish(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    mode: WriteMode,
) -> Result<(), KeyStoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(tmp).map_err(io_error("create", tmp))?;
    file.write_all(bytes).map_err(io_error("write", tmp))?;
    file.sync_all().map_err(io_error("sync", tmp))?;
    drop(file);

    match mode {
        WriteMode::Replace => fs::rename(tmp, path).map_err(io_error("rename", path))?,
        WriteMode::CreateNew => {
            fs::hard_link(tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    KeyStoreError::AlreadyExists(path.to_path_buf())
                } else {
                    io_error("link", path)(e)
                }
            })?;
            fs::remove_file(tmp).map_err(io_error("remove", tmp))?;
        }
    }
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), KeyStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), KeyStoreError> {
    Ok(())
}
