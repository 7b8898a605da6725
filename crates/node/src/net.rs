//! Socket helpers shared by the protocol front ends: gathering many shared buffers into as few
//! `writev` calls as the kernel allows.

use std::io::IoSlice;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes every buffer, in order, with vectored writes. Returns the number of bytes written.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, bufs: &[Bytes]) -> std::io::Result<u64> {
    const MAX_IOV: usize = 512;
    let total: usize = bufs.iter().map(Bytes::len).sum();
    let (mut index, mut offset) = (0usize, 0usize);
    while index < bufs.len() {
        let end = (index + MAX_IOV).min(bufs.len());
        let mut slices = Vec::with_capacity(end - index);
        slices.push(IoSlice::new(&bufs[index][offset..]));
        slices.extend(bufs[index + 1..end].iter().map(|b| IoSlice::new(b)));
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Advance past what was written.
        while n > 0 && index < bufs.len() {
            let left = bufs[index].len() - offset;
            if n >= left {
                n -= left;
                index += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        while index < bufs.len() && bufs[index].len() == offset {
            index += 1;
            offset = 0;
        }
    }
    w.flush().await?;
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn partial_writes_keep_order() {
        let (mut a, mut b) = tokio::io::duplex(7); // tiny pipe forces partial writes
        let bufs: Vec<Bytes> = (0..50u8).map(|i| Bytes::from(vec![i; (i as usize % 5) + 1])).collect();
        let expected: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got).await.unwrap();
            got
        });
        let n = write_all_vectored(&mut a, &bufs).await.unwrap();
        drop(a);
        assert_eq!(n as usize, expected.len());
        assert_eq!(reader.await.unwrap(), expected);
    }
}
