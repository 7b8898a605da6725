//! NAL unit helpers shared by the H.264 and H.265 parsers: turning the escaped NAL payload back
//! into the raw byte sequence payload (RBSP) that the bit syntax describes.

/// Removes emulation-prevention bytes: every `00 00 03` becomes `00 00`.
pub(crate) fn unescape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_emulation_prevention_bytes() {
        assert_eq!(
            unescape_rbsp(&[0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x03]),
            vec![0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03]
        );
        assert_eq!(unescape_rbsp(&[0x00, 0x03, 0x00]), vec![0x00, 0x03, 0x00]);
        assert!(unescape_rbsp(&[]).is_empty());
    }
}
