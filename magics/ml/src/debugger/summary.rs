//! What `%debugger` shows of a trial: its tensors in a table, a tensor's values over the
//! steps reduced to lines (smdebug's reductions), or spread as percentiles when it is not a
//! scalar (TensorBoard's distributions).

use std::collections::BTreeMap;

use super::trial::{Mode, Trial};
use super::DebuggerError;

/// smdebug's `reduction_value` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    Min,
    Max,
    Mean,
    Std,
    Variance,
    Sum,
    Prod,
    L1,
    L2,
}

impl Reduction {
    pub const NAMES: &'static str = "min, max, mean, std, variance, sum, prod, l1, l2 (norm)";

    pub fn parse(text: &str) -> Result<Reduction, DebuggerError> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "min" => Reduction::Min,
            "max" => Reduction::Max,
            "mean" => Reduction::Mean,
            "std" => Reduction::Std,
            "variance" | "var" => Reduction::Variance,
            "sum" => Reduction::Sum,
            "prod" => Reduction::Prod,
            "l1" => Reduction::L1,
            "l2" | "norm" => Reduction::L2,
            other => {
                return Err(DebuggerError::Config {
                    field: "--reduction".into(),
                    reason: format!("`{other}` is not one of {}", Reduction::NAMES),
                })
            }
        })
    }

    pub fn apply(self, v: &[f64]) -> f64 {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        match self {
            Reduction::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
            Reduction::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Reduction::Mean => mean,
            Reduction::Std => Reduction::Variance.apply(v).sqrt(),
            Reduction::Variance => v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n,
            Reduction::Sum => v.iter().sum(),
            Reduction::Prod => v.iter().product(),
            Reduction::L1 => v.iter().map(|x| x.abs()).sum(),
            Reduction::L2 => v.iter().map(|x| x * x).sum::<f64>().sqrt(),
        }
    }
}

/// One tensor of a trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRow {
    pub name: String,
    pub collections: Vec<String>,
    pub steps: usize,
    pub modes: Vec<&'static str>,
    pub shape: Vec<usize>,
    /// The last saved value (a scalar), or its mean.
    pub last: f64,
}

pub fn tensor_rows(
    trial: &Trial,
    collection: Option<&str>,
) -> Result<Vec<TensorRow>, DebuggerError> {
    if let Some(c) = collection {
        if !trial.collections().contains_key(c) {
            return Err(DebuggerError::Config {
                field: "--collection".into(),
                reason: format!(
                    "the job saved no collection `{c}`; it saved {}",
                    trial
                        .collections()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let mut rows = Vec::new();
    for name in trial.tensor_names() {
        let collections: Vec<String> = trial
            .collections()
            .iter()
            .filter(|(_, names)| names.contains(&name))
            .map(|(c, _)| c.clone())
            .collect();
        if collection.is_some_and(|c| !collections.iter().any(|n| n == c)) {
            continue;
        }
        let series = trial.series(&name, None);
        let Some((_, _, last)) = series.last() else {
            continue;
        };
        let mut modes: Vec<&'static str> = series.iter().map(|(_, s, _)| s.mode.name()).collect();
        modes.dedup();
        modes.sort_unstable();
        modes.dedup();
        rows.push(TensorRow {
            collections,
            steps: series.len(),
            modes,
            shape: last.shape.clone(),
            last: Reduction::Mean.apply(&last.values),
            name,
        });
    }
    Ok(rows)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len().saturating_sub(1)) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// A labelled line: (x, y) points.
pub type Line = (String, Vec<(u64, f64)>);

/// A tensor's lines over the steps that saved it: its value for a scalar, the reduction
/// asked for, or else its min, quartiles and max.
pub fn lines(
    trial: &Trial,
    name: &str,
    mode: Option<Mode>,
    reduction: Option<Reduction>,
) -> Result<Vec<Line>, DebuggerError> {
    let series = trial.series(name, mode);
    if series.is_empty() {
        let names = trial.tensor_names();
        let closest = names
            .iter()
            .min_by_key(|n| strsim::damerau_levenshtein(n, name))
            .cloned()
            .unwrap_or_default();
        return Err(DebuggerError::Config {
            field: "--tensor".into(),
            reason: format!(
                "no tensor `{name}` was saved{}; did you mean `{closest}`? (`%debugger tensors JOB` lists them)",
                mode.map(|m| format!(" in mode {}", m.name())).unwrap_or_default()
            ),
        });
    }
    let scalar = series.iter().all(|(_, _, t)| t.values.len() == 1);
    let x = |step: u64, s: &super::trial::Step| if mode.is_some() { s.mode_step } else { step };
    if scalar || reduction.is_some() {
        let r = reduction.unwrap_or(Reduction::Mean);
        let label = if scalar && reduction.is_none() {
            name.to_owned()
        } else {
            format!("{name} ({r:?})").to_lowercase()
        };
        return Ok(vec![(
            label,
            series
                .iter()
                .map(|(step, s, t)| (x(*step, s), r.apply(&t.values)))
                .collect(),
        )]);
    }
    let mut out: BTreeMap<usize, (String, Vec<(u64, f64)>)> = BTreeMap::new();
    let qs = [
        (0.0, "min"),
        (0.25, "25 %"),
        (0.5, "median"),
        (0.75, "75 %"),
        (1.0, "max"),
    ];
    for (step, s, t) in &series {
        let mut sorted: Vec<f64> = t.values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            continue;
        }
        sorted.sort_by(f64::total_cmp);
        for (i, (q, label)) in qs.iter().enumerate() {
            out.entry(i)
                .or_insert_with(|| (label.to_string(), Vec::new()))
                .1
                .push((x(*step, s), percentile(&sorted, *q)));
        }
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_are_smdebugs() {
        let v = [3.0, -4.0];
        assert_eq!(Reduction::parse("norm").unwrap().apply(&v), 5.0);
        assert_eq!(Reduction::L1.apply(&v), 7.0);
        assert_eq!(Reduction::Mean.apply(&v), -0.5);
        assert_eq!(Reduction::Variance.apply(&v), 12.25);
        assert_eq!(Reduction::Min.apply(&v), -4.0);
        assert!(Reduction::parse("median")
            .unwrap_err()
            .to_string()
            .contains("min, max, mean"));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
    }
}
