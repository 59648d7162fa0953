//! The histogram pass the learner is built around: a node's rows summed into 256 bins a
//! feature, on one core or cut among them, from gradient pairs or gradients alone.

use super::super::blocks::on_cores;

/// Rows from which a smaller node's features are shared among the cores.
const PARALLEL_ROWS: usize = 4096;

/// Bins per feature in a histogram: every feature gets all 256, so a u8 bin indexes its part
/// with no bounds check.
pub(super) const BINS: usize = 256;

/// A histogram bin: sums of gradient, hessian and rows.
pub(super) type Bin = [f64; 3];

/// A row's share of a histogram pass: its gradient and hessian, or its gradient alone where
/// every hessian is 1 (squared error), which halves what each feature's pass reads.
pub(super) trait Pair: Copy + Send + Sync + Default {
    /// Every hessian is 1, so a bin's hessian sum is its row count and one sum serves both.
    const UNIT_HESSIAN: bool;
    fn of(pair: [f64; 2]) -> Self;
    fn gradient_hessian(self) -> (f64, f64);
}

impl Pair for [f64; 2] {
    const UNIT_HESSIAN: bool = false;
    fn of(pair: [f64; 2]) -> Self {
        pair
    }
    fn gradient_hessian(self) -> (f64, f64) {
        (self[0], self[1])
    }
}

impl Pair for f64 {
    const UNIT_HESSIAN: bool = true;
    fn of(pair: [f64; 2]) -> Self {
        pair[0]
    }
    fn gradient_hessian(self) -> (f64, f64) {
        (self, 1.0)
    }
}

/// One histogram's pass over a node's rows, cut into `chunks` row ranges when large.
pub(super) struct Pass<'p> {
    pub(super) columns: &'p [Vec<u8>],
    pub(super) rows: &'p [u32],
    pub(super) counted: bool,
    pub(super) threads: usize,
    pub(super) chunks: usize,
    /// `rows` are successive rows (the root of a tree on every row in order): the bins are
    /// then read straight along each column, with no row index to load first.
    pub(super) contiguous: bool,
}

impl Pass<'_> {
    /// Sums into `out`, chunks past the first into `partials` added after; `ordered` holds
    /// the gathered pairs.
    pub(super) fn run<P: Pair>(
        &self,
        out: &mut [Bin],
        partials: &mut [Vec<Bin>],
        ordered: &mut [P],
        pair: impl Fn(u32) -> [f64; 2] + Sync,
    ) {
        let (rows, columns, counted, chunks) = (self.rows, self.columns, self.counted, self.chunks);
        let contiguous = self.contiguous;
        let gather = |ordered: &mut [P], rows: &[u32]| {
            for (o, &r) in ordered.iter_mut().zip(rows) {
                *o = P::of(pair(r));
            }
        };
        let ordered = &mut ordered[..rows.len()];
        if chunks == 1 {
            // A node too small to cut by rows: its features are shared among the cores.
            gather(ordered, rows);
            let ordered = &*ordered;
            let d = columns.len();
            if rows.len() < PARALLEL_ROWS || self.threads <= 1 || d < 2 {
                accumulate(columns, rows, ordered, out, counted, contiguous);
                return;
            }
            // Each core a run of whole features.
            let threads = self.threads.min(d);
            let mut shares = Vec::with_capacity(threads);
            let mut rest = out;
            for t in 0..threads {
                let features = t * d / threads..(t + 1) * d / threads;
                let (part, tail) = rest.split_at_mut(features.len() * BINS);
                rest = tail;
                shares.push((&columns[features], part));
            }
            on_cores(shares, |(columns, part)| {
                accumulate(columns, rows, ordered, part, counted, contiguous)
            });
            return;
        }
        let cut = |c: usize| c * rows.len() / chunks;
        let mut outs: Vec<&mut [Bin]> = Vec::with_capacity(chunks);
        outs.push(&mut *out);
        outs.extend(partials.iter_mut().map(Vec::as_mut_slice));
        let mut pieces: Vec<&mut [P]> = Vec::with_capacity(chunks);
        let mut rest = ordered;
        for c in 0..chunks {
            let (head, tail) = rest.split_at_mut(cut(c + 1) - cut(c));
            pieces.push(head);
            rest = tail;
        }
        let work = |c: usize, out: &mut [Bin], ordered: &mut [P]| {
            let rows = &rows[cut(c)..cut(c + 1)];
            gather(ordered, rows);
            accumulate(columns, rows, ordered, out, counted, contiguous);
        };
        let jobs: Vec<_> = outs.into_iter().zip(pieces).enumerate().collect();
        let mut shares: Vec<Vec<_>> = (0..self.threads.min(chunks)).map(|_| Vec::new()).collect();
        let count = shares.len();
        for (i, job) in jobs.into_iter().enumerate() {
            shares[i % count].push(job);
        }
        on_cores(shares, |share| {
            for (c, (out, ordered)) in share {
                work(c, out, ordered);
            }
        });
        // In chunk order, whatever core summed which: the same sums on any machine.
        for partial in partials.iter() {
            for (o, p) in out.iter_mut().zip(partial) {
                o[0] += p[0];
                o[1] += p[1];
                o[2] += p[2];
            }
        }
    }
}

