//! The member table's slot storage: a vector in fixed-size chunks.
//!
//! **Rule: growing never moves an element, and at most one chunk is partly empty.**
//! Every node holds an entry for every member, so the slot vector is the largest thing in a
//! simulated cluster (N² entries of ~100 bytes). As one `Vec`, each growth step copied all
//! of it (memmove was 7-10 % of the simulator's CPU while a large cluster converged) and left
//! up to an eighth of it as slack. Here element `i` lives at `chunks[i / N][i % N]`:
//! a full chunk is never touched again by growth, and only the last one has spare room.
//! The chunk length is any constant, not only a power of two, so that a chunk's bytes can
//! match an allocator size class (see `SLOT_CHUNK` in `table.rs`); dividing by a constant
//! compiles to a multiplication.
//!
//! The first chunk grows like a `Vec` (doubling, up to a chunk), so a small table, of which
//! tests and small clusters have many, costs no more than a `Vec` would. Removal is the
//! table's swap-remove: the last element moves into the hole, and a last chunk left empty is
//! freed at once (the at-most-one-chunk rule holds both ways).

use core::ops::{Index, IndexMut};

/// A vector of `T` stored in chunks of `N` elements.
#[derive(Debug)]
pub(super) struct Chunked<T, const N: usize> {
    /// Every chunk but the last is full (`N` elements); the last is not empty,
    /// unless it is the only one.
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T, const N: usize> Default for Chunked<T, N> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T, const N: usize> Chunked<T, N> {
    /// Elements per chunk.
    const CHUNK: usize = {
        assert!(N > 0, "a chunk holds at least one element");
        N
    };

    /// Number of elements.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `x`, at index `len()`. Never moves an element except inside the first chunk
    /// while the whole vector is smaller than one chunk.
    pub(super) fn push(&mut self, x: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < Self::CHUNK => {
                if last.len() == last.capacity() {
                    // Only the first chunk can get here: later ones start at full capacity.
                    let more = last.capacity().max(4).min(Self::CHUNK - last.capacity());
                    last.reserve_exact(more);
                }
                last.push(x);
            }
            _ => {
                let mut c = Vec::with_capacity(if self.chunks.is_empty() {
                    4.min(Self::CHUNK)
                } else {
                    Self::CHUNK
                });
                c.push(x);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// Removes and returns the last element.
    pub(super) fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let x = last.pop()?;
        if last.is_empty() && self.chunks.len() > 1 {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(x)
    }

    /// Removes element `i` and moves the last one into its place (`Vec::swap_remove`).
    /// Panics if `i >= len()`.
    pub(super) fn swap_remove(&mut self, i: usize) -> T {
        assert!(i < self.len, "swap_remove index {i} out of {}", self.len);
        // Invariant: `len > i >= 0`, so there is a last element.
        let last = self.pop().expect("not empty");
        if i == self.len {
            last
        } else {
            core::mem::replace(&mut self[i], last)
        }
    }

    /// Element `i`, if `i < len()`.
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / Self::CHUNK)?.get(i % Self::CHUNK)
    }

    /// Every element in index order: a sequential scan, chunk after chunk.
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }

    /// Bytes reserved for elements (allocated capacity, not counting the chunk list), each
    /// chunk as the allocator's block holding it ([`block_bytes`]).
    #[cfg(test)]
    pub(super) fn reserved_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| block_bytes(c.capacity() * core::mem::size_of::<T>()))
            .sum()
    }

    /// Bytes of the list of chunks itself (its block).
    #[cfg(test)]
    pub(super) fn chunk_list_bytes(&self) -> usize {
        block_bytes(self.chunks.capacity() * core::mem::size_of::<Vec<T>>())
    }

    /// Number of chunks.
    #[cfg(test)]
    pub(super) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

/// The block a size-class allocator serves a request of `n` bytes from: mimalloc and
/// jemalloc round a request above 64 bytes up to one of four classes per doubling (1,024,
/// 1,280, 1,536, 1,792, 2,048, ...), a smaller one to a multiple of 8. What a structure
/// really costs, where its capacity alone would miss up to a fifth (glibc's 8-byte header
/// and 16-byte rounding cost less, but the simulator runs on mimalloc).
#[cfg(test)]
pub(super) fn block_bytes(n: usize) -> usize {
    if n <= 64 {
        return n.next_multiple_of(8);
    }
    let below = usize::BITS - 1 - (n - 1).leading_zeros();
    n.next_multiple_of(1 << (below - 2))
}

impl<T, const N: usize> Index<usize> for Chunked<T, N> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

impl<T, const N: usize> IndexMut<usize> for Chunked<T, N> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain `Vec` through pushes, pops and swap-removes across chunk boundaries,
    /// with a power-of-two chunk length and another.
    #[test]
    fn agrees_with_a_vec() {
        agrees_with_a_vec_in::<8>();
        agrees_with_a_vec_in::<7>();
        agrees_with_a_vec_in::<1>();
    }

    fn agrees_with_a_vec_in<const N: usize>() {
        let mut c: Chunked<u64, N> = Chunked::default();
        let mut v: Vec<u64> = Vec::new();
        let mut x: u64 = 7;
        for round in 0..5000u64 {
            x = crate::hash::mix64(x.wrapping_add(round));
            if v.is_empty() || x % 5 < 3 {
                c.push(round);
                v.push(round);
            } else if x % 5 == 3 {
                assert_eq!(c.pop(), v.pop());
            } else {
                let i = (x >> 16) as usize % v.len();
                assert_eq!(c.swap_remove(i), v.swap_remove(i));
            }
            assert_eq!(c.len(), v.len());
            assert_eq!(c.get(v.len()), None);
            if round % 37 == 0 {
                assert!(c.iter().eq(v.iter()));
                for (i, e) in v.iter().enumerate() {
                    assert_eq!(c[i], *e);
                    assert_eq!(c.get(i), Some(e));
                }
                // At most one chunk has room to spare, and never a whole empty one.
                let full = v.len().div_ceil(N).max(1);
                assert_eq!(c.chunk_count(), full, "len {}", v.len());
                assert!(c.reserved_bytes() <= full * N * 8);
            }
        }
    }

    #[test]
    fn blocks_round_to_four_classes_per_doubling() {
        assert_eq!(block_bytes(0), 0);
        assert_eq!(block_bytes(20), 24);
        assert_eq!(block_bytes(64), 64);
        assert_eq!(block_bytes(65), 80);
        assert_eq!(block_bytes(1024), 1024);
        assert_eq!(block_bytes(1025), 1280);
        assert_eq!(block_bytes(2304), 2560);
        assert_eq!(block_bytes(4096), 4096);
        assert_eq!(block_bytes(5112), 5120);
    }

    #[test]
    fn growth_never_moves_a_full_chunk() {
        let mut c: Chunked<u32, 4> = Chunked::default();
        for i in 0..4 {
            c.push(i);
        }
        let first = &c[0] as *const u32;
        for i in 4..100 {
            c.push(i);
        }
        assert_eq!(&c[0] as *const u32, first, "the first chunk stayed put");
        c[7] = 70;
        assert_eq!(c.swap_remove(7), 70);
        assert_eq!(c[7], 99, "the last element moved into the hole");
        assert_eq!(c.len(), 99);
    }
}
