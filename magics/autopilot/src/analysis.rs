//! What Autopilot learns about a table before it trains anything: each column's type
//! (numeric, categorical, free text, datetime), its missing values and cardinality, the
//! target's distribution and the problem type (with the reason), class imbalance, duplicate
//! rows, constant and identifier-like columns, and leakage suspects (a column that predicts
//! the target almost perfectly on its own). The data-exploration notebook reports this; the
//! candidates' pipelines are chosen from it.
//!
//! Leakage is measured by the column's nearest neighbour: rows sorted by the column's value,
//! each row's target predicted by the row before it. A column that knows the target gives
//! near-perfect predictions that way; one that does not, whatever its cardinality, does no
//! better than chance.

use std::collections::{HashMap, HashSet};

use polars::prelude::{DataFrame, DataType};
use rustmaker_ml::prep::{self, Values};
use serde::Serialize;

use crate::objective::Problem;
use crate::AutopilotError;

/// Categorical columns with more levels than this are high-cardinality (training keeps the
/// most frequent 50 as their own features).
const HIGH_CARDINALITY: usize = 50;
/// A nearest-neighbour accuracy (or R²) from the column alone at or above this is a leak.
const LEAKAGE: f64 = 0.99;
/// Identifier-like needs this many rows: on a handful every column is distinct.
const IDENTIFIER_ROWS: usize = 20;
/// Classes whose largest is this many times the smallest are imbalanced.
const IMBALANCE: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Text,
    Datetime,
}

impl ColumnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Text => "text",
            ColumnKind::Datetime => "datetime",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumericSummary {
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub std: f64,
}

impl NumericSummary {
    fn of(values: &[f64]) -> Option<NumericSummary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        Some(NumericSummary {
            mean,
            median,
            min: sorted[0],
            max: sorted[n - 1],
            std: var.sqrt(),
        })
    }
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub kind: ColumnKind,
    pub missing: usize,
    /// Distinct present values.
    pub unique: usize,
    /// Distinct words, for a text column.
    pub unique_words: Option<usize>,
    /// The share of present values that are numbers.
    pub numeric_fraction: f64,
    pub summary: Option<NumericSummary>,
    pub constant: bool,
    pub identifier_like: bool,
    pub high_cardinality: bool,
    /// How well the column alone predicts the target (nearest-neighbour accuracy for classes,
    /// R² for values), 1 being perfectly.
    pub target_signal: f64,
    pub leakage_suspect: bool,
}

/// The target column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// Rows without a target, left out of everything else.
    pub missing_rows: usize,
    /// Classification: each label and its rows, the most frequent first.
    pub classes: Vec<(String, usize)>,
    /// Classification: the largest class's rows over the smallest's.
    pub imbalance: Option<f64>,
    /// Regression: the values' summary.
    pub summary: Option<NumericSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Rows read (those without a target included).
    pub rows: usize,
    pub problem: Problem,
    /// Why the problem type is what it is: given, or inferred from the target's values.
    pub problem_reason: String,
    pub target: TargetReport,
    pub columns: Vec<ColumnReport>,
    pub duplicate_rows: usize,
    /// The most correlated pairs of numeric features (Pearson's r over the rows where both
    /// are given), the strongest first: at most [`CORRELATED_PAIRS`] of them.
    pub correlations: Vec<(String, String, f64)>,
    /// What a user might do about what was found, in words.
    pub suggestions: Vec<String>,
}

impl Analysis {
    pub fn column(&self, name: &str) -> Option<&ColumnReport> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns a pipeline uses: neither constant nor identifier-like.
    pub fn usable(&self) -> impl Iterator<Item = &ColumnReport> {
        self.columns
            .iter()
            .filter(|c| !c.constant && !c.identifier_like)
    }
}

/// A column's values as keys that sort and compare (numbers by value, then text), `None`
/// missing.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    Text(String),
}

fn keys(values: &Values) -> Vec<Option<Key>> {
    match values {
        Values::Numbers(v) => v.iter().map(|x| x.map(Key::Number)).collect(),
        Values::Text(v) => v.iter().map(|x| x.clone().map(Key::Text)).collect(),
    }
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Number(v) => format!("{v}"),
        Key::Text(t) => t.clone(),
    }
}

