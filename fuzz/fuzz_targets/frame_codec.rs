//! The frame codec fed arbitrary bytes in arbitrary chunks: it must not panic, must return the
//! same frames whatever the chunking, and must never accept a frame above its limit.
#![no_main]

use bytes::{Bytes, BytesMut};
use freshet_protocol::frame::FrameCodec;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const FRAME_BYTES_MAX: usize = 64;

/// Frames decoded from `data` delivered in chunks of `chunk` bytes, and whether it ended in an
/// error.
fn run(data: &[u8], chunk: usize) -> (Vec<Bytes>, bool) {
    let mut codec = FrameCodec::new(FRAME_BYTES_MAX);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= FRAME_BYTES_MAX);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let whole = run(rest, rest.len());
    let chunked = run(rest, usize::from(chunk));
    assert_eq!(whole, chunked);
});
