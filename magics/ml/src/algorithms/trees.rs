//! The histogram tree learner of the decision tree and the random forest (boosting has its
//! own, in `booster`, laid out for gradient pairs).
//!
//! Why not linfa here: linfa-trees grows classification trees only (no regression tree, so no
//! forest or boosting for regression) and finds exact splits by sorting at every node, which
//! on a million rows is minutes where a histogram learner takes seconds; linfa-ensemble only
//! bags those. So the learners are written here, in the way LightGBM and
//! scikit-learn's HistGradientBoosting work: each feature is cut into at most 255 bins once,
//! a node's split is found from per-bin sums, and a child's histogram is its parent's minus its
//! sibling's.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use super::Rng;

pub(crate) const LEAF: u32 = u32::MAX;
/// Rows at which building a node's histogram is worth a second thread.
const PARALLEL_ROWS: usize = 50_000;

/// Each feature's values as bin numbers, with the values that separate the bins.
pub struct Binned {
    pub(super) bins: Vec<Vec<u8>>,
    /// Upper edges of each feature's bins (one fewer than its bins).
    pub(super) edges: Vec<Vec<f64>>,
}

impl Binned {
    /// Reads `x` row by row (a column of a row-major table is a pass over all of it per
    /// feature): first a sample of rows for the edges, then row blocks on every core, each
    /// giving its rows' bins feature by feature.
    pub fn new(x: &Array2<f64>, max_bins: usize) -> Binned {
        let max_bins = max_bins.clamp(2, 256);
        let (n, d) = x.dim();
        let stride = n.div_ceil(SAMPLE_ROWS).max(1);
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(n / stride + 1); d];
        for row in x.outer_iter().step_by(stride) {
            for (sample, v) in samples.iter_mut().zip(row) {
                sample.push(*v);
            }
        }
        let edges = super::blocks::map_indexed(d, |f| bin_edges(samples[f].clone(), max_bins));
        let blocks = super::blocks::map_blocks(n, |range| {
            let len = range.len();
            let mut out = vec![0u8; len * d];
            for (j, i) in range.enumerate() {
                for (f, v) in x.row(i).iter().enumerate() {
                    out[f * len + j] = bin_of(&edges[f], *v);
                }
            }
            out
        });
        let bins = (0..d)
            .map(|f| {
                let mut column = Vec::with_capacity(n);
                for block in &blocks {
                    let len = block.len() / d;
                    column.extend_from_slice(&block[f * len..(f + 1) * len]);
                }
                column
            })
            .collect();
        Binned { bins, edges }
    }

    /// New rows of `x` (a validation set) binned by these edges, row-major, for walks that
    /// compare a row's bin with a split's. NaN gets bin 255, past every split (a split's bin
    /// is below the last), so it goes right as it does in `Tree::leaf_of`.
    pub fn bin_rows(&self, x: &Array2<f64>) -> Vec<u8> {
        let d = self.features();
        let blocks = super::blocks::map_blocks(x.nrows(), |range| {
            let mut out = Vec::with_capacity(range.len() * d);
            for i in range {
                out.extend(x.row(i).iter().zip(&self.edges).map(|(v, edges)| {
                    if v.is_nan() {
                        u8::MAX
                    } else {
                        bin_of(edges, *v)
                    }
                }));
            }
            out
        });
        blocks.concat()
    }

    fn features(&self) -> usize {
        self.bins.len()
    }

    pub fn rows(&self) -> usize {
        self.bins.first().map_or(0, Vec::len)
    }
}

/// The number of edges below `v` (its bin), by a binary search of fixed steps over the
/// edges padded to 255: no branch to mispredict, where a value's bin is random.
fn bin_of(edges: &[f64], v: f64) -> u8 {
    let at = |i: usize| edges.get(i).copied().unwrap_or(f64::INFINITY);
    let mut below = 0usize;
    for step in [128, 64, 32, 16, 8, 4, 2, 1] {
        below += usize::from(at(below + step - 1) < v) * step;
    }
    below as u8
}

/// Rows the bin edges are found from.
const SAMPLE_ROWS: usize = 200_000;

/// Upper edges of the bins: midpoints between distinct values, or between quantiles when there
/// are more distinct values than bins (in a sample of at most `SAMPLE_ROWS` rows).
fn bin_edges(mut sample: Vec<f64>, max_bins: usize) -> Vec<f64> {
    sample.sort_unstable_by(f64::total_cmp);
    let mut distinct = sample.clone();
    distinct.dedup();
    let cut = |a: f64, b: f64| a + (b - a) / 2.0;
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| cut(w[0], w[1])).collect();
    }
    let mut out = Vec::with_capacity(max_bins - 1);
    for q in 1..max_bins {
        let i = q * sample.len() / max_bins;
        let (a, b) = (sample[i - 1], sample[i]);
        let edge = if a == b { a } else { cut(a, b) };
        if out.last().is_none_or(|&l| edge > l) {
            out.push(edge);
        }
    }
    out
}

