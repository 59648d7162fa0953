//! Data preparation as a user expects it: each column's type inferred, categorical columns
//! one-hot encoded, missing values imputed, numeric features standardised, and the target's
//! problem type inferred (or given). Everything decided here is kept in a [`FeatureSchema`] so
//! that prediction prepares new data exactly as training did.

use ndarray::{Array1, Array2};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::MlError;

/// Categorical columns keep their most frequent levels as one-hot columns; the rest share one.
const MAX_LEVELS: usize = 50;
const OTHER_LEVEL: &str = "__other__";
const MISSING_LEVEL: &str = "__missing__";
/// A numeric target with at most this many distinct integer values is taken for classes.
const MAX_INFERRED_CLASSES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    Binary,
    Multiclass,
    Regression,
    /// No target: k-means.
    Clustering,
}

impl ProblemType {
    pub fn parse(text: &str) -> Result<ProblemType, MlError> {
        match text.to_ascii_lowercase().as_str() {
            "binary" | "binaryclassification" | "binary_classification" => Ok(ProblemType::Binary),
            "multiclass" | "multiclassclassification" | "multiclass_classification" => {
                Ok(ProblemType::Multiclass)
            }
            "regression" => Ok(ProblemType::Regression),
            _ => Err(MlError::Input(format!(
                "unknown problem type `{text}`: use binary, multiclass or regression"
            ))),
        }
    }

    pub fn is_classification(self) -> bool {
        matches!(self, ProblemType::Binary | ProblemType::Multiclass)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemType::Binary => "binary",
            ProblemType::Multiclass => "multiclass",
            ProblemType::Regression => "regression",
            ProblemType::Clustering => "clustering",
        }
    }
}

/// How one input column becomes model features.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnPlan {
    Numeric {
        name: String,
        /// The value that stands in for a missing one (the training mean).
        impute: f64,
        mean: f64,
        std: f64,
    },
    Categorical {
        name: String,
        /// One feature per level, in this order; values not among them count as `__other__`.
        levels: Vec<String>,
    },
    /// Free text: one TF-IDF feature per vocabulary term ([`crate::tfidf`]); a missing value
    /// is a row of zeros.
    Text {
        name: String,
        vocabulary: Vec<String>,
        idf: Vec<f64>,
    },
    /// Dates written as text: their calendar parts ([`crate::datetime::PARTS`]),
    /// standardised, a missing or unreadable date standing at the training mean.
    Datetime {
        name: String,
        mean: Vec<f64>,
        std: Vec<f64>,
    },
}

impl ColumnPlan {
    pub fn name(&self) -> &str {
        match self {
            ColumnPlan::Numeric { name, .. }
            | ColumnPlan::Categorical { name, .. }
            | ColumnPlan::Text { name, .. }
            | ColumnPlan::Datetime { name, .. } => name,
        }
    }

    fn width(&self) -> usize {
        match self {
            ColumnPlan::Numeric { .. } => 1,
            ColumnPlan::Categorical { levels, .. } => levels.len(),
            ColumnPlan::Text { vocabulary, .. } => vocabulary.len(),
            ColumnPlan::Datetime { .. } => crate::datetime::PARTS.len(),
        }
    }
}

/// What a model expects of its input, recorded in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureSchema {
    pub columns: Vec<ColumnPlan>,
    pub target: Option<String>,
    pub problem_type: ProblemType,
    /// Class labels (as text) in the order of the model's class indices.
    pub classes: Vec<String>,
    /// What was done about missing values, per column, in words.
    pub imputation: Vec<(String, String)>,
    /// Training rows dropped because their target was missing.
    pub dropped_rows: usize,
}

impl FeatureSchema {
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnPlan::width).sum()
    }

    /// Names of the model's features after encoding (`color=red` for a one-hot column).
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.columns {
            match c {
                ColumnPlan::Numeric { name, .. } => out.push(name.clone()),
                ColumnPlan::Categorical { name, levels } => {
                    out.extend(levels.iter().map(|l| format!("{name}={l}")))
                }
                ColumnPlan::Text {
                    name, vocabulary, ..
                } => out.extend(vocabulary.iter().map(|t| format!("{name}~{t}"))),
                ColumnPlan::Datetime { name, .. } => out.extend(
                    crate::datetime::PARTS
                        .iter()
                        .map(|part| format!("{name}.{part}")),
                ),
            }
        }
        out
    }
}

