//! Frames over `tokio::io::{AsyncRead, AsyncWrite}` (feature `async-io`).

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{FRAME_HEADER_LEN, check_length};
use crate::{Codec, CodecError};

/// The largest first allocation for an incoming payload: the buffer grows with the bytes
/// that actually arrive, so a peer that announces 16 MiB and sends 10 bytes costs 64 KiB.
const INITIAL_READ_CAPACITY: usize = 64 * 1024;

impl Codec {
    /// Writes one frame carrying `value` with a single `write_all` (no flush: callers that
    /// buffer decide when to flush; a QUIC stream is finished by the transport).
    pub async fn write_frame<W, T>(&self, writer: &mut W, value: &T) -> Result<(), CodecError>
    where
        W: AsyncWrite + Unpin + ?Sized,
        T: Serialize + ?Sized,
    {
        let frame = self.encode_frame_vec(value)?;
        writer.write_all(&frame).await?;
        Ok(())
    }

    /// Reads one frame and returns its message (flags byte + payload).
    ///
    /// `Ok(None)` when the stream ends cleanly before the first byte of a frame;
    /// [`CodecError::Truncated`] when it ends inside one. The length is checked before the
    /// payload is read, and the payload buffer grows only as bytes arrive.
    pub async fn read_message<R>(&self, reader: &mut R) -> Result<Option<Bytes>, CodecError>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        let mut header = [0_u8; FRAME_HEADER_LEN];
        let mut filled = 0;
        while filled < FRAME_HEADER_LEN {
            let dest = header.get_mut(filled..).ok_or(CodecError::Truncated)?;
            match reader.read(dest).await? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(CodecError::Truncated),
                n => filled += n,
            }
        }
        let len = check_length(u32::from_be_bytes(header), self.limits())?;
        let mut message = Vec::with_capacity(len.min(INITIAL_READ_CAPACITY));
        // `len` fits u64 on every platform.
        let read = reader.take(len as u64).read_to_end(&mut message).await?;
        if read < len {
            return Err(CodecError::Truncated);
        }
        Ok(Some(Bytes::from(message)))
    }

    /// Reads one frame and decodes the value it carries; `Ok(None)` on a clean end of stream.
    pub async fn read_frame<R, T>(&self, reader: &mut R) -> Result<Option<T>, CodecError>
    where
        R: AsyncRead + Unpin + ?Sized,
        T: DeserializeOwned,
    {
        match self.read_message(reader).await? {
            Some(message) => self.deserialize(&message).map(Some),
            None => Ok(None),
        }
    }
}
