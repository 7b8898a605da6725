//! A checked big-endian byte cursor for the byte-aligned records (FLV, avcC, hvcC, av1C, ASC
//! containers). Every read returns `Truncated` instead of indexing past the end.

use crate::error::MediaError;

/// Reads big-endian integers and slices from a byte slice, front to back.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`; `what` names the structure in errors.
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Cursor { data, what }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        if n > self.data.len() {
            return Err(MediaError::truncated(self.what));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], MediaError> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| MediaError::truncated(self.what))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MediaError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MediaError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, MediaError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_stops_at_the_end() {
        let mut c = Cursor::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "test");
        assert_eq!(c.u8(), Ok(1));
        assert_eq!(c.u16(), Ok(0x0203));
        assert_eq!(c.u24(), Ok(0x040506));
        assert_eq!(c.array::<4>(), Ok([7, 8, 9, 10]));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.u8(), Err(MediaError::truncated("test")));
        assert!(c.take(1).is_err());
        assert_eq!(c.take(0), Ok(&[][..]));
    }
}