/// What is summed per bin, and how a split is scored.
#[derive(Clone, Copy)]
pub enum Criterion {
    Gini {
        classes: usize,
    },
    Entropy {
        classes: usize,
    },
    /// Squared error: sums of weight·y and weight.
    Variance,
}

impl Criterion {
    fn width(self) -> usize {
        match self {
            Criterion::Gini { classes } | Criterion::Entropy { classes } => classes,
            Criterion::Variance => 2,
        }
    }

    /// Higher is purer; a split gains score(left) + score(right) − score(parent).
    fn score(self, s: &[f64]) -> f64 {
        match self {
            Criterion::Gini { .. } => {
                let n: f64 = s.iter().sum();
                if n <= 0.0 {
                    0.0
                } else {
                    s.iter().map(|c| c * c).sum::<f64>() / n
                }
            }
            Criterion::Entropy { .. } => {
                let n: f64 = s.iter().sum();
                s.iter()
                    .filter(|c| **c > 0.0)
                    .map(|c| c * (c / n).ln())
                    .sum()
            }
            Criterion::Variance => {
                if s[1] <= 0.0 {
                    0.0
                } else {
                    s[0] * s[0] / s[1]
                }
            }
        }
    }

    fn count(self, s: &[f64]) -> f64 {
        match self {
            Criterion::Gini { .. } | Criterion::Entropy { .. } => s.iter().sum(),
            Criterion::Variance => s[1],
        }
    }

    fn leaf(self, s: &[f64]) -> Vec<f64> {
        match self {
            Criterion::Gini { .. } | Criterion::Entropy { .. } => {
                let n: f64 = s.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                s.iter().map(|c| c / n).collect()
            }
            Criterion::Variance => vec![if s[1] > 0.0 { s[0] / s[1] } else { 0.0 }],
        }
    }
}

/// Per-row inputs of a tree, matching its criterion.
pub enum Rows<'a> {
    Classes { class: &'a [u32], weight: &'a [f64] },
    Values { y: &'a [f64], weight: &'a [f64] },
}

#[derive(Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub min_samples_leaf: f64,
    pub min_samples_split: f64,
    /// Features tried at each node (all when equal to their number).
    pub max_features: usize,
    /// Extremely randomised trees: each feature tried at one threshold drawn at random among
    /// the node's bins (as LightGBM's `extra_trees`), not at its best one.
    pub random_thresholds: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn leaf_value(&self, row: ArrayView1<f64>) -> &[f64] {
        self.leaf_of(|f| row[f])
    }

    /// The leaf a row reaches, given its value of each feature.
    pub fn leaf_of(&self, value: impl Fn(usize) -> f64) -> &[f64] {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.feature == LEAF {
                return &node.value;
            }
            i = if value(node.feature as usize) <= node.threshold {
                node.left
            } else {
                node.right
            } as usize;
        }
    }

    pub fn scale(&mut self, by: f64) {
        for n in &mut self.nodes {
            n.value.iter_mut().for_each(|v| *v *= by);
        }
    }
}

struct Pending {
    node: usize,
    rows: Vec<u32>,
    hist: Option<Vec<f64>>,
    depth: usize,
}

