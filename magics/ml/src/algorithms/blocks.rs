//! Work over row blocks on every core, combined in block order. Blocks have a fixed size, so
//! a sum over them is made in the same order on any machine and any number of cores: the
//! same seed gives the same model everywhere.

use std::borrow::Cow;
use std::ops::Range;

use ndarray::ArrayView2;
use rayon::prelude::*;

/// Rows per block: small enough to balance two cores, large enough that a block's partial
/// result (a k × d sum, a gradient) costs nothing beside its rows.
pub const BLOCK_ROWS: usize = 8192;

/// The rows of `x` as one row-major slice (copied only when `x` is laid out otherwise), for
/// loops that read a row as a `&[f64]`.
pub fn row_major<'a>(x: ArrayView2<'a, f64>) -> Cow<'a, [f64]> {
    match x.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(x.iter().copied().collect()),
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `work` on each block of `0..rows`, on up to every core; the results in block order.
pub fn map_blocks<T, F>(rows: usize, work: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    map_indexed(rows.div_ceil(BLOCK_ROWS), |b| work(block(b, rows)))
}

fn block(b: usize, rows: usize) -> Range<usize> {
    b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(rows)
}

/// `work(i)` for each `i` in `0..count`, on up to every core; the results in order.
pub fn map_indexed<T, F>(count: usize, work: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    if count <= 1 || cores() <= 1 {
        return (0..count).map(work).collect();
    }
    (0..count).into_par_iter().map(&work).collect()
}

/// `work` on each block of rows of `data` (`per_row` values a row) with the block's rows to
/// write, on up to every core; the results in block order.
pub fn for_blocks_mut<U, T, F>(data: &mut [U], per_row: usize, work: F) -> Vec<T>
where
    U: Send,
    T: Send,
    F: Fn(Range<usize>, &mut [U]) -> T + Sync,
{
    let rows = data.len() / per_row.max(1);
    data.par_chunks_mut(BLOCK_ROWS * per_row.max(1))
        .enumerate()
        .map(|(b, out)| work(block(b, rows), out))
        .collect()
}

/// `work` on each share, the shares spread over the cores.
pub fn on_cores<T, F>(shares: Vec<T>, work: F)
where
    T: Send,
    F: Fn(T) + Sync + Send,
{
    if shares.len() <= 1 {
        shares.into_iter().for_each(work);
        return;
    }
    shares.into_par_iter().for_each(work);
}

/// The cores the learners' work is spread over: the threads of the one pool they all share
/// (rayon's global pool). A pass hands its shares to threads that already exist; starting
/// two threads a pass cost about 0.1 ms, and a boosting fit makes thousands of passes.
pub fn cores() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_row_once_in_order() {
        let rows = BLOCK_ROWS * 3 + 17;
        let ranges = map_blocks(rows, |r| r);
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[0], 0..BLOCK_ROWS);
        assert_eq!(ranges[3], BLOCK_ROWS * 3..rows);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert!(map_blocks(0, |r| r).is_empty());
    }

    #[test]
    fn each_block_writes_its_own_rows() {
        let rows = BLOCK_ROWS * 2 + 5;
        let mut data = vec![0usize; rows * 3];
        let counts = for_blocks_mut(&mut data, 3, |range, out| {
            for (r, row) in range.clone().zip(out.chunks_mut(3)) {
                row.fill(r);
            }
            range.len()
        });
        assert_eq!(counts, vec![BLOCK_ROWS, BLOCK_ROWS, 5]);
        assert!(data.chunks(3).enumerate().all(|(r, row)| row == [r, r, r]));
    }
}