/// Features and target ready for an algorithm.
#[derive(Debug)]
pub struct Prepared {
    pub x: Array2<f64>,
    /// Class index (classification) or value (regression); empty for clustering.
    pub y: Array1<f64>,
}

fn is_numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || matches!(dtype, DataType::Boolean)
}

fn as_f64(series: &Series) -> Result<Vec<Option<f64>>, MlError> {
    let cast = series
        .cast(&DataType::Float64)
        .map_err(|e| MlError::Input(format!("column `{}`: {e}", series.name())))?;
    let ca = cast.f64().map_err(|e| MlError::Input(e.to_string()))?;
    Ok(ca.iter().map(|v| v.filter(|f| f.is_finite())).collect())
}

fn as_text(series: &Series) -> Result<Vec<Option<String>>, MlError> {
    let cast = series
        .cast(&DataType::String)
        .map_err(|e| MlError::Input(format!("column `{}`: {e}", series.name())))?;
    let ca = cast.str().map_err(|e| MlError::Input(e.to_string()))?;
    Ok(ca
        .iter()
        .map(|v| v.filter(|s| !s.trim().is_empty()).map(str::to_owned))
        .collect())
}

/// Text columns whose every present value is a number are numbers (CSV readers are cautious).
fn numeric_text(values: &[Option<String>]) -> Option<Vec<Option<f64>>> {
    let parsed: Vec<Option<f64>> = values
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(s) => s.trim().parse::<f64>().ok().map(Some),
        })
        .collect::<Option<Vec<_>>>()?;
    parsed.iter().any(Option::is_some).then_some(parsed)
}

