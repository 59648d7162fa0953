//! The KLL quantile sketch (Karnin, Lang, Liberty 2016) in the form SageMaker Model Monitor
//! reports it: parameters `c` (how fast compactor capacity shrinks below the top level) and
//! `k` (the top level's capacity), and `data`, one list of items per compactor level, where an
//! item at level `h` stands for `2^h` values.
//!
//! Level `h` of `H` levels holds up to `ceil(k · c^(H-1-h)) + 1` items (at least 2). When the
//! sketch is full, the lowest full level is sorted and every other item, from a random offset,
//! is promoted to the level above; the rest are dropped. Two sketches merge by concatenating
//! levels and compacting again, so sketches of parts of a data set combine into the sketch of
//! the whole.

/// SageMaker's parameters, as seen in real baselines.
pub const SAGEMAKER_K: usize = 2048;
pub const SAGEMAKER_C: f64 = 0.64;

#[derive(Debug, Clone, PartialEq)]
pub struct Kll {
    k: usize,
    c: f64,
    levels: Vec<Vec<f64>>,
    /// Items held now, and how many fit before a compaction.
    size: usize,
    max_size: usize,
    /// Values seen (the total weight).
    count: u64,
    rng: u64,
}

impl Kll {
    pub fn new(k: usize, c: f64) -> Kll {
        assert!(
            k >= 2 && c > 0.0 && c <= 1.0,
            "KLL needs k >= 2 and 0 < c <= 1"
        );
        let mut sketch = Kll {
            k,
            c,
            levels: Vec::new(),
            size: 0,
            max_size: 0,
            count: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        };
        sketch.grow();
        sketch
    }

    /// The sketch SageMaker writes (k = 2048, c = 0.64).
    pub fn sagemaker() -> Kll {
        Kll::new(SAGEMAKER_K, SAGEMAKER_C)
    }