/// How well `column` predicts `target` from its nearest neighbour in the column's order.
fn target_signal(column: &[Option<Key>], target: &TargetValues) -> f64 {
    let mut order: Vec<usize> = (0..column.len()).collect();
    // Missing values last; ties kept in the table's order.
    order.sort_by(|&a, &b| match (&column[a], &column[b]) {
        (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    if order.len() < 2 {
        return 0.0;
    }
    let neighbour = |i: usize| if i == 0 { order[1] } else { order[i - 1] };
    match target {
        TargetValues::Classes(labels) => {
            let hits = (0..order.len())
                .filter(|&i| labels[order[i]] == labels[neighbour(i)])
                .count();
            hits as f64 / order.len() as f64
        }
        TargetValues::Numbers(y) => {
            let mean = y.iter().sum::<f64>() / y.len() as f64;
            let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
            if total == 0.0 {
                return 0.0;
            }
            let apart: f64 = (0..order.len())
                .map(|i| (y[order[i]] - y[neighbour(i)]).powi(2))
                .sum();
            1.0 - apart / (2.0 * total)
        }
    }
}

enum TargetValues {
    Classes(Vec<usize>),
    Numbers(Vec<f64>),
}

/// Analyses `frame` for predicting `target`; `problem` is the user's, else inferred.
pub fn analyse(
    frame: &DataFrame,
    target: &str,
    problem: Option<Problem>,
) -> Result<Analysis, AutopilotError> {
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    if frame.height() == 0 {
        return Err(AutopilotError::EmptyTable);
    }
    if !names.iter().any(|n| n == target) {
        let suggestion = names
            .iter()
            .map(|n| {
                (
                    strsim::jaro_winkler(&n.to_lowercase(), &target.to_lowercase()),
                    n,
                )
            })
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n.clone());
        return Err(AutopilotError::MissingTarget {
            column: target.to_owned(),
            suggestion,
            columns: names,
        });
    }
    if names.len() == 1 {
        return Err(AutopilotError::OnlyTarget(target.to_owned()));
    }
    let unusable = |why: &str| AutopilotError::UnusableTarget {
        column: target.to_owned(),
        why: why.to_owned(),
    };

    // The target: rows without one are left out of everything after.
    let target_values = prep::column(frame, target)?;
    let keep: Vec<bool> = keys(&target_values).iter().map(Option::is_some).collect();
    let kept = keep.iter().filter(|k| **k).count();
    if kept == 0 {
        return Err(unusable("has no values"));
    }
    let (inferred, why) = prep::infer_problem_type(&target_values);
    let kept_keys: Vec<Key> = keys(&target_values).into_iter().flatten().collect();
    let mut distinct: Vec<String> = kept_keys.iter().map(key_text).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(unusable(&format!("holds a single value ({})", distinct[0])));
    }
    let (problem, problem_reason) = match problem {
        Some(given) => {
            check_given(given, &target_values, distinct.len(), target)?;
            (given, "given".to_owned())
        }
        None => (
            Problem::of_training(inferred).expect("a target's problem is never clustering"),
            format!("inferred: {why}"),
        ),
    };
    let mut report = TargetReport {
        name: target.to_owned(),
        missing_rows: frame.height() - kept,
        classes: Vec::new(),
        imbalance: None,
        summary: None,
    };
    let signal_target = if problem == Problem::Regression {
        let y: Vec<f64> = match &target_values {
            Values::Numbers(v) => v.iter().flatten().copied().collect(),
            Values::Text(_) => unreachable!("check_given refuses a text target for regression"),
        };
        report.summary = NumericSummary::of(&y);
        TargetValues::Numbers(y)
    } else {
        let labels: Vec<String> = kept_keys.iter().map(key_text).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for l in &labels {
            *counts.entry(l.as_str()).or_default() += 1;
        }
        let mut classes: Vec<(String, usize)> =
            counts.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect();
        classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some((class, _)) = classes.iter().find(|(_, n)| *n == 1) {
            return Err(AutopilotError::SingleRowClass {
                column: target.to_owned(),
                class: class.clone(),
            });
        }
        let index: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, (l, _))| (l.as_str(), i))
            .collect();
        let codes = labels.iter().map(|l| index[l.as_str()]).collect();
        report.imbalance = Some(classes[0].1 as f64 / classes[classes.len() - 1].1 as f64);
        report.classes = classes;
        TargetValues::Classes(codes)
    };

    // The features, over the rows with a target.
    let mut columns = Vec::new();
    let mut row_keys: Vec<Vec<Option<Key>>> = Vec::new();
    for name in names.iter().filter(|n| *n != target) {
        let dtype = frame.column(name).map(|c| c.dtype().clone()).ok();
        let values = prep::column(frame, name)?;
        let all_keys: Vec<Option<Key>> = keys(&values)
            .into_iter()
            .zip(&keep)
            .filter_map(|(k, keep)| keep.then_some(k))
            .collect();
        columns.push(column_report(
            name,
            dtype.as_ref(),
            &all_keys,
            &signal_target,
        ));
        row_keys.push(all_keys);
    }
    let feature_names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    if columns.iter().all(|c| c.kind == ColumnKind::Text) {
        return Err(AutopilotError::OnlyText(feature_names));
    }
    let duplicate_rows = {
        let mut seen = HashSet::new();
        (0..kept)
            .filter(|&r| {
                let row: Vec<String> = row_keys
                    .iter()
                    .map(|c| c[r].as_ref().map(key_text).unwrap_or_default())
                    .chain(std::iter::once(kept_keys[r].clone()).map(|k| key_text(&k)))
                    .collect();
                !seen.insert(row)
            })
            .count()
    };
    let correlations = correlations(&columns, &row_keys);
    let mut analysis = Analysis {
        rows: frame.height(),
        problem,
        problem_reason,
        target: report,
        columns,
        duplicate_rows,
        correlations,
        suggestions: Vec::new(),
    };
    analysis.suggestions = suggestions(&analysis);
    Ok(analysis)
}