/// A column's values as training reads them: numbers (numeric, date and all-number text
/// columns), else text; blank text is missing.
pub enum Values {
    Numbers(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

pub fn column(frame: &DataFrame, name: &str) -> Result<Values, MlError> {
    let series = frame
        .column(name)
        .map_err(|_| MlError::Input(missing_columns_message(frame, &[name.to_owned()])))?
        .as_materialized_series()
        .clone();
    let dtype = series.dtype().clone();
    if is_numeric(&dtype) {
        return Ok(Values::Numbers(as_f64(&series)?));
    }
    if matches!(dtype, DataType::Date | DataType::Datetime(_, _)) {
        let physical = series.to_physical_repr().into_owned();
        return Ok(Values::Numbers(as_f64(&physical)?));
    }
    if matches!(dtype, DataType::String | DataType::Null) {
        let text = as_text(&series)?;
        return Ok(match numeric_text(&text) {
            Some(numbers) => Values::Numbers(numbers),
            None => Values::Text(text),
        });
    }
    Err(MlError::Input(format!(
        "column `{name}` has type {dtype}, which training cannot use; drop it or cast it to a number or text"
    )))
}

fn missing_columns_message(frame: &DataFrame, missing: &[String]) -> String {
    let have: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    format!(
        "the data has no column {}; its columns are: {}",
        missing
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        have.join(", ")
    )
}

/// The mean and the (population) deviation, a constant's deviation taken as 1 so that
/// dividing by it is safe.
pub(crate) fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// Decides the target's problem type from its values, as Autopilot does.
fn infer_problem(target: &Values) -> ProblemType {
    infer_problem_type(target).0
}

/// The target's problem type from its values, and why, in words: two distinct values are a
/// binary problem; more text values, or at most 20 distinct whole numbers, are classes; other
/// numbers are a regression.
pub fn infer_problem_type(target: &Values) -> (ProblemType, String) {
    match target {
        Values::Text(values) => {
            let mut distinct: Vec<&String> = values.iter().flatten().collect();
            distinct.sort();
            distinct.dedup();
            if distinct.len() <= 2 {
                (
                    ProblemType::Binary,
                    format!("the target holds {} distinct labels", distinct.len()),
                )
            } else {
                (
                    ProblemType::Multiclass,
                    format!(
                        "the target holds text with {} distinct labels",
                        distinct.len()
                    ),
                )
            }
        }
        Values::Numbers(values) => {
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let mut distinct: Vec<u64> = present.iter().map(|v| v.to_bits()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let integral = present.iter().all(|v| v.fract() == 0.0);
            if distinct.len() <= 2 {
                (
                    ProblemType::Binary,
                    format!("the target holds {} distinct values", distinct.len()),
                )
            } else if integral && distinct.len() <= MAX_INFERRED_CLASSES {
                (
                    ProblemType::Multiclass,
                    format!(
                        "the target holds {} distinct whole numbers (at most {MAX_INFERRED_CLASSES} are taken for classes)",
                        distinct.len()
                    ),
                )
            } else if integral {
                (
                    ProblemType::Regression,
                    format!(
                        "the target holds {} distinct whole numbers, more than the {MAX_INFERRED_CLASSES} taken for classes",
                        distinct.len()
                    ),
                )
            } else {
                (
                    ProblemType::Regression,
                    format!(
                        "the target holds numbers with fractions ({} distinct values)",
                        distinct.len()
                    ),
                )
            }
        }
    }
}

fn label_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Learns a schema from training data and returns it with the prepared rows.
pub fn fit(
    frame: &DataFrame,
    target: Option<&str>,
    problem: Option<ProblemType>,
) -> Result<(FeatureSchema, Prepared), MlError> {
    if frame.height() == 0 {
        return Err(MlError::Input(
            "the training data has no rows; check the source and its filter".into(),
        ));
    }
    let target_column = target.map(|t| column(frame, t)).transpose()?;
    let problem_type = match (&target_column, problem) {
        (None, _) => ProblemType::Clustering,
        (Some(_), Some(p)) => p,
        (Some(c), None) => infer_problem(c),
    };
    // Rows whose target is missing cannot teach anything.
    let keep: Vec<bool> = match &target_column {
        None => vec![true; frame.height()],
        Some(Values::Numbers(v)) => v.iter().map(Option::is_some).collect(),
        Some(Values::Text(v)) => v.iter().map(Option::is_some).collect(),
    };
    let kept = keep.iter().filter(|k| **k).count();
    if kept == 0 {
        return Err(MlError::Input(format!(
            "every value of the target `{}` is missing",
            target.unwrap_or_default()
        )));
    }
    let mut classes = Vec::new();
    let y: Vec<f64> = match (&target_column, problem_type) {
        (None, _) => Vec::new(),
        (Some(Values::Numbers(v)), ProblemType::Regression) => {
            v.iter().flatten().copied().collect()
        }
        (Some(Values::Text(v)), ProblemType::Regression) => {
            let example = v.iter().flatten().find(|s| s.parse::<f64>().is_err());
            return Err(MlError::Input(format!(
                "the target `{}` is not numeric (values such as {:?}), so it cannot be a regression target; \
                 use --problem-type binary or multiclass, or a numeric column",
                target.unwrap_or_default(),
                example.map(String::as_str).unwrap_or("?")
            )));
        }
        (Some(c), _) => {
            let labels: Vec<String> = match c {
                Values::Numbers(v) => v.iter().flatten().map(|x| label_text(*x)).collect(),
                Values::Text(v) => v.iter().flatten().cloned().collect(),
            };
            let mut distinct = labels.clone();
            let numeric = matches!(c, Values::Numbers(_));
            distinct.sort_by(|a, b| {
                if numeric {
                    a.parse::<f64>()
                        .unwrap_or(0.0)
                        .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
                } else {
                    a.cmp(b)
                }
            });
            distinct.dedup();
            if distinct.len() < 2 {
                return Err(MlError::Input(format!(
                    "the target `{}` has one class only ({}); classification needs at least two",
                    target.unwrap_or_default(),
                    distinct.first().map(String::as_str).unwrap_or("")
                )));
            }
            if problem_type == ProblemType::Binary && distinct.len() > 2 {
                return Err(MlError::Input(format!(
                    "the target `{}` has {} classes; binary needs two (use --problem-type multiclass)",
                    target.unwrap_or_default(),
                    distinct.len()
                )));
            }
            let index = |l: &String| distinct.iter().position(|d| d == l).unwrap_or(0) as f64;
            let y = labels.iter().map(index).collect();
            classes = distinct;
            y
        }
    };

    let mut plans = Vec::new();
    let mut imputation = Vec::new();
    for name in frame.get_column_names() {
        let name = name.to_string();
        if Some(name.as_str()) == target {
            continue;
        }
        match column(frame, &name)? {
            Values::Numbers(values) => {
                let present: Vec<f64> = values
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .filter_map(|(v, _)| *v)
                    .collect();
                let (mean, std) = mean_std(&present);
                let missing = kept - present.len();
                if missing > 0 {
                    imputation.push((name.clone(), format!("{missing} missing → mean {mean}")));
                }
                plans.push(ColumnPlan::Numeric {
                    name,
                    impute: mean,
                    mean,
                    std,
                });
            }
            Values::Text(values) => {
                let present = || {
                    values
                        .iter()
                        .zip(&keep)
                        .filter(|(_, k)| **k)
                        .filter_map(|(v, _)| v.as_deref())
                };
                if crate::datetime::is_dates(present()) {
                    let parts: Vec<[f64; 6]> = present()
                        .filter_map(crate::datetime::parse)
                        .map(crate::datetime::parts)
                        .collect();
                    let (mean, std): (Vec<f64>, Vec<f64>) = (0..crate::datetime::PARTS.len())
                        .map(|j| mean_std(&parts.iter().map(|p| p[j]).collect::<Vec<_>>()))
                        .unzip();
                    let missing = kept - parts.len();
                    if missing > 0 {
                        imputation.push((
                            name.clone(),
                            format!("{missing} missing or unreadable → the mean date"),
                        ));
                    }
                    plans.push(ColumnPlan::Datetime { name, mean, std });
                    continue;
                }
                if crate::tfidf::is_text(present()) {
                    let (vocabulary, idf) = crate::tfidf::learn(present());
                    let missing = kept - present().count();
                    if missing > 0 {
                        imputation.push((name.clone(), format!("{missing} missing → no words")));
                    }
                    plans.push(ColumnPlan::Text {
                        name,
                        vocabulary,
                        idf,
                    });
                    continue;
                }
                let mut counts: std::collections::HashMap<&str, usize> = Default::default();
                let mut missing = 0;
                for (v, _) in values.iter().zip(&keep).filter(|(_, k)| **k) {
                    match v {
                        Some(s) => *counts.entry(s.as_str()).or_default() += 1,
                        None => missing += 1,
                    }
                }
                let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
                levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let overflow = levels.len() > MAX_LEVELS;
                let mut levels: Vec<String> = levels
                    .into_iter()
                    .take(MAX_LEVELS)
                    .map(|(l, _)| l.to_owned())
                    .collect();
                if overflow {
                    levels.push(OTHER_LEVEL.into());
                }
                if missing > 0 {
                    levels.push(MISSING_LEVEL.into());
                    imputation.push((
                        name.clone(),
                        format!("{missing} missing → level {MISSING_LEVEL}"),
                    ));
                }
                plans.push(ColumnPlan::Categorical { name, levels });
            }
        }
    }
    if plans.is_empty() {
        return Err(MlError::Input(
            "the data has no feature columns besides the target".into(),
        ));
    }
    let schema = FeatureSchema {
        columns: plans,
        target: target.map(str::to_owned),
        problem_type,
        classes,
        imputation,
        dropped_rows: frame.height() - kept,
    };
    let x = transform_rows(&schema, frame, Some(&keep))?;
    Ok((
        schema,
        Prepared {
            x,
            y: Array1::from(y),
        },
    ))
}

/// Prepares new data the way the schema was learnt (prediction, validation).
pub fn transform(schema: &FeatureSchema, frame: &DataFrame) -> Result<Array2<f64>, MlError> {
    let missing: Vec<String> = schema
        .columns
        .iter()
        .map(|c| c.name().to_owned())
        .filter(|c| frame.column(c).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(MlError::Schema(format!(
            "the model needs columns the data lacks: {}",
            missing_columns_message(frame, &missing).trim_start_matches("the data has no column ")
        )));
    }
    transform_rows(schema, frame, None)
}

/// The target of new data as the schema's class indices or values (validation data).
pub fn target(
    schema: &FeatureSchema,
    frame: &DataFrame,
) -> Result<(Vec<bool>, Array1<f64>), MlError> {
    let name = schema
        .target
        .as_deref()
        .ok_or_else(|| MlError::Input("the model has no target".into()))?;
    let values = column(frame, name)?;
    let mut keep = Vec::with_capacity(frame.height());
    let mut y = Vec::with_capacity(frame.height());
    match (values, schema.problem_type) {
        (Values::Numbers(v), ProblemType::Regression) => {
            for x in v {
                keep.push(x.is_some());
                y.extend(x);
            }
        }
        (Values::Text(_), ProblemType::Regression) => {
            return Err(MlError::Input(format!(
                "the validation target `{name}` is not numeric"
            )))
        }
        (c, _) => {
            let labels: Vec<Option<String>> = match c {
                Values::Numbers(v) => v.into_iter().map(|x| x.map(label_text)).collect(),
                Values::Text(v) => v,
            };
            for l in labels {
                match l {
                    Some(l) => {
                        let index = schema.classes.iter().position(|c| *c == l).ok_or_else(|| {
                            MlError::Input(format!(
                                "the validation target `{name}` has the class `{l}`, which the training data lacks (classes: {})",
                                schema.classes.join(", ")
                            ))
                        })?;
                        keep.push(true);
                        y.push(index as f64);
                    }
                    None => keep.push(false),
                }
            }
        }
    }
    Ok((keep, Array1::from(y)))
}

/// Row-major numbers (a value per schema column, `NaN` missing) encoded as [`transform`]
/// encodes a frame of them; `None` when a column is categorical (it needs its text).
pub fn transform_numbers(schema: &FeatureSchema, values: &[f64]) -> Option<Array2<f64>> {
    let plans: Vec<(f64, f64, f64)> = schema
        .columns
        .iter()
        .map(|c| match c {
            ColumnPlan::Numeric {
                impute, mean, std, ..
            } => Some((*impute, *mean, *std)),
            ColumnPlan::Categorical { .. }
            | ColumnPlan::Text { .. }
            | ColumnPlan::Datetime { .. } => None,
        })
        .collect::<Option<_>>()?;
    let width = plans.len();
    if width == 0 || !values.len().is_multiple_of(width) {
        return None;
    }
    let encoded = values
        .chunks_exact(width)
        .flat_map(|row| {
            row.iter().zip(&plans).map(|(v, (impute, mean, std))| {
                (if v.is_nan() { *impute } else { *v } - mean) / std
            })
        })
        .collect();
    Array2::from_shape_vec((values.len() / width, width), encoded).ok()
}

fn transform_rows(
    schema: &FeatureSchema,
    frame: &DataFrame,
    keep: Option<&[bool]>,
) -> Result<Array2<f64>, MlError> {
    let rows = keep.map_or(frame.height(), |k| k.iter().filter(|x| **x).count());
    let mut x = Array2::<f64>::zeros((rows, schema.width()));
    let mut offset = 0;
    for plan in &schema.columns {
        let values = column(frame, plan.name())?;
        let kept_rows = (0..frame.height()).filter(|i| keep.is_none_or(|k| k[*i]));
        match (plan, values) {
            (
                ColumnPlan::Numeric {
                    impute, mean, std, ..
                },
                Values::Numbers(v),
            ) => {
                for (r, i) in kept_rows.enumerate() {
                    x[[r, offset]] = (v[i].unwrap_or(*impute) - mean) / std;
                }
            }
            (ColumnPlan::Numeric { name, .. }, Values::Text(v)) => {
                let example = v.iter().flatten().find(|s| s.parse::<f64>().is_err());
                return Err(MlError::Schema(format!(
                    "column `{name}` was numeric in training but holds text here (such as {:?})",
                    example.map(String::as_str).unwrap_or("?")
                )));
            }
            (ColumnPlan::Categorical { levels, .. }, values) => {
                let text: Vec<Option<String>> = match values {
                    Values::Text(v) => v,
                    Values::Numbers(v) => v.into_iter().map(|x| x.map(label_text)).collect(),
                };
                let find = |l: &str| levels.iter().position(|x| x == l);
                for (r, i) in kept_rows.enumerate() {
                    let level = match &text[i] {
                        Some(s) => find(s).or_else(|| find(OTHER_LEVEL)),
                        None => find(MISSING_LEVEL),
                    };
                    if let Some(l) = level {
                        x[[r, offset + l]] = 1.0;
                    }
                }
            }
            (
                ColumnPlan::Text {
                    vocabulary, idf, ..
                },
                values,
            ) => {
                let encoder = crate::tfidf::Encoder::new(vocabulary, idf);
                let mut row = vec![0.0; vocabulary.len()];
                let numbers_as_text;
                let text: &[Option<String>] = match &values {
                    Values::Text(v) => v,
                    Values::Numbers(v) => {
                        numbers_as_text = v.iter().map(|x| x.map(label_text)).collect::<Vec<_>>();
                        &numbers_as_text
                    }
                };
                for (r, i) in kept_rows.enumerate() {
                    if let Some(t) = &text[i] {
                        encoder.encode(t, &mut row);
                        for (j, v) in row.iter().enumerate() {
                            x[[r, offset + j]] = *v;
                        }
                    }
                }
            }
            (ColumnPlan::Datetime { mean, std, .. }, values) => {
                for (r, i) in kept_rows.enumerate() {
                    let parsed = match &values {
                        Values::Text(v) => v[i].as_deref().and_then(crate::datetime::parse),
                        Values::Numbers(_) => None,
                    };
                    // Missing or unreadable: every part at its mean, which standardises to 0.
                    if let Some(p) = parsed.map(crate::datetime::parts) {
                        for j in 0..p.len() {
                            x[[r, offset + j]] = (p[j] - mean[j]) / std[j];
                        }
                    }
                }
            }
        }
        offset += plan.width();
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_encodes_and_imputes() {
        let frame = df!(
            "size" => [Some(1.0), None, Some(3.0), Some(4.0)],
            "color" => [Some("red"), Some("blue"), None, Some("red")],
            "label" => ["yes", "no", "yes", "no"]
        )
        .unwrap();
        let (schema, prepared) = fit(&frame, Some("label"), None).unwrap();
        assert_eq!(schema.problem_type, ProblemType::Binary);
        assert_eq!(schema.classes, vec!["no", "yes"]);
        assert_eq!(
            schema.feature_names(),
            vec!["size", "color=red", "color=blue", "color=__missing__"]
        );
        assert_eq!(prepared.y.to_vec(), vec![1.0, 0.0, 1.0, 0.0]);
        // The missing size is the mean, which standardises to 0.
        assert!(prepared.x[[1, 0]].abs() < 1e-12);
        assert_eq!(prepared.x[[2, 3]], 1.0);
        assert_eq!(schema.imputation.len(), 2);
        // Prediction reuses the schema; a row of an unseen colour has no one-hot set.
        let new = df!("size" => [2.0], "color" => ["green"]).unwrap();
        let x = transform(&schema, &new).unwrap();
        assert_eq!(x.row(0).iter().skip(1).sum::<f64>(), 0.0);
    }

    #[test]
    fn free_text_becomes_tfidf_features() {
        let notes = [
            Some("the parcel came late and broken"),
            Some("arrived early, well packed"),
            None,
            Some("late again and the box was broken"),
        ];
        let frame = df!("note" => notes, "label" => ["bad", "good", "good", "bad"]).unwrap();
        let (schema, prepared) = fit(&frame, Some("label"), None).unwrap();
        let ColumnPlan::Text { vocabulary, .. } = &schema.columns[0] else {
            panic!("text: {:?}", schema.columns[0])
        };
        assert_eq!(vocabulary, &["and", "broken", "late", "the"]);
        assert_eq!(schema.feature_names()[1], "note~broken");
        let norm = |r: usize| prepared.x.row(r).iter().map(|v| v * v).sum::<f64>();
        assert!((norm(0) - 1.0).abs() < 1e-12 && norm(2) == 0.0 && norm(1) == 0.0);
        assert_eq!(
            schema.imputation,
            vec![("note".into(), "1 missing → no words".into())]
        );
        // New rows reuse the training vocabulary; a text column has no numbers-only form.
        let x = transform(&schema, &df!("note" => ["broken BROKEN box"]).unwrap()).unwrap();
        assert_eq!(x.row(0).to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
        assert!(transform_numbers(&schema, &[1.0]).is_none());
        // Schemas written before text plans still read.
        let old = r#"{"type":"categorical","name":"c","levels":["a"]}"#;
        assert!(serde_json::from_str::<ColumnPlan>(old).is_ok());
    }

    #[test]
    fn dates_written_as_text_become_calendar_parts() {
        let when = [
            Some("2024-01-01"),
            Some("2024-01-08"),
            None,
            Some("2024-03-01"),
        ];
        let frame = df!("when" => when, "y" => [1.0, 2.0, 3.0, 4.5]).unwrap();
        let (schema, prepared) = fit(&frame, Some("y"), None).unwrap();
        assert!(matches!(schema.columns[0], ColumnPlan::Datetime { .. }));
        assert_eq!(schema.feature_names()[2], "when.month");
        assert_eq!(prepared.x.ncols(), 6);
        // The missing date stands at the mean: all zeros.
        assert!(prepared.x.row(2).iter().all(|v| *v == 0.0));
        // Two Mondays a week apart: the same weekday feature, the days a week apart.
        assert_eq!(prepared.x[[0, 4]], prepared.x[[1, 4]]);
        let ColumnPlan::Datetime { std, .. } = &schema.columns[0] else {
            unreachable!()
        };
        let days = (prepared.x[[1, 0]] - prepared.x[[0, 0]]) * std[0];
        assert!((days - 7.0).abs() < 1e-9, "{days}");
        // An unreadable date in new rows is missing, not an error.
        let x = transform(&schema, &df!("when" => ["soon"]).unwrap()).unwrap();
        assert!(x.row(0).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn problem_types_from_values() {
        let numbers = |v: Vec<f64>| Values::Numbers(v.into_iter().map(Some).collect());
        assert_eq!(
            infer_problem(&numbers(vec![0.0, 1.0, 1.0])),
            ProblemType::Binary
        );
        assert_eq!(
            infer_problem(&numbers(vec![0.0, 1.0, 2.0])),
            ProblemType::Multiclass
        );
        assert_eq!(
            infer_problem(&numbers(vec![0.5, 1.0, 2.0])),
            ProblemType::Regression
        );
    }

    #[test]
    fn text_target_cannot_be_regression() {
        let frame = df!("x" => [1.0, 2.0], "y" => ["a", "b"]).unwrap();
        let err = fit(&frame, Some("y"), Some(ProblemType::Regression)).unwrap_err();
        assert!(err.to_string().contains("not numeric"), "{err}");
    }

    #[test]
    fn missing_columns_are_named() {
        let frame = df!("x" => [1.0, 2.0], "y" => [0.0, 1.0]).unwrap();
        let (schema, _) = fit(&frame, Some("y"), None).unwrap();
        let err = transform(&schema, &df!("z" => [1.0]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
        let err = fit(&frame, Some("nope"), None).err().unwrap();
        assert!(err.to_string().contains("`nope`"), "{err}");
    }
}
