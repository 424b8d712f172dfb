//! Docker's multiplexed stream framing (`application/vnd.docker.multiplexed-stream`): each
//! frame is an 8-byte header (stream id, three zero bytes, big-endian length) and payload.

use bytes::{BufMut, Bytes, BytesMut};

/// Stream ids of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamId {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

/// Frames `payload` for `stream`.
pub fn frame(stream: StreamId, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u8(stream as u8);
    b.put_bytes(0, 3);
    // Payloads come from bounded read buffers and log lines, far below 4 GiB.
    b.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    b.put_slice(payload);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_docker_headers() {
        let f = frame(StreamId::Stderr, b"hey");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'e', b'y']);
    }
}
