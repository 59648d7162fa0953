//! The seeded split of a table into the rows candidates train on and the rows they are
//! scored on. Classes are split one by one (stratified), so each class is on both sides and
//! the validation rows keep the table's class shares; the same seed gives the same rows.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rustmaker_ml::prep::{self, Values};

use crate::AutopilotError;

fn polars_error(what: &str, e: PolarsError) -> AutopilotError {
    AutopilotError::request(what, e.to_string())
}

/// A seeded permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The rows of `frame` whose target is given (an empty field in a CSV is missing too); the
/// number left out is the analysis's.
pub fn with_target(frame: &DataFrame, target: &str) -> Result<DataFrame, AutopilotError> {
    let given: BooleanChunked = match prep::column(frame, target)? {
        Values::Numbers(v) => v.iter().map(|x| Some(x.is_some())).collect(),
        Values::Text(v) => v
            .iter()
            .map(|x| Some(x.as_ref().is_some_and(|s| !s.trim().is_empty())))
            .collect(),
    };
    frame
        .filter(&given)
        .map_err(|e| polars_error("--target", e))
}

/// Splits `frame` into (train, validation) with `fraction` of the rows (of each class when
/// `classify`) in validation, at least one on each side.
pub fn split(
    frame: &DataFrame,
    target: &str,
    classify: bool,
    fraction: f64,
    seed: u64,
) -> Result<(DataFrame, DataFrame), AutopilotError> {
    let n = frame.height();
    if n < 2 {
        return Err(AutopilotError::request(
            "the table",
            format!("has {n} row with a target: a job needs at least two (one to train on, one to validate)"),
        ));
    }
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    if classify {
        let labels: Vec<String> = match prep::column(frame, target)? {
            Values::Numbers(v) => v
                .iter()
                .map(|x| x.map(|n| n.to_string()).unwrap_or_default())
                .collect(),
            Values::Text(v) => v.into_iter().map(Option::unwrap_or_default).collect(),
        };
        for (i, l) in labels.into_iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
    } else {
        groups.insert(String::new(), (0..n).collect());
    }
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for (g, (_, rows)) in groups.into_iter().enumerate() {
        let order = permutation(rows.len(), seed.wrapping_add(g as u64));
        let k = ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len().max(2) - 1);
        for (position, &i) in order.iter().enumerate() {
            if position < k && rows.len() >= 2 {
                validation.push(rows[i] as IdxSize);
            } else {
                train.push(rows[i] as IdxSize);
            }
        }
    }
    train.sort_unstable();
    validation.sort_unstable();
    let take = |rows: Vec<IdxSize>| {
        frame
            .take(&IdxCa::from_vec("rows".into(), rows))
            .map_err(|e| polars_error("the split", e))
    };
    Ok((take(train)?, take(validation)?))
}

/// The fold (`0..k`) of each row for k-fold cross-validation: rows shuffled with `seed` and
/// dealt out in turn, class by class when `classes` (the target's class indices), so that
/// each fold keeps the table's class shares.
pub fn folds(y: &[f64], classes: bool, k: usize, seed: u64) -> Vec<usize> {
    let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, v) in y.iter().enumerate() {
        groups
            .entry(if classes { v.to_bits() } else { 0 })
            .or_default()
            .push(i);
    }
    let mut fold = vec![0; y.len()];
    let mut next = 0;
    for (g, rows) in groups.into_values().enumerate() {
        for i in permutation(rows.len(), seed.wrapping_add(g as u64)) {
            fold[rows[i]] = next % k.max(1);
            next += 1;
        }
    }
    fold
}

/// Writes `frame` as Parquet at `path`.
pub fn write_parquet(frame: &DataFrame, path: &Path) -> Result<(), AutopilotError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| AutopilotError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let file = std::fs::File::create(path).map_err(|source| AutopilotError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut frame = frame.clone();
    ParquetWriter::new(file)
        .finish(&mut frame)
        .map(|_| ())
        .map_err(|e| AutopilotError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_even_stratified_and_seeded() {
        // 30 rows of class 0, 10 of class 1: each of 5 folds has 6 and 2.
        let y: Vec<f64> = (0..40).map(|i| if i < 30 { 0.0 } else { 1.0 }).collect();
        let f = folds(&y, true, 5, 7);
        for k in 0..5 {
            let of = |c: f64| (0..40).filter(|&i| f[i] == k && y[i] == c).count();
            assert_eq!((of(0.0), of(1.0)), (6, 2), "fold {k}");
        }
        assert_eq!(f, folds(&y, true, 5, 7));
        assert_ne!(f, folds(&y, true, 5, 8));
        let values: Vec<f64> = (0..11).map(f64::from).collect();
        let f = folds(&values, false, 5, 0);
        let sizes: Vec<usize> = (0..5)
            .map(|k| f.iter().filter(|&&x| x == k).count())
            .collect();
        assert_eq!(sizes, vec![3, 2, 2, 2, 2]);
    }
}