/// How many correlated pairs the analysis keeps.
pub const CORRELATED_PAIRS: usize = 10;
/// Pairs this correlated are told as a suggestion: one of them adds little.
const STRONG_CORRELATION: f64 = 0.9;

fn correlations(columns: &[ColumnReport], rows: &[Vec<Option<Key>>]) -> Vec<(String, String, f64)> {
    let numeric: Vec<(usize, Vec<Option<f64>>)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ColumnKind::Numeric && !c.constant && !c.identifier_like)
        .map(|(i, _)| {
            let values = rows[i]
                .iter()
                .map(|k| match k {
                    Some(Key::Number(v)) => Some(*v),
                    Some(Key::Text(t)) => t.trim().parse().ok(),
                    None => None,
                })
                .collect();
            (i, values)
        })
        .collect();
    let mut pairs = Vec::new();
    for (a, (i, x)) in numeric.iter().enumerate() {
        for (j, y) in &numeric[a + 1..] {
            let both: Vec<(f64, f64)> = x
                .iter()
                .zip(y)
                .filter_map(|(u, v)| Some(((*u)?, (*v)?)))
                .collect();
            if both.len() < 3 {
                continue;
            }
            let n = both.len() as f64;
            let (mx, my) = (
                both.iter().map(|p| p.0).sum::<f64>() / n,
                both.iter().map(|p| p.1).sum::<f64>() / n,
            );
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            for (u, v) in &both {
                sxy += (u - mx) * (v - my);
                sxx += (u - mx).powi(2);
                syy += (v - my).powi(2);
            }
            if sxx > 0.0 && syy > 0.0 {
                let r = sxy / (sxx * syy).sqrt();
                pairs.push((columns[*i].name.clone(), columns[*j].name.clone(), r));
            }
        }
    }
    pairs.sort_by(|a, b| {
        b.2.abs()
            .total_cmp(&a.2.abs())
            .then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1)))
    });
    pairs.truncate(CORRELATED_PAIRS);
    pairs
}

/// A given problem type the target's values cannot be.
fn check_given(
    given: Problem,
    values: &Values,
    distinct: usize,
    target: &str,
) -> Result<(), AutopilotError> {
    let wrong = |message: String| Err(AutopilotError::request("ProblemType", message));
    match (given, values) {
        (Problem::Regression, Values::Text(_)) => wrong(format!(
            "Regression needs a numeric target, and `{target}` holds text: use BinaryClassification or MulticlassClassification"
        )),
        (Problem::BinaryClassification, _) if distinct != 2 => wrong(format!(
            "BinaryClassification needs a target of two values, and `{target}` holds {distinct}: use MulticlassClassification"
        )),
        _ => Ok(()),
    }
}

