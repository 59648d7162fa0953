//! The tree learner of gradient boosting, grown as LightGBM and scikit-learn's
//! HistGradientBoosting grow theirs.
//!
//! Where a boosting round's time goes is one pass over a node's rows per histogram: everything
//! else (the split search over 255 bins per feature, the partition) is small beside it. So the
//! layout serves that pass, as HistGradientBoosting's does:
//! - the bins are u8 columns, one per feature, and a feature's histogram (256 bins of three
//!   sums, 6 KiB) stays in the first-level cache while its column is scanned; a row-major
//!   layout fills every feature's histogram at once, 120 KiB that the scan keeps evicting;
//! - the node's gradient and hessian pairs are gathered once into node order, so each
//!   feature's pass reads them sequentially; where every hessian is 1 (squared error) it
//!   gathers gradients alone and counts rows for hessians, half the bytes a pass;
//! - a node is a range of one index array, partitioned in place (stably, so rows stay in
//!   memory order, and without branches) when it splits: no per-node vectors;
//! - only the smaller child's histogram is built; the larger's is its parent's minus it, in
//!   the parent's buffer, and buffers come from a pool made once per fit;
//! - a large node's features are shared among the cores, each feature summed whole by one:
//!   the same model for a seed on any number of cores.
//!
//! Trees grow depth-wise (XGBoost's default: level by level to `max_depth`) or leaf-wise
//! (`lossguide`: always the leaf whose split gains most, LightGBM's way), either way stopping
//! at `max_leaves`.

use super::blocks::{cores, on_cores};
use super::trees::{Binned, Node, Tree, LEAF};

mod histogram;

use histogram::{Bin, Pass, BINS};

/// Rows of a large node summed by one core into one histogram of its own.
const CHUNK_ROWS: usize = 65_536;
/// Most chunks a node is cut into (each past the first needs a histogram of its own).
const MAX_CHUNKS: usize = 16;

/// What limits a tree.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    /// 0: no limit.
    pub max_depth: usize,
    /// 0: no limit.
    pub max_leaves: usize,
    pub lossguide: bool,
    pub lambda: f64,
    /// The least gain a split must make (XGBoost's `gamma`).
    pub gamma: f64,
    pub min_child_weight: f64,
    pub min_data_in_leaf: usize,
}

#[derive(Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
    /// The left child's sums (the right's are the parent's minus them).
    left: Bin,
}

struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    sums: Bin,
    /// Its histogram in the pool, while it may still split.
    hist: Option<usize>,
    split: Option<Split>,
}

/// One fit's buffers, reused by every tree.
pub struct Grower<'a> {
    data: &'a Binned,
    growth: Growth,
    /// Whether histograms count rows per bin: only `min_data_in_leaf` above 1 needs it, and
    /// the pass is a third faster without.
    counted: bool,
    order: Vec<u32>,
    scratch: Vec<u32>,
    /// The pairs of the node being summed, in its rows' order, or its gradients alone
    /// (`Gradients::Unit`); each sized on its first use.
    ordered: Vec<[f64; 2]>,
    ordered_gradients: Vec<f64>,
    /// The tree's rows are every row in order, so the root's pass reads columns straight.
    in_order: bool,
    pool: Vec<Vec<Bin>>,
    /// Histograms of a node's chunks past the first.
    partials: Vec<Vec<Bin>>,
    free: Vec<usize>,
    threads: usize,
}

/// A tree's leaves: the tree node and the rows (indices into the training rows) that reached
/// it, so that boosting adds each leaf's value to its rows without walking the tree.
pub struct Grown<'g> {
    pub tree: Tree,
    /// Each split's feature, gain and cover (its hessian sum), for XGBoost's importances.
    pub splits: Vec<(u32, f64, f64)>,
    /// Each node's split bin (0 for leaves).
    split_bins: Vec<u8>,
    leaves: Vec<(usize, usize, usize)>,
    order: &'g [u32],
}

