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