    /// Rebuilds a sketch from its parameters and levels (as read from `statistics.json`).
    pub fn from_levels(k: usize, c: f64, levels: Vec<Vec<f64>>) -> Kll {
        let mut sketch = Kll::new(k, c);
        while sketch.levels.len() < levels.len() {
            sketch.grow();
        }
        sketch.count = levels
            .iter()
            .enumerate()
            .map(|(h, l)| (l.len() as u64) << h)
            .sum();
        sketch.levels = levels;
        sketch.size = sketch.levels.iter().map(Vec::len).sum();
        while sketch.size >= sketch.max_size {
            sketch.compress();
        }
        sketch
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn c(&self) -> f64 {
        self.c
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn levels(&self) -> &[Vec<f64>] {
        &self.levels
    }

    fn capacity(&self, height: usize) -> usize {
        let depth = (self.levels.len() - height - 1) as i32;
        ((self.c.powi(depth) * self.k as f64).ceil() as usize + 1).max(2)
    }

    fn grow(&mut self) {
        self.levels.push(Vec::new());
        self.max_size = (0..self.levels.len()).map(|h| self.capacity(h)).sum();
    }

    /// Adds a value; NaN is ignored (it has no rank).
    pub fn update(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.levels[0].push(value);
        self.size += 1;
        self.count += 1;
        if self.size >= self.max_size {
            self.compress();
        }
    }

    fn coin(&mut self) -> bool {
        // xorshift64*: cheap, and deterministic so the same data gives the same file.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63 == 1
    }

    fn compress(&mut self) {
        for h in 0..self.levels.len() {
            if self.levels[h].len() >= self.capacity(h) {
                if h + 1 >= self.levels.len() {
                    self.grow();
                }
                let mut items = std::mem::take(&mut self.levels[h]);
                items.sort_unstable_by(f64::total_cmp);
                // An odd item out stays at this level, so no weight is lost.
                if items.len() % 2 == 1 {
                    let last = items.pop().expect("odd length is at least 1");
                    self.levels[h].push(last);
                }
                let offset = usize::from(self.coin());
                let promoted: Vec<f64> = items.iter().skip(offset).step_by(2).copied().collect();
                self.levels[h + 1].extend(promoted);
                self.size = self.levels.iter().map(Vec::len).sum();
                if self.size < self.max_size {
                    break;
                }
            }
        }
    }

    /// Adds another sketch's values (same k and c).
    pub fn merge(&mut self, other: &Kll) {
        while self.levels.len() < other.levels.len() {
            self.grow();
        }
        for (h, level) in other.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(level);
        }
        self.count += other.count;
        self.size = self.levels.iter().map(Vec::len).sum();
        while self.size >= self.max_size {
            self.compress();
        }
    }

    /// Every item with its weight, sorted by value.
    pub fn weighted(&self) -> Vec<(f64, u64)> {
        let mut items: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, l)| l.iter().map(move |&v| (v, 1u64 << h)))
            .collect();
        items.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        items
    }

    /// The estimated fraction of values `<= x`.
    pub fn cdf(&self, x: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let below: u64 = self
            .levels
            .iter()
            .enumerate()
            .map(|(h, l)| (l.iter().filter(|&&v| v <= x).count() as u64) << h)
            .sum();
        below as f64 / self.count as f64
    }

    /// The estimated value at rank `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let items = self.weighted();
        let total: u64 = items.iter().map(|i| i.1).sum();
        if total == 0 {
            return None;
        }
        let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (v, w) in &items {
            seen += w;
            if seen >= target {
                return Some(*v);
            }
        }
        items.last().map(|i| i.0)
    }

    /// Counts in `n` equal-width buckets over `[min, max]`, as SageMaker's `buckets`.
    pub fn buckets(&self, min: f64, max: f64, n: usize) -> Vec<(f64, f64, f64)> {
        let width = (max - min) / n as f64;
        let mut counts = vec![0.0; n];
        for (h, level) in self.levels.iter().enumerate() {
            let w = (1u64 << h) as f64;
            for &v in level {
                let i = if width > 0.0 {
                    (((v - min) / width) as usize).min(n - 1)
                } else {
                    0
                };
                counts[i] += w;
            }
        }
        (0..n)
            .map(|i| {
                let lower = min + width * i as f64;
                let upper = if i + 1 == n {
                    max
                } else {
                    min + width * (i + 1) as f64
                };
                (lower, upper, counts[i])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_rank_error(sketch: &Kll, sorted: &[f64]) -> f64 {
        let n = sorted.len() as f64;
        (1..100)
            .map(|i| {
                let x = sorted[(i as f64 / 100.0 * n) as usize];
                let exact = sorted.partition_point(|&v| v <= x) as f64 / n;
                (sketch.cdf(x) - exact).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn small_inputs_are_exact() {
        let mut s = Kll::sagemaker();
        for v in [3.0, 1.0, 2.0] {
            s.update(v);
        }
        assert_eq!(s.levels().len(), 1);
        assert_eq!(s.cdf(2.0), 2.0 / 3.0);
        assert_eq!(s.quantile(0.5), Some(2.0));
    }

    #[test]
    fn rank_error_is_small_and_weight_is_kept() {
        let mut s = Kll::new(200, 2.0 / 3.0);
        let values: Vec<f64> = (0..200_000u64)
            .map(|i| ((i * 7919) % 200_000) as f64)
            .collect();
        for &v in &values {
            s.update(v);
        }
        assert_eq!(s.count(), 200_000);
        let total: u64 = s.weighted().iter().map(|w| w.1).sum();
        assert_eq!(total, 200_000, "compaction keeps the total weight");
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let err = max_rank_error(&s, &sorted);
        assert!(err < 0.02, "rank error {err}");
    }

    #[test]
    fn merged_halves_match_the_whole() {
        let values: Vec<f64> = (0..100_000u64)
            .map(|i| ((i * 104_729) % 100_000) as f64)
            .collect();
        let (mut a, mut b) = (Kll::new(256, 0.64), Kll::new(256, 0.64));
        values[..50_000].iter().for_each(|&v| a.update(v));
        values[50_000..].iter().for_each(|&v| b.update(v));
        a.merge(&b);
        assert_eq!(a.count(), 100_000);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(max_rank_error(&a, &sorted) < 0.02);
    }

    #[test]
    fn buckets_cover_the_range_and_count_everything() {
        let mut s = Kll::sagemaker();
        (1..=243).for_each(|v| s.update(v as f64));
        let b = s.buckets(1.0, 243.0, 10);
        assert_eq!(b[0].0, 1.0);
        assert!((b[0].1 - 25.2).abs() < 1e-9, "{:?}", b[0]);
        assert_eq!(b[9].1, 243.0);
        assert_eq!(b.iter().map(|x| x.2).sum::<f64>(), 243.0);
    }

    #[test]
    fn a_sketch_read_back_keeps_its_counts() {
        let mut s = Kll::new(64, 0.64);
        (0..10_000).for_each(|v| s.update(v as f64));
        let back = Kll::from_levels(64, 0.64, s.levels().to_vec());
        assert_eq!(back.count(), 10_000);
        assert_eq!(back.cdf(5000.0), s.cdf(5000.0));
    }
}