fn column_report(
    name: &str,
    dtype: Option<&DataType>,
    keys: &[Option<Key>],
    target: &TargetValues,
) -> ColumnReport {
    let present: Vec<&Key> = keys.iter().flatten().collect();
    let missing = keys.len() - present.len();
    let mut distinct: Vec<String> = present.iter().map(|k| key_text(k)).collect();
    distinct.sort();
    distinct.dedup();
    let unique = distinct.len();
    let numbers: Vec<f64> = present
        .iter()
        .filter_map(|k| match k {
            Key::Number(v) => Some(*v),
            Key::Text(t) => t.trim().parse().ok(),
        })
        .collect();
    let numeric_fraction = numbers.len() as f64 / present.len().max(1) as f64;
    let texts: Vec<&str> = present
        .iter()
        .filter_map(|k| match k {
            Key::Text(t) => Some(t.as_str()),
            Key::Number(_) => None,
        })
        .collect();
    let kind = if matches!(dtype, Some(DataType::Date | DataType::Datetime(_, _)))
        // Training's own rules (`rustmaker_ml::datetime`, `rustmaker_ml::tfidf`), so the
        // analysis names the columns as the pipelines will treat them.
        || rustmaker_ml::datetime::is_dates(texts.iter().copied())
    {
        ColumnKind::Datetime
    } else if texts.is_empty() {
        ColumnKind::Numeric
    } else if rustmaker_ml::tfidf::is_text(texts.iter().copied()) {
        ColumnKind::Text
    } else {
        ColumnKind::Categorical
    };
    let unique_words = (kind == ColumnKind::Text).then(|| {
        texts
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(str::to_lowercase)
            .collect::<HashSet<_>>()
            .len()
    });
    let integral = numbers.iter().all(|v| v.fract() == 0.0);
    let identifier_like = keys.len() >= IDENTIFIER_ROWS
        && unique == present.len()
        && present.len() * 20 >= keys.len() * 19
        && matches!(kind, ColumnKind::Categorical)
        || (kind == ColumnKind::Numeric
            && integral
            && keys.len() >= IDENTIFIER_ROWS
            && unique == keys.len());
    let target_signal = target_signal(keys, target);
    let chance = match target {
        TargetValues::Classes(codes) => {
            let mut counts: HashMap<usize, usize> = HashMap::new();
            codes
                .iter()
                .for_each(|c| *counts.entry(*c).or_default() += 1);
            counts
                .values()
                .map(|n| (*n as f64 / codes.len() as f64).powi(2))
                .sum::<f64>()
        }
        TargetValues::Numbers(_) => 0.0,
    };
    ColumnReport {
        name: name.to_owned(),
        kind,
        missing,
        unique,
        unique_words,
        numeric_fraction,
        summary: (kind == ColumnKind::Numeric)
            .then(|| NumericSummary::of(&numbers))
            .flatten(),
        constant: unique <= 1,
        identifier_like,
        high_cardinality: kind == ColumnKind::Categorical && unique > HIGH_CARDINALITY,
        target_signal,
        leakage_suspect: target_signal >= LEAKAGE && chance < LEAKAGE && unique > 1,
    }
}

fn suggestions(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let t = &a.target;
    if t.missing_rows > 0 {
        out.push(format!(
            "{} rows have no `{}` and were left out: fill in their target to use them",
            t.missing_rows, t.name
        ));
    }
    if let Some(ratio) = t.imbalance.filter(|r| *r >= IMBALANCE) {
        out.push(format!(
            "the classes are imbalanced ({ratio:.1}:1 between the largest and the smallest): BalancedAccuracy or F1 ranks candidates more fairly than Accuracy"
        ));
    }
    for c in &a.columns {
        let share = c.missing as f64 / (a.rows - t.missing_rows).max(1) as f64;
        if c.leakage_suspect {
            out.push(format!(
                "`{}` predicts the target almost perfectly on its own ({:.3}): make sure it is known when a prediction is made, else drop it",
                c.name, c.target_signal
            ));
        }
        if c.constant {
            out.push(format!("`{}` holds a single value: it is left out", c.name));
        } else if c.identifier_like {
            out.push(format!(
                "`{}` looks like an identifier (a distinct value in every row): it is left out",
                c.name
            ));
        } else if c.high_cardinality {
            out.push(format!(
                "`{}` has {} levels: the {HIGH_CARDINALITY} most frequent are kept as features, the rest share one",
                c.name, c.unique
            ));
        }
        if share > 0.5 {
            out.push(format!(
                "`{}` is {:.2}% missing: consider dropping it or filling it in",
                c.name,
                share * 100.0
            ));
        }
    }
    for (x, y, r) in a
        .correlations
        .iter()
        .filter(|p| p.2.abs() >= STRONG_CORRELATION)
    {
        out.push(format!(
            "`{x}` and `{y}` are strongly correlated (r = {r:.3}): one of them adds little the other does not say"
        ));
    }
    if a.duplicate_rows > 0 {
        out.push(format!(
            "{} rows repeat an earlier row exactly: check whether they are real observations",
            a.duplicate_rows
        ));
    }
    out
}