/// Grows one tree. Returns it with, for each leaf, the rows that reached it (boosting updates
/// its training scores from these instead of walking the tree again).
pub fn grow(
    data: &Binned,
    rows: Vec<u32>,
    inputs: &Rows,
    criterion: Criterion,
    limits: Limits,
    rng: &mut Rng,
) -> (Tree, Vec<(usize, Vec<u32>)>) {
    let d = data.features();
    let width = criterion.width();
    let all_features = limits.max_features >= d;
    let mut tree = Tree {
        nodes: vec![Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: Vec::new(),
        }],
    };
    let mut leaves = Vec::new();
    let everything: Vec<usize> = (0..d).collect();
    let mut stack = vec![Pending {
        node: 0,
        rows,
        hist: None,
        depth: 0,
    }];
    while let Some(p) = stack.pop() {
        let features: Vec<usize> = if all_features {
            everything.clone()
        } else {
            rng.choose(d, limits.max_features)
        };
        let hist = match p.hist {
            Some(h) => h,
            None => histogram(data, &p.rows, &features, inputs, width),
        };
        let total = totals(&hist, &features, width);
        let count = criterion.count(&total);
        let can_split = p.depth < limits.max_depth
            && count >= limits.min_samples_split
            && count >= 2.0 * limits.min_samples_leaf;
        let best = if can_split {
            best_split(data, &hist, &total, &features, criterion, limits, rng)
        } else {
            None
        };
        let Some((feature, bin)) = best else {
            tree.nodes[p.node].value = criterion.leaf(&total);
            leaves.push((p.node, p.rows));
            continue;
        };
        let column = &data.bins[feature];
        let (left, right): (Vec<u32>, Vec<u32>) = p
            .rows
            .iter()
            .partition(|&&i| column[i as usize] <= bin as u8);
        let left_id = tree.nodes.len();
        for _ in 0..2 {
            tree.nodes.push(Node {
                feature: LEAF,
                threshold: 0.0,
                left: 0,
                right: 0,
                value: Vec::new(),
            });
        }
        tree.nodes[p.node] = Node {
            feature: feature as u32,
            threshold: data.edges[feature][bin],
            left: left_id as u32,
            right: left_id as u32 + 1,
            value: Vec::new(),
        };
        // With every feature in every node, the larger child's histogram is the parent's minus
        // the smaller child's; with sampled features each node builds its own.
        let (left_hist, right_hist) = if all_features {
            let small_is_left = left.len() <= right.len();
            let small = histogram(
                data,
                if small_is_left { &left } else { &right },
                &features,
                inputs,
                width,
            );
            let mut large = hist;
            large.iter_mut().zip(&small).for_each(|(a, b)| *a -= b);
            if small_is_left {
                (Some(small), Some(large))
            } else {
                (Some(large), Some(small))
            }
        } else {
            (None, None)
        };
        stack.push(Pending {
            node: left_id + 1,
            rows: right,
            hist: right_hist,
            depth: p.depth + 1,
        });
        stack.push(Pending {
            node: left_id,
            rows: left,
            hist: left_hist,
            depth: p.depth + 1,
        });
    }
    (tree, leaves)
}

fn slot(feature: usize, width: usize) -> usize {
    feature * 256 * width
}

fn histogram(
    data: &Binned,
    rows: &[u32],
    features: &[usize],
    inputs: &Rows,
    width: usize,
) -> Vec<f64> {
    let mut hist = vec![0.0; data.features() * 256 * width];
    let fill = |feature: usize, out: &mut [f64]| {
        let col = &data.bins[feature];
        match inputs {
            Rows::Classes { class, weight } => {
                for &i in rows {
                    let i = i as usize;
                    out[col[i] as usize * width + class[i] as usize] += weight[i];
                }
            }
            Rows::Values { y, weight } => {
                for &i in rows {
                    let i = i as usize;
                    let b = col[i] as usize * 2;
                    out[b] += weight[i] * y[i];
                    out[b + 1] += weight[i];
                }
            }
        }
    };
    let chunks: Vec<(usize, &mut [f64])> = hist
        .chunks_mut(256 * width)
        .enumerate()
        .filter(|(f, _)| features.contains(f))
        .collect();
    if rows.len() < PARALLEL_ROWS || chunks.len() < 2 {
        for (f, out) in chunks {
            fill(f, out);
        }
    } else {
        let threads = super::blocks::cores().min(chunks.len());
        let mut groups: Vec<Vec<(usize, &mut [f64])>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, c) in chunks.into_iter().enumerate() {
            groups[i % threads].push(c);
        }
        super::blocks::on_cores(groups, |group| {
            for (f, out) in group {
                fill(f, out);
            }
        });
    }
    hist
}

fn totals(hist: &[f64], features: &[usize], width: usize) -> Vec<f64> {
    let f = features[0];
    let mut total = vec![0.0; width];
    for b in 0..256 {
        for (k, t) in total.iter_mut().enumerate() {
            *t += hist[slot(f, width) + b * width + k];
        }
    }
    total
}

