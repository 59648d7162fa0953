//! The histogram pass the learner is built around: a node's rows summed into 256 bins a
//! feature, on one core or cut among them, from gradient pairs or gradients alone.

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
    fn of(pair: [f64; 2]) -> Self;
    fn gradient_hessian(self) -> (f64, f64);
}

impl Pair for [f64; 2] {
    fn of(pair: [f64; 2]) -> Self {
        pair
    }
    fn gradient_hessian(self) -> (f64, f64) {
        (self[0], self[1])
    }
}

impl Pair for f64 {
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
                accumulate(columns, rows, ordered, out, counted);
                return;
            }
            // Each core a run of whole features.
            let threads = self.threads.min(d);
            std::thread::scope(|s| {
                let mut rest = out;
                for t in 0..threads {
                    let features = t * d / threads..(t + 1) * d / threads;
                    let (part, tail) = rest.split_at_mut(features.len() * BINS);
                    rest = tail;
                    let columns = &columns[features];
                    s.spawn(move || accumulate(columns, rows, ordered, part, counted));
                }
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
            accumulate(columns, rows, ordered, out, counted);
        };
        let jobs: Vec<_> = outs.into_iter().zip(pieces).enumerate().collect();
        let mut shares: Vec<Vec<_>> = (0..self.threads.min(chunks)).map(|_| Vec::new()).collect();
        let count = shares.len();
        for (i, job) in jobs.into_iter().enumerate() {
            shares[i % count].push(job);
        }
        std::thread::scope(|s| {
            for share in shares {
                s.spawn(|| {
                    for (c, (out, ordered)) in share {
                        work(c, out, ordered);
                    }
                });
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
/// four histograms (24 KiB) stay in the first-level cache.
fn accumulate<P: Pair>(
    columns: &[Vec<u8>],
    rows: &[u32],
    ordered: &[P],
    out: &mut [Bin],
    counted: bool,
) {
    if counted {
        accumulate_as::<P, true>(columns, rows, ordered, out)
    } else {
        accumulate_as::<P, false>(columns, rows, ordered, out)
    }
}

fn accumulate_as<P: Pair, const COUNT: bool>(
    columns: &[Vec<u8>],
    rows: &[u32],
    ordered: &[P],
    out: &mut [Bin],
) {
    let add = |e: &mut Bin, pair: P| {
        let (g, h) = pair.gradient_hessian();
        e[0] += g;
        e[1] += h;
        if COUNT {
            e[2] += 1.0;
        }
    };
    out.fill([0.0; 3]);
    let mut groups = columns.chunks_exact(4).zip(out.chunks_exact_mut(4 * BINS));
    for (group, hists) in &mut groups {
        let columns: [&[u8]; 4] = std::array::from_fn(|i| &group[i][..]);
        let mut parts = hists
            .chunks_exact_mut(BINS)
            .map(|p| <&mut [Bin; BINS]>::try_from(p).expect("a feature has 256 bins"));
        let mut hists: [&mut [Bin; BINS]; 4] =
            std::array::from_fn(|_| parts.next().expect("four features"));
        for (&r, &pair) in rows.iter().zip(ordered) {
            for (column, hist) in columns.iter().zip(hists.iter_mut()) {
                add(&mut hist[column[r as usize] as usize], pair);
            }
        }
    }
    let done = columns.len() / 4 * 4;
    for (column, hist) in columns[done..]
        .iter()
        .zip(out[done * BINS..].chunks_exact_mut(BINS))
    {
        let hist = <&mut [Bin; BINS]>::try_from(hist).expect("a feature has 256 bins");
        for (&r, &pair) in rows.iter().zip(ordered) {
            add(&mut hist[column[r as usize] as usize], pair);
        }
    }
}
