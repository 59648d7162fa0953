//! One pass over a data set's values, column by column, that yields Model Monitor's statistics.
//!
//! Values arrive as text (CSV, JSON) or typed (Parquet, frames). Each present value is typed
//! the way SageMaker's container types it: a whole number is Integral, another finite number is
//! Fractional, anything else is String. A column is String if any value is, else Fractional if
//! any value is, else Integral; a column with no value is Unknown. Numbers feed a KLL sketch and
//! running moments; strings feed a HyperLogLog (distinct count) and value counts. Memory per
//! column is bounded: the sketches are fixed-size and at most [`MAX_CATEGORIES`] values are
//! counted.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::format::{
    Categorical, CategoricalBucket, CategoricalDistribution, Common, Dataset, FeatureStatistics,
    InferredType, KllBucket, KllDistribution, KllParameters, KllSketch, NumericDistribution,
    NumericalStatistics, Statistics, StringStatistics,
};
use crate::sketch::{Hll, Kll};

/// Distinct values counted per column; later new values still count toward the HyperLogLog.
pub const MAX_CATEGORIES: usize = 1000;
/// SageMaker writes 10 equal-width buckets.
pub const BUCKETS: usize = 10;

/// The HyperLogLog's hash as a map hasher: the value counts sit on the hot path, and SipHash's
/// protection against chosen keys buys nothing here.
#[derive(Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::sketch::hash64(bytes) ^ self.0.rotate_left(5);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A value as read.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Missing,
    Text(&'a str),
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub struct ColumnProfile {
    pub name: String,
    pub missing: u64,
    pub integral: u64,
    pub fractional: u64,
    pub strings: u64,
    kll: Kll,
    sum: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    hll: Hll,
    categories: HashMap<String, u64, BuildHasherDefault<FastHasher>>,
    /// Counts of the numbers written as text, by their bits: they matter only if the column
    /// turns out to be a String one, and keeping them as numbers is much cheaper.
    numeric_categories: HashMap<u64, u64, BuildHasherDefault<FastHasher>>,
    /// For checks: the baseline's domain, and how many present values fall in it.
    domain: Option<HashSet<String>>,
    pub in_domain: u64,
    /// A type the user fixed (`--schema`), written instead of the inferred one.
    pub forced: Option<InferredType>,
}

impl ColumnProfile {
    pub fn new(name: impl Into<String>) -> ColumnProfile {
        ColumnProfile {
            name: name.into(),
            missing: 0,
            integral: 0,
            fractional: 0,
            strings: 0,
            kll: Kll::sagemaker(),
            sum: 0.0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            hll: Hll::default(),
            categories: HashMap::default(),
            numeric_categories: HashMap::default(),
            domain: None,
            in_domain: 0,
            forced: None,
        }
    }

    pub fn with_domain(mut self, domain: &[String]) -> ColumnProfile {
        self.domain = Some(domain.iter().cloned().collect());
        self
    }

    pub fn present(&self) -> u64 {
        self.integral + self.fractional + self.strings
    }

    pub fn inferred_type(&self) -> InferredType {
        if let Some(t) = self.forced {
            return t;
        }
        if self.strings > 0 {
            InferredType::String
        } else if self.fractional > 0 {
            InferredType::Fractional
        } else if self.integral > 0 {
            InferredType::Integral
        } else {
            InferredType::Unknown
        }
    }

    pub fn kll(&self) -> &Kll {
        &self.kll
    }

    fn number(&mut self, x: f64) {
        self.kll.update(x);
        self.sum += x;
        // Welford: a stable running variance.
        let n = (self.integral + self.fractional) as f64;
        let delta = x - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    fn text(&mut self, s: &str) {
        self.hll.insert(s.as_bytes());
        if let Some(count) = self.categories.get_mut(s) {
            *count += 1;
        } else if self.categories.len() < MAX_CATEGORIES {
            self.categories.insert(s.to_owned(), 1);
        }
    }

    pub fn update(&mut self, value: Value<'_>) {
        match value {
            Value::Missing => self.missing += 1,
            // Typed numbers (Parquet, frames) can never make the column a String one, so they
            // skip the string side.
            Value::Int(i) => {
                self.integral += 1;
                self.number(i as f64);
            }
            Value::Float(f) if f.is_finite() => {
                self.fractional += 1;
                self.number(f);
            }
            Value::Float(_) => self.missing += 1,
            Value::Text(raw) => {
                let s = raw.trim();
                if s.is_empty() {
                    self.missing += 1;
                    return;
                }
                if let Some(domain) = &self.domain {
                    if domain.contains(s) {
                        self.in_domain += 1;
                    }
                }
                if let Ok(i) = s.parse::<i64>() {
                    self.integral += 1;
                    self.number(i as f64);
                    self.numeric_text(i as f64);
                } else if let Some(f) = s.parse::<f64>().ok().filter(|f| f.is_finite()) {
                    self.fractional += 1;
                    self.number(f);
                    self.numeric_text(f);
                } else {
                    self.strings += 1;
                    self.text(s);
                }
            }
        }
    }

    fn numeric_text(&mut self, x: f64) {
        let bits = x.to_bits();
        self.hll
            .insert_hash(crate::sketch::hash64(&bits.to_le_bytes()));
        // Once the table is full, a column without any string stops counting numbers: their
        // counts matter only if strings turn up later, and the lookups (mostly misses for
        // real-valued data) would dominate the profile's time.
        if self.numeric_categories.len() >= MAX_CATEGORIES && self.strings == 0 {
            return;
        }
        if let Some(count) = self.numeric_categories.get_mut(&bits) {
            *count += 1;
        } else if self.numeric_categories.len() < MAX_CATEGORIES {
            self.numeric_categories.insert(bits, 1);
        }
    }

    /// The share of present values whose type agrees with `expected` (an Integral is also a
    /// valid Fractional; anything is a valid String).
    pub fn type_match(&self, expected: InferredType) -> f64 {
        let present = self.present();
        if present == 0 {
            return 1.0;
        }
        let matching = match expected {
            InferredType::Integral => self.integral,
            InferredType::Fractional => self.integral + self.fractional,
            InferredType::String | InferredType::Unknown => present,
        };
        matching as f64 / present as f64
    }

    /// Value counts (most frequent first), for the categorical distribution.
    pub fn categories(&self) -> Vec<(String, u64)> {
        // Numbers print in their shortest form (`7`, `2.5`) beside the text values.
        let mut v: Vec<(String, u64)> = self
            .categories
            .iter()
            .map(|(k, c)| (k.clone(), *c))
            .chain(
                self.numeric_categories
                    .iter()
                    .map(|(bits, c)| (f64::from_bits(*bits).to_string(), *c)),
            )
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    pub fn statistics(&self) -> FeatureStatistics {
        let common = Common {
            num_present: self.present(),
            num_missing: self.missing,
        };
        let inferred_type = self.inferred_type();
        let mut feature = FeatureStatistics {
            name: self.name.clone(),
            inferred_type,
            numerical_statistics: None,
            string_statistics: None,
        };
        match inferred_type {
            InferredType::Integral | InferredType::Fractional => {
                let n = common.num_present as f64;
                let buckets = self
                    .kll
                    .buckets(self.min, self.max, BUCKETS)
                    .into_iter()
                    .map(|(lower_bound, upper_bound, count)| KllBucket {
                        lower_bound,
                        upper_bound,
                        count,
                    })
                    .collect();
                feature.numerical_statistics = Some(NumericalStatistics {
                    common,
                    mean: self.mean,
                    sum: self.sum,
                    // The population standard deviation, as Deequ (SageMaker's engine) computes it.
                    std_dev: (self.m2 / n).sqrt(),
                    min: self.min,
                    max: self.max,
                    distribution: NumericDistribution {
                        kll: KllDistribution {
                            buckets,
                            sketch: KllSketch {
                                parameters: KllParameters {
                                    c: self.kll.c(),
                                    k: self.kll.k() as f64,
                                },
                                data: self.kll.levels().to_vec(),
                            },
                        },
                    },
                });
            }
            InferredType::String | InferredType::Unknown => {
                feature.string_statistics = Some(StringStatistics {
                    common,
                    distinct_count: self.hll.estimate().round(),
                    distribution: CategoricalDistribution {
                        categorical: Categorical {
                            buckets: self
                                .categories()
                                .into_iter()
                                .map(|(value, count)| CategoricalBucket { value, count })
                                .collect(),
                        },
                    },
                });
            }
        }
        feature
    }
}

/// The profile of a whole data set.
#[derive(Debug, Clone)]
pub struct Profile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

impl Profile {
    pub fn new(names: impl IntoIterator<Item = String>) -> Profile {
        Profile {
            rows: 0,
            columns: names.into_iter().map(ColumnProfile::new).collect(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn statistics(&self) -> Statistics {
        Statistics {
            version: 0.0,
            dataset: Dataset {
                item_count: self.rows,
            },
            features: self.columns.iter().map(ColumnProfile::statistics).collect(),
        }
    }
}

/// Builds a profile from records whose columns are known only as they arrive (JSON records,
/// captured requests): a column first seen late counts as missing in every earlier record.
pub struct RecordProfiler<F: Fn(String) -> ColumnProfile> {
    pub profile: Profile,
    index: HashMap<String, usize>,
    new_column: F,
}

impl<F: Fn(String) -> ColumnProfile> RecordProfiler<F> {
    pub fn new(new_column: F) -> Self {
        RecordProfiler {
            profile: Profile {
                rows: 0,
                columns: Vec::new(),
            },
            index: HashMap::new(),
            new_column,
        }
    }

    pub fn record<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, Value<'a>)>) {
        let mut seen = vec![false; self.profile.columns.len()];
        for (name, value) in fields {
            let i = match self.index.get(name) {
                Some(&i) => i,
                None => {
                    let mut c = (self.new_column)(name.to_owned());
                    for _ in 0..self.profile.rows {
                        c.update(Value::Missing);
                    }
                    self.profile.columns.push(c);
                    seen.push(false);
                    self.index
                        .insert(name.to_owned(), self.profile.columns.len() - 1);
                    self.profile.columns.len() - 1
                }
            };
            seen[i] = true;
            self.profile.columns[i].update(value);
        }
        for (i, was) in seen.iter().enumerate() {
            if !was {
                self.profile.columns[i].update(Value::Missing);
            }
        }
        self.profile.rows += 1;
    }
}

/// A JSON value as a profile value (objects and arrays as their JSON text).
pub fn json_value<'a>(value: &'a serde_json::Value, scratch: &'a mut String) -> Value<'a> {
    match value {
        serde_json::Value::Null => Value::Missing,
        serde_json::Value::Number(x) => match x.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(x.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s),
        other => {
            *scratch = other.to_string();
            Value::Text(scratch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_moments() {
        let mut c = ColumnProfile::new("x");
        for v in ["1", " 2 ", "", "4"] {
            c.update(Value::Text(v));
        }
        assert_eq!(c.inferred_type(), InferredType::Integral);
        let s = c.statistics();
        let n = s.numerical_statistics.unwrap();
        assert_eq!((n.common.num_present, n.common.num_missing), (3, 1));
        assert_eq!((n.sum, n.min, n.max), (7.0, 1.0, 4.0));
        assert!((n.mean - 7.0 / 3.0).abs() < 1e-12);
        assert!((n.std_dev - (14.0f64 / 9.0).sqrt()).abs() < 1e-12);
        c.update(Value::Text("2.5"));
        assert_eq!(c.inferred_type(), InferredType::Fractional);
        c.update(Value::Text("n/a"));
        assert_eq!(c.inferred_type(), InferredType::String);
        assert!((c.type_match(InferredType::Fractional) - 0.8).abs() < 1e-12);
        assert!((c.type_match(InferredType::Integral) - 0.6).abs() < 1e-12);
    }

    #[test]
    fn strings_count_distinct_values() {
        let mut c = ColumnProfile::new("color").with_domain(&["red".into(), "blue".into()]);
        for v in ["red", "blue", "red", "green"] {
            c.update(Value::Text(v));
        }
        let s = c.statistics().string_statistics.unwrap();
        assert_eq!(s.distinct_count, 3.0);
        assert_eq!(s.distribution.categorical.buckets[0].value, "red");
        assert_eq!(s.distribution.categorical.buckets[0].count, 2);
        assert_eq!(c.in_domain, 3);
    }

    #[test]
    fn an_empty_column_is_unknown() {
        let mut c = ColumnProfile::new("e");
        c.update(Value::Missing);
        assert_eq!(c.inferred_type(), InferredType::Unknown);
        assert_eq!(
            c.statistics().string_statistics.unwrap().common.num_missing,
            1
        );
    }
}