/// The pass the whole learner is built around: the histograms of `columns` (each feature's
/// 256 bins in turn in `out`) over the node's rows, with row counts when `counted`. Four
/// features share a pass, so a row's index and pair are read once for four sums, and their
/// four histograms (24 KiB, or 16 KiB where every hessian is 1) stay in the first-level
/// cache.
fn accumulate<P: Pair>(
    columns: &[Vec<u8>],
    rows: &[u32],
    ordered: &[P],
    out: &mut [Bin],
    counted: bool,
    contiguous: bool,
) {
    let first = rows.first().map_or(0, |&r| r as usize);
    let successive = first..first + rows.len();
    let indexed = rows.iter().map(|&r| r as usize);
    match (counted, contiguous) {
        (true, true) => accumulate_as::<P, true>(columns, successive, ordered, out),
        (false, true) => accumulate_as::<P, false>(columns, successive, ordered, out),
        (true, false) => accumulate_as::<P, true>(columns, indexed, ordered, out),
        (false, false) => accumulate_as::<P, false>(columns, indexed, ordered, out),
    }
}

fn accumulate_as<P: Pair, const COUNT: bool>(
    columns: &[Vec<u8>],
    rows: impl Iterator<Item = usize> + Clone,
    ordered: &[P],
    out: &mut [Bin],
) {
    let groups = columns.len() / 4;
    if !P::UNIT_HESSIAN {
        out.fill([0.0; 3]);
        let mut hists = out.chunks_exact_mut(BINS).map(as_bins);
        for group in columns.chunks_exact(4) {
            let four = std::array::from_fn(|_| hists.next().expect("four features"));
            sum_four::<P, Bin, COUNT>(group, rows.clone(), ordered, four);
        }
        for (column, hist) in columns[groups * 4..].iter().zip(hists) {
            sum_one::<P, Bin, COUNT>(column, rows.clone(), ordered, hist);
        }
        return;
    }
    // Where every hessian is 1, a bin needs its gradient sum and its row count alone: summed
    // in 16-byte bins (four features' histograms in 16 KiB of the first-level cache rather
    // than 24), then written out as full bins.
    let mut local = [[[0.0f64; 2]; BINS]; 4];
    let write = |local: &[[f64; 2]; BINS], out: &mut [Bin]| {
        for (&[g, c], o) in local.iter().zip(out) {
            // The hessian sum is the row count; counts kept only when asked for.
            *o = [g, c, if COUNT { c } else { 0.0 }];
        }
    };
    for (group, outs) in columns.chunks_exact(4).zip(out.chunks_exact_mut(4 * BINS)) {
        for hist in local.iter_mut() {
            hist.fill([0.0; 2]);
        }
        let [a, b, c, d] = &mut local;
        sum_four::<P, [f64; 2], COUNT>(group, rows.clone(), ordered, [a, b, c, d]);
        for (hist, o) in local.iter().zip(outs.chunks_exact_mut(BINS)) {
            write(hist, o);
        }
    }
    for (column, o) in columns[groups * 4..]
        .iter()
        .zip(out[groups * 4 * BINS..].chunks_exact_mut(BINS))
    {
        local[0].fill([0.0; 2]);
        sum_one::<P, [f64; 2], COUNT>(column, rows.clone(), ordered, &mut local[0]);
        write(&local[0], o);
    }
}

fn as_bins(part: &mut [Bin]) -> &mut [Bin; BINS] {
    <&mut [Bin; BINS]>::try_from(part).expect("a feature has 256 bins")
}