fn best_split(
    data: &Binned,
    hist: &[f64],
    total: &[f64],
    features: &[usize],
    criterion: Criterion,
    limits: Limits,
    rng: &mut Rng,
) -> Option<(usize, usize)> {
    let width = criterion.width();
    let parent = criterion.score(total);
    let mut best: Option<(f64, usize, usize)> = None;
    let mut left = vec![0.0; width];
    let mut right = vec![0.0; width];
    for &f in features {
        let bins = data.edges[f].len();
        left.iter_mut().for_each(|v| *v = 0.0);
        let base = slot(f, width);
        let mut only = None;
        if limits.random_thresholds {
            // A threshold between the node's lowest and highest occupied bins: splits that
            // leave a side empty are never drawn.
            let occupied =
                |b: &usize| criterion.count(&hist[base + b * width..base + (b + 1) * width]) > 0.0;
            let (Some(low), Some(high)) = ((0..=bins).find(occupied), (0..=bins).rfind(occupied))
            else {
                continue;
            };
            if low == high {
                continue;
            }
            only = Some(low + rng.below(high - low));
        }
        for b in 0..bins {
            for k in 0..width {
                left[k] += hist[base + b * width + k];
                right[k] = total[k] - left[k];
            }
            let (nl, nr) = (criterion.count(&left), criterion.count(&right));
            if nl < limits.min_samples_leaf {
                continue;
            }
            if nr < limits.min_samples_leaf {
                break;
            }
            if only.is_some_and(|o| b != o) {
                continue;
            }
            let gain = criterion.score(&left) + criterion.score(&right) - parent;
            if gain > 1e-10 * parent.abs().max(1e-12) && best.is_none_or(|(g, _, _)| gain > g) {
                best = Some((gain, f, b));
            }
        }
    }
    best.map(|(_, f, b)| (f, b))
}

/// Sets a stop flag's meaning for learners: `true` means stop now.
pub fn stopped(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gini tree over every row of `x` and every feature, grown to `max_depth`.
    fn grow_classes(
        x: &Array2<f64>,
        class: &[u32],
        max_depth: usize,
        random_thresholds: bool,
        seed: u64,
    ) -> (Tree, Vec<(usize, Vec<u32>)>) {
        let weight = vec![1.0; x.nrows()];
        grow(
            &Binned::new(x, 255),
            (0..x.nrows() as u32).collect(),
            &Rows::Classes {
                class,
                weight: &weight,
            },
            Criterion::Gini { classes: 2 },
            Limits {
                max_depth,
                min_samples_leaf: 1.0,
                min_samples_split: 2.0,
                max_features: x.ncols(),
                random_thresholds,
            },
            &mut Rng::new(seed),
        )
    }

    #[test]
    fn a_tree_separates_what_is_separable() {
        let x = Array2::from_shape_fn((200, 2), |(i, j)| (i * (j + 1)) as f64 % 97.0);
        let class: Vec<u32> = (0..200).map(|i| u32::from(x[[i, 0]] > 40.0)).collect();
        let (tree, leaves) = grow_classes(&x, &class, 8, false, 1);
        assert_eq!(leaves.len(), 2, "one split is enough");
        for i in 0..200 {
            let p = tree.leaf_value(x.row(i));
            assert_eq!(p[class[i] as usize], 1.0);
        }
    }

    /// Extra trees draw each split's threshold: the same seed draws the same tree, another
    /// seed another, a drawn split never leaves a side empty, and a separable table is still
    /// separated.
    #[test]
    fn random_thresholds_are_seeded_and_split_between_the_nodes_rows() {
        let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * (j + 2) * 37) % 101) as f64);
        let class: Vec<u32> = (0..300).map(|i| u32::from(x[[i, 0]] > 50.0)).collect();
        let grow_with = |seed: u64, random_thresholds: bool| {
            grow_classes(&x, &class, 30, random_thresholds, seed)
        };
        let (searched, _) = grow_with(1, false);
        let (drawn, leaves) = grow_with(1, true);
        assert_eq!(drawn, grow_with(1, true).0, "seeded");
        assert_ne!(
            drawn,
            grow_with(2, true).0,
            "another seed draws another tree"
        );
        assert!(
            drawn.nodes.len() > searched.nodes.len(),
            "drawn thresholds need more splits than the best one ({} against {})",
            drawn.nodes.len(),
            searched.nodes.len()
        );
        assert!(leaves.iter().all(|(_, rows)| !rows.is_empty()));
        for (row, c) in x.outer_iter().zip(&class) {
            assert_eq!(drawn.leaf_value(row)[*c as usize], 1.0);
        }
    }

    #[test]
    fn a_value_falls_in_the_bin_a_search_gives() {
        let edges: Vec<f64> = (0..255).map(|i| i as f64 * 0.5).collect();
        for edges in [&edges[..], &edges[..7], &edges[..1], &[][..]] {
            for v in [
                -1.0,
                0.0,
                0.25,
                0.5,
                3.0,
                3.2,
                126.9,
                127.0,
                500.0,
                f64::NAN,
            ] {
                let want = edges.partition_point(|&e| e < v) as u8;
                assert_eq!(bin_of(edges, v), want, "{v} in {} edges", edges.len());
            }
        }
    }
}
