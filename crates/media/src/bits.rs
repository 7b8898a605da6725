//! A checked MSB-first bit reader with Exp-Golomb codes, for the bit-packed syntax of H.264/H.265
//! parameter sets, AAC AudioSpecificConfig and AV1 sequence headers.

use crate::error::MediaError;

/// Reads bits most-significant first from a byte slice; never reads past the end.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`; `what` names the structure in errors.
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    fn truncated(&self) -> MediaError {
        MediaError::truncated(self.what)
    }

    /// Bits left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_mul(8).saturating_sub(self.pos)
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Result<bool, MediaError> {
        let byte = *self.data.get(self.pos / 8).ok_or_else(|| self.truncated())?;
        let shift = 7 - (self.pos % 8);
        self.pos += 1;
        Ok((byte >> shift) & 1 == 1)
    }

    /// A flag (one bit) as a bool; alias that reads better in syntax tables.
    pub(crate) fn flag(&mut self) -> Result<bool, MediaError> {
        self.bit()
    }

    /// `n` bits (at most 32) as an unsigned integer.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, MediaError> {
        if n > 32 {
            return Err(MediaError::invalid(self.what, "bit field wider than 32 bits"));
        }
        if (n as usize) > self.remaining() {
            return Err(self.truncated());
        }
        let mut value: u64 = 0;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        u32::try_from(value).map_err(|_| self.truncated())
    }

    /// `n` bits (at most 8) as a byte.
    pub(crate) fn bits_u8(&mut self, n: u32) -> Result<u8, MediaError> {
        let v = self.bits(n.min(8))?;
        u8::try_from(v).map_err(|_| MediaError::invalid(self.what, "bit field wider than 8 bits"))
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb code `ue(v)`, values up to 2^32 - 2.
    pub(crate) fn ue(&mut self) -> Result<u32, MediaError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(MediaError::invalid(self.what, "Exp-Golomb code longer than 32 bits"));
            }
        }
        let suffix = u64::from(self.bits(zeros)?);
        let value = (1u64 << zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| MediaError::invalid(self.what, "Exp-Golomb value out of range"))
    }

    /// `ue(v)` that must not exceed `max`.
    pub(crate) fn ue_max(&mut self, max: u32, reason: &'static str) -> Result<u32, MediaError> {
        let v = self.ue()?;
        if v > max {
            return Err(MediaError::invalid(self.what, reason));
        }
        Ok(v)
    }

    /// Signed Exp-Golomb code `se(v)`.
    pub(crate) fn se(&mut self) -> Result<i32, MediaError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| MediaError::invalid(self.what, "Exp-Golomb value out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_across_byte_boundaries() {
        let mut r = BitReader::new(&[0b1010_1100, 0b0101_0000], "t");
        assert_eq!(r.bits(3), Ok(0b101));
        assert_eq!(r.bits(7), Ok(0b011_0001));
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.bits(7), Err(MediaError::truncated("t")));
    }

    #[test]
    fn exp_golomb_codes() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0011, 0b1000_0000], "t");
        assert_eq!(r.ue(), Ok(0));
        assert_eq!(r.ue(), Ok(1));
        assert_eq!(r.ue(), Ok(2));
        assert_eq!(r.ue(), Ok(3));
        assert_eq!(r.ue(), Ok(6));
        // se: 1 -> 0, 010 -> 1, 011 -> -1
        let mut r = BitReader::new(&[0b1010_0110], "t");
        assert_eq!(r.se(), Ok(0));
        assert_eq!(r.se(), Ok(1));
        assert_eq!(r.se(), Ok(-1));
    }

    #[test]
    fn exp_golomb_never_overflows() {
        let zeros = [0u8; 8];
        assert!(BitReader::new(&zeros, "t").ue().is_err());
        // 32 leading zeros then a 1: too long.
        let mut long = vec![0u8; 4];
        long.extend_from_slice(&[0x80, 0, 0, 0, 0]);
        assert!(BitReader::new(&long, "t").ue().is_err());
        // 31 zeros, 1, 31 ones: the largest value we accept.
        let mut max = vec![0u8, 0, 0, 1];
        max.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(BitReader::new(&max, "t").ue(), Ok(u32::MAX - 1));
    }
}