/// What a bin sums while a pass runs: the full bin, or the gradient and row count where every
/// hessian is 1.
trait Sums: Copy {
    fn add<P: Pair, const COUNT: bool>(&mut self, pair: P);
}

impl Sums for Bin {
    #[inline(always)]
    fn add<P: Pair, const COUNT: bool>(&mut self, pair: P) {
        let (g, h) = pair.gradient_hessian();
        self[0] += g;
        self[1] += h;
        if COUNT {
            self[2] += 1.0;
        }
    }
}

impl Sums for [f64; 2] {
    #[inline(always)]
    fn add<P: Pair, const COUNT: bool>(&mut self, pair: P) {
        self[0] += pair.gradient_hessian().0;
        self[1] += 1.0;
    }
}

/// Four features summed in one pass over the rows, so a row's index and pair are read once
/// for four sums.
fn sum_four<P: Pair, S: Sums, const COUNT: bool>(
    group: &[Vec<u8>],
    rows: impl Iterator<Item = usize>,
    ordered: &[P],
    mut hists: [&mut [S; BINS]; 4],
) {
    let columns: [&[u8]; 4] = std::array::from_fn(|i| &group[i][..]);
    for (r, &pair) in rows.zip(ordered) {
        for (column, hist) in columns.iter().zip(hists.iter_mut()) {
            hist[column[r] as usize].add::<P, COUNT>(pair);
        }
    }
}

fn sum_one<P: Pair, S: Sums, const COUNT: bool>(
    column: &[u8],
    rows: impl Iterator<Item = usize>,
    ordered: &[P],
    hist: &mut [S; BINS],
) {
    for (r, &pair) in rows.zip(ordered) {
        hist[column[r] as usize].add::<P, COUNT>(pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_rows_read_straight_sum_as_indexed_rows_do() {
        let rows = 10_000;
        let columns: Vec<Vec<u8>> = (0..6)
            .map(|f| {
                (0..rows)
                    .map(|r| ((r * (f + 3) * 7919) % 251) as u8)
                    .collect()
            })
            .collect();
        let order: Vec<u32> = (0..rows as u32).collect();
        let pair = |r: u32| [(r % 13) as f64 - 6.0, 1.0 + (r % 3) as f64];
        let sums = |contiguous: bool, chunks: usize| {
            let pass = Pass {
                columns: &columns,
                rows: &order,
                counted: true,
                threads: 2,
                chunks,
                contiguous,
            };
            let mut out = vec![[0.0; 3]; BINS * columns.len()];
            let mut partials = vec![vec![[0.0; 3]; out.len()]; chunks - 1];
            let mut ordered = vec![[0.0; 2]; rows];
            pass.run(&mut out, &mut partials, &mut ordered, pair);
            out
        };
        for chunks in [1, 3] {
            assert_eq!(sums(true, chunks), sums(false, chunks));
        }
        assert_eq!(
            sums(true, 1)[0..BINS].iter().map(|b| b[2]).sum::<f64>(),
            rows as f64
        );
    }

    #[test]
    fn gradients_alone_sum_as_pairs_with_unit_hessians_do() {
        let rows = 5_000;
        // Six features: a group of four, then two summed one at a time.
        let columns: Vec<Vec<u8>> = (0..6)
            .map(|f| {
                (0..rows)
                    .map(|r| ((r * (f + 5) * 31) % 256) as u8)
                    .collect()
            })
            .collect();
        let order: Vec<u32> = (0..rows as u32).filter(|r| r % 3 != 1).collect();
        let pair = |r: u32| [(r % 17) as f64 * 0.25 - 2.0, 1.0];
        for counted in [true, false] {
            for chunks in [1, 3] {
                let pass = Pass {
                    columns: &columns,
                    rows: &order,
                    counted,
                    threads: 2,
                    chunks,
                    contiguous: false,
                };
                let mut pairs = vec![[0.0; 3]; BINS * columns.len()];
                let mut partials = vec![vec![[0.0; 3]; pairs.len()]; chunks - 1];
                pass.run(&mut pairs, &mut partials, &mut vec![[0.0; 2]; rows], pair);
                let mut alone = vec![[1.0; 3]; BINS * columns.len()];
                pass.run(&mut alone, &mut partials, &mut vec![0.0f64; rows], pair);
                assert_eq!(alone, pairs, "counted {counted}, {chunks} chunks");
                let total: f64 = alone[5 * BINS..].iter().map(|b| b[1]).sum();
                assert_eq!(total, order.len() as f64);
            }
        }
    }
}