impl Grown<'_> {
    /// Each leaf's node with its rows, in ascending order.
    pub fn leaves(&self) -> impl Iterator<Item = (usize, &[u32])> + '_ {
        self.leaves
            .iter()
            .map(|&(node, start, end)| (node, &self.order[start..end]))
    }

    /// The tree with leaf values times `scale`, split by bins, to walk rows binned as the
    /// training rows were (`Binned::bin_rows`).
    pub fn bin_tree(&self, scale: f64) -> BinTree {
        let mut depths = vec![0; self.tree.nodes.len()];
        let mut nodes = Vec::with_capacity(depths.len());
        for (i, (n, &bin)) in self.tree.nodes.iter().zip(&self.split_bins).enumerate() {
            let node = if n.feature == LEAF {
                // A leaf sends every row to itself: no row's bin is above 255.
                BinNode {
                    feature: 0,
                    bin: u8::MAX,
                    children: [i as u32; 2],
                    value: n.value.first().map_or(0.0, |v| v * scale),
                }
            } else {
                // Children come after their parent.
                depths[n.left as usize] = depths[i] + 1;
                depths[n.right as usize] = depths[i] + 1;
                BinNode {
                    feature: n.feature,
                    bin,
                    children: [n.left, n.right],
                    value: 0.0,
                }
            };
            nodes.push(node);
        }
        BinTree {
            nodes,
            depth: depths.into_iter().max().unwrap_or(0),
        }
    }
}

/// A tree of one value a leaf whose splits compare bins: 24 bytes a node, and a row of u8
/// bins is a fifth of a cache line where its f64 values are two and a half lines.
pub struct BinTree {
    nodes: Vec<BinNode>,
    /// The longest path from the root to a leaf.
    depth: usize,
}

struct BinNode {
    feature: u32,
    bin: u8,
    /// Where a row whose bin is at most `bin` goes, and where the others go.
    children: [u32; 2],
    value: f64,
}

impl BinTree {
    /// The value of the leaf `row` (one bin a feature) reaches.
    pub fn value(&self, row: &[u8]) -> f64 {
        self.values([row])[0]
    }

    /// The values of the leaves `N` rows reach, walked together step by step to the tree's
    /// depth (a leaf keeps a row where it is): `N` independent chains of loads and no branch
    /// on a row's bin, where one row at a time waits on each load and mispredicts about
    /// every other split.
    pub fn values<const N: usize>(&self, rows: [&[u8]; N]) -> [f64; N] {
        let mut at = [0usize; N];
        for _ in 0..self.depth {
            for (i, row) in at.iter_mut().zip(&rows) {
                let node = &self.nodes[*i];
                *i = node.children[usize::from(row[node.feature as usize] > node.bin)] as usize;
            }
        }
        at.map(|i| self.nodes[i].value)
    }
}

/// Each row's share of a tree's fit.
#[derive(Clone, Copy)]
pub enum Gradients<'g> {
    /// Gradient and hessian pairs, `pairs[row * stride + offset]`.
    Pairs {
        pairs: &'g [[f64; 2]],
        stride: usize,
        offset: usize,
    },
    /// Gradients alone, every hessian 1 (squared error): half the memory to write each
    /// round and to gather each pass.
    Unit(&'g [f64]),
}

impl<'a> Grower<'a> {
    pub fn new(data: &'a Binned, growth: Growth) -> Grower<'a> {
        let threads = cores();
        let rows = data.rows();
        Grower {
            data,
            growth,
            counted: growth.min_data_in_leaf > 1,
            order: Vec::with_capacity(rows),
            scratch: vec![0; rows],
            ordered: Vec::new(),
            ordered_gradients: Vec::new(),
            in_order: false,
            pool: Vec::new(),
            partials: Vec::new(),
            free: Vec::new(),
            threads,
        }
    }

    /// `grow_on` pairs: the tests' shorthand.
    #[cfg(test)]
    pub fn grow(
        &mut self,
        rows: impl Iterator<Item = u32>,
        pairs: &[[f64; 2]],
        stride: usize,
        offset: usize,
    ) -> Grown<'_> {
        self.grow_on(
            rows,
            Gradients::Pairs {
                pairs,
                stride,
                offset,
            },
        )
    }

