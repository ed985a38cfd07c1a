//! Size-prefixed frames: every Kafka request and response travels as a 4-byte big-endian
//! length followed by that many bytes.
//!
//! The codec never reserves memory for a frame before its bytes arrive: a peer that announces
//! 100 MiB and sends 10 bytes costs 10 bytes. A negative length, or one above the configured
//! maximum, is an error and the connection should be closed (Kafka does the same with
//! `InvalidReceiveException`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const FRAME_BYTES_MAX_DEFAULT: usize = 104_857_600;

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("negative frame size {0}")]
    NegativeSize(i32),
    #[error("frame of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads the size prefix at the start of `buf`: `Ok(None)` until 4 bytes are there.
pub fn peek_frame_size(buf: &[u8], frame_bytes_max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let size_bytes = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if size_bytes > frame_bytes_max {
        return Err(FrameError::TooLarge {
            size_bytes,
            max_bytes: frame_bytes_max,
        });
    }
    Ok(Some(size_bytes))
}

/// Takes one complete frame's body off the front of `buf`, or returns `Ok(None)` when more
/// bytes are needed (nothing is consumed then).
pub fn decode_frame(
    buf: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(size_bytes) = peek_frame_size(buf, frame_bytes_max)? else {
        return Ok(None);
    };
    if buf.len() < SIZE_PREFIX_BYTES + size_bytes {
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_BYTES);
    Ok(Some(buf.split_to(size_bytes).freeze()))
}

/// Appends `body` to `dst` with its size prefix.
pub fn encode_frame(
    body: &[u8],
    dst: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<(), FrameError> {
    let size = check_size(body.len(), frame_bytes_max)?;
    dst.reserve(SIZE_PREFIX_BYTES + body.len());
    dst.put_i32(size);
    dst.put_slice(body);
    Ok(())
}

fn check_size(size_bytes: usize, frame_bytes_max: usize) -> Result<i32, FrameError> {
    if size_bytes > frame_bytes_max {
        return Err(FrameError::TooLarge {
            size_bytes,
            max_bytes: frame_bytes_max,
        });
    }
    i32::try_from(size_bytes).map_err(|_| FrameError::TooLarge {
        size_bytes,
        max_bytes: i32::MAX as usize,
    })
}

/// Writes a size prefix for a body that the caller encodes in place after it: returns the
/// offset of the prefix, to be completed with [`finish_frame`].
pub fn begin_frame(dst: &mut BytesMut) -> usize {
    let at = dst.len();
    dst.put_i32(0);
    at
}

/// Fills in the size prefix written by [`begin_frame`] at `at`.
pub fn finish_frame(
    dst: &mut BytesMut,
    at: usize,
    frame_bytes_max: usize,
) -> Result<(), FrameError> {
    assert!(
        at + SIZE_PREFIX_BYTES <= dst.len(),
        "finish_frame without begin_frame"
    );
    let size = check_size(dst.len() - at - SIZE_PREFIX_BYTES, frame_bytes_max)?;
    dst[at..at + SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// A `tokio_util::codec` codec of size-prefixed frames, yielding frame bodies.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    frame_bytes_max: usize,
}

impl FrameCodec {
    pub fn new(frame_bytes_max: usize) -> Self {
        FrameCodec { frame_bytes_max }
    }

    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(FRAME_BYTES_MAX_DEFAULT)
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        decode_frame(src, self.frame_bytes_max)
    }
}

impl tokio_util::codec::Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_frame(&body, dst, self.frame_bytes_max)
    }
}

impl tokio_util::codec::Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_frame(body, dst, self.frame_bytes_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::{Decoder, Encoder};

    #[test]
    fn frames_split_and_join() {
        let mut codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut wire)
            .unwrap();
        codec.encode(&b""[..], &mut wire).unwrap();
        assert_eq!(&wire[..], b"\0\0\0\x05hello\0\0\0\0");
        // Feed one byte at a time: a frame appears only when complete.
        let mut input = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire.iter() {
            input.put_u8(*byte);
            while let Some(frame) = codec.decode(&mut input).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![Bytes::from_static(b"hello"), Bytes::new()]);
        assert!(input.is_empty());
    }

    #[test]
    fn negative_and_oversize_lengths_are_errors() {
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(matches!(
            decode_frame(&mut neg, 100),
            Err(FrameError::NegativeSize(-2))
        ));
        let mut big = BytesMut::from(&[0, 0, 0, 101][..]);
        assert!(matches!(
            decode_frame(&mut big, 100),
            Err(FrameError::TooLarge {
                size_bytes: 101,
                max_bytes: 100
            })
        ));
        let mut at_limit = BytesMut::from(&[0, 0, 0, 100][..]);
        assert!(matches!(decode_frame(&mut at_limit, 100), Ok(None)));
        assert!(encode_frame(&[0; 101], &mut BytesMut::new(), 100).is_err());
    }

    #[test]
    fn an_announced_frame_reserves_nothing_before_it_arrives() {
        // 100 MiB announced, 4 bytes sent: the buffer must not grow.
        let mut buf = BytesMut::with_capacity(8);
        buf.put_i32(FRAME_BYTES_MAX_DEFAULT as i32);
        let capacity_before = buf.capacity();
        assert!(matches!(
            decode_frame(&mut buf, FRAME_BYTES_MAX_DEFAULT),
            Ok(None)
        ));
        assert_eq!(buf.capacity(), capacity_before);
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn begin_and_finish_frame_fill_in_the_size() {
        let mut dst = BytesMut::new();
        let at = begin_frame(&mut dst);
        dst.put_slice(b"abc");
        finish_frame(&mut dst, at, 100).unwrap();
        assert_eq!(&dst[..], b"\0\0\0\x03abc");
    }
}
