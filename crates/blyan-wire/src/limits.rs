//! The bounds a decoder enforces and the compression policy an encoder follows.

/// 16 MiB: above the largest block the chain allows (consensus bounds blocks well below
/// this), small enough that one frame cannot exhaust a node's memory.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// 16 MiB: a compressed frame may not expand to more than an uncompressed frame could hold.
pub const DEFAULT_MAX_DECOMPRESSED_LEN: usize = 16 * 1024 * 1024;

/// 128 nesting levels: far deeper than any protocol message (a block is 3 deep), shallow
/// enough that recursion stays well inside a 2 MiB thread stack.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// Payloads up to 1 KiB are never compressed: the zstd frame overhead and the CPU are not
/// worth it for small messages.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;

/// zstd level -1 (`zstd --fast=1`). Wire payloads are dominated by hashes, keys and
/// signatures that no level compresses; what does compress (repeated senders, zero padding)
/// compresses as well at -1 as at 1 or 3. Measured on 1,000-transfer blocks: -1 runs at
/// 1.7 GB/s on random-heavy payloads against 0.44 GB/s for level 1, with the same ratio on
/// a compressible block (2.06x). See docs/performance.md.
pub const DEFAULT_ZSTD_LEVEL: i32 = -1;

/// What a decoder accepts. Every value has a safe default (see the constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame length (flags byte + payload, the value of the frame's length
    /// field), checked before any payload byte is read or allocated. Also the largest
    /// message `serialize` produces and `deserialize` accepts. Values above `u32::MAX`
    /// act as `u32::MAX`, the most the length field can express.
    pub max_frame_len: usize,
    /// The most bytes a zstd payload may expand to, enforced while decompressing.
    pub max_decompressed_len: usize,
    /// The deepest nesting of arrays/maps the MsgPack decoder follows.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Limits {
    /// The documented defaults: 16 MiB frames, 16 MiB decompressed, 128 levels deep.
    pub const DEFAULT: Self = Self {
        max_frame_len: DEFAULT_MAX_FRAME_LEN,
        max_decompressed_len: DEFAULT_MAX_DECOMPRESSED_LEN,
        max_depth: DEFAULT_MAX_DEPTH,
    };

    /// The frame limit as the length field can express it.
    pub(crate) fn frame_len_cap(&self) -> usize {
        self.max_frame_len.min(u32::MAX as usize)
    }
}

/// When an encoder compresses a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Never compress (decoders still accept compressed input).
    Disabled,
    /// Compress with zstd when the MsgPack payload is longer than `threshold` bytes and the
    /// result is strictly smaller.
    Zstd {
        /// Payloads of at most this many bytes are sent as they are.
        threshold: usize,
        /// The zstd compression level.
        level: i32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Compression {
    /// zstd at level -1 for payloads over 1 KiB.
    pub const DEFAULT: Self = Self::Zstd {
        threshold: DEFAULT_COMPRESSION_THRESHOLD,
        level: DEFAULT_ZSTD_LEVEL,
    };
}