    /// Grows one tree on `rows` (ascending) from each row's gradients. Leaf values are
    /// Newton steps, not yet scaled by the learning rate.
    pub fn grow_on(&mut self, rows: impl Iterator<Item = u32>, gradients: Gradients) -> Grown<'_> {
        self.order.clear();
        self.order.extend(rows);
        self.in_order = self.order.windows(2).all(|w| w[1] == w[0] + 1);
        self.free = (0..self.pool.len()).collect();
        let g = self.growth;
        let mut tree = Tree {
            nodes: vec![leaf_node()],
        };
        let mut split_bins = vec![0u8];
        let mut splits = Vec::new();
        let root_hist = self.take_hist();
        let len = self.order.len();
        self.fill(root_hist, 0, len, gradients);
        let mut sums = self.totals(root_hist);
        sums[2] = len as f64;
        let mut open: Vec<Leaf> = Vec::new();
        let mut closed: Vec<Leaf> = Vec::new();
        let mut root = Leaf {
            node: 0,
            start: 0,
            end: len,
            depth: 0,
            sums,
            hist: Some(root_hist),
            split: None,
        };
        if self.splittable(&root) {
            self.consider(&mut root);
        }
        self.place(root, &mut open, &mut closed);
        let mut leaves = 1;
        while g.max_leaves == 0 || leaves < g.max_leaves {
            // Depth-wise takes the oldest open leaf (level order), leaf-wise the best.
            let pick = if g.lossguide {
                (0..open.len()).max_by(|&a, &b| {
                    let (ga, gb) = (gain(&open[a]), gain(&open[b]));
                    ga.total_cmp(&gb).then(b.cmp(&a))
                })
            } else if open.is_empty() {
                None
            } else {
                Some(0)
            };
            let Some(i) = pick else { break };
            let parent = open.remove(i);
            let split = parent.split.expect("open leaves have a split");
            let mid = self.partition(parent.start, parent.end, split);
            let left_id = tree.nodes.len();
            tree.nodes.push(leaf_node());
            tree.nodes.push(leaf_node());
            split_bins.extend([0, 0]);
            split_bins[parent.node] = split.bin as u8;
            splits.push((split.feature as u32, split.gain, parent.sums[1]));
            tree.nodes[parent.node] = Node {
                feature: split.feature as u32,
                threshold: self.data.edges[split.feature][split.bin],
                left: left_id as u32,
                right: left_id as u32 + 1,
                value: Vec::new(),
            };
            let parent_hist = parent.hist.expect("open leaves keep their histogram");
            let depth = parent.depth + 1;
            // Row counts from the partition: exact whether or not the histogram counts.
            let left_sums = [split.left[0], split.left[1], (mid - parent.start) as f64];
            let right_sums = [
                parent.sums[0] - left_sums[0],
                parent.sums[1] - left_sums[1],
                (parent.end - mid) as f64,
            ];
            let child = |node, start, end, sums| Leaf {
                node,
                start,
                end,
                depth,
                sums,
                hist: None,
                split: None,
            };
            let mut children = [
                child(left_id, parent.start, mid, left_sums),
                child(left_id + 1, mid, parent.end, right_sums),
            ];
            // Children split only below the depth limit, and only while the leaf budget lasts
            // past this split: the last split's children are never summed.
            let may_split = (g.max_depth == 0 || depth < g.max_depth)
                && (g.max_leaves == 0 || leaves + 1 < g.max_leaves);
            if may_split && children.iter().any(|c| self.splittable(c)) {
                // The smaller child is summed, the larger is its parent's minus it.
                let small = usize::from(mid - parent.start > parent.end - mid);
                let small_hist = self.take_hist();
                let (start, end) = (children[small].start, children[small].end);
                self.fill(small_hist, start, end, gradients);
                self.subtract(parent_hist, small_hist);
                children[small].hist = Some(small_hist);
                children[1 - small].hist = Some(parent_hist);
                for c in &mut children {
                    if self.splittable(c) {
                        self.consider(c);
                    }
                }
            } else {
                self.free.push(parent_hist);
            }
            // The left child first, so that depth-wise growth keeps level order left to right.
            for child in children {
                self.place(child, &mut open, &mut closed);
            }
            leaves += 1;
        }
        let mut out = Vec::with_capacity(leaves);
        for leaf in open.into_iter().chain(closed) {
            tree.nodes[leaf.node].value = vec![-leaf.sums[0] / (leaf.sums[1] + g.lambda)];
            out.push((leaf.node, leaf.start, leaf.end));
        }
        out.sort_unstable();
        Grown {
            tree,
            splits,
            split_bins,
            leaves: out,
            order: &self.order,
        }
    }

    /// Open leaves can still split; a closed one gives its histogram back.
    fn place(&mut self, mut leaf: Leaf, open: &mut Vec<Leaf>, closed: &mut Vec<Leaf>) {
        if leaf.split.is_some() {
            open.push(leaf);
        } else {
            if let Some(h) = leaf.hist.take() {
                self.free.push(h);
            }
            closed.push(leaf);
        }
    }

    fn take_hist(&mut self) -> usize {
        if let Some(h) = self.free.pop() {
            return h;
        }
        self.pool.push(vec![[0.0; 3]; BINS * self.data.edges.len()]);
        self.pool.len() - 1
    }

    /// The histogram of `order[start..end]` into pool buffer `into`.
    fn fill(&mut self, into: usize, start: usize, end: usize, gradients: Gradients) {
        let rows = &self.order[start..end];
        let chunks = (rows.len() / CHUNK_ROWS).clamp(1, MAX_CHUNKS);
        while self.partials.len() < chunks - 1 {
            self.partials.push(vec![[0.0; 3]; self.pool[into].len()]);
        }
        let pass = Pass {
            columns: &self.data.bins,
            rows,
            counted: self.counted,
            threads: self.threads,
            chunks,
            contiguous: self.in_order && start == 0 && end == self.order.len(),
        };
        let out = &mut self.pool[into];
        let partials = &mut self.partials[..chunks - 1];
        let rows = self.data.rows();
        match gradients {
            Gradients::Pairs {
                pairs,
                stride,
                offset,
            } => {
                self.ordered.resize(rows, [0.0; 2]);
                let pair = |r: u32| pairs[r as usize * stride + offset];
                pass.run(out, partials, &mut self.ordered, pair);
            }
            Gradients::Unit(gradients) => {
                // Every hessian is 1: histograms count rows for hessians and never read them.
                self.ordered_gradients.resize(rows, 0.0);
                let pair = |r: u32| [gradients[r as usize], 1.0];
                pass.run(out, partials, &mut self.ordered_gradients, pair);
            }
        }
    }

    fn subtract(&mut self, from: usize, what: usize) {
        let (a, b) = if from < what {
            let (lo, hi) = self.pool.split_at_mut(what);
            (&mut lo[from], &hi[0])
        } else {
            let (lo, hi) = self.pool.split_at_mut(from);
            (&mut hi[0], &lo[what])
        };
        for (x, y) in a.iter_mut().zip(b.iter()) {
            x[0] -= y[0];
            x[1] -= y[1];
            x[2] -= y[2];
        }
    }

    /// The node's sums, from its first feature's bins.
    fn totals(&self, hist: usize) -> Bin {
        let h = &self.pool[hist];
        let mut t = [0.0; 3];
        for b in &h[..BINS] {
            t[0] += b[0];
            t[1] += b[1];
            t[2] += b[2];
        }
        t
    }

    /// Whether the leaf has the rows and hessian for two children.
    fn splittable(&self, leaf: &Leaf) -> bool {
        let g = self.growth;
        leaf.sums[2] >= 2.0 * g.min_data_in_leaf.max(1) as f64
            && leaf.sums[1] >= 2.0 * g.min_child_weight
    }

    /// Finds the leaf's best split, if one gains.
    fn consider(&self, leaf: &mut Leaf) {
        let g = self.growth;
        let min_data = g.min_data_in_leaf.max(1) as f64;
        let empty = 1e-12 * leaf.sums[1].abs();
        let score = |gs: f64, hs: f64| gs * gs / (hs + g.lambda);
        let parent = score(leaf.sums[0], leaf.sums[1]);
        let hist = &self.pool[leaf
            .hist
            .expect("a leaf being considered has its histogram")];
        let mut best: Option<Split> = None;
        for (f, edges) in self.data.edges.iter().enumerate() {
            // The last bin is never a left side: nothing would go right.
            let base = f * BINS;
            let mut left = [0.0; 3];
            for (b, bin) in hist[base..base + edges.len()].iter().enumerate() {
                left[0] += bin[0];
                left[1] += bin[1];
                left[2] += bin[2];
                let right = [
                    leaf.sums[0] - left[0],
                    leaf.sums[1] - left[1],
                    leaf.sums[2] - left[2],
                ];
                let (left_rows, right_rows) = if self.counted {
                    (left[2] >= min_data, right[2] >= min_data)
                } else {
                    // One row a leaf at least: every row's hessian is positive, so a side has
                    // rows when its hessian is more than the subtraction's rounding.
                    (left[1] > empty, right[1] > empty)
                };
                if !left_rows || left[1] < g.min_child_weight {
                    continue;
                }
                if !right_rows {
                    break;
                }
                if right[1] < g.min_child_weight {
                    continue;
                }
                let gain =
                    0.5 * (score(left[0], left[1]) + score(right[0], right[1]) - parent) - g.gamma;
                // Rounding leaves a gain of about 1e-16 of the parent on a useless split.
                if gain > 1e-10 * parent.abs().max(1e-12) && best.is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin: b,
                        left,
                    });
                }
            }
        }
        leaf.split = best;
    }

    /// Stable in-place partition of `order[start..end]` by the split; returns where the
    /// right side starts. A large node is partitioned in chunks on every core, whose sides
    /// are then joined in order.
    fn partition(&mut self, start: usize, end: usize, split: Split) -> usize {
        let column = &self.data.bins[split.feature][..];
        let bin = split.bin as u8;
        let order = &mut self.order[start..end];
        let scratch = &mut self.scratch[start..end];
        let chunks = (order.len() / CHUNK_ROWS).clamp(1, MAX_CHUNKS);
        if chunks == 1 || self.threads <= 1 {
            return start + partition_chunk(order, scratch, column, bin);
        }
        let size = order.len().div_ceil(chunks);
        let threads = self.threads.min(chunks);
        let mut lefts = vec![0; order.len().div_ceil(size)];
        let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
        for (c, job) in order
            .chunks_mut(size)
            .zip(scratch.chunks_mut(size))
            .zip(lefts.iter_mut())
            .enumerate()
        {
            shares[c % threads].push(job);
        }
        on_cores(shares, |share| {
            for ((o, sc), left) in share {
                *left = partition_chunk(o, sc, column, bin);
            }
        });
        // Every chunk's left side, then every chunk's right side.
        let mut at = 0;
        for (c, &left) in lefts.iter().enumerate() {
            let from = c * size;
            scratch[at..at + left].copy_from_slice(&order[from..from + left]);
            at += left;
        }
        let mid = at;
        for (c, &left) in lefts.iter().enumerate() {
            let (from, to) = (c * size + left, ((c + 1) * size).min(order.len()));
            scratch[at..at + to - from].copy_from_slice(&order[from..to]);
            at += to - from;
        }
        order.copy_from_slice(scratch);
        start + mid
    }
}

