//! Boosted trees laid out for scoring many rows. A trained [`Tree`] keeps its nodes as it grew
//! them, each leaf's value in a vector of its own: right for training and for the artifact,
//! slow to walk a million rows through, since every leaf reached is one more pointer to chase
//! and every node 48 bytes. Here each tree is one array of 16-byte nodes in breadth-first
//! order, a node's two children side by side and a leaf's value in its threshold's place, and
//! rows are scored a small block at a time, tree by tree, so the tree being walked stays in
//! the nearest cache. Scores are summed in the trees' order, as [`Tree::leaf_of`] sums them.

use super::trees::{Tree, LEAF};

#[derive(Debug, Clone, Copy)]
struct Node {
    /// A split's threshold, or a leaf's value.
    threshold: f64,
    /// The feature split on, `LEAF` for a leaf.
    feature: u32,
    /// The left child's index; the right one follows it.
    children: u32,
}

#[derive(Debug, Clone)]
struct Flat {
    nodes: Vec<Node>,
}

impl Flat {
    fn new(tree: &Tree) -> Flat {
        let leaf = |i: usize| Node {
            threshold: tree.nodes[i].value.first().copied().unwrap_or(0.0),
            feature: LEAF,
            children: 0,
        };
        let mut nodes = vec![leaf(0)];
        // (the trained node, where it goes), in breadth-first order.
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
        while let Some((from, to)) = queue.pop_front() {
            let node = &tree.nodes[from];
            if node.feature == LEAF {
                nodes[to] = leaf(from);
                continue;
            }
            let children = nodes.len();
            nodes[to] = Node {
                threshold: node.threshold,
                feature: node.feature,
                children: children as u32,
            };
            nodes.extend([leaf(0), leaf(0)]);
            queue.push_back((node.left as usize, children));
            queue.push_back((node.right as usize, children + 1));
        }
        Flat { nodes }
    }

    /// The leaf value `row` reaches; a missing value (NaN) goes right, as in [`Tree::leaf_of`].
    #[inline]
    fn value(&self, row: &[f64]) -> f64 {
        let mut node = self.nodes[0];
        while node.feature != LEAF {
            // NaN is not at most the threshold: it goes right.
            let left = row[node.feature as usize] <= node.threshold;
            node = self.nodes[node.children as usize + usize::from(!left)];
        }
        node.threshold
    }
}

/// Rows scored together through one tree before the next: the block's rows and the tree fit
/// the first-level cache.
const BLOCK: usize = 64;

/// A boosting model's trees, one per class per round, ready to score.
#[derive(Debug, Clone)]
pub struct Boosted {
    trees: Vec<Flat>,
    /// Scores per row: one per class of a multiclass model, else one.
    outputs: usize,
}

impl Boosted {
    /// `rounds[r][c]` is round `r`'s tree for class `c`.
    pub fn new(rounds: &[Vec<Tree>]) -> Boosted {
        Boosted {
            trees: rounds.iter().flatten().map(Flat::new).collect(),
            outputs: rounds.first().map_or(1, Vec::len).max(1),
        }
    }

    /// Adds every tree's value for each row of the row-major `x` (`d` values a row) to its
    /// scores in `sums` (`outputs` a row), for the rows `first..` that `sums` holds.
    pub fn add(&self, x: &[f64], d: usize, first: usize, sums: &mut [f64]) {
        let k = self.outputs;
        for (b, block) in sums.chunks_mut(BLOCK * k).enumerate() {
            let from = first + b * BLOCK;
            let rows = block.len() / k;
            for (t, tree) in self.trees.iter().enumerate() {
                let class = t % k;
                for r in 0..rows {
                    let at = (from + r) * d;
                    block[r * k + class] += tree.value(&x[at..at + d]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::trees::Node;

    fn split(feature: u32, threshold: f64, left: u32, right: u32) -> Node {
        Node {
            feature,
            threshold,
            left,
            right,
            value: Vec::new(),
        }
    }

    fn leaf(v: f64) -> Node {
        Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: vec![v],
        }
    }

    /// Trees in the order a grower leaves them (children after deeper nodes, unbalanced).
    fn tree(shift: f64) -> Tree {
        Tree {
            nodes: vec![
                split(0, 0.5 + shift, 3, 1),
                split(1, -1.0, 2, 5),
                leaf(1.0 + shift),
                split(2, 2.0, 4, 6),
                leaf(-2.0),
                leaf(0.25 * shift),
                leaf(7.0),
            ],
        }
    }

    #[test]
    fn scores_are_the_trained_trees_sums_for_every_row_and_class() {
        let rows: Vec<[f64; 3]> = (0..300)
            .map(|i| {
                let v = f64::from(i);
                let nan_or = |x: f64| if i % 11 == 0 { f64::NAN } else { x };
                [
                    nan_or((v * 0.37) % 3.0 - 1.0),
                    (v * 0.71) % 4.0 - 2.0,
                    nan_or(v % 5.0),
                ]
            })
            .collect();
        let x: Vec<f64> = rows.iter().flatten().copied().collect();
        for classes in [1, 3] {
            let rounds: Vec<Vec<Tree>> = (0..5)
                .map(|r| {
                    (0..classes)
                        .map(|c| tree(f64::from(r * 3 + c as i32) * 0.1))
                        .collect()
                })
                .collect();
            let mut sums = vec![0.0; rows.len() * classes];
            // Rows from 100 on, as a block of a larger batch is scored.
            Boosted::new(&rounds).add(&x, 3, 100, &mut sums[100 * classes..]);
            for (i, row) in rows.iter().enumerate().skip(100) {
                for c in 0..classes {
                    let want: f64 = rounds.iter().map(|r| r[c].leaf_of(|f| row[f])[0]).sum();
                    assert_eq!(sums[i * classes + c], want, "row {i} class {c}");
                }
            }
            assert!(sums[..100 * classes].iter().all(|s| *s == 0.0));
        }
    }
}