/// Stable partition of `order` (rows whose bin is at most `bin` first), with `scratch` of the
/// same length; returns the left side's length. Both sides are written and one advances: no
/// branch to mispredict on random splits.
fn partition_chunk(order: &mut [u32], scratch: &mut [u32], column: &[u8], bin: u8) -> usize {
    let (mut left, mut right) = (0, 0);
    for i in 0..order.len() {
        let r = order[i];
        let goes_left = column[r as usize] <= bin;
        order[left] = r;
        scratch[right] = r;
        left += usize::from(goes_left);
        right += usize::from(!goes_left);
    }
    order[left..].copy_from_slice(&scratch[..right]);
    left
}

fn gain(leaf: &Leaf) -> f64 {
    leaf.split.map_or(f64::NEG_INFINITY, |s| s.gain)
}

fn leaf_node() -> Node {
    Node {
        feature: LEAF,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn growth() -> Growth {
        Growth {
            max_depth: 0,
            max_leaves: 0,
            lossguide: true,
            lambda: 0.0,
            gamma: 0.0,
            min_child_weight: 0.0,
            min_data_in_leaf: 1,
        }
    }

    /// Rows in four groups with a gradient each: 4 leaves at most gain.
    fn steps(n: usize) -> (Vec<f64>, Vec<[f64; 2]>) {
        let x: Vec<f64> = (0..n).map(|i| (i * 4 / n) as f64).collect();
        let pairs = (0..n).map(|i| [x[i] - 1.5, 1.0]).collect();
        (x, pairs)
    }

    #[test]
    fn leaf_wise_growth_stops_at_the_leaf_limit_and_partitions_every_row_once() {
        let n = 1000;
        let (x, pairs) = steps(n);
        let data = Binned::new(
            &ndarray::Array2::from_shape_vec((n, 1), x.clone()).unwrap(),
            255,
        );
        for (limit, want) in [(2, 2), (3, 3), (0, 4), (10, 4)] {
            let mut grower = Grower::new(
                &data,
                Growth {
                    max_leaves: limit,
                    ..growth()
                },
            );
            let grown = grower.grow(0..n as u32, &pairs, 1, 0);
            let leaves: Vec<_> = grown.leaves().collect();
            assert_eq!(leaves.len(), want, "max_leaves={limit}");
            let mut seen: Vec<u32> = leaves.iter().flat_map(|(_, r)| r.iter().copied()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
            // Every row's leaf is the one the tree sends it to.
            for (node, rows) in leaves {
                for &r in rows {
                    let row = ndarray::arr1(&[x[r as usize]]);
                    assert_eq!(
                        grown.tree.leaf_value(row.view()),
                        &grown.tree.nodes[node].value[..]
                    );
                }
            }
        }
    }

    #[test]
    fn a_leaf_holds_at_least_min_data_in_leaf_rows() {
        // Fewer distinct values than bins: a bin for each row.
        let n = 200;
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        // One outlier row would be split off alone without the limit.
        let pairs: Vec<[f64; 2]> = (0..n)
            .map(|i| [if i == 0 { -50.0 } else { 0.1 }, 1.0])
            .collect();
        let data = Binned::new(
            &ndarray::Array2::from_shape_vec((n, 1), x.clone()).unwrap(),
            255,
        );
        for (min, smallest) in [(1, 1), (50, 50)] {
            let mut grower = Grower::new(
                &data,
                Growth {
                    min_data_in_leaf: min,
                    max_leaves: 2,
                    ..growth()
                },
            );
            let grown = grower.grow(0..n as u32, &pairs, 1, 0);
            let least = grown.leaves().map(|(_, r)| r.len()).min().unwrap();
            assert_eq!(least, smallest, "min_data_in_leaf={min}");
        }
    }

    #[test]
    fn a_tree_does_not_depend_on_the_number_of_cores() {
        let (rows, d) = (150_000, 3);
        let x: Vec<f64> = (0..rows * d).map(|i| ((i * 7919) % 1013) as f64).collect();
        let pairs: Vec<[f64; 2]> = (0..rows)
            .map(|r| [x[r * d] / 1013.0 - 0.5 + x[r * d + 1] / 2026.0, 0.25])
            .collect();
        let data = Binned::new(
            &ndarray::Array2::from_shape_vec((rows, d), x.clone()).unwrap(),
            255,
        );
        let grow = |threads| {
            let mut grower = Grower::new(
                &data,
                Growth {
                    max_depth: 4,
                    lossguide: false,
                    ..growth()
                },
            );
            grower.threads = threads;
            grower.grow(0..rows as u32, &pairs, 1, 0).tree
        };
        let one = grow(1);
        assert_eq!(one.nodes.len(), 31, "a full tree of depth 4");
        assert_eq!(one, grow(2), "the same tree on one core and on two");
        assert_eq!(one, grow(4));
    }

    #[test]
    fn unit_hessians_grow_the_tree_the_hessians_of_one_grow() {
        // Large enough for chunked and feature-shared passes, with a count limit too.
        let (rows, d) = (150_000, 5);
        let x: Vec<f64> = (0..rows * d).map(|i| ((i * 7919) % 1013) as f64).collect();
        let pairs: Vec<[f64; 2]> = (0..rows)
            .map(|r| [x[r * d] / 1013.0 - 0.5 + x[r * d + 3] / 2026.0, 1.0])
            .collect();
        let data = Binned::new(
            &ndarray::Array2::from_shape_vec((rows, d), x.clone()).unwrap(),
            255,
        );
        for (lossguide, min_data_in_leaf) in [(false, 1), (true, 1), (true, 40)] {
            let growth = Growth {
                max_depth: 5,
                max_leaves: 20,
                lossguide,
                min_data_in_leaf,
                min_child_weight: 3.0,
                lambda: 1.0,
                ..growth()
            };
            let gradients: Vec<f64> = pairs.iter().map(|p| p[0]).collect();
            let tree = |gradients| {
                let mut grower = Grower::new(&data, growth);
                let grown = grower.grow_on((0..rows as u32).filter(|r| r % 3 != 0), gradients);
                let leaves: Vec<(usize, Vec<u32>)> =
                    grown.leaves().map(|(n, r)| (n, r.to_vec())).collect();
                (grown.tree, leaves)
            };
            let given = tree(Gradients::Pairs {
                pairs: &pairs,
                stride: 1,
                offset: 0,
            });
            assert_eq!(given.1.len(), 20, "the trees reach the leaf limit");
            // Gradients alone, summed with row counts for hessians, grow the same tree.
            assert_eq!(
                given,
                tree(Gradients::Unit(&gradients)),
                "lossguide={lossguide}"
            );
        }
    }

    #[test]
    fn a_bin_tree_sends_binned_rows_where_the_tree_sends_their_values() {
        let (rows, d) = (4000, 3);
        let x: Vec<f64> = (0..rows * d)
            .map(|i| ((i * 7919) % 613) as f64 / 7.0)
            .collect();
        let pairs: Vec<[f64; 2]> = (0..rows)
            .map(|r| [(x[r * d] - 40.0) * (x[r * d + 2] - 45.0), 1.0])
            .collect();
        let table = ndarray::Array2::from_shape_vec((rows, d), x).unwrap();
        let data = Binned::new(&table, 64);
        let mut grower = Grower::new(
            &data,
            Growth {
                max_depth: 6,
                lossguide: false,
                ..growth()
            },
        );
        let grown = grower.grow(0..rows as u32, &pairs, 1, 0);
        let bin_tree = grown.bin_tree(0.5);
        assert!(grown.tree.nodes.len() > 60, "a deep tree");
        // New rows: the edges themselves, values between, beyond, infinite and missing.
        let mut values: Vec<f64> = data.edges.iter().flatten().copied().collect();
        values.extend(values.clone().iter().map(|v| v + 1e-9));
        values.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1e9, 1e9]);
        let new: Vec<f64> = (0..values.len() * d)
            .map(|i| values[(i * 31 + i / d * 7) % values.len()])
            .collect();
        let new = ndarray::Array2::from_shape_vec((values.len(), d), new).unwrap();
        let bins = data.bin_rows(&new);
        let binned_row = |i: usize| &bins[i * d..(i + 1) * d];
        for (i, row) in new.outer_iter().enumerate() {
            let want = 0.5 * grown.tree.leaf_value(row)[0];
            assert_eq!(bin_tree.value(binned_row(i)), want, "row {row}");
            // Eight rows walked together reach what each reaches alone.
            let eight = std::array::from_fn(|j| binned_row((i + j * 13) % new.nrows()));
            let alone = eight.map(|row| bin_tree.value(row));
            assert_eq!(bin_tree.values::<8>(eight), alone, "rows from {i}");
        }
    }
}
